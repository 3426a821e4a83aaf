"""Anatomy for phantoms: tissue maps of the atlas head, the contrast-enhanced normal
structures, landmarks (sella, internal auditory canals, midline) and the drawing primitives
(smooth noise, soft balls, the Canvas) that the lesion painters (generator1_lesions.py,
generator2_lesions.py) use, all in the atlas's 1 mm grid.

Arrays are indexed [k, j, i]; the atlas (with skull) is stored RAS: i grows to the patient's
right, j anteriorly, k superiorly. Points are (i, j, k) in voxels = mm. Intensities follow a T1
post-contrast scan relative to white matter (WM = 1): grey matter ~0.7, CSF ~0.3, enhancing
tissue 1.3-1.7, necrosis ~0.25, vasogenic oedema ~0.75.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
import torch
import torch.nn.functional as F

from ..atlas import load_atlas

# Landmarks in the atlas (i, j, k), read off its slices.
MIDLINE_I = 120.0
SELLA = (120.0, 130.0, 40.0)  # pituitary fossa
CPA = {"left": (95.0, 106.0, 37.0), "right": (145.0, 106.0, 37.0)}  # cerebellopontine angles
IAC = {"left": (81.0, 108.0, 35.0), "right": (159.0, 108.0, 35.0)}  # internal auditory canals
WILLIS = (120.0, 125.0, 50.0)  # circle of Willis, where the big arteries branch


@dataclass(frozen=True, eq=False)
class AtlasTissues:
    image: np.ndarray  # float32, intensities scaled so that white matter = 1
    brain: np.ndarray  # bool
    white: np.ndarray  # bool, white matter
    grey: np.ndarray  # bool
    csf: np.ndarray  # bool, inside the brain mask
    surface_distance: np.ndarray  # float32 mm, < 0 inside the brain, > 0 outside
    reference: sitk.Image  # the atlas grid (geometry)


@functools.lru_cache(maxsize=1)
def atlas_tissues() -> AtlasTissues:
    atlas = load_atlas()
    raw = sitk.GetArrayFromImage(atlas.with_skull).astype(np.float32)
    brain = sitk.GetArrayFromImage(atlas.brain_mask).astype(bool)
    white_level = float(np.percentile(raw[brain], 90))  # WM forms the bright upper mode
    image = raw / white_level
    white = brain & (image > 0.85)
    csf = brain & (image < 0.42)
    grey = brain & ~white & ~csf
    distance = sitk.SignedMaurerDistanceMap(atlas.brain_mask, insideIsPositive=False,
                                            squaredDistance=False, useImageSpacing=True)
    return AtlasTissues(image, brain, white, grey, csf,
                        sitk.GetArrayFromImage(distance).astype(np.float32), atlas.with_skull)


class Canvas:
    """A phantom being painted: intensity, working tissue masks and the lesion mask."""

    def __init__(self, tissues: AtlasTissues) -> None:
        self.image = tissues.image.copy()
        self.brain = tissues.brain.astype(np.float32)
        self.white = tissues.white.astype(np.float32)
        self.lesion = np.zeros(tissues.image.shape, np.float32)
        self.tissues = tissues

    def box(self, centre, radius: float):
        """Slices of the region within `radius` of `centre`, and the (k, j, i) offsets in mm
        of its voxels from the centre."""
        shape = self.image.shape
        lows = [max(0, int(np.floor(c - radius))) for c in centre[::-1]]
        highs = [min(n, int(np.ceil(c + radius)) + 1) for c, n in zip(centre[::-1], shape)]
        slices = tuple(slice(lo, hi) for lo, hi in zip(lows, highs))
        grids = np.meshgrid(*[np.arange(lo, hi, dtype=np.float32) - c
                              for lo, hi, c in zip(lows, highs, centre[::-1])], indexing="ij")
        return slices, grids

    def blend(self, slices, weight: np.ndarray, value) -> None:
        region = self.image[slices]
        self.image[slices] = region * (1 - weight) + np.asarray(value, np.float32) * weight

    def push(self, centre, radius: float) -> None:
        """Mass effect: brain around `centre` is pushed outward as if a ball of `radius` grew
        there (volume conserving: r' = (r^3 + R^3)^(1/3)); bone and scalp stay put."""
        reach = radius * 3.5
        slices, (dk, dj, di) = self.box(centre, reach)
        distance = np.sqrt(di ** 2 + dj ** 2 + dk ** 2) + 1e-3
        source = np.cbrt(np.clip(distance ** 3 - radius ** 3, 0, None)) / distance
        weight = _smooth(self.brain[slices], 2)  # only brain moves
        factor = 1 - weight * (1 - source)
        shape = distance.shape
        lows = np.array([s.start for s in slices], np.float32)
        centre_kji = np.asarray(centre[::-1], np.float32)
        points = [centre_kji[a] + (d * factor) - lows[a] for a, d in enumerate((dk, dj, di))]
        grid = torch.from_numpy(np.stack([points[2] / max(shape[2] - 1, 1),
                                          points[1] / max(shape[1] - 1, 1),
                                          points[0] / max(shape[0] - 1, 1)], -1) * 2 - 1)
        stack = torch.from_numpy(np.stack([self.image[slices], self.brain[slices],
                                           self.white[slices], self.lesion[slices]]))
        moved = F.grid_sample(stack[None], grid[None].float(), mode="bilinear",
                              padding_mode="border", align_corners=True)[0].numpy()
        self.image[slices], self.brain[slices], self.white[slices], self.lesion[slices] = moved


def smooth_noise(shape, rng: np.random.Generator, cells: int = 4) -> np.ndarray:
    """Low-frequency noise in about [-1, 1]: a few random values per axis, upsampled."""
    coarse = torch.from_numpy(rng.uniform(-1, 1, (1, 1, cells, cells, cells)).astype(np.float32))
    return F.interpolate(coarse, size=tuple(int(s) for s in shape), mode="trilinear",
                         align_corners=True)[0, 0].numpy()


def _smooth(mask: np.ndarray, radius: int) -> np.ndarray:
    tensor = torch.from_numpy(np.ascontiguousarray(mask, np.float32))[None, None]
    size = 2 * radius + 1
    return F.avg_pool3d(tensor, size, stride=1, padding=radius, count_include_pad=False)[0, 0] \
        .numpy()


def soft_ball(grids, radius, rng=None, roughness: float = 0.0, edge_mm: float = 1.0):
    """Weight in [0, 1] of a ball (optionally with a lumpy outline) with a soft edge."""
    dk, dj, di = grids
    distance = np.sqrt(di ** 2 + dj ** 2 + dk ** 2)
    if roughness and rng is not None:
        distance = distance * (1 + roughness * smooth_noise(distance.shape, rng, 5))
    return np.clip((radius - distance) / edge_mm + 0.5, 0, 1).astype(np.float32)


def sample_point(mask: np.ndarray, rng: np.random.Generator) -> tuple[float, float, float]:
    """A random (i, j, k) where `mask` is true."""
    candidates = np.flatnonzero(mask)
    if candidates.size == 0:
        raise RuntimeError("no voxel satisfies the location constraints")
    k, j, i = np.unravel_index(rng.choice(candidates), mask.shape)
    return (float(i), float(j), float(k))


# ---------------------------------------------------------------- normal enhancing structures

def add_normal_enhancement(canvas: Canvas, rng: np.random.Generator,
                           pituitary: bool = True) -> None:
    """What every post-contrast scan shows: dural sinuses, arteries, choroid plexus and the
    pituitary gland - so that "something bright" alone never means "tumour"."""
    tissues = canvas.tissues
    k, j, i = np.indices(canvas.image.shape, sparse=True)
    shell = (tissues.surface_distance > 0) & (tissues.surface_distance < 3.5)
    sagittal_sinus = shell & (np.abs(i - MIDLINE_I) < 3) & (k > 55)
    transverse_sinus = shell & (j < 70) & (k > 38) & (k < 58)
    sinus_value = rng.uniform(1.2, 1.6)
    canvas.image[sagittal_sinus | transverse_sinus] = sinus_value
    for _ in range(rng.integers(5, 11)):
        _paint_vessel(canvas, rng)
    ventricles = tissues.csf & (tissues.surface_distance < -18)
    for side in (-1, 1):
        atrium = ventricles & (np.abs(i - (MIDLINE_I + side * 22)) < 8) & (j > 75) & (j < 100)
        if atrium.any() and rng.random() < 0.9:
            slices, grids = canvas.box(sample_point(atrium, rng), 6)
            weight = soft_ball(grids, rng.uniform(2.5, 4.5), rng, 0.3)
            canvas.blend(slices, weight * ventricles[slices], rng.uniform(1.1, 1.4))
    if pituitary:
        slices, grids = canvas.box(SELLA, 8)
        dk, dj, di = grids
        gland = soft_ball((dk * 1.4, dj, di * 0.8), rng.uniform(4, 5.5))
        canvas.blend(slices, gland, rng.uniform(1.15, 1.4))


def _paint_vessel(canvas: Canvas, rng: np.random.Generator) -> None:
    """A tortuous artery from the circle of Willis outwards through the brain's cisterns."""
    point = np.asarray(WILLIS) + rng.normal(0, [12, 8, 3])
    direction = rng.normal(0, 1, 3) * [1.0, 0.6, 0.5] + [0, 0, 0.4]
    direction /= np.linalg.norm(direction)
    radius = rng.uniform(0.8, 1.6)
    value = rng.uniform(1.25, 1.8)
    for _ in range(int(rng.uniform(40, 110))):
        direction = direction + rng.normal(0, 0.25, 3)
        direction /= np.linalg.norm(direction)
        point = point + direction
        if canvas.tissues.surface_distance[tuple(np.clip(point[::-1].astype(int), 0,
                                                 np.array(canvas.image.shape) - 1))] > 6:
            break  # left the head's inside
        slices, grids = canvas.box(tuple(point), radius + 1.5)
        weight = soft_ball(grids, radius, edge_mm=0.7)
        canvas.image[slices] = np.maximum(canvas.image[slices], weight * value)
