"""Classify many cases: outputs per case, one results-table row per case as it finishes, a bad
case recorded while the others go on, finished cases skipped on a re-run."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .batch import Case, ResultsTable
from .classes import canonical_code
from .errors import InputError


@dataclass(frozen=True)
class BatchSummary:
    table: Path
    attempted: int
    skipped: int
    failures: int
    internal_errors: int


def classify_cases(classifier, cases: list[Case], out: str | Path, cam_class=None,
                   force: bool = False, overlay: bool = True, results_csv: str | Path | None = None,
                   debug: bool = False, show_progress: bool = True, echo=True) -> BatchSummary:
    """Classify `cases` into `out`; the results table is `results_csv` (default
    out/results.csv). `debug` re-raises the first error instead of recording it."""
    from tqdm import tqdm

    from .outputs import result_row, results_columns, write_case_outputs
    if cam_class:  # an option error: report it once, before any case runs
        canonical_code(cam_class, classifier.metadata.class_codes)
    out = Path(out)
    table = ResultsTable(Path(results_csv) if results_csv else out / "results.csv",
                         results_columns(classifier.metadata.class_codes))
    done = table.finished_cases()
    todo = [case for case in cases if case.name not in done]
    failures = internal = 0
    bar = tqdm(todo, unit="scan", disable=not show_progress or len(todo) < 2, file=sys.stderr)
    for case in bar:
        bar.set_postfix_str(case.name)
        start = time.perf_counter()
        try:
            result = classifier.classify(case.path, cam_class=cam_class, mask=case.brain_mask,
                                         allow_poor_registration=force)
            files = write_case_outputs(result, case, out, overlay=overlay)
            if echo:
                tqdm.write(result.table())
            table.append(result_row(case, result, files, time.perf_counter() - start))
        except Exception as error:  # one bad case must not stop the batch
            user_error = isinstance(error, InputError)
            if debug or (not user_error and len(cases) == 1):
                raise
            failures += 1
            internal += not user_error
            message = str(error) if user_error else f"internal error: {error!r}"
            tqdm.write(f"error: {message}", file=sys.stderr)
            table.append({"case": case.name, "source": str(case.path), "status": "error",
                          "error": message, "seconds": round(time.perf_counter() - start, 3)})
    return BatchSummary(table.path, len(todo), len(cases) - len(todo), failures, internal)
