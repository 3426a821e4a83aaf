"""A PNG of the heatmap over the scan: axial, coronal and sagittal slices through its peak."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .files import atomic_output
from .heatmap_peak import peak_index
from .volume import Volume

PANEL_HEIGHT = 360  # pixels of each view
GAP = 8
TITLE_HEIGHT = 28
LABEL_HEIGHT = 20


def write_overlay_png(scan: Volume, heatmap: Volume, path: str | os.PathLike,
                      title: str = "", alpha: float = 0.5, threshold: float = 0.1) -> Path:
    """Radiological convention (patient right on the image's left), physical aspect ratios.
    Composed with numpy and written with Pillow, without matplotlib's figures (why:
    docs/decisions.md)."""
    from matplotlib import colormaps
    from PIL import Image, ImageDraw, ImageFont

    image, spacing = _to_lps(scan)
    heat, _ = _to_lps(heatmap)
    peak = peak_index(heat)  # (S, P, L) axes after reorienting
    low, high = np.percentile(image, [1, 99.5])
    views = [  # (image slice, heat slice, row spacing / column spacing, name)
        (image[peak[0]], heat[peak[0]], spacing[1] / spacing[0], "axial"),
        (image[:, peak[1], :][::-1], heat[:, peak[1], :][::-1], spacing[2] / spacing[0],
         "coronal"),
        (image[:, :, peak[2]][::-1], heat[:, :, peak[2]][::-1], spacing[2] / spacing[1],
         "sagittal"),
    ]
    inferno = colormaps["inferno"]
    panels = []
    for gray, hot, aspect, name in views:
        rows, columns = gray.shape
        width = max(1, int(round(PANEL_HEIGHT * columns / (rows * aspect))))
        gray = _resized(gray, width, PANEL_HEIGHT)
        hot = _resized(hot, width, PANEL_HEIGHT)
        shade = np.clip((gray - low) / max(float(high - low), 1e-12), 0, 1)[..., None]
        colour = inferno(np.clip(hot, 0, 1))[..., :3]
        weight = np.where(hot >= threshold, alpha, 0.0)[..., None]
        panels.append(((1 - weight) * shade + weight * colour, name))
    width = sum(panel.shape[1] for panel, _ in panels) + GAP * (len(panels) + 1)
    canvas = np.zeros((TITLE_HEIGHT + LABEL_HEIGHT + PANEL_HEIGHT + GAP, width, 3))
    positions, left = [], GAP
    for panel, name in panels:
        canvas[TITLE_HEIGHT + LABEL_HEIGHT:TITLE_HEIGHT + LABEL_HEIGHT + PANEL_HEIGHT,
               left:left + panel.shape[1]] = panel
        positions.append((left + panel.shape[1] // 2, name))
        left += panel.shape[1] + GAP
    picture = Image.fromarray((canvas * 255 + 0.5).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    if title:
        draw.text((width // 2, TITLE_HEIGHT // 2), title, fill="white", anchor="mm",
                  font=ImageFont.load_default(size=15))
    label_font = ImageFont.load_default(size=13)
    for centre, name in positions:
        draw.text((centre, TITLE_HEIGHT + LABEL_HEIGHT // 2), name, fill="white", anchor="mm",
                  font=label_font)
    with atomic_output(Path(path), ".png") as temporary:
        picture.save(temporary, format="PNG", compress_level=3)
    return Path(path)


def _resized(array: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resampling of a 2D float array to (height, width) pixels."""
    from PIL import Image
    resized = Image.fromarray(np.ascontiguousarray(array, dtype=np.float32), mode="F")
    return np.asarray(resized.resize((width, height), Image.BILINEAR), dtype=np.float32)


def _to_lps(volume: Volume) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Array (S, P, L), axes reordered and flipped to the nearest LPS orientation, and its
    (L, P, S) spacing."""
    image = sitk.DICOMOrient(volume.to_sitk(), "LPS")
    return sitk.GetArrayFromImage(image).astype(np.float32), image.GetSpacing()
