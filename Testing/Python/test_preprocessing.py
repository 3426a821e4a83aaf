import numpy as np
import pytest
import SimpleITK as sitk
from conftest import plant_lesion, restore, shrink

from TumorClassifierLib.errors import InputError, RegistrationFailed
from TumorClassifierLib.preprocessing import (
    PreprocessingConfig,
    SkullEvidence,
    bias_correct,
    bright_region_litres,
    is_skull_stripped,
    preprocess,
    register_to_best_atlas,
)
from TumorClassifierLib.volume import Volume

SMALL = PreprocessingConfig(input_shape=(48, 48, 32))
LPS_IDENTITY = (1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0)


def test_network_input_is_zscored_inside_the_brain_and_zero_outside(head):
    prepared = preprocess(head, SMALL)
    assert prepared.tensor.shape == (1, 32, 48, 48) and prepared.tensor.dtype == np.float32
    inside = prepared.tensor[0][prepared.brain_mask]
    assert abs(inside.mean()) < 1e-4 and abs(inside.std() - 1) < 1e-3
    assert np.all(prepared.tensor[0][~prepared.brain_mask] == 0)
    assert 0.1 < prepared.brain_mask.mean() < 0.6  # a brain, not the box and not a speck


def test_skull_stripped_detection(atlas, head):
    assert not is_skull_stripped(head, SMALL)
    assert is_skull_stripped(shrink(atlas.skull_stripped), SMALL)
    assert is_skull_stripped(head, PreprocessingConfig(skull_stripped="yes"))


def noisy_stripped(atlas, sigma: float = 40.0, seed: int = 0) -> sitk.Image:
    """The stripped atlas at 2 mm with Rician noise everywhere: a background that is not one
    exact value (what a second phantom generator and some pipelines produce)."""
    clean = shrink(atlas.skull_stripped)
    array = sitk.GetArrayFromImage(clean).astype(np.float32)
    rng = np.random.default_rng(seed)
    array = np.sqrt((array + rng.normal(0, sigma, array.shape)) ** 2 +
                    rng.normal(0, sigma, array.shape) ** 2)
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(clean)
    return image


def test_bright_region_is_the_brain_or_the_head(atlas, head):
    brain_litres, _ = bright_region_litres(shrink(atlas.skull_stripped))
    noisy_litres, _ = bright_region_litres(noisy_stripped(atlas))
    head_litres, _ = bright_region_litres(head)
    assert 1.0 < brain_litres < 2.0 and head_litres > 2.6
    assert abs(noisy_litres - brain_litres) < 0.1 * brain_litres  # noise does not move it


def test_noisy_background_is_still_stripped_and_kept_out_of_the_brain(atlas):
    clean = preprocess(shrink(atlas.skull_stripped), SMALL)
    noisy = preprocess(noisy_stripped(atlas), SMALL)
    assert noisy.skull_stripped and noisy.registration.skull_stripped_atlas
    assert noisy.registration.ok
    overlap = (noisy.brain_mask & clean.brain_mask).sum() / clean.brain_mask.sum()
    assert overlap > 0.9 and noisy.brain_mask.sum() < 1.15 * clean.brain_mask.sum()


def test_unsure_scans_are_registered_to_both_atlases_and_the_better_kept(atlas, head):
    unsure = SkullEvidence(2.3, 0.0, 0.0, 0.0, None)
    assert register_to_best_atlas(noisy_stripped(atlas), atlas, unsure,
                                  SMALL).skull_stripped_atlas
    assert not register_to_best_atlas(head, atlas, unsure, SMALL).skull_stripped_atlas


def test_zscored_skull_stripped_input_uses_its_own_brain(atlas):
    """BraTS-style input: z-scored inside the brain, a constant negative background."""
    stripped = sitk.GetArrayFromImage(shrink(atlas.skull_stripped))
    brain = stripped > 0
    zscored = np.full(stripped.shape, -1.7, np.float32)
    zscored[brain] = (stripped[brain] - stripped[brain].mean()) / stripped[brain].std()
    image = sitk.GetImageFromArray(zscored)
    image.CopyInformation(shrink(atlas.skull_stripped))
    prepared = preprocess(image, SMALL)
    assert prepared.skull_stripped and prepared.registration.skull_stripped_atlas
    atlas_only = preprocess(image, PreprocessingConfig(input_shape=(48, 48, 32),
                                                       skull_stripped="no"),
                            allow_poor_registration=True)
    # The scan's own brain, not the atlas mask: no background voxels are inside it.
    assert prepared.brain_mask.sum() != atlas_only.brain_mask.sum()


def test_user_mask_is_the_brain(atlas, head):
    """A user's mask replaces the atlas brain: here, one hemisphere of the real brain."""
    array = (sitk.GetArrayFromImage(shrink(atlas.skull_stripped)) > 0).astype(np.uint8)
    array[:, :, : array.shape[2] // 2] = 0
    mask = sitk.GetImageFromArray(array)
    mask.CopyInformation(head)
    full = preprocess(head, SMALL)
    half = preprocess(head, SMALL, mask=mask)
    assert 0.35 < half.brain_mask.sum() / full.brain_mask.sum() < 0.65
    assert np.all(half.tensor[0][~half.brain_mask] == 0)


@pytest.mark.parametrize("direction", [
    LPS_IDENTITY,
    (-1.0, 0, 0, 0, -1.0, 0, 0, 0, 1.0),  # RAS storage
    tuple(sitk.Euler3DTransform((0, 0, 0), 0.2, 0.1, -0.3).GetMatrix()),  # oblique
], ids=["LPS", "RAS", "oblique"])
def test_maps_go_back_to_the_input_geometry_at_the_right_place(head, direction):
    scan = restore(head, direction)
    prepared = preprocess(scan, SMALL)
    target = np.array([150.0, -100.0, 90.0])  # a world point in the right hemisphere
    grid = prepared.grid
    k, j, i = np.indices(prepared.brain_mask.shape)
    matrix = np.asarray(grid.GetDirection()).reshape(3, 3) @ np.diag(grid.GetSpacing())
    # Grid points are atlas-space points; the registered transform carries them to the scan.
    transform = prepared.registration.transform
    world = np.stack([i, j, k], -1).reshape(-1, 3) @ matrix.T + grid.GetOrigin()
    scan_points = np.array([transform.TransformPoint(p) for p in world[::1]])
    blob = np.exp(-np.sum((scan_points - target) ** 2, axis=1) / (2 * 15.0 ** 2))
    back = prepared.to_input_geometry(blob.reshape(prepared.brain_mask.shape))
    assert back.same_geometry(Volume.from_sitk(scan))
    peak = np.unravel_index(np.argmax(back.array), back.array.shape)[::-1]
    peak_world = back.index_to_world() @ [*peak, 1]
    assert np.linalg.norm(peak_world[:3] - target) < 5.0


@pytest.mark.slow
def test_poor_registration_is_refused_or_warned(head):
    rng = np.random.default_rng(1)
    noise = sitk.GetImageFromArray(rng.random(sitk.GetArrayViewFromImage(head).shape)
                                   .astype(np.float32))
    noise.CopyInformation(head)
    with pytest.raises(RegistrationFailed, match="noise.nii.gz: .*brain MRI"):
        preprocess(noise, SMALL, name="noise.nii.gz")
    prepared = preprocess(noise, SMALL, allow_poor_registration=True)
    assert any("Poor registration" in w for w in prepared.warnings)


@pytest.mark.slow
def test_bias_correction_flattens_a_smooth_bias_field(atlas, head):
    shape = sitk.GetArrayViewFromImage(head).shape
    z = np.linspace(-1, 1, shape[0])[:, None, None]
    bias = np.exp(0.4 * z) * np.ones(shape)
    array = sitk.GetArrayFromImage(head).astype(np.float32)
    biased = sitk.GetImageFromArray((array * bias).astype(np.float32))
    biased.CopyInformation(head)
    corrected = sitk.GetArrayFromImage(bias_correct(biased))
    brain = sitk.GetArrayFromImage(shrink(atlas.skull_stripped)) > 0
    spread_before = np.log(bias[brain]).std()
    spread_after = (np.log(corrected[brain]) - np.log(array[brain])).std()
    # measured: 0.148 -> 0.082 (N4 with an Otsu head mask, 3 levels, on 4 mm voxels)
    assert spread_after < 0.65 * spread_before


@pytest.mark.parametrize("kwargs", [{"skull_stripped": "maybe"}, {"input_shape": (100, 128, 128)}])
def test_invalid_configuration_is_refused(kwargs):
    with pytest.raises(ValueError):
        PreprocessingConfig(**kwargs)


def test_lesion_in_the_scan_is_at_the_same_place_on_the_grid(head):
    """A bright ball in the scan shows up on the network grid where the atlas says."""
    centre = (150.0, -100.0, 90.0)
    scan = plant_lesion(head, centre, 12.0, 3000.0)
    prepared = preprocess(scan, SMALL)
    peak = np.unravel_index(np.argmax(prepared.tensor[0]), prepared.tensor[0].shape)[::-1]
    grid = prepared.grid
    grid_world = grid.TransformContinuousIndexToPhysicalPoint([float(p) for p in peak])
    scan_world = prepared.registration.transform.TransformPoint(grid_world)
    assert np.linalg.norm(np.subtract(scan_world, centre)) < 12.0


def test_label_maps_are_refused_but_an_8_bit_scan_is_not(head):
    labels = sitk.GetArrayFromImage(head) > 500
    label_map = sitk.GetImageFromArray((labels * 1 + (labels & (np.indices(labels.shape)[0] > 40))
                                        * 2).astype(np.uint8))
    label_map.CopyInformation(head)
    with pytest.raises(InputError, match="3 distinct intensities - a label map"):
        preprocess(label_map, name="labels.nii.gz")
    array = sitk.GetArrayFromImage(head).astype(np.float64)
    eight_bit = sitk.GetImageFromArray(np.round(255 * array / array.max()).astype(np.uint8))
    eight_bit.CopyInformation(head)
    assert preprocess(eight_bit).registration.ok
