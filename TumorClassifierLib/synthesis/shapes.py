"""How a lesion's body is drawn: four structurally different drawing families, each a
pseudo signed distance s(offset) in mm (> 0 inside, about the distance to the outline near
it), so that every family takes the same enhancement patterns (a ring is s > rim, a soft
outline is s around 0) and is evaluated only at the points a head needs.

- "lumpy": one ball whose radius is modulated by low-frequency noise (generator 2's first).
- "cluster": the union of 2-4 rotated ellipsoids, roughened (generator 2's second).
- "field": a smooth Gaussian random field under a soft envelope, thresholded at 0: lobulated
  shapes with satellites and holes that no ball or ellipsoid union makes.
- "sdf": a primitive (superellipsoid, capsule, rounded box or torus) bent and twisted by a
  smooth random displacement of space; its texture a Gaussian mixture of a few compartments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..settings import SYNTHETIC_FAMILIES

FAMILIES = SYNTHETIC_FAMILIES


class SmoothField:
    """A smooth random function of position in about [-1, 1]: random values on a coarse
    `cells`^3 lattice spanning [-extent, extent]^3 mm, trilinear in between; zero-padded edges
    are avoided by clamping to the border."""

    def __init__(self, rng: np.random.Generator, extent_mm: float, cells: int = 5,
                 channels: int = 1) -> None:
        values = rng.uniform(-1, 1, (1, channels, cells, cells, cells)).astype(np.float32)
        self.lattice = torch.from_numpy(values)
        self.extent = float(extent_mm)

    def __call__(self, offsets: torch.Tensor) -> torch.Tensor:
        """Values at offsets (..., 3) from the centre, as (...) or (channels, ...)."""
        grid = (offsets / self.extent).clamp(-1, 1).reshape(1, 1, 1, -1, 3)
        values = F.grid_sample(self.lattice, grid, mode="bilinear", padding_mode="border",
                               align_corners=True)
        values = values.reshape(self.lattice.shape[1], *offsets.shape[:-1])
        return values[0] if self.lattice.shape[1] == 1 else values


def random_rotation(rng: np.random.Generator) -> torch.Tensor:
    q, r = np.linalg.qr(rng.normal(0, 1, (3, 3)))
    return torch.from_numpy((q * np.sign(np.diag(r))).astype(np.float32))


@dataclass
class Shape:
    """One drawn body: `inside(offsets)` is its pseudo signed distance in mm, `texture` a
    zero-mean pattern of about unit amplitude in the family's own style."""
    family: str
    radius: float
    inside: object  # callable offsets -> s
    texture: object  # callable offsets -> t


def draw_shape(rng: np.random.Generator, family: str, radius: float) -> Shape:
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")
    return {"lumpy": _lumpy, "cluster": _cluster, "field": _field, "sdf": _sdf}[family](
        rng, float(radius))


def _lumpy(rng, radius: float) -> Shape:
    roughness = rng.uniform(0.05, 0.3)
    outline = SmoothField(rng, radius * 1.5, cells=5)
    texture = SmoothField(rng, radius * 1.5, cells=6)

    def inside(offsets):
        distance = offsets.norm(dim=-1)
        return radius - distance * (1 + roughness * outline(offsets))
    return Shape("lumpy", radius, inside, texture)


def _cluster(rng, radius: float) -> Shape:
    parts = []
    for index in range(int(rng.integers(2, 5))):
        offset = np.zeros(3) if index == 0 else rng.normal(0, radius * 0.35, 3)
        axes = radius * rng.uniform(0.45, 1.0, 3) * (1.0 if index == 0 else 0.75)
        parts.append((torch.tensor(offset, dtype=torch.float32), random_rotation(rng),
                      torch.tensor(axes, dtype=torch.float32)))
    roughness = rng.uniform(0.5, 2.5)
    rough = SmoothField(rng, radius * 1.6, cells=int(rng.integers(8, 13)))
    texture = SmoothField(rng, radius * 1.6, cells=int(rng.integers(7, 12)))

    def inside(offsets):
        best = None
        for offset, rotation, axes in parts:
            local = (offsets - offset) @ rotation
            value = (1 - (local / axes).norm(dim=-1)) * axes.min()
            best = value if best is None else torch.maximum(best, value)
        return best + roughness * rough(offsets)
    return Shape("cluster", radius, inside, texture)


def _field(rng, radius: float) -> Shape:
    field = SmoothField(rng, radius * 1.8, cells=int(rng.integers(5, 9)))
    stretch = torch.tensor(rng.uniform(0.7, 1.3, 3), dtype=torch.float32)
    rotation = random_rotation(rng)
    amplitude = rng.uniform(0.35, 0.8)
    texture = SmoothField(rng, radius * 1.8, cells=int(rng.integers(4, 8)))

    def inside(offsets):
        local = (offsets @ rotation) / stretch
        envelope = 1 - (local.norm(dim=-1) / radius) ** 2
        return radius * 0.5 * (envelope + amplitude * field(offsets))
    return Shape("field", radius, inside, texture)


def _sdf(rng, radius: float) -> Shape:
    kind = str(rng.choice(["superellipsoid", "capsule", "rounded_box", "torus"],
                          p=[0.35, 0.25, 0.25, 0.15]))
    rotation = random_rotation(rng)
    axes = torch.tensor(rng.uniform(0.6, 1.0, 3) * radius, dtype=torch.float32)
    power = float(rng.uniform(1.2, 4.0))
    warp = SmoothField(rng, radius * 1.6, cells=4, channels=3)
    warp_mm = rng.uniform(0.1, 0.35) * radius
    twist = rng.uniform(-0.6, 0.6) / radius  # radians per mm along the local z axis
    centres = torch.tensor(rng.normal(0, radius * 0.45, (int(rng.integers(2, 6)), 3)),
                           dtype=torch.float32)
    levels = torch.tensor(rng.uniform(-1, 1, len(centres)), dtype=torch.float32)
    spread = float(rng.uniform(0.2, 0.5) * radius)

    def local_of(offsets):
        local = (offsets + warp_mm * warp(offsets).movedim(0, -1)) @ rotation
        angle = local[..., 2] * twist
        cos, sin = torch.cos(angle), torch.sin(angle)
        x = local[..., 0] * cos - local[..., 1] * sin
        y = local[..., 0] * sin + local[..., 1] * cos
        return torch.stack([x, y, local[..., 2]], dim=-1)

    def inside(offsets):
        p = local_of(offsets)
        if kind == "superellipsoid":
            norm = ((p / axes).abs() ** power).sum(-1) ** (1 / power)
            return (1 - norm) * axes.min()
        if kind == "capsule":
            half = axes[2] * 0.6
            along = p[..., 2].clamp(-half, half)
            return axes[0] * 0.8 - torch.stack([p[..., 0], p[..., 1], p[..., 2] - along],
                                               -1).norm(dim=-1)
        if kind == "rounded_box":
            corner = axes * 0.3
            q = p.abs() - (axes - corner)
            return corner.min() - (q.clamp(min=0).norm(dim=-1) + q.max(-1).values.clamp(max=0))
        ring = torch.stack([p[..., :2].norm(dim=-1) - axes[0] * 0.6, p[..., 2]], -1)
        return axes[2] * 0.45 - ring.norm(dim=-1)

    def texture(offsets):
        distance = torch.cdist(offsets.reshape(-1, 3), centres)
        weights = torch.softmax(-(distance / spread) ** 2, dim=-1)
        return (weights @ levels).reshape(offsets.shape[:-1])
    return Shape("sdf", radius, inside, texture)
