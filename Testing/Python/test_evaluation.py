import json

import numpy as np
import pytest

from TumorClassifierLib.evaluation.evaluator import evaluate
from TumorClassifierLib.evaluation.metrics import (
    classification_metrics,
    precision_recall_curve,
    roc_curve,
)
from TumorClassifierLib.inference import Classifier
from TumorClassifierLib.manifest import read_manifest

LABELS = np.array([0, 0, 1, 1, 2, 2])
PROBABILITIES = np.array([[.8, .1, .1], [.4, .5, .1], [.2, .7, .1], [.1, .8, .1],
                          [.1, .2, .7], [.5, .2, .3]])


def test_metrics_match_hand_computed_values():
    m = classification_metrics(LABELS, PROBABILITIES, ("A", "B", "C"))
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    a, b, c = (m["per_class"][k] for k in "ABC")
    # A: TP 1, FN 1, FP 1 (case 6), TN 3
    assert (a["sensitivity"], a["specificity"], a["ppv"], a["npv"]) == pytest.approx(
        (0.5, 0.75, 0.5, 0.75))
    # B: TP 2, FP 1 (case 2), TN 3, FN 0
    assert (b["sensitivity"], b["ppv"], b["npv"], b["f1"]) == pytest.approx(
        (1.0, 2 / 3, 1.0, 0.8), abs=1e-6)
    # A's ranking: .8(+) .5(-) .4(+) .2 .1 .1 -> 7 of 8 pairs in order; AP = (1 + 2/3) / 2
    assert a["roc_auc"] == pytest.approx(7 / 8)
    assert a["auprc"] == pytest.approx(5 / 6)
    assert c["specificity"] == 1.0 and c["support"] == 2
    assert m["confusion_matrix_normalised"][2] == [0.5, 0.0, 0.5]


def test_curves_start_and_end_where_they_should():
    fpr, tpr = roc_curve(PROBABILITIES[:, 0], LABELS == 0)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    recall, precision = precision_recall_curve(PROBABILITIES[:, 0], LABELS == 0)
    assert recall[-1] == 1 and precision[0] == 1


def test_absent_class_gets_no_auc():
    m = classification_metrics(np.array([0, 0]), np.array([[.9, .1], [.6, .4]]), ("A", "B"))
    assert m["per_class"]["B"]["roc_auc"] is None and m["per_class"]["B"]["sensitivity"] is None


@pytest.mark.slow
def test_evaluate_writes_metrics_figures_and_report(phantom_cohort, tiny_bundle, tmp_path):
    cases = read_manifest(phantom_cohort)
    classifier = Classifier.from_bundle(tiny_bundle, device="cpu")
    metrics = evaluate(classifier, cases, tmp_path / "report", progress=False)
    assert metrics["cases"] == len(cases)
    on_disk = json.loads((tmp_path / "report" / "metrics.json").read_text(encoding="utf-8"))
    assert on_disk["confusion_matrix"] == metrics["confusion_matrix"]
    tumours = on_disk["grad_cam"]["all_tumours"]
    assert tumours["cases"] == 3  # HEALTHY has no lesion
    for name in ("confusion_matrix.png", "roc_curves.png", "precision_recall_curves.png",
                 "probability_dispersion.png", "report.html"):
        assert (tmp_path / "report" / name).stat().st_size > 1000
    html = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert "data:image/png;base64" in html and "Accuracy" in html
    # A re-run reads the finished cases back instead of classifying them again.
    again = evaluate(classifier, cases, tmp_path / "report", progress=False)
    assert again["confusion_matrix"] == metrics["confusion_matrix"]
    table = (tmp_path / "report" / "cases.csv").read_text(encoding="utf-8")
    assert len(table.splitlines()) == len(cases) + 1


def test_attention_metrics_by_hand():
    from TumorClassifierLib.evaluation.metrics import attention_metrics
    rows = [{"label": "HGG", "cam_in_lesion": 0.5, "cam_peak_in_lesion": 1,
             "cam_peak_distance_mm": 0.0},
            {"label": "HGG", "cam_in_lesion": 0.1, "cam_peak_in_lesion": 0,
             "cam_peak_distance_mm": 20.0},
            {"label": "METS", "cam_in_lesion": 0.2, "cam_peak_in_lesion": 0,
             "cam_peak_distance_mm": 10.0},
            {"label": "HEALTHY", "cam_in_lesion": None, "cam_peak_in_lesion": None,
             "cam_peak_distance_mm": None}]
    result = attention_metrics(rows, ("HGG", "METS", "HEALTHY"))
    assert set(result) == {"HGG", "METS", "all_tumours"}
    assert result["HGG"]["mean_heatmap_fraction_in_lesion"] == pytest.approx(0.3)
    assert result["HGG"]["peak_in_lesion_rate"] == 0.5
    assert result["all_tumours"]["median_peak_distance_mm"] == 10.0
    assert result["all_tumours"]["peak_within_15mm_rate"] == pytest.approx(2 / 3)


@pytest.mark.slow
def test_evaluation_is_the_batch_engine_with_label_and_lesion_columns(phantom_cohort, tiny_bundle,
                                                                      tmp_path, monkeypatch):
    """One failing case (a bug, not a user error) is an error row like in a batch, the others
    are measured, and the row schema is the batch's plus evaluation's columns."""
    from TumorClassifierLib.batch import classify_cases  # noqa: F401  (the engine under test)
    from TumorClassifierLib.results_table import columns as results_columns
    cases = read_manifest(phantom_cohort)
    classifier = Classifier.from_bundle(tiny_bundle, device="cpu")
    original = classifier.classify_prepared
    first_name = classifier.prepare(cases[0].path).name

    def failing_on_first(prepared, **options):
        if prepared.name == first_name:
            raise RuntimeError("a bug in the network")
        return original(prepared, **options)
    monkeypatch.setattr(classifier, "classify_prepared", failing_on_first)
    metrics = evaluate(classifier, cases, tmp_path / "report", progress=False, prefetch=0)
    assert metrics["cases"] == len(cases) - 1
    assert [f["case"] for f in metrics["failed_cases"]] == [cases[0].name]
    assert "internal error" in metrics["failed_cases"][0]["error"]
    header = (tmp_path / "report" / "cases.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.split(",")[:len(results_columns(classifier.metadata.class_codes))] == \
        results_columns(classifier.metadata.class_codes)
    assert header.split(",")[-5:] == ["label", "correct", "cam_in_lesion", "cam_peak_in_lesion",
                                      "cam_peak_distance_mm"]
    assert (tmp_path / "report" / "cases" / f"{cases[1].name}_heatmap.nii.gz").is_file()


def test_calibration_metrics_by_hand():
    from TumorClassifierLib.evaluation.metrics import calibration_metrics
    # Confidences 0.8 (right), 0.5 (wrong), 0.7 (right), 0.8 (right), 0.7 (right), 0.5 (wrong)
    m = calibration_metrics(LABELS, PROBABILITIES, bins=10)
    filled = {round(b["lower"], 1): b for b in m["bins"] if b["cases"]}
    assert sorted(filled) == [0.4, 0.6, 0.7]
    assert filled[0.4]["accuracy"] == 0 and filled[0.4]["confidence"] == pytest.approx(0.5)
    assert filled[0.7]["accuracy"] == 1 and filled[0.7]["confidence"] == pytest.approx(0.8)
    # |0 - 0.5| * 2/6 + |1 - 0.7| * 2/6 + |1 - 0.8| * 2/6
    assert m["expected_calibration_error"] == pytest.approx((0.5 + 0.3 + 0.2) * 2 / 6)
    assert m["wrong_at_0.9_or_above"] == 0 and m["highest_wrong_confidence"] == 0.5


@pytest.mark.slow
def test_evaluate_synthetic_heads_reports_accuracy_heatmap_and_calibration(tmp_path):
    from TumorClassifierLib.bundle import save_bundle
    from TumorClassifierLib.evaluation.synthetic import evaluate_synthetic
    from TumorClassifierLib.model_metadata import ModelMetadata
    from TumorClassifierLib.network import NetworkConfig, TumorClassifierNet
    from TumorClassifierLib.settings import PreprocessingConfig
    config = NetworkConfig(base_filters=2, depth=3)
    metadata = ModelMetadata(name="tiny-32", network=config,
                             preprocessing=PreprocessingConfig(input_shape=(32, 32, 32)))
    bundle = save_bundle(TumorClassifierNet(config), metadata, tmp_path / "model")
    classifier = Classifier.from_bundle(bundle, device="cpu", precision="float32")
    metrics = evaluate_synthetic(classifier, tmp_path / "report", ("sdf",), 1, seed=5,
                                 progress=False)
    assert metrics["cases"] == 7 and metrics["data"]["synthetic_families"] == ["sdf"]
    # Every tumour whose lesion survives the 7.5 mm grid (a 3 mm schwannoma may not)
    assert 4 <= metrics["grad_cam"]["all_tumours"]["cases"] <= 6
    assert 0 <= metrics["calibration"]["expected_calibration_error"] <= 1
    for name in ("report.html", "metrics.json", "cases.csv", "reliability_diagram.png"):
        assert (tmp_path / "report" / name).is_file()
    assert "expected calibration error" in (tmp_path / "report" / "report.html").read_text()
