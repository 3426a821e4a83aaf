from collections import Counter
from pathlib import Path

import pytest

from TumorClassifierLib.errors import InputError
from TumorClassifierLib.manifest import Case
from TumorClassifierLib.training.folds import assign_folds


def cohort(seed=0):
    """120 scans of 70 patients: some patients have two or three scans."""
    cases = []
    for label_index, label in enumerate(["HGG", "LGG", "METS", "HEALTHY"]):
        for patient in range(10 + 5 * label_index):
            scans = 1 + (patient % 3 == 0) + (patient % 5 == 0)
            for scan in range(scans):
                name = f"{label}_{patient}_{scan}"
                cases.append(Case(name, Path(name), label, f"{label}_{patient}"))
    return cases


def test_no_patient_in_two_folds_and_classes_spread_evenly():
    cases = cohort()
    folds = assign_folds(cases, 4, seed=3)
    by_patient = {}
    for case, fold in zip(cases, folds):
        assert by_patient.setdefault(case.patient_id, fold) == fold
    for label in {c.label for c in cases}:
        counts = Counter(f for c, f in zip(cases, folds) if c.label == label)
        assert max(counts.values()) - min(counts.values()) <= 3  # at most one patient's scans
        assert len(counts) == 4


def test_same_seed_same_folds():
    assert assign_folds(cohort(), 5, seed=1) == assign_folds(cohort(), 5, seed=1)


def test_a_manifests_own_folds_are_kept_and_checked():
    cases = [Case("a", Path("a"), "HGG", "p1", fold="1"), Case("b", Path("b"), "LGG", "p2",
                                                               fold="0")]
    assert assign_folds(cases, 2) == [1, 0]
    split = [Case("a", Path("a"), "HGG", "p1", fold="1"), Case("b", Path("b"), "HGG", "p1",
                                                               fold="0")]
    with pytest.raises(InputError, match="appears in folds"):
        assign_folds(split, 2)
    with pytest.raises(InputError, match="0..1"):
        assign_folds([Case("a", Path("a"), "HGG", "p1", fold="5")], 2)


def test_no_cases_is_a_clear_error():
    with pytest.raises(InputError, match="no cases"):
        assign_folds([], 8)
