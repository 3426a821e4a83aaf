"""The lesions of the six tumour classes, painted on a `Canvas` where radiology puts them.

Each painter draws its own parameters from `rng`, pushes the brain aside where the tumour has
mass effect, paints oedema and tumour, and marks the tumour (not the oedema) in canvas.lesion.
"""

from __future__ import annotations

import functools

import numpy as np

from .anatomy import (
    CPA,
    IAC,
    MIDLINE_I,
    SELLA,
    Canvas,
    atlas_tissues,
    sample_point,
    smooth_noise,
    soft_ball,
)


def _mark(canvas: Canvas, slices, weight: np.ndarray) -> None:
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


def _oedema(canvas: Canvas, centre, reach: float, rng) -> None:
    """Vasogenic oedema: T1-dark, spreading along white matter around the lesion."""
    slices, grids = canvas.box(centre, reach + 4)
    weight = soft_ball(grids, reach, rng, roughness=0.35, edge_mm=4.0)
    weight = weight * np.clip(canvas.white[slices] * 1.2, 0, 1) * canvas.brain[slices]
    canvas.blend(slices, weight * rng.uniform(0.5, 0.8), rng.uniform(0.6, 0.72))


def paint_hgg(canvas: Canvas, rng: np.random.Generator) -> None:
    """One large (3-6 cm) hemispheric white-matter mass: thick irregular enhancing rim around a
    dark necrotic core, surrounding oedema, mass effect."""
    centre = sample_point(lesion_region("hemispheric_white"), rng)
    radius = rng.uniform(15, 30)
    canvas.push(centre, radius * rng.uniform(0.5, 0.8))
    _oedema(canvas, centre, radius + rng.uniform(8, 22), rng)
    slices, grids = canvas.box(centre, radius * 1.4)
    tumour = soft_ball(grids, radius, rng, roughness=0.25, edge_mm=1.5)
    core = soft_ball(grids, radius - rng.uniform(3, 8), rng, roughness=0.35, edge_mm=1.5)
    rim_value = rng.uniform(1.3, 1.7) * (1 + 0.12 * smooth_noise(tumour.shape, rng, 6))
    canvas.blend(slices, tumour, rim_value)
    canvas.blend(slices, core * tumour, rng.uniform(0.18, 0.35))
    _mark(canvas, slices, tumour)


def paint_lgg(canvas: Canvas, rng: np.random.Generator) -> None:
    """Intra-axial, ill-defined, T1-hypointense, no or faint enhancement; frontal, temporal or
    insular."""
    centre = sample_point(lesion_region("lgg"), rng)
    radius = rng.uniform(12, 28)
    canvas.push(centre, radius * rng.uniform(0.15, 0.35))
    slices, grids = canvas.box(centre, radius * 1.6)
    tumour = soft_ball(grids, radius, rng, roughness=0.3, edge_mm=rng.uniform(4, 8))
    value = rng.uniform(0.42, 0.62) * (1 + 0.08 * smooth_noise(tumour.shape, rng, 6))
    canvas.blend(slices, tumour * canvas.brain[slices], value)
    if rng.random() < 0.25:  # faint patchy enhancement in a minority
        patch = soft_ball(grids, radius * 0.3, rng, roughness=0.4, edge_mm=2) * tumour
        canvas.blend(slices, patch * 0.6, rng.uniform(0.85, 1.0))
    _mark(canvas, slices, tumour * canvas.brain[slices])


def paint_mets(canvas: Canvas, rng: np.random.Generator) -> None:
    """Usually 2-6 small (0.5-2 cm) round solid or ring-enhancing lesions at the grey-white
    junction, supra- and infratentorial, each with oedema."""
    count = int(rng.choice([2, 3, 4, 5, 6], p=[0.3, 0.25, 0.2, 0.15, 0.1]))
    junction = lesion_region("junction")
    below = lesion_region("infratentorial_junction")
    for index in range(count):
        use_below = index == 1 and rng.random() < 0.5 and below.any()
        centre = sample_point(below if use_below else junction, rng)
        radius = rng.uniform(2.5, 10)
        _oedema(canvas, centre, radius * rng.uniform(1.8, 3.2), rng)
        canvas.push(centre, radius * 0.4)
        slices, grids = canvas.box(centre, radius + 3)
        lesion = soft_ball(grids, radius, rng, roughness=0.08, edge_mm=1.0)
        canvas.blend(slices, lesion, rng.uniform(1.3, 1.7))
        if radius > 5 and rng.random() < 0.6:  # ring enhancement: a necrotic centre
            centre_part = soft_ball(grids, radius - rng.uniform(1.5, 3), edge_mm=1.0)
            canvas.blend(slices, centre_part, rng.uniform(0.25, 0.5))
        _mark(canvas, slices, lesion)


def paint_meningioma(canvas: Canvas, rng: np.random.Generator) -> None:
    """Extra-axial, dural-based (convexity, falx, sphenoid wing or posterior fossa), broad dural
    base, homogeneous avid enhancement, a dural tail, the brain pushed away."""
    tissues = canvas.tissues
    k, j, i = np.indices(tissues.image.shape, sparse=True)
    surface = (tissues.surface_distance > -1.5) & (tissues.surface_distance < 1.5)
    lateral = np.abs(i - MIDLINE_I)
    sites = {
        "convexity": surface & (k > 75) & (lateral > 25),
        # The falx runs in the midline fissure (filled in the brain mask) above the callosum.
        "falx": (np.abs(i - MIDLINE_I) < 3) & (k > 88) & (k < 125) & (j > 60) & (j < 190)
        & tissues.brain,
        "sphenoid_wing": surface & (lateral > 20) & (lateral < 55) & (j > 125) & (j < 155)
        & (k > 35) & (k < 60),
        "posterior_fossa": surface & (k < 50) & (j < 85),
    }
    site = rng.choice(list(sites), p=[0.45, 0.2, 0.2, 0.15])
    base = np.asarray(sample_point(sites[site], rng))
    # Grow inwards from the dura: the centre sits inside the brain by most of a radius.
    radius = rng.uniform(10, 25)
    inward = inward_direction(tissues, base) if site != "falx" else \
        np.array([np.sign(base[0] - MIDLINE_I) or 1.0, 0.0, 0.0])
    centre = tuple(base + inward * radius * rng.uniform(0.3, 0.7))
    canvas.push(centre, radius * rng.uniform(0.6, 0.9))
    slices, grids = canvas.box(centre, radius * 1.3 + 20)
    tumour = soft_ball(grids, radius, rng, roughness=0.08, edge_mm=1.0)
    value = rng.uniform(1.35, 1.75) * (1 + 0.04 * smooth_noise(tumour.shape, rng, 5))
    canvas.blend(slices, tumour, value)
    _dural_tail(canvas, slices, grids, base, centre, radius, value, rng)
    if rng.random() < 0.5:
        _oedema(canvas, centre, radius + rng.uniform(4, 12), rng)
        canvas.blend(slices, tumour, value)  # oedema surrounds, never covers, the tumour
    _mark(canvas, slices, tumour)


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


def _dural_tail(canvas, slices, grids, base, centre, radius, value, rng) -> None:
    """A thin enhancing strip of dura running on from the tumour's base."""
    tissues = canvas.tissues
    dk, dj, di = grids
    offset = np.asarray(centre) - base
    distance_from_base = np.sqrt((di + offset[0]) ** 2 + (dj + offset[1]) ** 2 +
                                 (dk + offset[2]) ** 2)
    dura = np.abs(tissues.surface_distance[slices] - 0.5) < 1.2
    tail = dura & (distance_from_base < radius + rng.uniform(8, 18))
    canvas.blend(slices, tail.astype(np.float32) * 0.8, value * 0.9)


def paint_pituitary_adenoma(canvas: Canvas, rng: np.random.Generator) -> None:
    """A midline sellar mass growing upwards out of the pituitary fossa (suprasellar)."""
    width = rng.uniform(5, 12)
    height = rng.uniform(6, 18)
    centre = (SELLA[0] + rng.normal(0, 1), SELLA[1] + rng.normal(0, 1.5),
              SELLA[2] + height * rng.uniform(0.3, 0.7))
    canvas.push((centre[0], centre[1], centre[2] + height * 0.4), width * 0.5)
    slices, grids = canvas.box(centre, max(width, height) + 4)
    dk, dj, di = grids
    tumour = soft_ball((dk * width / height, dj, di), width, rng, roughness=0.1, edge_mm=1.0)
    # A waist at the diaphragma sellae ("snowman") in some.
    if rng.random() < 0.5:
        waist = 1 - 0.3 * np.exp(-((dk + height * 0.2) ** 2) / 8)
        tumour = soft_ball((dk * width / height, dj / waist, di / waist), width, edge_mm=1.0)
    value = rng.uniform(1.2, 1.55) * (1 + 0.1 * smooth_noise(tumour.shape, rng, 4))
    canvas.blend(slices, tumour, value)
    _mark(canvas, slices, tumour)


def paint_acoustic_neuroma(canvas: Canvas, rng: np.random.Generator) -> None:
    """An enhancing cerebellopontine-angle mass centred on the internal auditory canal: a ball
    in the angle and a cone in the canal ("ice-cream cone"), indenting brainstem/cerebellum."""
    side = rng.choice(["left", "right"])
    canal = np.asarray(IAC[side])
    angle = np.asarray(CPA[side]) + rng.normal(0, 1.5, 3)
    radius = rng.uniform(5, 15)
    towards_midline = np.array([1.0 if side == "left" else -1.0, 0.0, 0.0])
    ball_centre = angle + towards_midline * radius * 0.3
    canvas.push(tuple(ball_centre), radius * rng.uniform(0.5, 0.8))
    slices, grids = canvas.box(tuple(ball_centre), radius + 25)
    dk, dj, di = grids
    ball = soft_ball(grids, radius, rng, roughness=0.1, edge_mm=1.0)
    # The cone: a tapering cylinder from the ball to the canal's fundus.
    axis = canal - ball_centre
    length = np.linalg.norm(axis)
    axis = axis / length
    along = di * axis[0] + dj * axis[1] + dk * axis[2]
    across = np.sqrt(np.clip(di ** 2 + dj ** 2 + dk ** 2 - along ** 2, 0, None))
    cone_radius = 3.0 * (1 - np.clip(along / length, 0, 1)) + 1.5
    cone = np.clip((cone_radius - across) + 0.5, 0, 1) * (along > 0) * (along < length)
    tumour = np.maximum(ball, cone.astype(np.float32))
    value = rng.uniform(1.3, 1.7) * (1 + 0.1 * smooth_noise(tumour.shape, rng, 4))
    canvas.blend(slices, tumour, value)
    if radius > 10 and rng.random() < 0.3:  # cystic change in large schwannomas
        cyst = soft_ball(grids, radius * 0.4, rng, roughness=0.3) * ball
        canvas.blend(slices, cyst, rng.uniform(0.3, 0.5))
    _mark(canvas, slices, tumour)


PAINTERS = {
    "HGG": paint_hgg, "LGG": paint_lgg, "METS": paint_mets, "PITADE": paint_pituitary_adenoma,
    "ACSCHW": paint_acoustic_neuroma, "MENINGIOMA": paint_meningioma, "HEALTHY": None,
}
