import dataclasses
import json

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from conftest import plant_lesion, restore

from TumorClassifierLib.classes import CLASS_CODES
from TumorClassifierLib.errors import InputError
from TumorClassifierLib.inference import HEATMAP_LEVELS, Classifier, quantised_unit_map
from TumorClassifierLib.volume import Volume, write_volume

LESION_CENTRE = (150.0, -100.0, 90.0)


@pytest.fixture(scope="module")
def classifier(tiny_bundle):
    return Classifier.from_bundle(tiny_bundle, device="cpu")


@pytest.fixture(scope="module")
def scan(head):
    return plant_lesion(head, LESION_CENTRE, 12.0, 3000.0)


def test_result_has_seven_probabilities_summing_to_one(classifier, scan):
    result = classifier.classify(scan)
    assert list(result.probabilities) == list(CLASS_CODES)
    assert abs(sum(result.probabilities.values()) - 1) < 1e-9
    assert result.predicted_class == max(result.probabilities, key=result.probabilities.get)
    assert result.cam_class == result.predicted_class
    assert set(result.timings) >= {"read", "registration", "resampling",
                                   "forward", "gradcam", "heatmap_to_input"}
    assert result.registration["ok"] and result.device == "cpu"
    json.dumps(result.to_dict())  # JSON-ready
    assert all(code in result.table() for code in CLASS_CODES)


@pytest.mark.parametrize("direction", [
    (1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0),
    (-1.0, 0, 0, 0, -1.0, 0, 0, 0, 1.0),
    tuple(sitk.Euler3DTransform((0, 0, 0), 0.3, -0.2, 0.1).GetMatrix()),
], ids=["LPS", "RAS", "oblique"])
def test_heatmap_has_the_input_geometry(classifier, scan, direction):
    stored = restore(scan, direction)
    result = classifier.classify(stored)
    assert result.heatmap.same_geometry(Volume.from_sitk(stored), atol=1e-9)
    assert result.heatmap.array.dtype == np.float32
    assert result.heatmap.array.min() >= 0 and result.heatmap.array.max() == pytest.approx(1)


def test_repeat_runs_on_cpu_are_bit_identical(classifier, scan):
    first, second = classifier.classify(scan), classifier.classify(scan)
    assert first.probabilities == second.probabilities
    np.testing.assert_array_equal(first.heatmap.array, second.heatmap.array)


def test_file_and_volume_inputs_agree(classifier, scan, tmp_path):
    path = write_volume(scan, tmp_path / "scan.nii.gz")
    from_file = classifier.classify(path)
    from_volume = classifier.classify(Volume.from_sitk(scan))
    assert from_file.source == "scan.nii.gz"
    assert from_file.probabilities == pytest.approx(from_volume.probabilities, abs=1e-6)


@pytest.mark.slow
def test_chosen_cam_class(classifier, scan):
    result = classifier.classify(scan, cam_class="men")  # an alias of MENINGIOMA
    assert result.cam_class == "MENINGIOMA"
    with pytest.raises(ValueError, match="unknown class"):
        classifier.classify(scan, cam_class="banana")


@pytest.mark.slow
def test_float32_and_bfloat16_agree(tiny_bundle, scan):
    fp32 = Classifier.from_bundle(tiny_bundle, device="cpu", precision="float32").classify(
        scan, cam_class="HGG")
    bf16 = Classifier.from_bundle(tiny_bundle, device="cpu", precision="bfloat16").classify(
        scan, cam_class="HGG")
    assert fp32.precision == "float32" and bf16.precision == "bfloat16"
    for code in CLASS_CODES:
        assert abs(fp32.probabilities[code] - bf16.probabilities[code]) < 0.02
    assert np.abs(fp32.heatmap.array - bf16.heatmap.array).max() < 0.05  # the same map


def test_out_of_gpu_memory_retries_on_the_cpu(tiny_bundle, scan, monkeypatch):
    classifier = Classifier.from_bundle(tiny_bundle, device="cpu")
    classifier.device = torch.device("cuda")  # pretend; the first forward "runs out"
    real_forward = classifier._forward
    calls = []

    def forward(tensor, cam_index, device, tta):
        calls.append(device.type)
        if device.type == "cuda":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return real_forward(tensor, cam_index, device, tta)

    monkeypatch.setattr(classifier, "_forward", forward)
    result = classifier.classify(scan)
    assert calls == ["cuda", "cpu"] and result.device == "cpu"
    assert any("Out of GPU memory" in w for w in result.warnings)


@pytest.mark.parametrize("device", ["tpu", "cuda:banana", "gpu"])
def test_unknown_device_is_a_clear_error(tiny_bundle, device):
    with pytest.raises(InputError, match="device"):
        Classifier.from_bundle(tiny_bundle, device=device)


def test_cuda_requested_without_a_gpu_is_a_clear_error(tiny_bundle):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU, so asking for one is not an error")
    with pytest.raises(InputError, match="no CUDA GPU"):
        Classifier.from_bundle(tiny_bundle, device="cuda")


def test_progress_reports_stages_and_cancel_stops_cleanly(classifier, scan):
    import threading

    from TumorClassifierLib.errors import Cancelled
    stages = []
    classifier.classify(scan, progress=lambda name, fraction: stages.append((name, fraction)))
    fractions = [f for _, f in stages]
    assert stages[0][0] == "preparing" and stages[-1] == ("done", 1.0)
    assert fractions == sorted(fractions) and "registering" in dict(stages)
    cancel = threading.Event()

    def cancel_at_registration(name, fraction):
        if name == "registering":
            cancel.set()

    with pytest.raises(Cancelled, match="cancelled while classifying"):
        classifier.classify(scan, progress=cancel_at_registration, cancel=cancel)


def test_quantised_heatmap_is_the_exact_one_within_half_a_step():
    rng = np.random.default_rng(0)
    raw = (rng.random((9, 10, 11)) * 0.8).astype(np.float32)
    quantised = quantised_unit_map(raw)
    np.testing.assert_allclose(quantised, raw / raw.max(), atol=0.5 / HEATMAP_LEVELS + 1e-7)
    assert quantised.max() == 1 and quantised.dtype == np.float32
    np.testing.assert_array_equal(quantised * HEATMAP_LEVELS,
                                  np.round(quantised * HEATMAP_LEVELS))
    assert not quantised_unit_map(np.zeros((2, 2, 2), np.float32)).any()


@pytest.mark.slow
def test_test_time_augmentation_averages_the_eight_flipped_passes(classifier, scan):
    from TumorClassifierLib.inference import flip_combinations
    plain = classifier.classify(scan, cam_class="METS")
    augmented = classifier.classify(scan, cam_class="METS", tta=True)
    assert (plain.augmentations, augmented.augmentations) == (1, 8)
    # By hand: the mean of the softmax over every flip of the prepared input.
    prepared = classifier.prepare(scan)
    batch = torch.from_numpy(prepared.scan.tensor)[None]
    network = classifier.bundle.network
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16,
                                         enabled=augmented.precision == "bfloat16"):
        expected = torch.stack([torch.softmax(network(torch.flip(batch, axes))[0].double(), 0)
                                for axes in flip_combinations((0, 1, 2))]).mean(0).numpy()
    # 1e-4: in the unflipped pass the explained level and those after it run in float32
    np.testing.assert_allclose(list(augmented.probabilities.values()), expected, atol=1e-4)
    assert abs(sum(augmented.probabilities.values()) - 1) < 1e-9
    np.testing.assert_array_equal(plain.heatmap.array, augmented.heatmap.array)  # unflipped
    assert augmented.to_dict()["augmentations"] == 8 and "tta" in augmented.timings


def test_entropy_spans_zero_to_one(classifier, scan):
    result = classifier.classify(scan)
    assert 0 <= result.entropy <= 1
    certain = dataclasses.replace(result, probabilities={c: float(c == "HGG") for c in CLASS_CODES})
    uniform = dataclasses.replace(result, probabilities={c: 1 / 7 for c in CLASS_CODES})
    assert certain.entropy == 0 and uniform.entropy == pytest.approx(1)
    assert "entropy" in result.table() and result.to_dict()["entropy"] == result.entropy


@pytest.mark.slow
def test_heatmap_stays_near_the_brain(classifier, scan):
    from TumorClassifierLib.inference import near_brain
    result = classifier.classify(scan)
    prepared = classifier.prepare(scan).scan
    shown = near_brain(prepared)
    assert shown[prepared.brain_mask].all() and shown.sum() > prepared.brain_mask.sum()
    allowed = prepared.to_input_geometry(shown.astype(np.float32)).array > 0
    assert result.heatmap.array[allowed].max() == 1
    assert not result.heatmap.array[~allowed].any()


def test_flip_combinations_start_unflipped_and_cover_every_subset():
    from TumorClassifierLib.inference import flip_combinations
    assert flip_combinations((2,)) == ((), (4,))
    assert flip_combinations((0, 1, 2)) == ((), (2,), (3,), (4,), (2, 3), (2, 4), (3, 4),
                                            (2, 3, 4))


def with_inference(classifier, **settings):
    """The same network under other inference settings of its bundle."""
    from TumorClassifierLib.bundle import ModelBundle
    from TumorClassifierLib.inference import Classifier
    metadata = dataclasses.replace(classifier.metadata, inference=dataclasses.replace(
        classifier.metadata.inference, **settings))
    return Classifier(ModelBundle(classifier.bundle.network, metadata), device="cpu")


def test_temperature_softens_and_trained_flips_set_the_passes(classifier, scan):
    tensor = classifier.prepare(scan).scan.tensor
    plain = classifier.explain(tensor)
    warm = with_inference(classifier, temperature=3.0).explain(tensor)
    logits = np.log(plain.probabilities)  # up to a constant, which softmax ignores
    expected = np.exp(logits / 3) / np.exp(logits / 3).sum()
    np.testing.assert_allclose(warm.probabilities, expected, atol=2e-3)
    assert warm.probabilities.max() < plain.probabilities.max()
    left_right = with_inference(classifier, tta_flip_axes=(2,)).explain(tensor, tta=True)
    assert left_right.augmentations == 2 and plain.augmentations == 1


def test_a_scan_far_from_the_training_features_gets_a_warning(classifier, scan):
    tensor = classifier.prepare(scan).scan.tensor
    assert classifier.explain(tensor).feature_distance is None  # no reference in this bundle
    features = 2 ** (classifier.metadata.network.depth - 1) * classifier.metadata.network \
        .base_filters
    near = with_inference(classifier, feature_mean=(0.0,) * features,
                          feature_spread=(1e3,) * features, feature_distance_limit=1.0)
    far = with_inference(classifier, feature_mean=(50.0,) * features,
                         feature_spread=(1.0,) * features, feature_distance_limit=1.0)
    assert near.explain(tensor).feature_distance < 1.0
    assert not any("Unlike the scans" in w for w in near.classify(scan).warnings)
    assert far.explain(tensor).feature_distance > 1.0
    assert any("Unlike the scans this model was trained on" in w
               for w in far.classify(scan).warnings)
