"""What scanning and our preprocessing leave behind, simulated cheaply on the network grid: a
small residual misalignment after atlas registration (affine and mild elastic), the slice
thickness of the acquisition (1-7 mm slabs along a random axis, read back by linear
interpolation, as the one resampling onto the grid does), a per-scan tissue contrast curve,
bias field, ghosting, Rician noise, a contrast power, and the brain mask that preprocessing
z-scores inside (the atlas's; a skull-stripped scan's own brain).

Parameters are drawn once (`draw_scanner`) and applied deterministically, so that a head's
scan can be recorded and repeated."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from ..phantoms.acquisition import apply_tissue_curve, draw_tissue_curve
from .shapes import SmoothField
from .space import AtlasSpace


@dataclass(frozen=True)
class Scanner:
    rotation_deg: tuple[float, float, float]  # residual misalignment
    shift_mm: tuple[float, float, float]
    scale: tuple[float, float, float]
    elastic_mm: float
    slice_mm: float
    slice_axis: int  # array axis (k, j, i) the slices are stacked along
    slice_phase: float  # where the first slice starts, in slices
    tissue_curve: tuple[tuple[float, float], ...]
    bias: float
    ghosting: float
    ghost_axis: int
    noise: float  # Rician sigma relative to white matter, per grid voxel
    gamma: float
    skull_stripped: bool

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def draw_scanner(rng: np.random.Generator) -> Scanner:
    thick = rng.random() < 0.5
    return Scanner(
        rotation_deg=tuple(float(v) for v in rng.uniform(-5, 5, 3)),
        shift_mm=tuple(float(v) for v in rng.uniform(-5, 5, 3)),
        scale=tuple(float(v) for v in rng.uniform(0.94, 1.06, 3)),
        elastic_mm=float(rng.uniform(0, 3)),
        slice_mm=float(rng.uniform(2.5, 7.0) if thick else rng.uniform(0.9, 1.5)),
        # Axial slabs are the most common in clinical 2D post-contrast T1.
        slice_axis=int(rng.choice([0, 1, 2], p=[0.6, 0.2, 0.2])),
        slice_phase=float(rng.uniform(0, 1)),
        tissue_curve=draw_tissue_curve(rng),
        bias=float(rng.uniform(0, 0.5)),
        ghosting=float(rng.uniform(0.02, 0.12)) if rng.random() < 0.25 else 0.0,
        ghost_axis=int(rng.integers(1, 3)),
        noise=float(rng.uniform(0.01, 0.08) * rng.uniform(0.4, 1.0)),
        gamma=float(rng.uniform(0.75, 1.3)),
        skull_stripped=bool(rng.random() < 0.35))


def misaligned_points(space: AtlasSpace, scanner: Scanner, rng: np.random.Generator):
    """Where each grid voxel falls in the head after an imperfect registration (atlas mm)."""
    centre = torch.tensor([(n - 1) / 2 for n in space.atlas_shape[::-1]], dtype=torch.float32)
    angles = np.radians(scanner.rotation_deg)
    matrix = _rotation(*angles) @ np.diag(scanner.scale)
    offsets = space.grid_mm - centre
    points = offsets @ torch.from_numpy(matrix.T.astype(np.float32)) + centre + \
        torch.tensor(scanner.shift_mm, dtype=torch.float32)
    if scanner.elastic_mm > 0:
        warp = SmoothField(rng, 130.0, cells=5, channels=3)(offsets)
        points = points + scanner.elastic_mm * warp.movedim(0, -1)
    return points


def _rotation(a: float, b: float, c: float) -> np.ndarray:
    x = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    y = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    z = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return z @ y @ x


def scan(image: torch.Tensor, own_brain: torch.Tensor, space: AtlasSpace, scanner: Scanner,
         rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(network input (K, J, I) z-scored inside the brain mask, zeros outside; that mask)."""
    image = torch.from_numpy(apply_tissue_curve(image.clamp(min=0).numpy(),
                                                scanner.tissue_curve))
    centre = space.grid_mm.mean(dim=(0, 1, 2))
    bias = SmoothField(rng, 130.0, cells=3)(space.grid_mm - centre)
    image = image * torch.exp(scanner.bias * bias)
    if scanner.ghosting:
        shift = image.shape[scanner.ghost_axis] // 2
        image = image + scanner.ghosting * torch.roll(image, shift, scanner.ghost_axis)
    generator = torch.Generator().manual_seed(int(rng.integers(2 ** 62)))
    image = _rician(image, scanner.noise, generator)
    image = _slices(image, scanner.slice_mm, space.voxel_mm[scanner.slice_axis],
                    scanner.slice_axis, scanner.slice_phase)
    if scanner.skull_stripped:
        mask = own_brain
        image = image * mask
    else:
        mask = space.brain_on_grid
    image = image.clamp(min=0) ** scanner.gamma
    return zscore(image, mask), mask


def _rician(image: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    real = image + sigma * torch.randn(image.shape, generator=generator)
    imaginary = sigma * torch.randn(image.shape, generator=generator)
    return torch.sqrt(real ** 2 + imaginary ** 2)


def slice_operator(size: int, voxel_mm: float, slice_mm: float, phase: float) -> torch.Tensor:
    """(size x size) matrix along one axis: the grid's profile averaged over slabs of
    `slice_mm` (five samples across each), then read back at the grid by linear
    interpolation between slab centres."""
    positions = np.arange(size) * voxel_mm
    first = -slice_mm * (1 - phase)
    centres = np.arange(first, positions[-1] + 2 * slice_mm, slice_mm)
    within = (np.arange(5) + 0.5) / 5 - 0.5
    reading = np.zeros((len(centres), size))
    for row, centre in enumerate(centres):
        for sample in centre + within * slice_mm:
            reading[row] += _linear_weights(sample / voxel_mm, size) / len(within)
    back = np.stack([_linear_weights(p, len(centres), centres) for p in positions])
    return torch.from_numpy((back @ reading).astype(np.float32))


def _linear_weights(position: float, size: int, nodes: np.ndarray | None = None) -> np.ndarray:
    """Weights of linear interpolation at `position` (in index units, or among `nodes`)."""
    weights = np.zeros(size)
    index = position if nodes is None else np.interp(position, nodes, np.arange(size))
    low = int(np.clip(np.floor(index), 0, size - 1))
    high = min(low + 1, size - 1)
    fraction = float(np.clip(index - low, 0, 1))
    weights[low] += 1 - fraction
    weights[high] += fraction
    return weights


def _slices(image: torch.Tensor, slice_mm: float, voxel_mm: float, axis: int,
            phase: float) -> torch.Tensor:
    operator = slice_operator(image.shape[axis], voxel_mm, slice_mm, phase)
    moved = image.movedim(axis, -1) @ operator.T
    return moved.movedim(-1, axis)


def zscore(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    values = image[mask].double()
    std = values.std().clamp(min=1e-6)
    result = torch.zeros_like(image)
    result[mask] = ((values - values.mean()) / std).float()
    return result
