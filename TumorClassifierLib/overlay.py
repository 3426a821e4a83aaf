"""A PNG of the heatmap over the scan: axial, coronal and sagittal slices through its peak."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .volume import Volume, atomic_output


def heatmap_peak(heatmap: Volume) -> tuple[int, int, int]:
    """(k, j, i) array index of the hottest voxel."""
    return tuple(int(v) for v in np.unravel_index(np.argmax(heatmap.array), heatmap.array.shape))


def heatmap_peak_world(heatmap: Volume) -> np.ndarray:
    """Where the heatmap peaks, in LPS mm: the centre of its hottest voxels (after the 1/1024
    rounding several neighbours can share the top value; argmax alone would pick whichever
    comes first in storage order)."""
    hottest = np.argwhere(heatmap.array == heatmap.array.max())[:, ::-1]  # (i, j, k)
    matrix = heatmap.index_to_world()
    return (matrix[:3, :3] @ hottest.mean(axis=0)) + matrix[:3, 3]


def write_overlay_png(scan: Volume, heatmap: Volume, path: str | os.PathLike,
                      title: str = "", alpha: float = 0.5, threshold: float = 0.1) -> Path:
    """Radiological convention (patient right on the image's left), physical aspect ratios."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot

    image, spacing = _to_lps(scan)
    heat, _ = _to_lps(heatmap)
    peak = np.unravel_index(np.argmax(heat), heat.shape)  # (S, P, L) axes after reorienting
    low, high = np.percentile(image, [1, 99.5])
    views = [  # (image slice, heat slice, row spacing / column spacing, name)
        (image[peak[0]], heat[peak[0]], spacing[1] / spacing[0], "axial"),
        (image[:, peak[1], :][::-1], heat[:, peak[1], :][::-1], spacing[2] / spacing[0],
         "coronal"),
        (image[:, :, peak[2]][::-1], heat[:, :, peak[2]][::-1], spacing[2] / spacing[1],
         "sagittal"),
    ]
    figure, axes = pyplot.subplots(1, 3, figsize=(12, 4.4), facecolor="black")
    for axis, (gray, hot, aspect, name) in zip(axes, views):
        axis.imshow(gray, cmap="gray", vmin=low, vmax=high, aspect=aspect,
                    interpolation="bilinear")
        axis.imshow(np.ma.masked_less(hot, threshold), cmap="inferno", vmin=0, vmax=1,
                    alpha=alpha, aspect=aspect, interpolation="bilinear")
        axis.set_title(name, color="white", fontsize=10)
        axis.axis("off")
    if title:
        figure.suptitle(title, color="white", fontsize=12)
    figure.tight_layout()
    with atomic_output(Path(path), ".png") as temporary:
        figure.savefig(temporary, format="png", dpi=100, facecolor="black")
    pyplot.close(figure)
    return Path(path)


def _to_lps(volume: Volume) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Array (S, P, L), axes reordered and flipped to the nearest LPS orientation, and its
    (L, P, S) spacing."""
    image = sitk.DICOMOrient(volume.to_sitk(), "LPS")
    return sitk.GetArrayFromImage(image).astype(np.float32), image.GetSpacing()
