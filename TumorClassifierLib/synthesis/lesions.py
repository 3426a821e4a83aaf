"""Where each class puts what. A class is defined only by what radiology tells it by: where
the lesion lies, how many there are, intra- or extra-axial and how it meets the dura or the
internal auditory canal. Size, outline (the drawing family), enhancement pattern, contrast and
oedema come from distributions shared by every class (phantoms/lesion_forms.py's looks).

    lesions = plan_lesions(label, rng, family)
    push_brain(canvas, lesions); canvas.read_anatomy(); paint_lesions(canvas, lesions, rng)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import torch

from ..phantoms.anatomy import MIDLINE_I, SELLA, atlas_tissues
from ..phantoms.generator2_lesions import acoustic_neuroma_site
from ..phantoms.lesion_forms import LesionLook, draw_look
from ..phantoms.lesion_sites import (
    MENINGIOMA_SITES,
    inward_direction,
    lesion_region,
    meningioma_site,
)
from .canvas import HeadCanvas, soft
from .shapes import Shape, SmoothField, draw_shape


@dataclass
class Lesion:
    centre: np.ndarray  # atlas mm (i, j, k)
    shape: Shape
    look: LesionLook
    push_mm: float = 0.0  # radius of the ball whose growth pushes the brain away
    push_centre: np.ndarray | None = None  # where that ball grows (default: the centre)
    oedema_mm: float = 0.0  # reach of vasogenic oedema; 0: none
    reach_mm: float = 0.0  # how far from the centre the lesion can paint
    before: list = field(default_factory=list)  # painted before the body: (canvas, rng) -> None
    after: list = field(default_factory=list)  # painted after it, given its weight
    brain_only: bool = False  # intra-axial and confined to brain (LGG)


def plan_lesions(label: str, rng: np.random.Generator, family: str) -> list[Lesion]:
    planner = PLANNERS[label]
    return planner(rng, family) if planner else []


def push_brain(canvas: HeadCanvas, lesions: list[Lesion]) -> None:
    """The mass effect of every lesion (before the anatomy is read)."""
    for lesion in lesions:
        if lesion.push_mm > 0:
            centre = lesion.centre if lesion.push_centre is None else lesion.push_centre
            canvas.push(centre, lesion.push_mm)


def paint_lesions(canvas: HeadCanvas, lesions: list[Lesion], rng: np.random.Generator) -> None:
    """Oedema, then each body with its pattern and extras (after the anatomy is read)."""
    for lesion in lesions:
        if lesion.oedema_mm > 0:
            _oedema(canvas, lesion.centre, lesion.oedema_mm, rng)
        slices, offsets = canvas.box(lesion.centre, lesion.reach_mm)
        for paint in lesion.before:
            paint(canvas, slices, offsets, rng)
        weight = _body(canvas, slices, offsets, lesion, rng)
        for paint in lesion.after:
            weight = paint(canvas, slices, offsets, weight, rng)
        canvas.mark(slices, weight)


def _body(canvas: HeadCanvas, slices, offsets, lesion: Lesion, rng) -> torch.Tensor:
    look, shape = lesion.look, lesion.shape
    inside = shape.inside(offsets)
    weight = soft(inside, float(rng.uniform(0.7, 1.5)) if not lesion.brain_only
                  else float(rng.uniform(3, 7)))
    if lesion.brain_only:
        weight = weight * canvas.brain[slices]
    texture = shape.texture(offsets)
    canvas.blend(slices, weight, look.enhancement * (1 + look.heterogeneity * texture))
    rim = look.rim_mm
    if look.pattern == "ring" and shape.radius > 4:
        core = soft(inside - min(rim, shape.radius * 0.7), 1.5) * weight
        canvas.blend(slices, core, look.core_value)
    elif look.pattern == "cystic" and shape.radius > 5:
        shift = torch.tensor(rng.normal(0, shape.radius * 0.3, 3), dtype=torch.float32)
        cyst = soft(max(shape.radius - rim, shape.radius * 0.3) * 0.8 -
                    (offsets - shift).norm(dim=-1), 0.8) * weight
        canvas.blend(slices, cyst, look.core_value * 0.8)
    elif look.pattern == "heterogeneous":
        patches = shape.texture(offsets * 1.7 + 3.0).clamp(min=0) * weight
        canvas.blend(slices, patches * 0.6, look.core_value + 0.3)
    return weight


def _oedema(canvas: HeadCanvas, centre, reach: float, rng) -> None:
    """Vasogenic oedema: T1-dark, spreading along white matter around the lesion."""
    slices, offsets = canvas.box(centre, reach + 4)
    outline = SmoothField(rng, reach * 1.3, cells=5)
    distance = offsets.norm(dim=-1) * (1 + 0.35 * outline(offsets))
    weight = soft(reach - distance, 4.0) * (canvas.white[slices] * 1.2).clamp(0, 1) \
        * canvas.brain[slices]
    canvas.blend(slices, weight * float(rng.uniform(0.5, 0.8)), float(rng.uniform(0.6, 0.72)))


# ---------------------------------------------------------------- where each class puts what

@functools.lru_cache(maxsize=16)
def _candidates(name: str) -> np.ndarray:
    """(i, j, k) points of a named region of the 1 mm atlas."""
    mask = (meningioma_site(atlas_tissues(), name) if name in MENINGIOMA_SITES
            else lesion_region(name))
    k, j, i = np.nonzero(mask)
    return np.stack([i, j, k], axis=1).astype(np.float64)


def _point_in(name: str, rng) -> np.ndarray:
    candidates = _candidates(name)
    return candidates[rng.integers(len(candidates))] + rng.uniform(-0.5, 0.5, 3)


def _hgg(rng, family) -> list[Lesion]:
    """Intra-axial hemispheric mass, usually large with a necrotic centre and oedema."""
    centre = _point_in("hemispheric_white", rng)
    radius = rng.uniform(10, 32)
    look = draw_look(rng, family, {"ring": 0.6, "heterogeneous": 0.25, "solid": 0.1,
                                   "cystic": 0.05})
    return [Lesion(centre, draw_shape(rng, family, radius), look,
                   push_mm=radius * rng.uniform(0.4, 0.8),
                   oedema_mm=radius + rng.uniform(6, 22) if rng.random() < 0.9 else 0.0,
                   reach_mm=radius * 1.6)]


def _lgg(rng, family) -> list[Lesion]:
    """Intra-axial frontal, temporal or insular mass, mostly T1-dark and not enhancing."""
    centre = _point_in("lgg", rng)
    radius = rng.uniform(8, 30)
    look = draw_look(rng, family, {"solid": 0.6, "heterogeneous": 0.3, "cystic": 0.1},
                     enhancing=False)
    lesion = Lesion(centre, draw_shape(rng, family, radius), look,
                    push_mm=radius * rng.uniform(0.1, 0.35),
                    oedema_mm=radius + rng.uniform(4, 10) if rng.random() < 0.15 else 0.0,
                    reach_mm=radius * 1.7, brain_only=True)
    if rng.random() < 0.2:  # faint patchy enhancement in a minority
        patch_mm, value = radius * rng.uniform(0.2, 0.45), rng.uniform(1.02, 1.3)

        def patch(canvas, slices, offsets, weight, rng):
            spot = soft(patch_mm - offsets.norm(dim=-1), 2.0) * weight
            canvas.blend(slices, spot * 0.7, float(value))
            return weight
        lesion.after.append(patch)
    return [lesion]


def _mets(rng, family) -> list[Lesion]:
    """At the grey-white junction, supra- and infratentorial: solitary in about a third, else
    2-6; each solid or ring-enhancing, mostly with oedema."""
    count = 1 if rng.random() < 0.3 else int(rng.integers(2, 7))
    below_exists = len(_candidates("infratentorial_junction")) > 0
    lesions = []
    for index in range(count):
        use_below = index == 1 and rng.random() < 0.5 and below_exists
        centre = _point_in("infratentorial_junction" if use_below else "junction", rng)
        radius = rng.uniform(2.5, 18) if count == 1 else rng.uniform(2.5, 12)
        look = draw_look(rng, family, {"solid": 0.45, "ring": 0.4, "heterogeneous": 0.1,
                                       "cystic": 0.05})
        lesions.append(Lesion(centre, draw_shape(rng, family, radius), look,
                              push_mm=radius * rng.uniform(0.2, 0.5),
                              oedema_mm=radius * rng.uniform(1.5, 3.5)
                              if rng.random() < 0.85 else 0.0,
                              reach_mm=radius * 1.6 + 3))
    return lesions


def _meningioma(rng, family) -> list[Lesion]:
    """Extra-axial on a broad dural base (convexity, falx, sphenoid wing, posterior fossa),
    pushing the brain away; a dural tail or a CSF cleft in some."""
    site = rng.choice(MENINGIOMA_SITES, p=[0.45, 0.2, 0.2, 0.15])
    base = _point_in(site, rng)
    radius = rng.uniform(5, 28)
    look = draw_look(rng, family, {"solid": 0.7, "heterogeneous": 0.2, "cystic": 0.05,
                                   "ring": 0.05})
    inward = inward_direction(atlas_tissues(), base) if site != "falx" else \
        np.array([np.sign(base[0] - MIDLINE_I) or 1.0, 0.0, 0.0])
    centre = base + inward * radius * rng.uniform(0.3, 0.7)
    lesion = Lesion(centre, draw_shape(rng, family, radius), look,
                    push_mm=radius * rng.uniform(0.5, 0.9),
                    oedema_mm=radius + rng.uniform(4, 12) if rng.random() < 0.35 else 0.0,
                    reach_mm=radius * 1.6 + 20)
    if rng.random() < 0.4:  # a CSF cleft between the tumour and the brain it displaces
        cleft_mm, value = radius + rng.uniform(1.0, 2.5), rng.uniform(0.2, 0.4)

        def cleft(canvas, slices, offsets, rng):
            ball = soft(cleft_mm - offsets.norm(dim=-1))
            canvas.blend(slices, ball * canvas.brain[slices], float(value))
        lesion.before.append(cleft)
    if rng.random() < 0.6:
        tail_mm = radius + rng.uniform(8, 18)
        base_offset = torch.tensor(base - centre, dtype=torch.float32)

        def tail(canvas, slices, offsets, weight, rng):
            """A thin enhancing strip of dura running on from the tumour's base."""
            dura = soft(1.2 - (canvas.channels["surface_distance"][slices] - 0.5).abs(), 0.8)
            near = soft(tail_mm - (offsets - base_offset).norm(dim=-1), 2.0)
            canvas.blend(slices, dura * near * 0.8, look.enhancement * 0.9)
            return weight
        lesion.after.append(tail)
    return [lesion]


def _pituitary_adenoma(rng, family) -> list[Lesion]:
    """Sellar, growing upwards on the midline (suprasellar); solid, heterogeneous or cystic."""
    width, height = rng.uniform(4, 14), rng.uniform(5, 22)
    look = draw_look(rng, family, {"solid": 0.55, "heterogeneous": 0.25, "cystic": 0.2})
    centre = np.array([SELLA[0] + rng.normal(0, 1), SELLA[1] + rng.normal(0, 1.5),
                       SELLA[2] + height * rng.uniform(0.3, 0.7)])
    shape = draw_shape(rng, family, width)
    stretch = torch.tensor([1.0, 1.0, width / height], dtype=torch.float32)
    tall = Shape(shape.family, width, lambda offsets: shape.inside(offsets * stretch),
                 lambda offsets: shape.texture(offsets * stretch))
    return [Lesion(centre, tall, look, push_mm=width * 0.5,
                   push_centre=centre + [0, 0, height * 0.4],
                   reach_mm=max(width, height) * 1.6 + 4)]


def _acoustic_neuroma(rng, family) -> list[Lesion]:
    """Centred on the internal auditory canal at the cerebellopontine angle; the canal part
    ("ice-cream cone") in most, not all."""
    canal, centre, radius, look = acoustic_neuroma_site(rng, family)
    lesion = Lesion(centre, draw_shape(rng, family, radius), look,
                    push_mm=radius * rng.uniform(0.4, 0.8), reach_mm=radius * 1.6 + 25)
    if rng.random() < 0.7:
        axis = canal - centre
        length = float(np.linalg.norm(axis))
        axis_t = torch.tensor(axis / length, dtype=torch.float32)
        width = rng.uniform(2.0, 3.5)

        def cone(canvas, slices, offsets, weight, rng):
            along = offsets @ axis_t
            across = (offsets.norm(dim=-1) ** 2 - along ** 2).clamp(min=0).sqrt()
            cone_radius = width * (1 - (along / length).clamp(0, 1)) + 1.2
            part = soft(cone_radius - across) * ((along > 0) & (along < length)).float()
            canvas.blend(slices, part, look.enhancement)
            return torch.maximum(weight, part)
        lesion.after.append(cone)
    return [lesion]


PLANNERS = {
    "HGG": _hgg, "LGG": _lgg, "METS": _mets, "PITADE": _pituitary_adenoma,
    "ACSCHW": _acoustic_neuroma, "MENINGIOMA": _meningioma, "HEALTHY": None,
}
