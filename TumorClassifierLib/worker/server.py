"""The classification worker: a process that loads models once and serves requests.

    python -m TumorClassifierLib.worker

Reads one request per line on stdin and answers on stdout (protocol.py) until stdin closes.
The Slicer module runs it with Slicer's own Python (PythonSlicer), so that the network never
runs in a thread of the application. A thread reads stdin while a request runs, so that a
cancel request stops it at its next stage (between a batch's scans, or between a scan's
reading, registration and network); killing the process is the way to stop the network at
once. Anything else that would reach stdout (a library's print, ITK's C++ output) is sent to
stderr, so it cannot break the protocol.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import traceback
from pathlib import Path

from .protocol import (
    PROTOCOL_VERSION,
    BatchRequest,
    CancelRequest,
    ClassifyRequest,
    Error,
    ErrorKind,
    FetchModelRequest,
    Message,
    Progress,
    ProtocolError,
    Ready,
    Result,
    decode_request,
    encode,
    request_id_of,
)

WRITING_FRACTION = 0.95  # the share of a classification's progress before its files are written


class Worker:
    def __init__(self, channel) -> None:
        self.channel = channel
        self._classifiers = {}
        self._lines: queue.Queue = queue.Queue()
        self._sending = threading.Lock()
        self._lock = threading.Lock()  # the reader thread and the serving thread share these:
        self._cancelled: set[str] = set()  # ids of requests cancelled before they ran
        self._serving: tuple[str, threading.Event] | None = None

    def send(self, message: Message) -> None:
        with self._sending:  # "ready" comes from a thread of its own
            self.channel.write(encode(message))
            self.channel.flush()

    # -- reading: cancels are taken at once, everything else in order ------------------------
    def serve(self, stream) -> None:
        threading.Thread(target=self._read, args=(stream,), daemon=True,
                         name="worker-requests").start()
        while (line := self._lines.get()) is not None:
            self.handle(line)

    def _read(self, stream) -> None:
        for line in stream:
            if not line.strip():
                continue
            try:
                request = decode_request(line)
            except ProtocolError:
                request = None
            if isinstance(request, CancelRequest):
                self._cancel(request.target)
            else:
                self._lines.put(line)
        self._lines.put(None)

    def _cancel(self, request_id: str) -> None:
        with self._lock:
            if self._serving is not None and self._serving[0] == request_id:
                self._serving[1].set()  # the library stops at its next stage
            else:
                self._cancelled.add(request_id)

    def _start_serving(self, request_id: str) -> threading.Event:
        event = threading.Event()
        with self._lock:
            if request_id in self._cancelled:
                self._cancelled.discard(request_id)
                event.set()
            self._serving = (request_id, event)
        return event

    def _stop_serving(self) -> None:
        with self._lock:
            self._serving = None

    # -- serving ------------------------------------------------------------------------------
    def handle(self, line: str) -> None:
        from ..errors import Cancelled, InputError
        request_id = request_id_of(line)
        try:
            request = decode_request(line)
            request_id = request.id
            cancel = self._start_serving(request_id)
            if cancel.is_set():
                raise Cancelled("cancelled before it started")
            handlers = {ClassifyRequest: self._classify, BatchRequest: self._batch,
                        FetchModelRequest: self._fetch_model}
            self.send(handlers[type(request)](request, cancel))
        except Cancelled as error:
            self.send(Error(request_id, ErrorKind.CANCELLED, _one_line(str(error))))
        except (InputError, ProtocolError) as error:
            self.send(Error(request_id, ErrorKind.INPUT, _one_line(str(error))))
        except Exception as error:  # an internal error: report it and keep serving
            traceback.print_exc(file=sys.stderr)
            self.send(Error(request_id, ErrorKind.INTERNAL,
                            _one_line(f"internal error: {error!r}")))
        finally:
            self._stop_serving()

    def classifier(self, request: ClassifyRequest | BatchRequest):
        """One classifier per model, device and precision, kept for the next request. A new
        one loads its model in the background while the first scan is read and registered,
        as the CLI's does; one whose model failed to load is tried again next time."""
        from ..background_loading import BackgroundLoadingClassifier
        cached = self._classifiers.get(request.model_key)
        if cached is None or cached.failed:
            model, device, precision = request.model_key
            self._classifiers[request.model_key] = BackgroundLoadingClassifier(
                model or None, device, precision)
        return self._classifiers[request.model_key]

    def _progress(self, request, stage: str, fraction: float, message: str = "") -> None:
        self.send(Progress(request.id, stage, round(float(fraction), 4), message))

    def _classify(self, request: ClassifyRequest, cancel: threading.Event) -> Result:
        from ..errors import Cancelled, InputError
        from ..manifest import Case, case_name
        from ..outputs import HEATMAP_FORMATS, write_case_outputs
        if request.heatmap_format not in HEATMAP_FORMATS:
            raise InputError(f"heatmap_format must be one of {', '.join(HEATMAP_FORMATS)}, not "
                             f"{request.heatmap_format!r}")
        out = Path(request.out)

        def progress(stage: str, fraction: float) -> None:
            if stage != "done":  # writing the files comes after the library's last stage
                self._progress(request, stage, WRITING_FRACTION * fraction)
        result = self.classifier(request).classify(
            request.input, cam_class=request.cam_class or None, tta=request.tta,
            allow_poor_registration=request.force, progress=progress, cancel=cancel)
        if cancel.is_set():
            raise Cancelled("cancelled before its files were written")
        self._progress(request, "writing the results", WRITING_FRACTION)
        case = Case(request.case or case_name(request.input), Path(request.input))
        try:
            files = write_case_outputs(result, case, out, overlay=request.overlay,
                                       heatmap_format=request.heatmap_format,
                                       dicom=request.dicom)
        except OSError as error:
            raise InputError(f"{out}: cannot write the results ({error.strerror or error})") \
                from None
        return Result(request.id, files={key: str(value) for key, value in files.items()},
                      result=result.to_dict())

    def _fetch_model(self, request: FetchModelRequest, cancel: threading.Event) -> Result:
        from ..errors import Cancelled
        from ..model_cache import fetch_bundle

        def downloaded(done: int, total: int | None) -> None:
            if cancel.is_set():  # the cache keeps no partial download
                raise Cancelled("cancelled while downloading the model")
            self._progress(request, "downloading the model", done / total if total else 0.0,
                           f"{done / 1e6:.1f} MB" + (f" of {total / 1e6:.1f} MB" if total else ""))
        path = fetch_bundle(request.url, request.sha256, cache=request.cache,
                            progress=downloaded)
        return Result(request.id, path=str(path))

    def _batch(self, request: BatchRequest, cancel: threading.Event) -> Result:
        from ..batch import classify_cases
        from ..errors import Cancelled
        from ..manifest import cases_from_paths
        cases = cases_from_paths(request.inputs)

        def case_done(index: int, total: int, name: str) -> None:
            if cancel.is_set():  # the table holds every case done so far: a re-run resumes
                raise Cancelled(f"cancelled after {index} of {total} scans; the results table "
                                "keeps them")
            self._progress(request, "classifying", index / total, f"{name} ({index}/{total})")
        summary = classify_cases(
            self.classifier(request), cases, request.out, cam_class=request.cam_class or None,
            force=request.force, overlay=request.overlay, results_csv=request.results_csv,
            show_progress=False, echo=False, tta=request.tta, prefetch=request.prefetch,
            on_case_done=case_done, dicom=request.dicom)
        return Result(request.id, summary=summary.to_dict())


def _one_line(text: str) -> str:
    return " ".join(text.split())


def describe_devices() -> list[dict]:
    import torch
    devices = [{"device": "cpu", "name": "CPU"}]
    if torch.cuda.is_available():
        devices += [{"device": f"cuda:{index}", "name": torch.cuda.get_device_name(index)}
                    for index in range(torch.cuda.device_count())]
    return devices


def protect_stdout():
    """The protocol's own handle on the real stdout; file descriptor 1 and sys.stdout then go
    to stderr, so that stray output cannot be mistaken for an answer."""
    sys.stdout.flush()
    channel = os.fdopen(os.dup(1), "w", encoding="ascii", newline="\n")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return channel


def main() -> int:
    from .protocol import Fatal
    channel = protect_stdout()
    from ..allocator import retain_freed_memory
    retain_freed_memory()  # a long-running server: reuse each scan's large arrays
    from ..requirements import describe_problems, installed_version, missing_or_old
    problems = missing_or_old()
    if problems:
        channel.write(encode(Fatal(describe_problems(problems))))
        channel.flush()
        return 2
    worker = Worker(channel)

    def announce() -> None:
        """Import torch and say "ready" with its devices, beside the first request: its scan
        is read and registered (SimpleITK, not torch) while torch imports."""
        try:
            worker.send(Ready(PROTOCOL_VERSION, os.getpid(), sys.executable, describe_devices(),
                              {name: installed_version(name)
                               for name in ("torch", "monai", "SimpleITK", "numpy")}))
        except BaseException:  # a broken torch: the client shows this log's last line
            traceback.print_exc(file=sys.stderr)
            sys.stderr.flush()
            os._exit(1)
        # Then the rest of the network's imports (MONAI: about a second), so that a worker
        # started before it is needed (the panel starts one when it is shown) is warm.
        from .. import inference  # noqa: F401
    threading.Thread(target=announce, daemon=True, name="worker-ready").start()
    worker.serve(sys.stdin)
    return 0
