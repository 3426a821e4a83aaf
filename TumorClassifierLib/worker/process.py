"""Start the classification worker (server.py) in its own process and talk to it without ever
blocking: `poll()` returns whatever replies have arrived, so a GUI can call it from a timer.
Callers normally drive it through jobs.JobRunner, which routes the replies to their jobs.

    worker = WorkerProcess(python="/path/to/PythonSlicer")
    worker.start()
    request_id = worker.send(ClassifyRequest(input="scan.nrrd", out="results/"))
    answer = worker.wait(request_id)          # or: poll() from a timer until a final reply
    worker.kill()                             # cancel: the whole process tree, at once

Uses only the standard library (no torch, no Qt): it runs in Slicer's main thread.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .protocol import (
    ENDED,
    FINAL,
    CancelRequest,
    Error,
    ErrorKind,
    Exited,
    LineDecoder,
    Ready,
    Reply,
    Request,
    encode,
)

LIBRARY_PARENT = Path(__file__).resolve().parents[2]  # the folder holding TumorClassifierLib
LOG_TAIL_CHARS = 2000


class WorkerError(RuntimeError):
    """The worker could not be started, or stopped while it had work."""


class WorkerProcess:
    def __init__(self, python: str | None = None, env: dict | None = None,
                 log_path: str | os.PathLike | None = None) -> None:
        self.python = python or sys.executable
        self.env = dict(os.environ if env is None else env)
        self.log_path = Path(log_path) if log_path else Path(tempfile.gettempdir()) / \
            f"TumorClassifier-worker-{os.getpid()}.log"
        self.process: subprocess.Popen | None = None
        self.info: Ready | None = None  # the worker's "ready" reply: pid, devices, versions
        self._decoder = LineDecoder()
        self._ids = itertools.count(1)
        self._pending: set[str] = set()
        self._reader_queue: queue.Queue | None = None
        self._exit_reported = False
        self._after_kill: list[Reply] = []  # what poll() says once after kill()

    # -- life cycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Start the process (returns at once; the "ready" answer comes through poll())."""
        if self.alive:
            return
        env = dict(self.env)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(LIBRARY_PARENT)] + [p for p in [env.get("PYTHONPATH", "")] if p])
        env["PYTHONUNBUFFERED"] = "1"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        try:
            self.process = subprocess.Popen(
                [self.python, "-m", "TumorClassifierLib.worker"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=log, env=env, cwd=tempfile.gettempdir(),
                **_own_process_group())
        except OSError as error:
            raise WorkerError(f"{self.python}: cannot start the classification worker "
                              f"({error.strerror or error})") from None
        finally:
            log.close()
        self._decoder = LineDecoder()
        self._pending.clear()
        self._exit_reported = False
        self._after_kill = []
        self.info = None
        self._reader_queue = None
        if not _set_non_blocking(self.process.stdout):
            self._start_reader_thread()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def kill(self, reason: str = "cancelled") -> None:
        """End the worker and anything it started, now. Each request still pending gets an
        error answer of kind "cancelled" saying `reason`, followed by an "exited" message, from
        the next poll(): whoever waits for an answer hears that there will be none."""
        if self.process is None:
            return
        self._after_kill = [Error(request_id, ErrorKind.CANCELLED, reason)
                            for request_id in sorted(self._pending)]
        self._after_kill.append(Exited(None, reason))
        if self.process.poll() is None:
            _kill_tree(self.process)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._close_pipes()
        self.process = None
        self._pending.clear()

    def close(self, timeout: float = 5.0) -> None:
        """Let the worker finish (it exits when its stdin closes); kill it after `timeout`."""
        if self.process is None:
            return
        try:
            self.process.stdin.close()
            self.process.wait(timeout=timeout)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()

    # -- requests and answers -------------------------------------------------------------
    def send(self, request: Request) -> str:
        """Send one request (given an `id` when it has none); returns its id. A cancel
        request gets no reply of its own: its target ends with an error of kind cancelled."""
        if not self.alive:
            raise WorkerError("the classification worker is not running")
        if not request.id:
            request = dataclasses.replace(request, id=str(next(self._ids)))
        try:
            self.process.stdin.write(encode(request).encode("ascii"))
            self.process.stdin.flush()
        except OSError:
            raise WorkerError("the classification worker stopped unexpectedly"
                              + self._log_hint()) from None
        if not isinstance(request, CancelRequest):
            self._pending.add(request.id)
        return request.id

    def poll(self) -> list[Reply]:
        """The replies that have arrived, without waiting. When the process has ended, the
        last one is Exited, and each request that was still pending first gets an Error."""
        if self.process is None:
            messages, self._after_kill = self._after_kill, []
            return messages
        exited = self.process.poll() is not None  # before reading: then nothing is missed
        finishing = exited and not self._exit_reported
        messages = self._decoder.feed(self._read_available() + ("\n" if finishing else ""))
        for message in messages:
            if isinstance(message, Ready):
                self.info = message
            if isinstance(message, FINAL):
                self._pending.discard(message.id)
        if finishing:
            messages += self._exit_messages()
        return messages

    def wait(self, request_id: str | None, timeout: float | None = None, on_message=None,
             interval: float = 0.02) -> Reply:
        """Poll until the final reply to `request_id` (returned); `on_message` sees every
        other reply. Raises WorkerError if the worker dies, TimeoutError after `timeout`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            for message in self.poll():
                if isinstance(message, FINAL) and message.id == request_id:
                    return message
                if isinstance(message, ENDED):
                    raise WorkerError(message.message)
                if on_message is not None:
                    on_message(message)
            if self.process is None:
                raise WorkerError("the classification worker is not running")
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"no answer to request {request_id} within {timeout} s")
            time.sleep(interval)

    def wait_ready(self, timeout: float | None = None) -> Ready:
        """Block until the worker has said it is ready (imports done); returns that reply."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.info is None:
            for message in self.poll():
                if isinstance(message, ENDED):
                    raise WorkerError(message.message)
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"the worker was not ready within {timeout} s")
            time.sleep(0.02)
        return self.info

    # -- internals ------------------------------------------------------------------------
    def _read_available(self) -> str:
        if self.process is None or self.process.stdout is None:
            return ""
        if self._reader_queue is not None:
            chunks = []
            while True:
                try:
                    chunks.append(self._reader_queue.get_nowait())
                except queue.Empty:
                    return b"".join(chunks).decode("ascii", "replace")
        chunks = []
        while True:
            try:
                chunk = os.read(self.process.stdout.fileno(), 65536)
            except (BlockingIOError, InterruptedError):
                break
            except (OSError, ValueError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode("ascii", "replace")

    def _start_reader_thread(self) -> None:
        """Where pipes cannot be made non-blocking (Windows before Python 3.12)."""
        self._reader_queue = queue.Queue()
        stream, sink = self.process.stdout, self._reader_queue

        def pump():
            for line in iter(stream.readline, b""):
                sink.put(line)
        threading.Thread(target=pump, daemon=True, name="worker-output").start()

    def _exit_messages(self) -> list[Reply]:
        self._exit_reported = True
        code = self.process.returncode
        last = self.last_error_line()
        reason = (f"the classification worker stopped unexpectedly (exit code {code})"
                  + (f": {last}" if last else "") + self._log_hint())
        messages = [Error(request_id, ErrorKind.WORKER, reason)
                    for request_id in sorted(self._pending)]
        self._pending.clear()
        return messages + [Exited(code, reason)]

    def _log_hint(self) -> str:
        return f"; its log: {self.log_path}" if self.log_path.is_file() else ""

    def last_error_line(self) -> str:
        """The last line the worker wrote to its log that is not part of a traceback's body:
        with a Python failure, the exception itself (e.g. a broken torch import)."""
        lines = [line for line in self.log_tail().splitlines() if line.strip()]
        for line in reversed(lines):
            if not line[0].isspace() and not line.startswith("Traceback"):
                return line.strip()[:300]
        return ""

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""

    def _close_pipes(self) -> None:
        for stream in (self.process.stdin, self.process.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass


def _own_process_group() -> dict:
    """The worker leads its own process group, so that killing it ends its children too."""
    if os.name == "nt":
        flags = subprocess.CREATE_NEW_PROCESS_GROUP | getattr(subprocess, "CREATE_NO_WINDOW", 0)
        return {"creationflags": flags}
    return {"start_new_session": True}


def _kill_tree(process: subprocess.Popen) -> None:
    if os.name == "nt":
        subprocess.run(["taskkill", "/F", "/T", "/PID", str(process.pid)],
                       capture_output=True, check=False)
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()


def _set_non_blocking(stream) -> bool:
    try:
        os.set_blocking(stream.fileno(), False)
        return True
    except (OSError, AttributeError):
        return False
