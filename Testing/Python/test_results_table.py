"""The results table's one owner: rows made from a result or an error, appended so that a
killed run loses nothing, read back typed, one row per case when merged, and the frame that
every batch runner shares (resume, counts, summary)."""

import csv
from pathlib import Path

import numpy as np
import pytest

from TumorClassifierLib.errors import InputError
from TumorClassifierLib.manifest import Case
from TumorClassifierLib.result import ClassificationResult
from TumorClassifierLib.results_table import (
    BatchRun,
    ResultsTable,
    Status,
    columns,
    error_row,
    is_internal_error,
    latest_rows,
    read_rows,
    result_row,
    succeeded,
)
from TumorClassifierLib.volume import Volume

CODES = ("HGG", "LGG", "HEALTHY")


def a_result(probabilities=(0.7, 0.2, 0.1)) -> ClassificationResult:
    heatmap = Volume(np.zeros((2, 2, 2), np.float32), (1.0,) * 3, (0.0,) * 3,
                     tuple(np.eye(3).ravel()))
    return ClassificationResult(
        source="scan", probabilities=dict(zip(CODES, probabilities)),
        display_names={code: code.title() for code in CODES}, predicted_class="HGG",
        cam_class="HGG", heatmap=heatmap, registration={"correlation": 0.9, "ok": True},
        timings={}, device="cpu", precision="float32", warnings=("a", "b"))


def test_results_table_appends_and_survives_a_half_written_line(tmp_path):
    path = tmp_path / "results.csv"
    table = ResultsTable(path, ["case", "status", "error"])
    table.append({"case": "a", "status": "ok"})
    table.append({"case": "b", "status": "error", "error": "bad, file"})
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("c,o")  # a run killed while writing
    reopened = ResultsTable(path, ["case", "status", "error"])
    assert reopened.finished_cases() == {"a"}
    reopened.append({"case": "c", "status": "ok"})
    assert path.read_text(encoding="utf-8").splitlines() == [
        "case,status,error", "a,ok,", 'b,error,"bad, file"', "c,ok,"]


def test_a_table_begun_with_other_columns_keeps_its_header(tmp_path):
    path = tmp_path / "results.csv"
    ResultsTable(path, ["case", "status", "seconds"]).append({"case": "a", "status": "ok",
                                                             "seconds": 1})
    newer = ResultsTable(path, ["case", "status", "entropy", "seconds"])  # a newer version
    newer.append({"case": "b", "status": "ok", "entropy": 0.5, "seconds": 2})
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows == [{"case": "a", "status": "ok", "seconds": "1"},
                    {"case": "b", "status": "ok", "seconds": "2"}]


def test_rows_of_results_and_errors_follow_the_columns_and_read_back_typed(tmp_path):
    case = Case("one", Path("scans/one.nii.gz"))
    path = tmp_path / "results.csv"
    table = ResultsTable(path, columns(CODES, ("label",)))
    table.append(result_row(case, a_result(), {"heatmap": Path("one_heatmap.nii.gz")}, 1.23456)
                 | {"label": "HGG"})
    table.append(error_row(Case("two", Path("two.nrrd")), InputError("two.nrrd: empty"), 0.5))
    table.append(error_row(Case("three", Path("3.nrrd")), ZeroDivisionError("x"), 0.5))
    ok, mistake, bug = read_rows(path)
    assert list(ok) == columns(CODES, ("label",))
    assert ok["p_HGG"] == pytest.approx(0.7) and ok["confidence"] == pytest.approx(0.7)
    assert ok["seconds"] == pytest.approx(1.235) and ok["warnings"] == "a | b"
    assert succeeded(ok) and ok["status"] == Status.OK.value and ok["label"] == "HGG"
    assert mistake["error"] == "two.nrrd: empty" and not is_internal_error(mistake)
    assert bug["error"] == "internal error: ZeroDivisionError('x')" and is_internal_error(bug)
    assert mistake["p_HGG"] is None  # an empty number is None, not ""


def test_one_row_per_case_the_last_success_else_the_last_error():
    rows = [{"case": "a", "status": "error", "error": "1"}, {"case": "a", "status": "ok"},
            {"case": "a", "status": "error", "error": "2"}, {"case": "b", "status": "error",
                                                            "error": "3"},
            {"case": "b", "status": "error", "error": "4"}, {"case": "", "status": "ok"}]
    assert latest_rows(rows) == [{"case": "a", "status": "ok"},
                                 {"case": "b", "status": "error", "error": "4"}]


def test_a_batch_run_resumes_counts_and_sums_up(tmp_path):
    cases = [Case(name, Path(f"{name}.nii.gz")) for name in ("a", "b", "c", "d")]
    first = BatchRun(cases, tmp_path)
    assert first.path == tmp_path / "results.csv" and first.todo == cases
    first.open(columns(CODES))
    first.record(result_row(cases[0], a_result(), {"heatmap": Path("h")}, 1.0))
    first.record(error_row(cases[1], InputError("b: bad"), 1.0))
    first.record(error_row(cases[2], RuntimeError("bug"), 1.0))
    summary = first.summary()
    assert (summary.attempted, summary.skipped, summary.failures,
            summary.internal_errors) == (4, 0, 2, 1)
    again = BatchRun(cases, tmp_path)  # a re-run: only the success is skipped
    assert [c.name for c in again.todo] == ["b", "c", "d"] and again.skipped == 1
    elsewhere = BatchRun(cases, tmp_path, tmp_path / "other.csv")
    assert elsewhere.path == tmp_path / "other.csv" and elsewhere.skipped == 0
    assert summary.to_dict() == {"table": str(tmp_path / "results.csv"), "attempted": 4,
                                 "skipped": 0, "failures": 2, "internal_errors": 1}
