"""How generator 2 draws a lesion's body, in two structurally different families, and the
class-agnostic appearance every class draws from the same overlapping distributions.

Families (so that a model can be validated on a way of drawing it never saw):
- "lumpy": one ball whose radius is modulated by low-frequency noise (trilinear-upsampled
  coarse grid), texture from the same kind of noise - generator 1's way of drawing.
- "cluster": the union of 2-4 ellipsoids with their own axes and orientations, its outline
  roughened by smoothed white noise, texture from Gaussian-smoothed white noise.

Appearance (`LesionLook`): size, enhancement pattern (solid, ring, heterogeneous, cystic),
contrast and oedema; the class painters only choose where, how many and with which
class-dependent (but overlapping) probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from ..settings import PHANTOM_FAMILIES
from .anatomy import smooth_noise, soft_ball

FAMILIES = PHANTOM_FAMILIES
PATTERNS = ("solid", "ring", "heterogeneous", "cystic")


@dataclass(frozen=True)
class LesionLook:
    family: str
    pattern: str
    enhancement: float  # value of enhancing tissue relative to white matter (1 = none)
    rim_mm: float  # ring pattern: thickness of the enhancing wall
    core_value: float  # ring and cystic patterns: the centre's value (necrosis, fluid)
    heterogeneity: float  # relative amplitude of the texture


def draw_look(rng: np.random.Generator, family: str, pattern_weights: dict[str, float],
              enhancing: bool = True) -> LesionLook:
    patterns = list(pattern_weights)
    weights = np.array([pattern_weights[p] for p in patterns], float)
    return LesionLook(
        family=family,
        pattern=str(rng.choice(patterns, p=weights / weights.sum())),
        enhancement=float(rng.uniform(1.15, 1.8)) if enhancing else float(rng.uniform(0.45,
                                                                                     0.85)),
        rim_mm=float(rng.uniform(1.5, 6.0)),
        core_value=float(rng.uniform(0.2, 0.55)),
        heterogeneity=float(rng.uniform(0.03, 0.2)))


def body(grids, radius: float, rng: np.random.Generator, family: str,
         edge_mm: float = 1.0) -> np.ndarray:
    """Weight in [0, 1] of the lesion's body, about `radius` in size, centred in `grids`."""
    if family == "lumpy":
        return soft_ball(grids, radius, rng, roughness=rng.uniform(0.05, 0.3), edge_mm=edge_mm)
    if family == "cluster":
        return _cluster(grids, radius, rng, edge_mm)
    raise ValueError(f"family must be one of {FAMILIES}, not {family!r}")


def _cluster(grids, radius: float, rng: np.random.Generator, edge_mm: float) -> np.ndarray:
    dk, dj, di = grids
    points = np.stack([di, dj, dk], axis=-1)
    inside = np.full(di.shape, -np.inf, np.float32)
    for index in range(int(rng.integers(2, 5))):
        offset = np.zeros(3) if index == 0 else rng.normal(0, radius * 0.35, 3)
        axes = radius * rng.uniform(0.45, 1.0, 3) * (1.0 if index == 0 else 0.75)
        rotation = _random_rotation(rng)
        local = (points - offset) @ rotation
        # Signed distance-like value: > 0 inside the ellipsoid, in mm near its surface.
        scaled = np.sqrt(((local / axes) ** 2).sum(-1))
        inside = np.maximum(inside, (1 - scaled) * axes.min())
    roughness = rng.uniform(0.5, 2.5) * _smoothed_white_noise(di.shape, rng, 2.0)
    return np.clip((inside + roughness) / edge_mm + 0.5, 0, 1).astype(np.float32)


def texture(shape, rng: np.random.Generator, family: str) -> np.ndarray:
    """Zero-mean texture of about unit amplitude, drawn the family's own way."""
    if family == "lumpy":
        return smooth_noise(shape, rng, 6)
    return _smoothed_white_noise(shape, rng, rng.uniform(1.5, 4.0))


def paint_body(canvas, slices, grids, radius: float, look: LesionLook,
               rng: np.random.Generator) -> np.ndarray:
    """Paint a lesion body with its pattern; returns its weight (for the lesion mask)."""
    weight = body(grids, radius, rng, look.family)
    value = look.enhancement * (1 + look.heterogeneity * texture(weight.shape, rng, look.family))
    canvas.blend(slices, weight, value)
    inner = max(radius - look.rim_mm, radius * 0.3)
    if look.pattern == "ring" and radius > 4:
        core = soft_ball(grids, inner, rng, roughness=0.2, edge_mm=1.5) * weight
        canvas.blend(slices, core, look.core_value)
    elif look.pattern == "cystic" and radius > 5:
        dk, dj, di = grids
        shift = rng.normal(0, radius * 0.3, 3)
        cyst = soft_ball((dk - shift[2], dj - shift[1], di - shift[0]), inner * 0.8,
                         edge_mm=0.8) * weight
        canvas.blend(slices, cyst, look.core_value * 0.8)
    elif look.pattern == "heterogeneous":
        patches = np.clip(texture(weight.shape, rng, look.family), 0, None) * weight
        canvas.blend(slices, patches * 0.6, look.core_value + 0.3)
    return weight


def _smoothed_white_noise(shape, rng: np.random.Generator, sigma_voxels: float) -> np.ndarray:
    noise = sitk.GetImageFromArray(rng.normal(0, 1, shape).astype(np.float32))
    smooth = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(noise, float(sigma_voxels)))
    spread = float(smooth.std()) or 1.0
    return np.clip(smooth / spread / 2.5, -1, 1).astype(np.float32)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(0, 1, (3, 3)))
    return q * np.sign(np.diag(r))
