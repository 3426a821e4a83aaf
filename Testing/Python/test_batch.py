import csv

import pytest
from conftest import plant_lesion

from TumorClassifierLib.batch import classify_cases
from TumorClassifierLib.inference import Classifier
from TumorClassifierLib.manifest import Case
from TumorClassifierLib.volume import write_volume


@pytest.fixture(scope="module")
def cases(head, tmp_path_factory):
    folder = tmp_path_factory.mktemp("batch")
    made = []
    for index, centre in enumerate([(150.0, -100.0, 90.0), (80.0, -120.0, 100.0)]):
        path = write_volume(plant_lesion(head, centre, 10.0, 3000.0), folder / f"c{index}.nii.gz")
        made.append(Case(f"c{index}", path))
    made.insert(1, Case("broken", folder / "absent.nii.gz"))
    made.append(Case("plain", write_volume(head, folder / "plain.nrrd")))
    return made


def _rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _comparable(rows):
    probabilities = [{k: v for k, v in row.items() if k.startswith("p_")} for row in rows]
    return [(row["case"], row["status"], row["predicted_class"]) for row in rows], probabilities


@pytest.mark.slow
@pytest.mark.parametrize("prefetch", [1, 3])
def test_prefetching_gives_the_sequential_results_in_order(cases, tiny_bundle, tmp_path,
                                                           prefetch):
    classifier = Classifier.from_bundle(tiny_bundle, device="cpu")
    sequential = classify_cases(classifier, cases, tmp_path / "seq", overlay=False,
                                show_progress=False, echo=False, prefetch=0)
    ahead = classify_cases(classifier, cases, tmp_path / "ahead", overlay=False,
                           show_progress=False, echo=False, prefetch=prefetch)
    assert (sequential.failures, ahead.failures) == (1, 1)
    assert _comparable(_rows(sequential.table)) == _comparable(_rows(ahead.table))
    assert [row["case"] for row in _rows(ahead.table)] == ["c0", "broken", "c1", "plain"]


@pytest.mark.slow
def test_a_failed_write_is_an_error_row_in_order(cases, tiny_bundle, tmp_path, monkeypatch):
    """A case whose outputs cannot be written gets its error row in its place, without its
    files, and the others go on (here with two scans prepared ahead); with --debug the error
    surfaces."""
    import TumorClassifierLib.outputs as outputs
    from TumorClassifierLib.errors import InputError
    real_write = outputs.write_case_outputs

    def failing_for_c1(result, case, out, **options):
        if case.name == "c1":
            raise InputError(f"{out}: disk full (simulated)")
        return real_write(result, case, out, **options)
    monkeypatch.setattr(outputs, "write_case_outputs", failing_for_c1)
    classifier = Classifier.from_bundle(tiny_bundle, device="cpu")
    summary = classify_cases(classifier, cases, tmp_path / "out", overlay=False,
                             show_progress=False, echo=False, prefetch=2)
    rows = _rows(summary.table)
    assert [(r["case"], r["status"]) for r in rows] == [
        ("c0", "ok"), ("broken", "error"), ("c1", "error"), ("plain", "ok")]
    assert "disk full" in rows[2]["error"] and summary.failures == 2
    assert not (tmp_path / "out" / "c1_probabilities.json").exists()
    with pytest.raises(InputError, match="disk full"):  # --debug: the first error surfaces
        classify_cases(classifier, cases[2:3], tmp_path / "debug", overlay=False,
                       show_progress=False, echo=False, prefetch=1, debug=True)
