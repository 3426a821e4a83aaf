"""The same anatomy, however it is stored, gets the same answer from the bundled default model
(same class, probabilities within 0.05, heatmap peaks within 10 mm): storage orders, intensity
scale and shift, and a thick-slice resampling of each bundled sample scan."""

import numpy as np
import pytest
import SimpleITK as sitk

from TumorClassifierLib.heatmap_peak import peak_world
from TumorClassifierLib.inference import Classifier
from TumorClassifierLib.manifest import read_manifest
from TumorClassifierLib.resources import sample_data_dir
from TumorClassifierLib.volume import read_sitk_image

SAMPLES = read_manifest(sample_data_dir() / "manifest.csv")
PROBABILITY_TOLERANCE = 0.05
PEAK_TOLERANCE_MM = 10.0


@pytest.fixture(scope="module")
def classifier():
    return Classifier.from_bundle(None, device="cpu")


def resampled(image: sitk.Image, spacing) -> sitk.Image:
    """The same physical box on a grid of `spacing` (linear), as a scanner's other protocol."""
    size = [max(1, int(round(n * s / t))) for n, s, t in zip(image.GetSize(), image.GetSpacing(),
                                                             spacing)]
    reference = sitk.Image(size, sitk.sitkFloat32)
    reference.SetSpacing(spacing)
    reference.SetDirection(image.GetDirection())
    corner = np.asarray(image.TransformContinuousIndexToPhysicalPoint([-0.5] * 3))
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    reference.SetOrigin(tuple(corner + direction @ (np.asarray(spacing) / 2)))
    return sitk.Resample(image, reference, sitk.Transform(), sitk.sitkLinear, 0.0)


def storage_variants(image: sitk.Image) -> dict[str, sitk.Image]:
    """The same voxels, other storage orders or intensity units."""
    floating = sitk.Cast(image, sitk.sitkFloat32)
    made = {f"stored {code}": sitk.DICOMOrient(image, code) for code in ("RAS", "LPS", "LAS",
                                                                          "PIR")}
    made["intensity x1000"] = floating * 1000.0
    made["intensity + 500"] = floating + 500.0
    return made


def assert_same_answer(classifier, image, variants: dict) -> None:
    reference = classifier.classify(image)
    reference_peak = peak_world(reference.heatmap)
    for name, variant in variants.items():
        result = classifier.classify(variant)
        difference = max(abs(result.probabilities[c] - reference.probabilities[c])
                         for c in reference.probabilities)
        distance = float(np.linalg.norm(peak_world(result.heatmap) - reference_peak))
        assert result.predicted_class == reference.predicted_class, name
        assert difference <= PROBABILITY_TOLERANCE, f"{name}: probabilities differ by " \
            f"{difference:.3f}"
        assert distance <= PEAK_TOLERANCE_MM, f"{name}: heatmap peak moved {distance:.1f} mm"


@pytest.mark.parametrize("case", SAMPLES, ids=[case.label for case in SAMPLES])
def test_same_answer_however_the_scan_is_stored(classifier, case):
    image = read_sitk_image(case.path)
    assert_same_answer(classifier, image, storage_variants(image))


# The 128^3 default missed HGG (probabilities differ by 0.153) and HEALTHY (0.150); the 64^3
# synthetic-trained default passes HGG and still misses HEALTHY. strict: a model that passes
# makes this fail, so the mark comes off when a better default ships.
THICK_SLICE_MISSES = {"HEALTHY": "probabilities differ by 0.151"}


@pytest.mark.parametrize("case", [
    pytest.param(case, marks=pytest.mark.xfail(strict=True, reason=THICK_SLICE_MISSES[
        case.label])) if case.label in THICK_SLICE_MISSES else case for case in SAMPLES],
    ids=[case.label for case in SAMPLES])
def test_same_answer_after_resampling_to_thick_slices(classifier, case):
    image = read_sitk_image(case.path)
    assert_same_answer(classifier, image,
                       {"resampled to 0.9x0.9x3 mm": resampled(image, (0.9, 0.9, 3.0))})
