"""Generator 1: the lesions of the six tumour classes, painted on a `Canvas` where radiology
puts them.

Each painter draws its own parameters from `rng`, pushes the brain aside where the tumour has
mass effect, paints oedema and tumour, and marks the tumour (not the oedema) in canvas.lesion.
"""

from __future__ import annotations

import numpy as np

from .anatomy import (
    CPA,
    IAC,
    MIDLINE_I,
    SELLA,
    Canvas,
    sample_point,
    smooth_noise,
    soft_ball,
)
from .lesion_sites import dural_tail, inward_direction, lesion_region, mark, oedema


def paint_hgg(canvas: Canvas, rng: np.random.Generator) -> None:
    """One large (3-6 cm) hemispheric white-matter mass: thick irregular enhancing rim around a
    dark necrotic core, surrounding oedema, mass effect."""
    centre = sample_point(lesion_region("hemispheric_white"), rng)
    radius = rng.uniform(15, 30)
    canvas.push(centre, radius * rng.uniform(0.5, 0.8))
    oedema(canvas, centre, radius + rng.uniform(8, 22), rng)
    slices, grids = canvas.box(centre, radius * 1.4)
    tumour = soft_ball(grids, radius, rng, roughness=0.25, edge_mm=1.5)
    core = soft_ball(grids, radius - rng.uniform(3, 8), rng, roughness=0.35, edge_mm=1.5)
    rim_value = rng.uniform(1.3, 1.7) * (1 + 0.12 * smooth_noise(tumour.shape, rng, 6))
    canvas.blend(slices, tumour, rim_value)
    canvas.blend(slices, core * tumour, rng.uniform(0.18, 0.35))
    mark(canvas, slices, tumour)


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
    mark(canvas, slices, tumour * canvas.brain[slices])


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
        oedema(canvas, centre, radius * rng.uniform(1.8, 3.2), rng)
        canvas.push(centre, radius * 0.4)
        slices, grids = canvas.box(centre, radius + 3)
        lesion = soft_ball(grids, radius, rng, roughness=0.08, edge_mm=1.0)
        canvas.blend(slices, lesion, rng.uniform(1.3, 1.7))
        if radius > 5 and rng.random() < 0.6:  # ring enhancement: a necrotic centre
            centre_part = soft_ball(grids, radius - rng.uniform(1.5, 3), edge_mm=1.0)
            canvas.blend(slices, centre_part, rng.uniform(0.25, 0.5))
        mark(canvas, slices, lesion)


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
    dural_tail(canvas, slices, grids, base, centre, radius, value, rng)
    if rng.random() < 0.5:
        oedema(canvas, centre, radius + rng.uniform(4, 12), rng)
        canvas.blend(slices, tumour, value)  # oedema surrounds, never covers, the tumour
    mark(canvas, slices, tumour)


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
    mark(canvas, slices, tumour)


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
    mark(canvas, slices, tumour)


PAINTERS = {
    "HGG": paint_hgg, "LGG": paint_lgg, "METS": paint_mets, "PITADE": paint_pituitary_adenoma,
    "ACSCHW": paint_acoustic_neuroma, "MENINGIOMA": paint_meningioma, "HEALTHY": None,
}
