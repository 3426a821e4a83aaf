"""Jobs in the real worker process: each ends exactly once and says how; a kill or a worker
that goes away reaches every waiter; a cancel request stops a batch between scans (its table
keeps what was done) and a queued request before it starts; an idle worker is released."""

from __future__ import annotations

import csv
import os
import re
import signal

import pytest

from TumorClassifierLib.manifest import read_manifest
from TumorClassifierLib.resources import sample_data_dir
from TumorClassifierLib.worker.jobs import JobRunner, JobStatus
from TumorClassifierLib.worker.process import WorkerProcess
from TumorClassifierLib.worker.protocol import BatchRequest, ClassifyRequest

TIMEOUT = 300


@pytest.fixture(scope="module")
def scans():
    return [case.path for case in read_manifest(sample_data_dir() / "manifest.csv")]


@pytest.fixture
def runner(tmp_path):
    finished = []
    runner = JobRunner(lambda: WorkerProcess(log_path=tmp_path / "worker.log"))
    runner.finished = finished  # what each job's on_finished saw, in order
    yield runner
    runner.close()
    assert not runner.alive


def submit(runner, request):
    return runner.submit(request, on_finished=runner.finished.append)


def classify(scan, out, model) -> ClassifyRequest:
    return ClassifyRequest(input=str(scan), out=str(out), model=str(model), device="cpu")


@pytest.mark.slow
def test_a_job_gets_its_progress_and_result_and_ends_once(runner, tiny_bundle, scans, tmp_path):
    seen = []
    job = runner.submit(classify(scans[0], tmp_path, tiny_bundle), on_progress=seen.append,
                        on_finished=runner.finished.append)
    assert runner.busy and job.id == "1"
    runner.wait(job, timeout=TIMEOUT)
    assert job.status is JobStatus.DONE and runner.finished == [job] and not runner.busy
    assert seen and seen[-1].stage == "writing the results" and job.progress == seen[-1]
    assert job.outcome().classification().predicted_class in job.outcome().result[
        "probabilities"]
    runner.pump()
    assert runner.finished == [job]  # never twice


@pytest.mark.slow
def test_a_kill_cancels_every_job_and_the_next_submit_starts_a_fresh_worker(
        runner, tiny_bundle, scans, tmp_path):
    jobs = [submit(runner, classify(scan, tmp_path, tiny_bundle)) for scan in scans[:3]]
    first_pid = runner.process.process.pid
    runner.kill("Cancelled: the scene was closed.")
    assert [job.status for job in jobs] == [JobStatus.CANCELLED] * 3
    assert {job.message for job in jobs} == {"Cancelled: the scene was closed."}
    assert runner.finished == jobs and not runner.busy and not runner.alive
    with pytest.raises(RuntimeError, match="scene was closed"):
        jobs[0].outcome()
    again = runner.wait(submit(runner, classify(scans[0], tmp_path, tiny_bundle)),
                        timeout=TIMEOUT)
    assert again.status is JobStatus.DONE and runner.process.process.pid != first_pid


@pytest.mark.slow
def test_a_worker_that_goes_away_fails_every_job_with_its_reason(runner, tiny_bundle, scans,
                                                                 tmp_path):
    jobs = [submit(runner, classify(scan, tmp_path, tiny_bundle)) for scan in scans[:2]]
    os.kill(runner.process.process.pid, signal.SIGKILL)
    runner.wait(jobs[1], timeout=TIMEOUT)
    assert [job.status for job in jobs] == [JobStatus.FAILED] * 2
    assert all("stopped unexpectedly" in job.message for job in jobs)
    assert runner.finished == jobs


@pytest.mark.slow
def test_a_cancel_request_stops_a_batch_between_scans_and_its_table_keeps_them(
        runner, tiny_bundle, scans, tmp_path):
    batch = BatchRequest(inputs=[str(s) for s in scans], out=str(tmp_path / "batch"),
                         model=str(tiny_bundle), device="cpu", overlay=False)
    job = runner.submit(batch, on_progress=lambda p: p.message and runner.cancel(job),
                        on_finished=runner.finished.append)
    runner.wait(job, timeout=TIMEOUT)
    assert job.status is JobStatus.CANCELLED, job.message
    done = int(re.search(r"cancelled after (\d+) of 7 scans", job.message).group(1))
    with open(tmp_path / "batch" / "results.csv", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    assert 1 <= done < 7 and len(rows) == done and {r["status"] for r in rows} == {"ok"}
    assert runner.alive  # a cancel request leaves the worker serving: the batch resumes
    resumed = runner.wait(submit(runner, batch), timeout=TIMEOUT)
    assert resumed.outcome().summary["skipped"] == done


@pytest.mark.slow
def test_a_queued_request_is_cancelled_before_it_starts(runner, tiny_bundle, scans, tmp_path):
    running = submit(runner, classify(scans[0], tmp_path / "a", tiny_bundle))
    queued = submit(runner, classify(scans[1], tmp_path / "b", tiny_bundle))
    runner.cancel(queued)
    runner.wait(queued, timeout=TIMEOUT)
    runner.wait(running, timeout=TIMEOUT)
    assert running.status is JobStatus.DONE
    assert queued.status is JobStatus.CANCELLED and "before it started" in queued.message
    assert not (tmp_path / "b").exists()


@pytest.mark.slow
def test_an_idle_worker_is_released_and_a_busy_one_is_not(runner, tiny_bundle, scans,
                                                           tmp_path):
    job = submit(runner, classify(scans[0], tmp_path, tiny_bundle))
    assert not runner.release_if_idle(0) and runner.alive  # busy
    runner.wait(job, timeout=TIMEOUT)
    assert not runner.release_if_idle(3600) and runner.alive  # idle, but not for long
    process = runner.process.process
    assert runner.release_if_idle(0) and not runner.alive and process.returncode == 0


@pytest.mark.slow
def test_waiting_past_a_timeout_cancels(runner, tiny_bundle, scans, tmp_path):
    job = runner.wait(submit(runner, classify(scans[0], tmp_path, tiny_bundle)), timeout=0.1)
    assert job.status is JobStatus.CANCELLED and "no answer within 0.1 s" in job.message
