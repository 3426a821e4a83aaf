"""Scans a minute with `classify --ray` (a local Ray instance, 1 and 2 model workers) against the
local batch on the same scans, each a whole `tumorclassifier` process as a user runs it (Ray's
start included). Issue 15's measurement; absolute rates differ from machine to machine, the
ratio to the local batch is what compares.

    python benchmarks/bench_ray.py [--scans 12] [--workers 1 2]

Phantoms of all classes in turn (benchmarks/common.py), default model, CPU. Prints a table."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    HERE,
    cpu_vector_extensions,
    machine_description,
    phantom_folder,
)

REPOSITORY = HERE.parent


def timed(arguments: list[str], out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "TumorClassifierLib.cli", "classify", *arguments,
               "--out", str(out), "--device", "cpu"]
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPOSITORY, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=str(REPOSITORY)))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scans", type=int, default=12)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    scans = [str(path) for path in phantom_folder(HERE / ".work" / "phantoms", args.scans)]
    runs = [("local batch (prefetch 1)", [])]
    runs += [(f"--ray, {n} model worker(s)", ["--ray", "--ray-workers", str(n)])
             for n in args.workers]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, flags in runs:
            seconds = timed(scans + flags, Path(folder) / "out")
            rows.append((name, seconds))
    local = rows[0][1]
    print(f"machine: {machine_description('cpu')}, vector extensions: {cpu_vector_extensions()}")
    print(f"{args.scans} phantoms, default model, whole processes (Ray's start included)\n")
    print("| run | seconds | scans / minute | time / local batch |")
    print("|---|---|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.1f} | {60 * args.scans / seconds:.1f} | "
              f"{seconds / local:.2f} |")


if __name__ == "__main__":
    main()
