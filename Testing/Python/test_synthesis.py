"""Heads drawn at training time (synthesis/): reproducible from their seed, each class's
lesion where the class puts it, and the network input exactly as preprocessing leaves it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from TumorClassifierLib.classes import CLASS_CODES
from TumorClassifierLib.phantoms.anatomy import CPA, SELLA
from TumorClassifierLib.synthesis.dataset import SyntheticHeads
from TumorClassifierLib.synthesis.heads import draw_head
from TumorClassifierLib.synthesis.scanner import slice_operator
from TumorClassifierLib.synthesis.shapes import FAMILIES, draw_shape
from TumorClassifierLib.synthesis.space import atlas_space

SHAPE = (32, 32, 32)


def lesion_centre_mm(head) -> np.ndarray:
    """The lesion's centroid in atlas mm (i, j, k), from the grid's unmoved positions."""
    space = atlas_space(SHAPE)
    return space.grid_mm[head.lesion].mean(0).numpy()


@pytest.mark.slow
def test_the_same_seed_draws_the_same_head_and_another_seed_another():
    first = draw_head((7, 0, 3), "METS", "field", SHAPE)
    again = draw_head((7, 0, 3), "METS", "field", SHAPE)
    other = draw_head((7, 0, 4), "METS", "field", SHAPE)
    assert torch.equal(first.image, again.image) and torch.equal(first.lesion, again.lesion)
    assert not torch.equal(first.image, other.image)


@pytest.mark.parametrize("family", FAMILIES)
def test_the_input_is_z_scored_inside_the_brain_and_zero_outside(family):
    head = draw_head((3, 1), "HGG", family, SHAPE)
    image = head.image[0]
    assert image.shape == SHAPE and head.image.dtype == torch.float32
    assert torch.all(image[~head.brain] == 0)
    inside = image[head.brain].double()
    assert abs(inside.mean().item()) < 1e-4 and abs(inside.std().item() - 1) < 1e-3
    assert head.lesion.any()


@pytest.mark.slow
def test_each_class_puts_its_lesion_where_radiology_says():
    for n in range(3):
        assert not draw_head((5, n), "HEALTHY", "lumpy", SHAPE).lesion.any()
        pituitary = lesion_centre_mm(draw_head((5, n), "PITADE", "sdf", SHAPE))
        assert np.linalg.norm(pituitary[:2] - np.array(SELLA[:2])) < 15
        assert SELLA[2] - 8 < pituitary[2] < SELLA[2] + 30  # growing up out of the sella
        neuroma = lesion_centre_mm(draw_head((5, n), "ACSCHW", "cluster", SHAPE))
        assert min(np.linalg.norm(neuroma - np.array(c)) for c in CPA.values()) < 25
        glioma = lesion_centre_mm(draw_head((5, n), "HGG", "lumpy", SHAPE))
        assert glioma[2] > 55  # supratentorial hemispheres


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_draws_a_body_of_about_its_size(family):
    offsets = torch.stack(torch.meshgrid(*[torch.arange(-40, 41, 2.0)] * 3, indexing="ij"), -1)
    ball = 4 / 3 * np.pi * 15 ** 3
    for seed in range(4):
        shape = draw_shape(np.random.default_rng(seed), family, 15.0)
        volume = float((shape.inside(offsets) > 0).sum()) * 8  # 2 mm voxels
        assert 0.05 * ball < volume < 3 * ball, (family, seed, volume / ball)
        texture = shape.texture(offsets)
        assert texture.shape == offsets.shape[:-1] and texture.abs().max() <= 1.0001


def test_an_unknown_family_is_refused():
    with pytest.raises(ValueError, match="family must be one of"):
        draw_shape(np.random.default_rng(0), "watercolour", 10.0)
    with pytest.raises(ValueError, match="family must be one of"):
        draw_head((0,), "HGG", "watercolour", SHAPE)


def test_the_slice_operator_keeps_constants_and_thick_slices_blur():
    for slice_mm, phase in ((1.0, 0.0), (5.0, 0.3), (7.0, 0.9)):
        operator = slice_operator(40, 2.4, slice_mm, phase)
        assert torch.allclose(operator.sum(1), torch.ones(40), atol=1e-5)
    noise = torch.randn(2000, 40, generator=torch.Generator().manual_seed(0))
    thin = noise @ slice_operator(40, 2.4, 1.0, 0.5).T
    thick = noise @ slice_operator(40, 2.4, 7.0, 0.5).T
    assert thick.std() < 0.75 * thin.std()


@pytest.mark.slow
def test_the_dataset_is_indexed_by_seed_whatever_the_offset():
    whole = SyntheticHeads(seed=4, stream=0, families=("lumpy", "sdf"), length=10, shape=SHAPE)
    later = SyntheticHeads(seed=4, stream=0, families=("lumpy", "sdf"), length=3, shape=SHAPE,
                           offset=7)
    assert torch.equal(whole[8]["image"], later[1]["image"])
    assert [whole[n]["label"] for n in range(8)] == [n % len(CLASS_CODES) for n in range(8)]
    assert {whole.family_of(n) for n in range(20)} == {"lumpy", "sdf"}
    with pytest.raises(IndexError):
        later[3]


@pytest.mark.slow
def test_left_right_flips_flip_only_the_left_right_axis():
    plain = SyntheticHeads(seed=2, stream=0, families=("lumpy",), length=12, shape=SHAPE)
    flipped = SyntheticHeads(seed=2, stream=0, families=("lumpy",), length=12, shape=SHAPE,
                             flips="left-right", flip_probability=1.0)
    for n in (0, 5):
        assert torch.equal(flipped[n]["image"], torch.flip(plain[n]["image"], [3]))
        assert torch.equal(flipped[n]["lesion"], torch.flip(plain[n]["lesion"], [2]))


def test_a_box_holds_every_voxel_the_misalignment_moved_near_its_centre():
    from TumorClassifierLib.synthesis.canvas import HeadCanvas
    from TumorClassifierLib.synthesis.scanner import _rotation
    space = atlas_space(SHAPE)
    centre = space.grid_mm.mean(dim=(0, 1, 2))
    rotation = torch.from_numpy(_rotation(0.15, -0.1, 0.12).astype(np.float32))  # ~8 degrees
    points = (space.grid_mm - centre) @ rotation.T * 1.06 + centre + 5.0
    canvas = HeadCanvas(space, points)
    for target, reach in (((30.0, 200.0, 120.0), 20.0), ((120.0, 120.0, 77.0), 9.0)):
        slices = canvas.grid_box(target, reach)
        near = ((points - torch.tensor(target)).abs() <= reach).all(dim=-1)
        inside = torch.zeros_like(near)
        inside[slices] = True
        assert near.any() and not (near & ~inside).any()
