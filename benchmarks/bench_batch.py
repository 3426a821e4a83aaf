"""Worker: batch throughput, scans per minute, for a folder of scans classified as
`tumorclassifier classify` does it (outputs and overlays written), one after the other and with
the next scan's reading and registration overlapped with the network.

    python benchmarks/bench_batch.py --scans-dir DIR --out DIR [--device cpu]

Prints one JSON line."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_classify import classifier_at  # noqa: E402
from common import add_model_arguments, emit, peak_rss_mb  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scans-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    add_model_arguments(parser)
    parser.add_argument("--prefetch", type=int, nargs="+", default=_default_prefetch(),
                        help="preparation threads to compare (default: 0, 1, and on a machine "
                        "with more than 4 cores also half its cores, at most 8)")
    args = parser.parse_args()

    from TumorClassifierLib.batch import classify_cases
    from TumorClassifierLib.manifest import cases_from_paths
    classifier = classifier_at(args.model, args.input_size, args.device, "auto")
    cases = cases_from_paths(sorted(args.scans_dir.glob("*.nii.gz")))
    if not cases:
        raise SystemExit(f"{args.scans_dir}: no .nii.gz scans to classify")
    classifier.classify(cases[0].path)  # warm-up: first-call allocations, lazy imports
    results = {}
    for prefetch in args.prefetch:
        out = args.out / f"prefetch_{prefetch}"
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        summary = classify_cases(classifier, cases, out, show_progress=False, echo=False,
                                 prefetch=prefetch)
        seconds = time.perf_counter() - start
        if summary.failures:
            raise RuntimeError(f"{summary.failures} scan(s) failed; see {summary.table}")
        results[str(prefetch)] = {"scans": len(cases), "seconds": seconds,
                                  "scans_per_minute": 60 * len(cases) / seconds}
    emit({"runs": results, "peak_rss_mb": peak_rss_mb(), "device": str(classifier.device)})


def _default_prefetch() -> list[int]:
    import os
    cores = os.cpu_count() or 1
    return [0, 1] + ([min(8, cores // 2)] if cores > 4 else [])


if __name__ == "__main__":
    main()
