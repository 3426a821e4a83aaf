"""Where a heatmap peaks: one rule for the overlay, the evaluation, the browser viewer and the
Slicer module. The heatmap is rounded to steps of 1/1024, so neighbouring voxels often share
the top value; argmax alone would pick whichever comes first in storage order. The peak is the
centre of the hottest voxels, and as a voxel, the hottest voxel nearest that centre."""

from __future__ import annotations

import numpy as np

from .volume import Volume


def peak_index(array: np.ndarray) -> tuple[int, ...]:
    """Array index of the peak voxel: among the voxels that share the top value, the one
    nearest their centre (the first in storage order when two are equally near)."""
    array = np.asarray(array)
    hottest = np.argwhere(array == array.max())
    distances = np.linalg.norm(hottest - hottest.mean(axis=0), axis=1)
    return tuple(int(v) for v in hottest[int(np.argmin(distances))])


def peak_world(heatmap: Volume) -> np.ndarray:
    """Where the heatmap peaks in LPS mm: the centre of its hottest voxels."""
    hottest = np.argwhere(heatmap.array == heatmap.array.max())[:, ::-1]  # (i, j, k)
    matrix = heatmap.index_to_world()
    return (matrix[:3, :3] @ hottest.mean(axis=0)) + matrix[:3, 3]
