"""The classification worker process (worker/server.py) driven through WorkerProcess: start,
classify, progress in order, a kill during the network, a worker killed from outside, bad
input, and a batch. Jobs and cancel requests: test_worker_jobs.py."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from TumorClassifierLib.inference import Classifier
from TumorClassifierLib.manifest import read_manifest
from TumorClassifierLib.resources import sample_data_dir
from TumorClassifierLib.worker.process import WorkerError, WorkerProcess
from TumorClassifierLib.worker.protocol import (
    PROTOCOL_VERSION,
    BatchRequest,
    ClassifyRequest,
    Error,
    ErrorKind,
    Exited,
    Progress,
    Result,
)

READY_TIMEOUT = 120
ANSWER_TIMEOUT = 300


@pytest.fixture(scope="module")
def samples():
    return {case.label: case for case in read_manifest(sample_data_dir() / "manifest.csv")}


def started(tmp_path) -> WorkerProcess:
    worker = WorkerProcess(log_path=tmp_path / "worker.log")
    worker.start()
    worker.wait_ready(READY_TIMEOUT)
    return worker


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    worker = started(tmp_path_factory.mktemp("worker"))
    yield worker
    worker.close()


def classify_request(path, out, model, **options) -> ClassifyRequest:
    return ClassifyRequest(input=str(path), out=str(out), model=str(model), device="cpu",
                           **options)


def test_ready_reports_devices_and_versions(worker):
    assert worker.info.protocol == PROTOCOL_VERSION
    assert worker.info.devices[0] == {"device": "cpu", "name": "CPU"}
    assert worker.info.versions["torch"] and worker.info.pid == worker.process.pid


@pytest.mark.slow
def test_classify_writes_what_the_library_computes_with_progress_in_order(
        worker, tiny_bundle, samples, tmp_path):
    case = samples["PITADE"]
    seen = []
    answer = worker.wait(worker.send(classify_request(case.path, tmp_path, tiny_bundle)),
                         ANSWER_TIMEOUT, on_message=seen.append)
    assert isinstance(answer, Result), answer
    progress = [m for m in seen if isinstance(m, Progress)]
    fractions = [m.fraction for m in progress]
    assert fractions == sorted(fractions) and 0 <= fractions[0] and fractions[-1] < 1
    assert [m.stage for m in progress][-1] == "writing the results"
    assert {"registering", "classifying and computing the heatmap"} <= {
        m.stage for m in progress}
    files = {key: Path(value) for key, value in answer.files.items()}
    assert set(files) == {"heatmap", "probabilities"} and all(p.is_file() for p in files.values())
    written = json.loads(files["probabilities"].read_text(encoding="utf-8"))
    assert written["probabilities"] == answer.result["probabilities"]
    assert answer.classification().probabilities == written["probabilities"]
    in_process = Classifier.from_bundle(tiny_bundle, device="cpu").classify(case.path)
    assert written["probabilities"] == pytest.approx(in_process.probabilities, abs=1e-6)
    assert written["case"] == case.name and written["files"]["heatmap"] == files["heatmap"].name


@pytest.mark.slow
def test_bad_input_is_one_error_line_and_the_worker_keeps_serving(worker, tiny_bundle,
                                                                   samples, tmp_path):
    missing = tmp_path / "no such scan.nii.gz"
    answer = worker.wait(worker.send(classify_request(missing, tmp_path, tiny_bundle)),
                         ANSWER_TIMEOUT)
    assert isinstance(answer, Error) and answer.kind is ErrorKind.INPUT
    assert str(missing) in answer.message and "\n" not in answer.message
    worker.process.stdin.write(b"this is not json\n")  # not a request at all
    worker.process.stdin.flush()
    garbled = worker.wait(None, ANSWER_TIMEOUT)
    assert isinstance(garbled, Error) and "unknown request" in garbled.message
    unknown_class = worker.wait(worker.send(classify_request(
        samples["HGG"].path, tmp_path, tiny_bundle, cam_class="NOPE")), ANSWER_TIMEOUT)
    assert isinstance(unknown_class, Error) and "NOPE" in unknown_class.message
    answer = worker.wait(worker.send(classify_request(samples["HGG"].path, tmp_path,
                                                      tiny_bundle)), ANSWER_TIMEOUT)
    assert isinstance(answer, Result)
    assert worker.alive


@pytest.mark.slow
def test_batch_writes_the_clis_table_and_resumes(worker, tiny_bundle, samples, tmp_path):
    paths = [str(samples[label].path) for label in ("HGG", "ACSCHW")]
    request = BatchRequest(inputs=paths, out=str(tmp_path), model=str(tiny_bundle),
                           device="cpu")
    seen = []
    answer = worker.wait(worker.send(request), ANSWER_TIMEOUT, on_message=seen.append)
    assert isinstance(answer, Result), answer
    assert answer.summary | {"table": ""} == {"table": "", "attempted": 2, "skipped": 0,
                                              "failures": 0, "internal_errors": 0}
    assert [m.message for m in seen if isinstance(m, Progress) and m.message] == [
        f"{samples['HGG'].name} (1/2)", f"{samples['ACSCHW'].name} (2/2)"]
    rows = Path(answer.summary["table"]).read_text(encoding="utf-8").splitlines()
    assert len(rows) == 3 and rows[0].startswith("case,source,status")
    again = worker.wait(worker.send(request), ANSWER_TIMEOUT)
    assert again.summary["skipped"] == 2 and again.summary["attempted"] == 0


@pytest.mark.slow
def test_cancel_during_the_network_ends_the_process_within_a_second(samples, tmp_path):
    """The bundled default model at 128^3, so that the network takes long enough to be caught
    inside it."""
    worker = started(tmp_path)
    out = tmp_path / "out"
    request_id = worker.send(ClassifyRequest(input=str(samples["LGG"].path), out=str(out),
                                             device="cpu"))
    process = worker.process
    deadline = time.monotonic() + ANSWER_TIMEOUT
    stage = None
    while stage != "classifying and computing the heatmap":
        assert time.monotonic() < deadline
        for message in worker.poll():
            assert isinstance(message, Progress), message
            stage = message.stage
        time.sleep(0.005)
    start = time.monotonic()
    worker.kill()
    assert process.poll() is not None and time.monotonic() - start < 1.0
    cancelled, exited = worker.poll()  # what the waiters hear, once
    assert (cancelled.id, cancelled.kind, type(exited)) == ("1", ErrorKind.CANCELLED, Exited)
    assert worker.poll() == [] and not worker.alive and not worker.busy
    assert not out.exists() or not any(out.iterdir())  # nothing half-written
    with pytest.raises(WorkerError):
        worker.send(ClassifyRequest(input="a", out="b"))
    assert request_id == "1"


@pytest.mark.slow
def test_a_worker_killed_from_outside_gives_one_clear_error_and_restarts(tiny_bundle, samples,
                                                                        tmp_path):
    worker = started(tmp_path)
    request_id = worker.send(classify_request(samples["HGG"].path, tmp_path, tiny_bundle))
    os.kill(worker.process.pid, signal.SIGKILL)
    answer = worker.wait(request_id, ANSWER_TIMEOUT)
    assert isinstance(answer, Error) and answer.kind is ErrorKind.WORKER
    assert "stopped unexpectedly" in answer.message and str(worker.log_path) in answer.message
    exited = worker.poll()
    assert exited == [] or isinstance(exited[-1], Exited)
    worker.start()  # the next Classify starts a fresh worker
    worker.wait_ready(READY_TIMEOUT)
    answer = worker.wait(worker.send(classify_request(samples["HGG"].path, tmp_path,
                                                      tiny_bundle)), ANSWER_TIMEOUT)
    assert isinstance(answer, Result)
    worker.close()
    assert not worker.alive


def test_a_worker_that_cannot_start_is_a_clear_error(tmp_path):
    worker = WorkerProcess(python=str(tmp_path / "no-python-here"))
    with pytest.raises(WorkerError, match="cannot start the classification worker"):
        worker.start()


def test_stdin_closing_ends_the_worker(tmp_path):
    worker = started(tmp_path)
    process = worker.process
    worker.close(timeout=30)
    assert process.returncode == 0


@pytest.mark.slow
def test_the_modules_uncompressed_heatmap_holds_the_same_map(worker, tiny_bundle, samples,
                                                             tmp_path):
    import numpy as np

    from TumorClassifierLib.volume import read_own_volume
    path = samples["ACSCHW"].path
    answers = {fmt: worker.wait(worker.send(classify_request(
        path, tmp_path / fmt, tiny_bundle, heatmap_format=fmt)), ANSWER_TIMEOUT)
        for fmt in ("nii.gz", "nrrd")}
    assert answers["nrrd"].files["heatmap"].endswith("_heatmap.nrrd")
    maps = {fmt: read_own_volume(a.files["heatmap"]) for fmt, a in answers.items()}
    np.testing.assert_array_equal(maps["nrrd"].array, maps["nii.gz"].array)
    assert maps["nrrd"].same_geometry(maps["nii.gz"], atol=1e-5)
    wrong = worker.wait(worker.send(classify_request(path, tmp_path, tiny_bundle,
                                                     heatmap_format="png")), ANSWER_TIMEOUT)
    assert isinstance(wrong, Error) and "heatmap_format must be one of" in wrong.message


def test_a_worker_that_dies_on_start_says_why_in_its_message(tmp_path):
    """A broken PyTorch (here a stand-in package that fails to import) is named in the error,
    not only in a log nobody is shown."""
    broken = tmp_path / "broken" / "torch"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('libtorch_cpu.so: cannot open "
                                        "shared object file')\n", encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "broken"))
    worker = WorkerProcess(env=env, log_path=tmp_path / "worker.log")
    worker.start()
    with pytest.raises(WorkerError) as caught:
        worker.wait_ready(READY_TIMEOUT)
    message = str(caught.value)
    assert "stopped unexpectedly" in message
    assert "ImportError: libtorch_cpu.so: cannot open shared object file" in message
    worker.close()


def test_killing_the_worker_tells_every_waiting_request_it_was_cancelled(tiny_bundle, samples,
                                                                          tmp_path):
    worker = started(tmp_path)
    request_id = worker.send(classify_request(samples["HGG"].path, tmp_path, tiny_bundle))
    worker.kill("Cancelled: the scene was closed.")
    messages = worker.poll()
    assert messages[0] == Error(request_id, ErrorKind.CANCELLED,
                                "Cancelled: the scene was closed.")
    assert isinstance(messages[-1], Exited) and worker.poll() == []
    with pytest.raises(WorkerError, match="not running"):
        worker.wait(request_id, 1)
