"""A head being drawn on the network grid. Every grid voxel has a position in the head (atlas
mm, after the residual misalignment, `points`); mass effect moves where the anatomy is read
from (`anatomy_points`); the anatomy is then read once from the atlas's 1 mm channels, and
lesions are painted as functions of position, so that nothing is resampled twice."""

from __future__ import annotations

import numpy as np
import torch

from .space import CHANNELS, AtlasSpace


class HeadCanvas:
    def __init__(self, space: AtlasSpace, points: torch.Tensor) -> None:
        self.space = space
        self.points = points  # (K, J, I, 3) atlas mm of each grid voxel
        self.anatomy_points = points.clone()
        self.head_brain = space.sample_brain(points)  # the brain before any mass effect
        self.image = self.brain = self.white = None  # set by read_anatomy
        self.channels: dict[str, torch.Tensor] = {}
        self.lesion = torch.zeros(space.shape)
        # Per grid axis, each slab's lowest and highest moved position (slab, xyz): a box query
        # is a few comparisons, however far the misalignment moved the slabs.
        self._slabs = [(points.amin(dim=[d for d in range(3) if d != axis]),
                        points.amax(dim=[d for d in range(3) if d != axis])) for axis in range(3)]

    def grid_box(self, centre, reach_mm: float) -> tuple[slice, slice, slice]:
        """Slices (k, j, i) of the smallest grid box holding every voxel whose moved position
        lies within `reach_mm` of `centre` along each axis (empty when none does)."""
        low = _point(centre) - reach_mm
        high = low + 2 * reach_mm
        result = []
        for lowest, highest in self._slabs:
            inside = torch.nonzero(((lowest <= high) & (highest >= low)).all(dim=1))
            result.append(slice(int(inside[0]), int(inside[-1]) + 1) if len(inside)
                          else slice(0, 0))
        return tuple(result)

    def box(self, centre, reach_mm: float):
        """(slices, offsets): the grid box that can hold points within `reach_mm` of `centre`
        (atlas mm, i j k), and those points' offsets from it (..., 3)."""
        slices = self.grid_box(centre, reach_mm)
        centre = _point(centre)
        return slices, self.points[slices] - centre

    def push(self, centre, radius: float) -> None:
        """Mass effect: the brain around `centre` moves outward as if a ball of `radius` grew
        there (r' = (r^3 - R^3)^(1/3) is where a point's tissue came from); bone and scalp stay."""
        slices = self.grid_box(centre, radius * 4.5)  # pushed points moved by < radius
        centre = _point(centre)
        offsets = self.anatomy_points[slices] - centre
        distance = offsets.norm(dim=-1, keepdim=True).clamp(min=1e-3)
        source = torch.clamp(distance ** 3 - radius ** 3, min=0) ** (1 / 3) / distance
        weight = self.head_brain[slices][..., None]
        self.anatomy_points[slices] = centre + offsets * (1 - weight * (1 - source))

    def read_anatomy(self) -> None:
        """Read the atlas channels where the (pushed) anatomy now comes from."""
        self.channels = dict(zip(CHANNELS, self.space.sample(self.anatomy_points)))
        self.image = self.channels["image"].clone()
        self.brain = self.channels["brain"]
        self.white = self.channels["white"]

    def blend(self, slices, weight: torch.Tensor, value) -> None:
        region = self.image[slices]
        self.image[slices] = region * (1 - weight) + torch.as_tensor(value) * weight

    def mark(self, slices, weight: torch.Tensor) -> None:
        """The tumour (not its oedema) in the lesion mask."""
        self.lesion[slices] = torch.maximum(self.lesion[slices], (weight > 0.5).float())


def soft(inside_mm: torch.Tensor, edge_mm: float = 1.0) -> torch.Tensor:
    """Weight in [0, 1] from a signed distance (> 0 inside) with a soft edge."""
    return (inside_mm / edge_mm + 0.5).clamp(0, 1)


def _point(centre) -> torch.Tensor:
    """An (i, j, k) point in atlas mm as a float32 tensor."""
    return torch.tensor(np.asarray(centre, np.float32))
