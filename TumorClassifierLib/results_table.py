"""The results table, owned here: one row per classified case, appended as each case ends,
so that a killed run loses nothing and a re-run skips what is done. Its columns, its
statuses, how a row is made (a result or an error), how it is written and how it is read
back with its numbers as numbers; and the frame every batch runner shares (which cases are
left, the table, the counts, the summary): the local batch (batch.py), the Ray runner
(cluster/ray_batch.py), the shard merge (cluster/shards.py) and evaluation all go through it.

Imports no torch.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from .errors import InputError
from .manifest import Case

INTERNAL_ERROR = "internal error: "  # how an error that is not the user's mistake begins
TABLE_NAME = "results.csv"


class Status(str, Enum):
    OK = "ok"
    ERROR = "error"


# Evaluation's columns (evaluation/evaluator.py fills them); here so that reading is typed.
EVALUATION_COLUMNS = ("label", "correct", "cam_in_lesion", "cam_peak_in_lesion",
                      "cam_peak_distance_mm")
_FLOATS = ("confidence", "entropy", "registration_correlation", "seconds", "cam_in_lesion",
           "cam_peak_distance_mm", "feature_distance")
_INTEGERS = ("correct", "cam_peak_in_lesion")


def columns(codes: tuple[str, ...], extra: tuple[str, ...] = ()) -> list[str]:
    """The table's columns for a model with classes `codes`, then `extra` ones."""
    return (["case", "source", "status", "predicted_class", "confidence", "entropy"]
            + [f"p_{code}" for code in codes]
            + ["registration_correlation", "registration_ok", "warnings", "error", "seconds",
               "heatmap", "dicom_report"] + list(extra))


def result_row(case: Case, result, files: dict[str, Path], seconds: float) -> dict:
    """The row of a classified case (`result`: a ClassificationResult)."""
    return ({"case": case.name, "source": str(case.path), "status": Status.OK.value,
             "predicted_class": result.predicted_class,
             "confidence": f"{result.confidence:.6f}", "entropy": f"{result.entropy:.6f}"}
            | {f"p_{code}": f"{p:.6f}" for code, p in result.probabilities.items()}
            | {"registration_correlation": result.registration["correlation"],
               "registration_ok": result.registration["ok"],
               "warnings": " | ".join(result.warnings), "error": "",
               "seconds": round(seconds, 3), "heatmap": files["heatmap"].name,
               "dicom_report": files["dicom_report"].name if "dicom_report" in files else ""})


def error_row(case: Case, error: Exception | str, seconds: float) -> dict:
    """The row of a case that failed: the user's mistake in one line, anything else marked
    as an internal error (a message already written is taken as it is)."""
    if isinstance(error, str):
        message = error
    else:
        message = str(error) if isinstance(error, InputError) else f"{INTERNAL_ERROR}{error!r}"
    return {"case": case.name, "source": str(case.path), "status": Status.ERROR.value,
            "error": message, "seconds": round(seconds, 3)}


def succeeded(row: dict) -> bool:
    return row.get("status") == Status.OK.value


def is_internal_error(row: dict) -> bool:
    return not succeeded(row) and str(row.get("error", "")).startswith(INTERNAL_ERROR)


def read_rows(path: Path) -> list[dict]:
    """Every row, its numbers as numbers (None where empty); when a case has several rows (an
    error, then a success on a re-run), its last success, else its last error."""
    with open(path, newline="", encoding="utf-8") as handle:
        return latest_rows(typed(row) for row in csv.DictReader(handle))


def typed(row: dict) -> dict:
    row = dict(row)
    for key, value in row.items():
        if key.startswith("p_") or key in _FLOATS:
            row[key] = float(value) if value not in (None, "") else None
        elif key in _INTEGERS:
            row[key] = int(value) if value not in (None, "") else None
    return row


def latest_rows(rows) -> list[dict]:
    """One row per case, in first-seen order: its last success, else its last error."""
    chosen: dict[str, dict] = {}
    for row in rows:
        name = row.get("case", "")
        if name and (succeeded(row) or not succeeded(chosen.get(name, {}))):
            chosen[name] = row
    return list(chosen.values())


def write_rows(path: Path, rows: list[dict], fieldnames: list[str]) -> None:
    """A whole table at once, written under a temporary name and renamed (merges, reports)."""
    from .files import atomic_output
    with atomic_output(Path(path), ".csv") as temporary:
        with open(temporary, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=fieldnames, extrasaction="ignore",
                                    restval="")
            writer.writeheader()
            writer.writerows(rows)


class ResultsTable:
    """The append-only CSV; a re-run reads which cases already succeeded."""

    def __init__(self, path: Path, columns: list[str]) -> None:
        self.path = Path(path)
        self._repair_partial_line()
        # Appending to a table an older version began: keep its header, so rows stay aligned.
        self.columns = self._existing_columns() or columns

    def _existing_columns(self) -> list[str]:
        if not self.path.is_file():
            return []
        with open(self.path, newline="", encoding="utf-8") as handle:
            return next(csv.reader(handle), [])

    def finished_cases(self) -> set[str]:
        return self.finished_cases_in(self.path)

    @staticmethod
    def finished_cases_in(path: Path) -> set[str]:
        """The cases with a success row in the table at `path` (none when it does not exist)."""
        path = Path(path)
        if not path.is_file():
            return set()
        with open(path, newline="", encoding="utf-8") as handle:
            return {row["case"] for row in csv.DictReader(handle)
                    if succeeded(row) and row.get("case")}

    def append(self, row: dict) -> None:
        new = not self.path.is_file() or self.path.stat().st_size == 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)
            handle.flush()
            os.fsync(handle.fileno())

    def _repair_partial_line(self) -> None:
        """Cut a last line that a killed run left half written."""
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return
        data = self.path.read_bytes()
        if not data.endswith(b"\n"):
            with open(self.path, "r+b") as handle:
                handle.truncate(data.rfind(b"\n") + 1)


@dataclass(frozen=True)
class BatchSummary:
    table: Path
    attempted: int
    skipped: int
    failures: int
    internal_errors: int

    def to_dict(self) -> dict:
        """As the worker sends it: plain JSON values."""
        return {"table": str(self.table), "attempted": self.attempted, "skipped": self.skipped,
                "failures": self.failures, "internal_errors": self.internal_errors}


class BatchRun:
    """What every runner does around its cases: the table (default out/results.csv), the cases
    it does not hold yet (a re-run resumes), each finished row recorded and counted, and the
    summary.

        run = BatchRun(cases, out, results_csv)
        run.open(columns(codes))        # once the model's classes are known
        for case in run.todo: run.record(row)
        return run.summary()
    """

    def __init__(self, cases: list[Case], out: str | Path,
                 results_csv: str | Path | None = None) -> None:
        self.path = Path(results_csv) if results_csv else Path(out) / TABLE_NAME
        finished = ResultsTable.finished_cases_in(self.path)
        self.todo = [case for case in cases if case.name not in finished]
        self.skipped = len(cases) - len(self.todo)
        self.failures = self.internal_errors = 0
        self.table: ResultsTable | None = None

    def open(self, table_columns: list[str]) -> None:
        self.table = ResultsTable(self.path, table_columns)

    def record(self, row: dict) -> None:
        self.table.append(row)
        if not succeeded(row):
            self.failures += 1
            self.internal_errors += is_internal_error(row)

    def summary(self) -> BatchSummary:
        return BatchSummary(self.path, len(self.todo), self.skipped, self.failures,
                            self.internal_errors)
