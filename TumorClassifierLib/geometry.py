"""Voxel grids in world space (LPS, mm): index-to-world matrices and grids laid over a box or
around a point. One place for arithmetic that is easy to get half a voxel wrong."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk


def index_to_world(direction, spacing, origin) -> np.ndarray:
    """4x4 matrix from continuous (i, j, k, 1) index to world (x, y, z, 1)."""
    matrix = np.eye(4)
    matrix[:3, :3] = np.asarray(direction, dtype=float).reshape(3, 3) @ np.diag(spacing)
    matrix[:3, 3] = origin
    return matrix


def image_index_to_world(image: sitk.Image) -> np.ndarray:
    return index_to_world(image.GetDirection(), image.GetSpacing(), image.GetOrigin())


def centre_of(image: sitk.Image) -> np.ndarray:
    """World position of the image's middle (between voxels when a size is even)."""
    return np.asarray(image.TransformContinuousIndexToPhysicalPoint(
        [(n - 1) / 2 for n in image.GetSize()]))


def grid_in_box(corner, size, spacing, direction, pixel_type=sitk.sitkFloat32) -> sitk.Image:
    """An empty image of `size` voxels whose box starts at world point `corner`: the first voxel
    centre sits half a voxel inside it along each axis."""
    direction = np.asarray(direction, dtype=float).reshape(3, 3)
    spacing = np.asarray(spacing, dtype=float)
    grid = sitk.Image([int(n) for n in size], pixel_type)
    grid.SetSpacing(tuple(spacing))
    grid.SetDirection(tuple(direction.ravel()))
    grid.SetOrigin(tuple(np.asarray(corner, dtype=float) + direction @ (spacing / 2)))
    return grid


def grid_around(centre, size, spacing, direction=(1, 0, 0, 0, 1, 0, 0, 0, 1),
                pixel_type=sitk.sitkFloat32) -> sitk.Image:
    """An empty image of `size` voxels whose middle sits at world point `centre`."""
    direction = np.asarray(direction, dtype=float).reshape(3, 3)
    grid = sitk.Image([int(n) for n in size], pixel_type)
    grid.SetSpacing(tuple(float(s) for s in spacing))
    grid.SetDirection(tuple(direction.ravel()))
    offset = direction @ np.diag(spacing) @ ((np.asarray(size, dtype=float) - 1) / 2)
    grid.SetOrigin(tuple(np.asarray(centre, dtype=float) - offset))
    return grid


def same_box_new_spacing(image: sitk.Image, spacing_mm: float) -> sitk.Image:
    """An empty grid over the same physical box as `image`, with isotropic `spacing_mm` voxels."""
    size = [max(1, int(round(n * s / spacing_mm))) for n, s in zip(image.GetSize(),
                                                                    image.GetSpacing())]
    corner = image.TransformContinuousIndexToPhysicalPoint([-0.5, -0.5, -0.5])
    return grid_in_box(corner, size, [spacing_mm] * 3, image.GetDirection(),
                       image.GetPixelID())
