"""The reference brain (BraTS / SRI24 space) that every scan is registered to.

Two images of the same head share one world box: with skull and skull-stripped (voxels > 0
are the brain). Their raw arrays are stored in opposite left-right order, so everything here is
done in world coordinates by resampling onto one reference grid.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .geometry import grid_in_box
from .resources import atlas_dir

WITH_SKULL_FILE = "t1_brats_space.nii.gz"
SKULL_STRIPPED_FILE = "t1_skullstripped_brats_space.nii.gz"
# Axis directions of the network's grid in LPS world coordinates: i to the Right, j Anterior,
# k Superior - the paper's "reorder to RAS".
RAS_DIRECTION = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)


@dataclass(frozen=True, eq=False)
class Atlas:
    with_skull: sitk.Image  # float32
    skull_stripped: sitk.Image  # float32, on the with-skull grid
    brain_mask: sitk.Image  # uint8, 1 = brain, on the with-skull grid
    identity: str  # sha256 over both files: models record which atlas they were trained on

    def image(self, skull_stripped: bool) -> sitk.Image:
        return self.skull_stripped if skull_stripped else self.with_skull


@functools.lru_cache(maxsize=2)
def load_atlas(directory: str | None = None) -> Atlas:
    folder = Path(directory) if directory else atlas_dir()
    files = [folder / WITH_SKULL_FILE, folder / SKULL_STRIPPED_FILE]
    for file in files:
        if not file.is_file():
            raise FileNotFoundError(f"{file}: atlas file missing; the installation is incomplete")
    with_skull = sitk.ReadImage(str(files[0]), sitk.sitkFloat32)
    stripped = sitk.Resample(sitk.ReadImage(str(files[1]), sitk.sitkFloat32), with_skull,
                             sitk.Transform(), sitk.sitkNearestNeighbor, 0.0)
    mask = sitk.Cast(stripped > 0, sitk.sitkUInt8)
    return Atlas(with_skull, stripped, mask, atlas_identity(folder))


def atlas_identity(folder: Path) -> str:
    digest = hashlib.sha256()
    for name in (WITH_SKULL_FILE, SKULL_STRIPPED_FILE):
        digest.update(hashlib.sha256((folder / name).read_bytes()).digest())
    return digest.hexdigest()


def reference_grid(atlas: Atlas, shape: tuple[int, int, int]) -> sitk.Image:
    """An empty float32 image of `shape` (I, J, K) in RAS order that spans the atlas's whole box
    (the paper resampled the whole volume to 128³: new spacing = old extent / 128)."""
    low, high = physical_bounds(atlas.with_skull)
    spacing = (high - low) / np.asarray(shape, dtype=float)
    axis_signs = np.diag(np.asarray(RAS_DIRECTION).reshape(3, 3))
    # The box corner the axes start from (RAS axes run against LPS on the first two).
    return grid_in_box(np.where(axis_signs < 0, high, low), shape, spacing, RAS_DIRECTION)


def physical_bounds(image: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """World (LPS) bounding box of the image's voxels, edges included."""
    size = np.asarray(image.GetSize())
    corners = [image.TransformContinuousIndexToPhysicalPoint([(c - 0.5) for c in corner])
               for corner in np.array(np.meshgrid(*[[0, n] for n in size])).T.reshape(-1, 3)]
    corners = np.asarray(corners)
    return corners.min(axis=0), corners.max(axis=0)


@functools.lru_cache(maxsize=4)
def brain_mask_on_grid(atlas: Atlas, shape: tuple[int, int, int]) -> np.ndarray:
    """The atlas brain mask on the network's grid, as a bool array (K, J, I)."""
    grid = reference_grid(atlas, shape)
    mask = sitk.Resample(atlas.brain_mask, grid, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    return sitk.GetArrayFromImage(mask).astype(bool)


@functools.lru_cache(maxsize=4)
def downsampled(atlas: Atlas, skull_stripped: bool, spacing_mm: float) -> tuple[sitk.Image,
                                                                               sitk.Image]:
    """The atlas image and brain mask at about `spacing_mm` voxels, for fast registration."""
    image = atlas.image(skull_stripped)
    factors = [max(1, int(round(spacing_mm / s))) for s in image.GetSpacing()]
    small = sitk.BinShrink(image, factors)
    mask = sitk.Resample(atlas.brain_mask, small, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    return small, mask
