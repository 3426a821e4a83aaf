"""The README's picture of the browser viewer: `tumorclassifier view` on a bundled sample,
Classify clicked in Debian's Chromium (Playwright), the page saved as a PNG.

    python scripts/screenshot_web_viewer.py [--out docs/screenshot_web_viewer.png]
"""

from __future__ import annotations

import argparse
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
SAMPLE = REPOSITORY / "Resources" / "SampleData" / "phantom_s3_hgg_0000.nii.gz"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=REPOSITORY / "docs" /
                        "screenshot_web_viewer.png")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = secrets.token_urlsafe(24)
    server = subprocess.Popen([sys.executable, "-m", "TumorClassifierLib.cli", "view",
                               str(SAMPLE), "--port", str(port), "--token", token],
                              cwd=REPOSITORY, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                 args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1500, "height": 800})
            for _ in range(120):  # the server starts
                try:
                    page.goto(f"http://127.0.0.1:{port}/?secret={token}")
                    break
                except Exception:
                    time.sleep(0.5)
            page.wait_for_selector("#classify")
            time.sleep(3)
            page.click("#classify")
            page.wait_for_selector("#result", timeout=180_000)
            time.sleep(4)
            page.screenshot(path=str(args.out))
            browser.close()
    finally:
        server.terminate()
        server.wait()
    print(args.out)


if __name__ == "__main__":
    main()
