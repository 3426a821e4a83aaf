"""The classifier that loads its model while the first scans register gives what a loaded one
gives, and reports a bad bundle as the plain loader does."""

import json

import numpy as np
import pytest

from TumorClassifierLib.background_loading import BackgroundLoadingClassifier
from TumorClassifierLib.batch import classify_cases
from TumorClassifierLib.errors import InputError
from TumorClassifierLib.inference import Classifier
from TumorClassifierLib.manifest import cases_from_paths
from TumorClassifierLib.volume import write_volume


def test_same_results_as_a_loaded_classifier(head, tiny_bundle, tmp_path):
    scan = write_volume(head, tmp_path / "head.nii.gz")
    cases = cases_from_paths([scan])
    loaded = Classifier.from_bundle(tiny_bundle, device="cpu")
    background = BackgroundLoadingClassifier(tiny_bundle, device="cpu")
    assert background.prepare(scan).scan.tensor.shape == loaded.prepare(scan).scan.tensor.shape
    for name, classifier in (("loaded", loaded), ("background", background)):
        classify_cases(classifier, cases, tmp_path / name, overlay=False, echo=False,
                       show_progress=False)
    records = [json.loads((tmp_path / name / "head_probabilities.json").read_text())
               for name in ("loaded", "background")]
    assert records[0]["probabilities"] == records[1]["probabilities"]
    assert np.isclose(sum(records[1]["probabilities"].values()), 1.0)


def test_a_missing_bundle_is_reported_at_once(tmp_path):
    with pytest.raises(InputError, match="no such model bundle"):
        BackgroundLoadingClassifier(tmp_path / "nothing-here")


def test_damaged_weights_are_reported_when_the_model_is_needed(tiny_bundle, tmp_path):
    import shutil
    damaged = shutil.copytree(tiny_bundle, tmp_path / "damaged")
    weights = damaged / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    classifier = BackgroundLoadingClassifier(damaged, device="cpu")
    with pytest.raises(InputError, match="do not match the sha256"):
        classifier.loaded  # noqa: B018  (the property waits for the model)
