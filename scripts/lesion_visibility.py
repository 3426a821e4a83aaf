"""How visible were the lesions a model missed? For an `evaluate --synthetic` report, redraws
each tumour head at its seed and compares the lesions called HEALTHY with those found: their
size on the network grid and their contrast against a 3-voxel shell around them (z-score units).

    python scripts/lesion_visibility.py REPORT_DIR --seed 1001 --families cluster [--shape 64]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    import torch.nn.functional as F

    from TumorClassifierLib.synthesis.dataset import TEST, SyntheticHeads
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--families", nargs="+", required=True)
    parser.add_argument("--shape", type=int, default=64)
    parser.add_argument("--small", type=int, default=16, help="voxels under which a lesion "
                        "counts as small (default 16)")
    args = parser.parse_args()
    with open(args.report / "cases.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    heads = SyntheticHeads(args.seed, TEST, tuple(args.families), len(rows), (args.shape,) * 3)
    measured = []
    for index, row in enumerate(rows):
        if row["label"] == "HEALTHY":
            continue
        head = heads[index]
        image, lesion = head["image"][0], head["lesion"]
        grown = F.max_pool3d(lesion.float()[None, None], 7, 1, 3)[0, 0] > 0
        shell = grown & ~lesion & (image != 0)
        voxels = int(lesion.sum())
        contrast = float(image[lesion].mean() - image[shell].mean()) if voxels and bool(
            shell.any()) else float("nan")
        predicted = row.get("predicted_class") or row.get("predicted")  # older reports
        measured.append((predicted == "HEALTHY", voxels, abs(contrast)))
    print(f"{'tumours':<22} {'n':>4} {'median voxels':>14} {'median |contrast|':>18}")
    for label, missed in (("called HEALTHY", True), ("found", False)):
        chosen = [m for m in measured if m[0] == missed]
        if chosen:
            print(f"{label:<22} {len(chosen):>4} {statistics.median(m[1] for m in chosen):>14.0f}"
                  f" {statistics.median(m[2] for m in chosen):>18.2f}")
    small = [m for m in measured if m[1] < args.small]
    print(f"under {args.small} voxels: {len(small)} tumours, {sum(m[0] for m in small)} of them "
          "called HEALTHY")


if __name__ == "__main__":
    main()
