"""The real scans' manifests (../shared/realdata and ../shared/realdata_extra), read the same
way by the scripts that use the real scans; a missing folder is skipped with a message."""

from __future__ import annotations

import csv
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
FOLDERS = ("realdata", "realdata_extra")


def real_rows():
    """(case folder, manifest row) for every real scan that is present."""
    for folder in FOLDERS:
        manifest = SHARED / folder / "MANIFEST.tsv"
        if not manifest.is_file():
            print(f"(skipped {folder}: {manifest} is not there)")
            continue
        with open(manifest, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                yield SHARED / folder / row["case"], row
