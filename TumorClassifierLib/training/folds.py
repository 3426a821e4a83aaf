"""k-fold cross-validation folds, stratified by class and grouped by patient.

The paper split by session, so 97 subjects had scans on both sides of a split; here every scan
of a patient lands in the same fold. A manifest's own `fold` column, where given, is kept.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from ..errors import InputError
from ..manifest import Case


def assign_folds(cases: list[Case], folds: int, seed: int = 0) -> list[int]:
    """Fold index (0..folds-1) for each case."""
    if folds < 2:
        raise InputError(f"folds must be at least 2, not {folds}")
    if not cases:
        raise InputError("there are no cases to split into folds")
    given = [case.fold for case in cases]
    if all(given):
        try:
            numbers = [int(f) for f in given]
        except ValueError:
            raise InputError(f"the manifest's fold column must hold whole numbers 0..{folds - 1}"
                             ) from None
        return _check_given(numbers, cases, folds)
    if any(given):
        raise InputError("the manifest's fold column is filled for some cases only")

    patients: dict[str, list[int]] = defaultdict(list)
    for index, case in enumerate(cases):
        patients[case.patient_id or case.name].append(index)
    # A patient's class for stratification: the most common label among their scans.
    by_class: dict[str, list[str]] = defaultdict(list)
    for patient, indices in patients.items():
        label = Counter(cases[i].label for i in indices).most_common(1)[0][0]
        by_class[label].append(patient)

    rng = np.random.default_rng(seed)
    class_counts = np.zeros((len(by_class), folds))
    totals = np.zeros(folds)
    assignment = [0] * len(cases)
    for row, label in enumerate(sorted(by_class)):
        group = sorted(by_class[label])
        rng.shuffle(group)
        group.sort(key=lambda p: -len(patients[p]))  # big patients first: balance better
        for patient in group:
            # The fold with the fewest scans of this class so far; ties: fewest overall.
            fold = min(range(folds), key=lambda f: (class_counts[row, f], totals[f], f))
            size = len(patients[patient])
            class_counts[row, fold] += size
            totals[fold] += size
            for index in patients[patient]:
                assignment[index] = fold
    return assignment


def _check_given(given: list[int], cases: list[Case], folds: int) -> list[int]:
    if min(given) < 0 or max(given) >= folds:
        raise InputError(f"the manifest's fold column must hold 0..{folds - 1}")
    seen: dict[str, int] = {}
    for fold, case in zip(given, cases):
        patient = case.patient_id or case.name
        if seen.setdefault(patient, fold) != fold:
            raise InputError(f"patient {patient!r} appears in folds {seen[patient]} and {fold}")
    return given
