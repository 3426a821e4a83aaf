"""The classification worker: a process that loads models once and serves requests.

    python -m TumorClassifierLib.worker

Reads one JSON request per line on stdin and answers in JSON lines on stdout
(worker_protocol.py) until stdin closes. The Slicer module runs it with Slicer's own Python
(PythonSlicer), so that the network never runs in a thread of the application; cancelling is
killing this process. Anything else that would reach stdout (a library's print, ITK's C++
output) is sent to stderr, so it cannot break the protocol.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

from .worker_protocol import PROTOCOL_VERSION, REQUEST_TYPES, decode, encode

WRITING_FRACTION = 0.95  # the share of a classification's progress before its files are written


class Worker:
    def __init__(self, channel) -> None:
        self.channel = channel
        self._classifiers = {}

    def send(self, message: dict) -> None:
        self.channel.write(encode(message))
        self.channel.flush()

    def serve(self, requests) -> None:
        for line in requests:
            if line.strip():
                self.handle(line)

    def handle(self, line: str) -> None:
        from .errors import InputError
        request = decode(line)
        request_id = request.get("id")
        try:
            if request.get("type") not in REQUEST_TYPES:
                raise InputError(f"unknown request {line.strip()[:200]!r}; expected a JSON "
                                 f"object whose type is one of {', '.join(REQUEST_TYPES)}")
            answer = getattr(self, f"_{request['type']}")(request)
            self.send({"type": "result", "id": request_id} | answer)
        except InputError as error:
            self.send({"type": "error", "id": request_id, "kind": "input",
                       "message": _one_line(str(error))})
        except Exception as error:  # an internal error: report it and keep serving
            traceback.print_exc(file=sys.stderr)
            self.send({"type": "error", "id": request_id, "kind": "internal",
                       "message": _one_line(f"internal error: {error!r}")})

    def classifier(self, request: dict):
        from .inference import Classifier
        key = (request.get("model") or "", request.get("device") or "auto",
               request.get("precision") or "auto")
        if key not in self._classifiers:
            self._progress(request, "loading the model", 0.0)
            self._classifiers[key] = Classifier.from_bundle(key[0] or None, key[1], key[2])
        return self._classifiers[key]

    def _progress(self, request: dict, stage: str, fraction: float, message: str = "") -> None:
        self.send({"type": "progress", "id": request.get("id"), "stage": stage,
                   "fraction": round(float(fraction), 4), "message": message})

    def _classify_progress(self, request: dict, stage: str, fraction: float) -> None:
        if stage != "done":  # writing the files comes after the library's last stage
            self._progress(request, stage, WRITING_FRACTION * fraction)

    def _classify(self, request: dict) -> dict:
        from .errors import InputError
        from .manifest import Case
        from .outputs import HEATMAP_FORMATS, write_case_outputs
        from .volume import case_name
        path, out = _required(request, "input"), Path(_required(request, "out"))
        classifier = self.classifier(request)
        result = classifier.classify(
            path, cam_class=request.get("cam_class") or None, tta=bool(request.get("tta")),
            allow_poor_registration=bool(request.get("force")),
            progress=lambda stage, fraction: self._classify_progress(request, stage, fraction))
        self._progress(request, "writing the results", WRITING_FRACTION)
        case = Case(request.get("case") or case_name(path), Path(path))
        heatmap_format = request.get("heatmap_format") or "nii.gz"
        if heatmap_format not in HEATMAP_FORMATS:
            raise InputError(f"heatmap_format must be one of {', '.join(HEATMAP_FORMATS)}, not "
                             f"{heatmap_format!r}")
        try:
            files = write_case_outputs(result, case, out, overlay=bool(request.get("overlay")),
                                       heatmap_format=heatmap_format)
        except OSError as error:
            raise InputError(f"{out}: cannot write the results ({error.strerror or error})") \
                from None
        return {"files": {key: str(value) for key, value in files.items()},
                "result": result.to_dict()}

    def _fetch_model(self, request: dict) -> dict:
        from .model_cache import fetch_bundle

        def downloaded(done: int, total: int | None) -> None:
            self._progress(request, "downloading the model", done / total if total else 0.0,
                           f"{done / 1e6:.1f} MB" + (f" of {total / 1e6:.1f} MB" if total else ""))
        path = fetch_bundle(_required(request, "url"), _required(request, "sha256"),
                            cache=request.get("cache"), progress=downloaded)
        return {"path": str(path)}

    def _batch(self, request: dict) -> dict:
        from .batch import classify_cases
        from .manifest import cases_from_paths
        inputs = _required(request, "inputs")
        if not isinstance(inputs, list) or not inputs:
            from .errors import InputError
            raise InputError("a batch request needs a non-empty list of inputs")
        cases = cases_from_paths(inputs)

        def case_done(index: int, total: int, name: str) -> None:
            self._progress(request, "classifying", index / total, f"{name} ({index}/{total})")
        summary = classify_cases(
            self.classifier(request), cases, _required(request, "out"),
            cam_class=request.get("cam_class") or None, force=bool(request.get("force")),
            overlay=bool(request.get("overlay")), results_csv=request.get("results_csv"),
            show_progress=False, echo=False, tta=bool(request.get("tta")),
            prefetch=int(request.get("prefetch", 1)), on_case_done=case_done)
        return {"summary": {"table": str(summary.table), "attempted": summary.attempted,
                            "skipped": summary.skipped, "failures": summary.failures,
                            "internal_errors": summary.internal_errors}}


def _required(request: dict, key: str):
    from .errors import InputError
    if request.get(key) in (None, ""):
        raise InputError(f"request {request.get('id')!r} lacks {key!r}")
    return request[key]


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
    channel = protect_stdout()
    from .allocator import retain_freed_memory
    retain_freed_memory()  # a long-running server: reuse each scan's large arrays
    from .requirements import describe_problems, installed_version, missing_or_old
    problems = missing_or_old()
    if problems:
        channel.write(encode({"type": "fatal", "message": describe_problems(problems)}))
        channel.flush()
        return 2
    worker = Worker(channel)
    worker.send({"type": "ready", "protocol": PROTOCOL_VERSION, "pid": os.getpid(),
                 "python": sys.executable, "devices": describe_devices(),
                 "versions": {name: installed_version(name)
                              for name in ("torch", "monai", "SimpleITK", "numpy")}})
    worker.serve(sys.stdin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
