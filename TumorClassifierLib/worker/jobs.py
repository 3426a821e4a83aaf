"""Jobs in the worker process: what the Slicer module (its panel and its console calls) and the
web viewer drive, so that none of them handles the worker's replies by hand.

    runner = JobRunner()                        # starts the worker on the first submit
    job = runner.submit(ClassifyRequest(input="scan.nrrd", out="results/"),
                        on_progress=print, on_finished=print)
    runner.pump()                               # from a GUI timer: routes replies to jobs
    runner.wait(job, idle=app.processEvents)    # or block (keeping a GUI alive)
    runner.cancel(job)                          # stop at its next stage
    runner.kill("Cancelled")                    # stop now: every job ends "cancelled"

Every job ends exactly once (DONE, FAILED or CANCELLED) and calls `on_finished`; when the
worker goes away (killed, crashed, could not start), every job still running hears it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from .process import WorkerProcess
from .protocol import (
    ENDED,
    CancelRequest,
    Error,
    ErrorKind,
    Log,
    Progress,
    Ready,
    Reply,
    Request,
    Result,
)

LOG = logging.getLogger("TumorClassifier.worker")


class JobStatus(str, Enum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(eq=False)
class Job:
    request: Request
    on_progress: Callable[[Progress], None] | None = None
    on_finished: Callable[[Job], None] | None = None
    status: JobStatus = JobStatus.RUNNING
    progress: Progress | None = None
    reply: Result | None = None
    message: str = ""  # why it failed or was cancelled: one line
    started: float = field(default_factory=time.perf_counter)
    seconds: float = 0.0

    @property
    def id(self) -> str:
        return self.request.id

    @property
    def finished(self) -> bool:
        return self.status is not JobStatus.RUNNING

    def outcome(self) -> Result:
        """The result; RuntimeError with the one-line reason when the job did not succeed."""
        if self.status is not JobStatus.DONE:
            raise RuntimeError(self.message or f"the job is {self.status.value}")
        return self.reply

    def _end(self, status: JobStatus, reply: Result | None = None, message: str = "") -> None:
        if self.finished:
            return
        self.status, self.reply, self.message = status, reply, message
        self.seconds = time.perf_counter() - self.started
        if self.on_finished is not None:
            self.on_finished(self)


class JobRunner:
    def __init__(self, make_process: Callable[[], WorkerProcess] = WorkerProcess,
                 on_ready: Callable[[Ready], None] | None = None) -> None:
        self._make_process = make_process
        self.on_ready = on_ready
        self.process: WorkerProcess | None = None
        self.jobs: dict[str, Job] = {}
        self.idle_since = time.monotonic()

    @property
    def busy(self) -> bool:
        return bool(self.jobs)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.alive

    @property
    def info(self) -> Ready | None:
        return self.process.info if self.process is not None else None

    def start(self) -> WorkerProcess:
        """Start the worker if it is not running (returns at once; "ready" comes later)."""
        if self.process is None:
            self.process = self._make_process()
        if not self.process.alive:
            self.process.start()
        return self.process

    def submit(self, request: Request, on_progress=None, on_finished=None) -> Job:
        """Send a request to the worker (started if needed); WorkerError if it cannot be."""
        request_id = self.start().send(request)
        job = Job(dataclasses.replace(request, id=request_id), on_progress, on_finished)
        self.jobs[request_id] = job
        return job

    def pump(self) -> None:
        """Route every reply that has arrived to its job, without waiting."""
        if self.process is None:
            return
        for reply in self.process.poll():
            self._route(reply)

    def wait(self, job: Job, idle: Callable[[], None] | None = None,
             timeout: float | None = None, interval: float = 0.02) -> Job:
        """Pump until `job` has ended (`idle` runs between polls, e.g. a GUI's event loop);
        after `timeout` seconds the worker is killed and the job ends cancelled."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not job.finished:
            self.pump()
            if job.finished:
                break
            if idle is not None:
                idle()
            if deadline is not None and time.monotonic() > deadline:
                self.kill(f"Cancelled: no answer within {timeout} s.")
            time.sleep(interval)
        return job

    def cancel(self, job: Job) -> None:
        """Ask the worker to stop `job` at its next stage (between a batch's scans); it ends
        CANCELLED, or DONE if it was already writing its files."""
        if not job.finished and self.alive:
            self.process.send(CancelRequest(target=job.id))

    def kill(self, reason: str) -> None:
        """Stop the worker and whatever it runs now; every running job ends CANCELLED with
        `reason`. The next submit starts a fresh worker."""
        if self.process is not None:
            self.process.kill(reason)
            self.pump()
        self._end_all(JobStatus.CANCELLED, reason)

    def close(self, timeout: float = 5.0) -> None:
        """Let the worker finish and exit (killed after `timeout`)."""
        if self.process is not None:
            self.process.close(timeout)
            self.pump()
        self._end_all(JobStatus.CANCELLED, "the classification worker was closed")

    def release_if_idle(self, after_seconds: float) -> bool:
        """End an idle worker (its memory goes back) once nothing ran for `after_seconds`."""
        idle = not self.busy and time.monotonic() - self.idle_since >= after_seconds
        if idle and self.alive:
            self.close()
            return True
        return False

    # -- internals ------------------------------------------------------------------------
    def _route(self, reply: Reply) -> None:
        if isinstance(reply, Ready):
            if self.on_ready is not None:
                self.on_ready(reply)
        elif isinstance(reply, Log):
            LOG.info(reply.message)
        elif isinstance(reply, ENDED):
            self._end_all(JobStatus.FAILED, reply.message)
        elif isinstance(reply, Progress) and reply.id in self.jobs:
            job = self.jobs[reply.id]
            job.progress = reply
            if job.on_progress is not None:
                job.on_progress(reply)
        elif isinstance(reply, Result) and reply.id in self.jobs:
            self._end(self.jobs[reply.id], JobStatus.DONE, reply)
        elif isinstance(reply, Error) and reply.id in self.jobs:
            status = JobStatus.CANCELLED if reply.kind is ErrorKind.CANCELLED \
                else JobStatus.FAILED
            self._end(self.jobs[reply.id], status, message=reply.message)
        elif isinstance(reply, Error):
            LOG.warning(reply.message)  # an answer to a line nobody here sent

    def _end(self, job: Job, status: JobStatus, reply: Result | None = None,
             message: str = "") -> None:
        self.jobs.pop(job.id, None)
        if not self.jobs:
            self.idle_since = time.monotonic()
        job._end(status, reply, message)

    def _end_all(self, status: JobStatus, message: str) -> None:
        for job in list(self.jobs.values()):
            self._end(job, status, message=message)
