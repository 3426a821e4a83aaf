"""One labelled head from a seed: the network's input as preprocessing would have made it from
a scan, its lesion mask, and a record of how it was drawn.

    head = draw_head(seed=(run, n), label="METS", family="field", shape=(64, 64, 64))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..classes import CLASS_CODES
from .anatomy import add_enhancing_structures, vary_anatomy
from .canvas import HeadCanvas
from .lesions import paint_lesions, plan_lesions, push_brain
from .scanner import draw_scanner, misaligned_points, scan
from .shapes import FAMILIES
from .space import atlas_space


@dataclass(frozen=True, eq=False)
class SyntheticHead:
    label: str
    family: str
    image: torch.Tensor  # (1, K, J, I) float32, z-scored inside `brain`, zeros outside
    lesion: torch.Tensor  # (K, J, I) bool, the tumour (not its oedema)
    brain: torch.Tensor  # (K, J, I) bool, the mask preprocessing would use
    record: dict  # how it was drawn


def draw_head(seed: tuple[int, ...], label: str, family: str,
              shape: tuple[int, int, int] = (64, 64, 64)) -> SyntheticHead:
    if label not in CLASS_CODES:
        raise ValueError(f"label must be one of {', '.join(CLASS_CODES)}, not {label!r}")
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")
    rng = np.random.default_rng(np.random.SeedSequence([int(s) for s in seed]))
    space = atlas_space(tuple(shape))
    scanner = draw_scanner(rng)
    canvas = HeadCanvas(space, misaligned_points(space, scanner, rng))
    lesions = plan_lesions(label, rng, family)
    push_brain(canvas, lesions)
    canvas.read_anatomy()
    vary_anatomy(canvas, rng)
    add_enhancing_structures(canvas, rng, pituitary=label != "PITADE")
    paint_lesions(canvas, lesions, rng)
    own_brain = (canvas.head_brain > 0.5) | (canvas.lesion > 0)
    image, brain = scan(canvas.image, own_brain, space, scanner, rng)
    record = {"label": label, "family": family, "seed": [int(s) for s in seed],
              "lesions": len(lesions), "scanner": scanner.to_dict()}
    return SyntheticHead(label, family, image[None].contiguous(), canvas.lesion > 0, brain,
                         record)
