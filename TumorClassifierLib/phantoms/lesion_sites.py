"""Where the phantoms' lesions go and what surrounds them, shared by both generators' painters
(generator1_lesions.py, generator2_lesions.py) and by the heads drawn at training time
(synthesis/lesions.py): the regions a class's centre is drawn from, dural bases, the inward
direction at the brain's surface, vasogenic oedema, dural tails, and marking the tumour."""

from __future__ import annotations

import functools

import numpy as np

from .anatomy import MIDLINE_I, Canvas, atlas_tissues, soft_ball


def mark(canvas: Canvas, slices, weight: np.ndarray) -> None:
    """The tumour (not its oedema) in canvas.lesion."""
    canvas.lesion[slices] = np.maximum(canvas.lesion[slices], (weight > 0.5).astype(np.float32))


@functools.lru_cache(maxsize=8)
def lesion_region(name: str) -> np.ndarray:
    """Where a lesion's centre may lie, as a mask of the atlas grid."""
    tissues = atlas_tissues()
    k, j, i = np.indices(tissues.image.shape, sparse=True)
    lateral = np.abs(i - MIDLINE_I)
    deep = tissues.surface_distance
    supratentorial = (k > 58) | ((k > 30) & (j > 100))
    if name == "hemispheric_white":
        return tissues.white & supratentorial & (lateral > 18) & (deep < -22) & (k > 60)
    if name == "lgg":
        frontal = (j > 145) & (k > 60)
        temporal = (k > 28) & (k < 62) & (j > 100) & (j < 160) & (lateral > 28)
        insular = (lateral > 26) & (lateral < 42) & (j > 108) & (j < 142) & (k > 52) & (k < 82)
        return (tissues.white | tissues.grey) & (frontal | temporal | insular) & (deep < -12)
    if name == "junction":
        near_grey = _dilate(tissues.grey, 2)
        return tissues.white & near_grey & (deep < -6)
    if name == "infratentorial_junction":
        return lesion_region("junction") & (k < 52) & (j < 95)
    raise ValueError(name)


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    import torch
    import torch.nn.functional as F
    tensor = torch.from_numpy(mask.astype(np.float32))[None, None]
    return F.max_pool3d(tensor, 2 * radius + 1, stride=1, padding=radius)[0, 0].numpy() > 0


def oedema(canvas: Canvas, centre, reach: float, rng) -> None:
    """Vasogenic oedema: T1-dark, spreading along white matter around the lesion."""
    slices, grids = canvas.box(centre, reach + 4)
    weight = soft_ball(grids, reach, rng, roughness=0.35, edge_mm=4.0)
    weight = weight * np.clip(canvas.white[slices] * 1.2, 0, 1) * canvas.brain[slices]
    canvas.blend(slices, weight * rng.uniform(0.5, 0.8), rng.uniform(0.6, 0.72))


def inward_direction(tissues, point) -> np.ndarray:
    """Unit vector (i, j, k) pointing into the brain from a point on its surface."""
    i, j, k = (int(round(v)) for v in point)
    distance = tissues.surface_distance
    gradient = np.array([distance[k, j, min(i + 2, distance.shape[2] - 1)] -
                         distance[k, j, max(i - 2, 0)],
                         distance[k, min(j + 2, distance.shape[1] - 1), i] -
                         distance[k, max(j - 2, 0), i],
                         distance[min(k + 2, distance.shape[0] - 1), j, i] -
                         distance[max(k - 2, 0), j, i]], dtype=float)
    norm = np.linalg.norm(gradient)
    return -gradient / norm if norm > 0 else np.array([0.0, 0.0, -1.0])


def dural_tail(canvas, slices, grids, base, centre, radius, value, rng) -> None:
    """A thin enhancing strip of dura running on from the tumour's base."""
    tissues = canvas.tissues
    dk, dj, di = grids
    offset = np.asarray(centre) - base
    distance_from_base = np.sqrt((di + offset[0]) ** 2 + (dj + offset[1]) ** 2 +
                                 (dk + offset[2]) ** 2)
    dura = np.abs(tissues.surface_distance[slices] - 0.5) < 1.2
    tail = dura & (distance_from_base < radius + rng.uniform(8, 18))
    canvas.blend(slices, tail.astype(np.float32) * 0.8, value * 0.9)


MENINGIOMA_SITES = ("convexity", "falx", "sphenoid_wing", "posterior_fossa")


def meningioma_site(tissues, site: str) -> np.ndarray:
    """Where a meningioma of `site` may have its dural base, as a mask of the atlas grid."""
    k, j, i = np.indices(tissues.image.shape, sparse=True)
    surface = (tissues.surface_distance > -1.5) & (tissues.surface_distance < 1.5)
    lateral = np.abs(i - MIDLINE_I)
    if site == "convexity":
        return surface & (k > 75) & (lateral > 25)
    if site == "falx":
        return (lateral < 3) & (k > 88) & (k < 125) & (j > 60) & (j < 190) & tissues.brain
    if site == "sphenoid_wing":
        return surface & (lateral > 20) & (lateral < 55) & (j > 125) & (j < 155) & (k > 35) \
            & (k < 60)
    return surface & (k < 50) & (j < 85)
