"""Worker: training throughput on cached data, read from the pace that every training run logs
(volumes per second, and the share of time the device waited for the data loader).

    python benchmarks/bench_training.py --scans-dir DIR --out DIR [--device cpu] [--epochs 2]

The first epoch also starts the loader workers, so the figures are the later epochs' median.
Prints one JSON line."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import emit, peak_rss_mb, training_pace  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scans-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--input-size", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--loader-workers", type=int, default=2)
    args = parser.parse_args()

    from TumorClassifierLib.manifest import Case
    from TumorClassifierLib.settings import PreprocessingConfig, TrainingConfig
    from TumorClassifierLib.training.trainer import train
    paths = sorted(args.scans_dir.glob("*.nii.gz"))
    if not paths:
        raise SystemExit(f"{args.scans_dir}: no .nii.gz scans to train on")
    cases = [Case(p.name, p, label=_label_of(p), patient_id=p.name) for p in paths]
    shutil.rmtree(args.out, ignore_errors=True)
    config = TrainingConfig(max_epochs=args.epochs, folds=4, loader_workers=args.loader_workers)
    train(cases, args.out, config, preprocessing=PreprocessingConfig(
        input_shape=(args.input_size,) * 3), cache_dir=args.cache, device=args.device,
        progress=False)
    emit(training_pace(args.out / "training" / "history.csv")
         | {"peak_rss_mb": peak_rss_mb(), "device": args.device})


def _label_of(path: Path) -> str:
    """bench_000_hgg.nii.gz -> HGG (the names phantom_folder gives)."""
    return path.name[:-len(".nii.gz")].split("_", 2)[2].upper()


if __name__ == "__main__":
    main()
