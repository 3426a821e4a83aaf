import csv

import pytest

from TumorClassifierLib.batch import Case
from TumorClassifierLib.batch_runner import classify_cases
from TumorClassifierLib.inference import Classifier
from TumorClassifierLib.volume import write_volume
from conftest import plant_lesion


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
