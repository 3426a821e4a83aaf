"""Generator 2's lesions: each class keeps only what radiology tells it by - where it lies, how
many there are, intra- or extra-axial, how it meets the dura or the canal - and draws size,
outline, enhancement pattern, contrast and oedema from wide distributions that overlap between
the classes (lesion_forms.py), in one of two drawing families.

    painter(canvas, rng, family)
"""

from __future__ import annotations

import numpy as np

from .anatomy import CPA, IAC, MIDLINE_I, SELLA, Canvas, sample_point, soft_ball
from .lesion_forms import draw_look, paint_body
from .lesion_sites import (
    MENINGIOMA_SITES,
    dural_tail,
    inward_direction,
    lesion_region,
    mark,
    meningioma_site,
    oedema,
)


def paint_hgg(canvas: Canvas, rng: np.random.Generator, family: str) -> None:
    """Intra-axial hemispheric mass, usually large with a necrotic centre and oedema."""
    centre = sample_point(lesion_region("hemispheric_white"), rng)
    radius = rng.uniform(10, 32)
    look = draw_look(rng, family, {"ring": 0.6, "heterogeneous": 0.25, "solid": 0.1,
                                   "cystic": 0.05})
    canvas.push(centre, radius * rng.uniform(0.4, 0.8))
    if rng.random() < 0.9:
        oedema(canvas, centre, radius + rng.uniform(6, 22), rng)
    slices, grids = canvas.box(centre, radius * 1.5)
    mark(canvas, slices, paint_body(canvas, slices, grids, radius, look, rng))


def paint_lgg(canvas: Canvas, rng: np.random.Generator, family: str) -> None:
    """Intra-axial frontal, temporal or insular mass, mostly T1-dark and not enhancing."""
    centre = sample_point(lesion_region("lgg"), rng)
    radius = rng.uniform(8, 30)
    enhancing = rng.random() < 0.2
    look = draw_look(rng, family, {"solid": 0.6, "heterogeneous": 0.3, "cystic": 0.1},
                     enhancing=False)
    canvas.push(centre, radius * rng.uniform(0.1, 0.35))
    if rng.random() < 0.15:
        oedema(canvas, centre, radius + rng.uniform(4, 10), rng)
    slices, grids = canvas.box(centre, radius * 1.6)
    weight = paint_body(canvas, slices, grids, radius, look, rng) * canvas.brain[slices]
    if enhancing:  # faint patchy enhancement in a minority
        patch = soft_ball(grids, radius * rng.uniform(0.2, 0.45), rng, 0.4, 2.0) * weight
        canvas.blend(slices, patch * 0.7, rng.uniform(1.02, 1.3))
    mark(canvas, slices, weight)


def paint_mets(canvas: Canvas, rng: np.random.Generator, family: str) -> None:
    """At the grey-white junction, supra- and infratentorial: solitary in about a third, else
    2-6; each solid or ring-enhancing, mostly with oedema."""
    count = 1 if rng.random() < 0.3 else int(rng.integers(2, 7))
    junction = lesion_region("junction")
    below = lesion_region("infratentorial_junction")
    for index in range(count):
        use_below = index == 1 and rng.random() < 0.5 and below.any()
        centre = sample_point(below if use_below else junction, rng)
        radius = rng.uniform(2.5, 18) if count == 1 else rng.uniform(2.5, 12)
        look = draw_look(rng, family, {"solid": 0.45, "ring": 0.4, "heterogeneous": 0.1,
                                       "cystic": 0.05})
        if rng.random() < 0.85:
            oedema(canvas, centre, radius * rng.uniform(1.5, 3.5), rng)
        canvas.push(centre, radius * rng.uniform(0.2, 0.5))
        slices, grids = canvas.box(centre, radius * 1.4 + 3)
        mark(canvas, slices, paint_body(canvas, slices, grids, radius, look, rng))


def paint_meningioma(canvas: Canvas, rng: np.random.Generator, family: str) -> None:
    """Extra-axial on a broad dural base (convexity, falx, sphenoid wing, posterior fossa),
    pushing the brain away; a dural tail or a CSF cleft in some."""
    tissues = canvas.tissues
    site = rng.choice(MENINGIOMA_SITES, p=[0.45, 0.2, 0.2, 0.15])
    base = np.asarray(sample_point(meningioma_site(tissues, site), rng))
    radius = rng.uniform(5, 28)
    look = draw_look(rng, family, {"solid": 0.7, "heterogeneous": 0.2, "cystic": 0.05,
                                   "ring": 0.05})
    inward = inward_direction(tissues, base) if site != "falx" else \
        np.array([np.sign(base[0] - MIDLINE_I) or 1.0, 0.0, 0.0])
    centre = tuple(base + inward * radius * rng.uniform(0.3, 0.7))
    canvas.push(centre, radius * rng.uniform(0.5, 0.9))
    if rng.random() < 0.35:
        oedema(canvas, centre, radius + rng.uniform(4, 12), rng)
    slices, grids = canvas.box(centre, radius * 1.4 + 20)
    if rng.random() < 0.4:  # a CSF cleft between the tumour and the brain it displaces
        cleft = soft_ball(grids, radius + rng.uniform(1.0, 2.5), edge_mm=1.0)
        canvas.blend(slices, cleft * canvas.brain[slices], rng.uniform(0.2, 0.4))
    weight = paint_body(canvas, slices, grids, radius, look, rng)
    if rng.random() < 0.6:
        dural_tail(canvas, slices, grids, base, centre, radius, look.enhancement, rng)
    mark(canvas, slices, weight)


def paint_pituitary_adenoma(canvas: Canvas, rng: np.random.Generator, family: str) -> None:
    """Sellar, growing upwards on the midline (suprasellar); solid, heterogeneous or cystic."""
    width = rng.uniform(4, 14)
    height = rng.uniform(5, 22)
    look = draw_look(rng, family, {"solid": 0.55, "heterogeneous": 0.25, "cystic": 0.2})
    centre = (SELLA[0] + rng.normal(0, 1), SELLA[1] + rng.normal(0, 1.5),
              SELLA[2] + height * rng.uniform(0.3, 0.7))
    canvas.push((centre[0], centre[1], centre[2] + height * 0.4), width * 0.5)
    slices, (dk, dj, di) = canvas.box(centre, max(width, height) + 4)
    stretched = (dk * width / height, dj, di)  # taller than wide
    mark(canvas, slices, paint_body(canvas, slices, stretched, width, look, rng))


def acoustic_neuroma_site(rng: np.random.Generator, family: str):
    """(canal, ball centre, radius, look) of an acoustic neuroma: a ball at the
    cerebellopontine angle, nudged towards the midline, and the canal it grows out of."""
    side = rng.choice(["left", "right"])
    canal = np.asarray(IAC[side])
    angle = np.asarray(CPA[side]) + rng.normal(0, 1.5, 3)
    radius = rng.uniform(3, 16)
    look = draw_look(rng, family, {"solid": 0.55, "heterogeneous": 0.25, "cystic": 0.2})
    towards_midline = np.array([1.0 if side == "left" else -1.0, 0.0, 0.0])
    return canal, angle + towards_midline * radius * 0.3, radius, look


def paint_acoustic_neuroma(canvas: Canvas, rng: np.random.Generator, family: str) -> None:
    """Centred on the internal auditory canal at the cerebellopontine angle; the canal part
    ("ice-cream cone") in most, not all."""
    canal, ball_centre, radius, look = acoustic_neuroma_site(rng, family)
    canvas.push(tuple(ball_centre), radius * rng.uniform(0.4, 0.8))
    slices, grids = canvas.box(tuple(ball_centre), radius + 25)
    weight = paint_body(canvas, slices, grids, radius, look, rng)
    if rng.random() < 0.7:
        dk, dj, di = grids
        axis = canal - ball_centre
        length = np.linalg.norm(axis)
        axis = axis / length
        along = di * axis[0] + dj * axis[1] + dk * axis[2]
        across = np.sqrt(np.clip(di ** 2 + dj ** 2 + dk ** 2 - along ** 2, 0, None))
        cone_radius = rng.uniform(2.0, 3.5) * (1 - np.clip(along / length, 0, 1)) + 1.2
        cone = (np.clip((cone_radius - across) + 0.5, 0, 1) * (along > 0)
                * (along < length)).astype(np.float32)
        canvas.blend(slices, cone, look.enhancement)
        weight = np.maximum(weight, cone)
    mark(canvas, slices, weight)


PAINTERS_2 = {
    "HGG": paint_hgg, "LGG": paint_lgg, "METS": paint_mets, "PITADE": paint_pituitary_adenoma,
    "ACSCHW": paint_acoustic_neuroma, "MENINGIOMA": paint_meningioma, "HEALTHY": None,
}
