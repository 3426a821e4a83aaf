"""Heads drawn at training time beside generator-2 phantoms after the product's preprocessing,
one of each class, as the network sees them (axial slice through the lesion's centre, z from
-3 to 4; the lesion mask outlined in red).

    python scripts/show_synthetic_heads.py [--seed 11] [--out docs/appearance/side_by_side.png]

Row 1: generator-2 phantoms (phantoms/, drawn at 1 mm, "scanned", then registered to the
atlas and resampled to 128^3 by `preprocess`). Rows 2-5: synthetic heads (synthesis/) of the
four drawing families, drawn directly on the 128^3 grid.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from TumorClassifierLib.classes import CLASS_CODES  # noqa: E402
from TumorClassifierLib.phantoms.cohort import case_seed, generate_phantom  # noqa: E402
from TumorClassifierLib.preprocessing import PreprocessingConfig, preprocess  # noqa: E402
from TumorClassifierLib.synthesis.heads import draw_head  # noqa: E402
from TumorClassifierLib.synthesis.shapes import FAMILIES  # noqa: E402


def phantom_row(seed: int):
    for label in CLASS_CODES:
        phantom = generate_phantom(label, case_seed(seed, label, 0), generator=2)
        prepared = preprocess(phantom.scan, PreprocessingConfig(), allow_poor_registration=True)
        lesion = sitk.Resample(phantom.lesion, prepared.grid, prepared.registration.transform,
                               sitk.sitkNearestNeighbor, 0)
        yield (f"generator 2, {phantom.family}", label, prepared.tensor[0],
               sitk.GetArrayFromImage(lesion) > 0)


def synthetic_row(seed: int, family: str):
    for number, label in enumerate(CLASS_CODES):
        head = draw_head((seed, 9, number), label, family, (128, 128, 128))
        yield f"synthetic, {family}", label, head.image[0].numpy(), head.lesion.numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path,
                        default=ROOT / "docs" / "appearance" / "side_by_side.png")
    args = parser.parse_args()
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot
    rows = [list(phantom_row(args.seed))] + [list(synthetic_row(args.seed, family))
                                             for family in FAMILIES]
    figure, axes = pyplot.subplots(len(rows), len(CLASS_CODES), figsize=(15, 2.3 * len(rows)))
    for row, cases in enumerate(rows):
        for column, (source, label, tensor, lesion) in enumerate(cases):
            k = int(round(np.argwhere(lesion)[:, 0].mean())) if lesion.any() else \
                tensor.shape[0] // 2
            axis = axes[row, column]
            axis.imshow(tensor[k][::-1], cmap="gray", vmin=-3, vmax=4)
            if lesion[k].any():
                axis.contour(lesion[k][::-1], [0.5], colors="red", linewidths=0.6)
            axis.set_title(f"{label}\n{source}", fontsize=7)
            axis.axis("off")
    figure.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=80)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
