"""Normal anatomy that varies from head to head, and what every post-contrast scan shows
enhancing: ventricle size, atrophy (wider sulci), dural sinuses, arteries, choroid plexus and
the pituitary gland - so that neither a big ventricle nor "something bright" means tumour."""

from __future__ import annotations

import functools

import numpy as np
import torch

from ..phantoms.anatomy import MIDLINE_I, SELLA, WILLIS, atlas_tissues
from .canvas import HeadCanvas, soft
from .shapes import SmoothField

CSF_VALUE = 0.3  # relative to white matter, as the atlas's CSF


def vary_anatomy(canvas: HeadCanvas, rng: np.random.Generator) -> None:
    """Ventricles 0-3 mm wider, sulci 0-1 mm wider (atrophy). Widened sulci are thinner
    than a voxel, so they darken their neighbourhood only partly (partial volume); all the way
    to CSF they put a spike into the brain's histogram that real scans do not show
    (docs/synthesis.md)."""
    channels = canvas.channels
    ventricles = soft(rng.uniform(0, 3) - channels["ventricle_distance"], 1.5)
    sulci = soft(rng.uniform(0, 1.0) - channels["csf_distance"], 1.0) * rng.uniform(0.3, 0.7)
    widened = torch.maximum(ventricles, sulci) * channels["brain"]
    # The new CSF's level varies from head to head and a little within it, as the atlas's own.
    centre = canvas.points.mean(dim=(0, 1, 2))
    level = CSF_VALUE * rng.uniform(0.6, 1.1) * (1 + 0.2 * SmoothField(rng, 130.0, 6)(
        canvas.points - centre))
    canvas.image = canvas.image * (1 - widened) + level * widened


def add_enhancing_structures(canvas: HeadCanvas, rng: np.random.Generator,
                             pituitary: bool = True) -> None:
    canvas.image = torch.maximum(canvas.image, canvas.channels["sinus"] *
                                 float(rng.uniform(1.0, 1.7)))
    for _ in range(int(rng.integers(3, 13))):
        _artery(canvas, rng)
    for side in (-1, 1):
        if rng.random() < 0.9:
            _choroid_plexus(canvas, rng, side)
    if pituitary:
        slices, offsets = canvas.box(SELLA, 8)
        scale = torch.tensor([0.8, 1.0, 1.4])
        gland = soft(float(rng.uniform(4, 5.5)) - (offsets * scale).norm(dim=-1))
        canvas.blend(slices, gland, float(rng.uniform(1.15, 1.4)))


def _artery(canvas: HeadCanvas, rng: np.random.Generator) -> None:
    """A tortuous artery from the circle of Willis outwards, as a tube along a random walk."""
    surface = canvas.space.surface_distance
    limits = np.array(surface.shape[::-1]) - 1
    point = np.asarray(WILLIS) + rng.normal(0, [12, 8, 3])
    direction = rng.normal(0, 1, 3) * [1.0, 0.6, 0.5] + [0, 0, 0.4]
    direction /= np.linalg.norm(direction)
    path = []
    for _ in range(int(rng.uniform(40, 110))):
        direction = direction + rng.normal(0, 0.25, 3)
        direction /= np.linalg.norm(direction)
        point = point + direction
        i, j, k = np.clip(point.astype(int), 0, limits)
        if surface[k, j, i] > 6:
            break  # left the head's inside
        path.append(point.copy())
    if not path:
        return
    path = np.asarray(path, np.float32)
    radius = float(rng.uniform(0.8, 1.6))
    low, high = path.min(0), path.max(0)
    slices, offsets = canvas.box((low + high) / 2, float((high - low).max() / 2 + radius + 2))
    distance = torch.cdist(offsets.reshape(-1, 3) + torch.from_numpy((low + high) / 2),
                           torch.from_numpy(path)).min(dim=1).values.reshape(offsets.shape[:-1])
    tube = soft(radius - distance, 0.7)
    canvas.image[slices] = torch.maximum(canvas.image[slices], tube * float(rng.uniform(1.25,
                                                                                        1.8)))


@functools.lru_cache(maxsize=1)
def _atria() -> dict[int, np.ndarray]:
    """Candidate (i, j, k) points of the lateral ventricles' atria, left and right."""
    tissues = atlas_tissues()
    k, j, i = np.indices(tissues.image.shape, sparse=True)
    ventricles = tissues.csf & (tissues.surface_distance < -18)
    result = {}
    for side in (-1, 1):
        atrium = ventricles & (np.abs(i - (MIDLINE_I + side * 22)) < 8) & (j > 75) & (j < 100)
        kk, jj, ii = np.nonzero(atrium)
        result[side] = np.stack([ii, jj, kk], axis=1).astype(np.float32)
    return result


def _choroid_plexus(canvas: HeadCanvas, rng: np.random.Generator, side: int) -> None:
    candidates = _atria()[side]
    if not len(candidates):
        return
    centre = candidates[rng.integers(len(candidates))]
    slices, offsets = canvas.box(centre, 6)
    ball = soft(float(rng.uniform(2.5, 4.5)) - offsets.norm(dim=-1))
    inside = soft(-canvas.channels["ventricle_distance"][slices] + 1.0, 1.0)
    canvas.blend(slices, ball * inside, float(rng.uniform(1.1, 1.4)))
