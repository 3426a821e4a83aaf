"""A batch stopped halfway (SIGINT or SIGKILL) leaves a valid results table and no half-written
outputs; a re-run completes it without repeating finished cases; two batches writing to
different folders do not disturb each other. Runs the real console entry point."""

import csv
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import plant_lesion

from TumorClassifierLib.volume import write_volume

SCANS = 5


@pytest.fixture(scope="module")
def scans(head, tmp_path_factory):
    folder = tmp_path_factory.mktemp("safety")
    return [write_volume(plant_lesion(head, (150.0 - 10 * n, -100.0, 90.0), 10.0, 3000.0),
                         folder / f"scan{n}.nii.gz") for n in range(SCANS)]


def command(scans, bundle, out):
    return [sys.executable, "-m", "TumorClassifierLib.cli", "classify", *map(str, scans),
            "--model", str(bundle), "--out", str(out), "--device", "cpu"]


def rows(out):
    with open(out / "results.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _default_sigint() -> None:
    """A shell's background job (`make test &`, nohup) starts with SIGINT ignored, and Python
    then never turns it into KeyboardInterrupt: give the batch the default, as in a terminal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stop_after_first_row(arguments, out, stop_signal):
    process = subprocess.Popen(arguments, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env=dict(os.environ, PYTHONIOENCODING="utf-8"),
                               preexec_fn=_default_sigint)
    table = out / "results.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if table.is_file() and table.read_bytes().count(b"\n") >= 2:  # header + one case
            break
        time.sleep(0.02)
    assert process.poll() is None, "the batch ended before it could be stopped"
    process.send_signal(stop_signal)
    _, stderr = process.communicate(timeout=60)
    return process.returncode, stderr.decode("utf-8")


@pytest.mark.parametrize("stop_signal", [signal.SIGKILL, signal.SIGINT],
                         ids=["SIGKILL", "SIGINT"])
def test_a_stopped_batch_is_valid_and_a_rerun_completes_it(scans, tiny_bundle, tmp_path,
                                                          stop_signal):
    out = tmp_path / "out"
    code, stderr = stop_after_first_row(command(scans, tiny_bundle, out), out, stop_signal)
    if stop_signal == signal.SIGINT:
        assert code == 130 and "Traceback" not in stderr and "interrupted" in stderr
    stopped = rows(out)
    assert 1 <= len(stopped) < SCANS, "the batch was not stopped halfway"
    assert all(row["status"] == "ok" and row["predicted_class"] for row in stopped)
    finished = {row["case"] for row in stopped}
    for case in finished:  # every listed case has its outputs, whole
        assert (out / f"{case}_heatmap.nii.gz").stat().st_size > 0
        assert (out / f"{case}_probabilities.json").stat().st_size > 0
    rerun = subprocess.run(command(scans, tiny_bundle, out), capture_output=True, text=True,
                           env=dict(os.environ, PYTHONIOENCODING="utf-8"))
    assert rerun.returncode == 0, rerun.stderr
    assert f"skipped {len(finished)} case(s)" in rerun.stderr
    final = rows(out)
    assert sorted(row["case"] for row in final) == sorted(f"scan{n}" for n in range(SCANS))
    assert final[:len(stopped)] == stopped  # earlier results kept as they were
    assert not list(out.glob(".*.part*")), "temporary files were left behind"


def test_two_batches_into_different_folders_do_not_interfere(scans, tiny_bundle, tmp_path):
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    first = subprocess.Popen(command(scans, tiny_bundle, tmp_path / "a"), env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    second = subprocess.Popen(command(scans[::-1], tiny_bundle, tmp_path / "b"), env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert first.wait(timeout=300) == 0 and second.wait(timeout=300) == 0
    a, b = rows(tmp_path / "a"), rows(tmp_path / "b")
    assert [r["case"] for r in a] == [f"scan{n}" for n in range(SCANS)]
    assert [r["case"] for r in b] == [f"scan{n}" for n in reversed(range(SCANS))]
    probabilities = {r["case"]: {k: v for k, v in r.items() if k.startswith("p_")} for r in a}
    assert all(probabilities[r["case"]] == {k: v for k, v in r.items() if k.startswith("p_")}
               for r in b)
