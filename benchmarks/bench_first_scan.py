"""The first scan: `tumorclassifier classify ONE` as a whole process (starting Python, imports,
loading the model, the first network call) against the warm per-scan time of a batch, both as
a user runs them. Issue 14's target: first / warm at most 1.5.

    python benchmarks/bench_first_scan.py [--batch 6] [--repeats 3] [--source DIR ...]

Warm per-scan = (time of a batch of 1 + N scans - time of a batch of 1) / N, every run a fresh
process on the same 240x240x155 scan (copies under other names). `--source` runs the CLI of
other checkouts of this repository too (e.g. an older commit in a git worktree), in the same
run, so that before and after are measured on one machine at one time. Prints a table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    HERE,
    brats_sized_scan,
    cpu_vector_extensions,
    machine_description,
)

REPOSITORY = HERE.parent


def timed_classify(source: Path, scans: list[Path], out: Path) -> float:
    """Seconds for one `tumorclassifier classify` process over `scans` (fresh output folder)."""
    shutil.rmtree(out, ignore_errors=True)
    environment = dict(os.environ, PYTHONPATH=str(source))
    command = [sys.executable, "-m", "TumorClassifierLib.cli", "classify", *map(str, scans),
               "--out", str(out), "--device", "cpu"]
    start = time.perf_counter()
    subprocess.run(command, check=True, env=environment, cwd=source,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=6, help="scans after the first")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--source", type=Path, nargs="*", default=[],
                        help="other checkouts whose CLI to measure beside this one")
    args = parser.parse_args()
    scan = brats_sized_scan(HERE / ".work" / "brats_sized_hgg.nii.gz")
    sources = [REPOSITORY, *[path.resolve() for path in args.source]]
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        copies = []
        for index in range(args.batch + 1):
            copies.append(folder / f"scan_{index:02d}.nii.gz")
            shutil.copyfile(scan, copies[-1])
        rows = []
        for source in sources:
            single, batch = [], []
            for _ in range(args.repeats):  # interleaved, so that drifts hit both alike
                single.append(timed_classify(source, copies[:1], folder / "out"))
                batch.append(timed_classify(source, copies, folder / "out"))
            first, whole = statistics.median(single), statistics.median(batch)
            warm = (whole - first) / args.batch
            rows.append((source, first, warm, first / warm))
    machine = machine_description("cpu")
    print(f"machine: {machine}, vector extensions: {cpu_vector_extensions()}")
    print(f"one scan as a whole process vs warm per-scan in a batch of 1 + {args.batch} "
          f"(median of {args.repeats}, 240x240x155 scan, default model, CPU)\n")
    print("| code | first scan (process) s | warm per scan s | first / warm |")
    print("|---|---|---|---|")
    for source, first, warm, ratio in rows:
        print(f"| {source} | {first:.2f} | {warm:.2f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
