"""The worker's wire format, owned here: one JSON object per line both ways, typed on each
side as the dataclasses below (no torch, no Qt).

Requests (the client's stdin to the worker), each with an `id` the client chose:
    classify     one scan -> its files and result            (ClassifyRequest)
    batch        many scans -> the CLI's resumable table     (BatchRequest)
    fetch_model  a published bundle into the model cache     (FetchModelRequest)
    cancel       stop request `target` at its next stage; no answer of its own (CancelRequest)
Replies (the worker's stdout):
    ready     once, after the imports: protocol, pid, python, devices, versions  (Ready)
    progress  stage, fraction 0..1, message                                      (Progress)
    result    the final answer: `files` and `result` (classify), `summary` (batch),
              `path` (fetch_model)                                               (Result)
    error     the final answer: kind (ErrorKind) and one line                    (Error)
    log       a line on stdout that is not a message (a library's print)         (Log)
    fatal     the worker cannot run at all (missing packages)                    (Fatal)
    exited    said by the client, not the worker: the process ended             (Exited)
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from enum import Enum
from typing import ClassVar

PROTOCOL_VERSION = 2  # 2: typed messages, the cancel request


class MessageType(str, Enum):
    CLASSIFY = "classify"
    BATCH = "batch"
    FETCH_MODEL = "fetch_model"
    CANCEL = "cancel"
    READY = "ready"
    PROGRESS = "progress"
    RESULT = "result"
    ERROR = "error"
    LOG = "log"
    FATAL = "fatal"
    EXITED = "exited"


class ErrorKind(str, Enum):
    INPUT = "input"          # the user's mistake: the message names the file or option
    INTERNAL = "internal"    # a bug; the worker keeps serving
    CANCELLED = "cancelled"  # a cancel request, a kill or a scene close
    WORKER = "worker"        # the worker process went away


class ProtocolError(ValueError):
    """A line that is not a request this worker understands."""


@dataclass
class Message:
    TYPE: ClassVar[MessageType]

    def to_dict(self) -> dict:
        return {"type": self.TYPE.value} | {
            key: value.value if isinstance(value, Enum) else value
            for key, value in dataclasses.asdict(self).items()}


# -- requests ---------------------------------------------------------------------------------
@dataclass
class _ModelOptions(Message):
    model: str | None = None  # a bundle; None: the bundled default
    device: str = "auto"
    precision: str = "auto"
    cam_class: str | None = None
    tta: bool = False
    force: bool = False  # classify even when registration looks poor
    overlay: bool = False
    dicom: bool = False  # also the DICOM results of a DICOM series input (docs/dicom.md)
    id: str = ""

    @property
    def model_key(self) -> tuple[str, str, str]:
        return self.model or "", self.device or "auto", self.precision or "auto"


@dataclass
class ClassifyRequest(_ModelOptions):
    TYPE: ClassVar = MessageType.CLASSIFY
    input: str = ""
    out: str = ""
    case: str | None = None  # the name of the output files; default: from the input's name
    heatmap_format: str = "nii.gz"


@dataclass
class BatchRequest(_ModelOptions):
    TYPE: ClassVar = MessageType.BATCH
    inputs: list[str] = field(default_factory=list)
    out: str = ""
    results_csv: str | None = None
    prefetch: int = 1


@dataclass
class FetchModelRequest(Message):
    TYPE: ClassVar = MessageType.FETCH_MODEL
    url: str = ""
    sha256: str = ""
    cache: str | None = None
    id: str = ""


@dataclass
class CancelRequest(Message):
    TYPE: ClassVar = MessageType.CANCEL
    target: str = ""
    id: str = ""


Request = ClassifyRequest | BatchRequest | FetchModelRequest | CancelRequest
REQUESTS = {kind.TYPE: kind for kind in (ClassifyRequest, BatchRequest, FetchModelRequest,
                                         CancelRequest)}
REQUIRED = {MessageType.CLASSIFY: ("input", "out"), MessageType.BATCH: ("inputs", "out"),
            MessageType.FETCH_MODEL: ("url", "sha256"), MessageType.CANCEL: ("target",)}


# -- replies ----------------------------------------------------------------------------------
@dataclass
class Ready(Message):
    TYPE: ClassVar = MessageType.READY
    protocol: int = PROTOCOL_VERSION
    pid: int = 0
    python: str = ""
    devices: list[dict] = field(default_factory=list)
    versions: dict = field(default_factory=dict)


@dataclass
class Progress(Message):
    TYPE: ClassVar = MessageType.PROGRESS
    id: str = ""
    stage: str = ""
    fraction: float = 0.0
    message: str = ""


@dataclass
class Result(Message):
    """classify: `files` (role -> path) and `result` (ClassificationResult.to_dict());
    batch: `summary`; fetch_model: `path`."""
    TYPE: ClassVar = MessageType.RESULT
    id: str = ""
    files: dict = field(default_factory=dict)
    result: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    path: str = ""

    def classification(self):
        """The ClassificationResult of a classify answer, its heatmap read from its file: how
        every client rebuilds a result (the module, the web viewer)."""
        from ..result import ClassificationResult
        from ..volume import read_own_volume
        return ClassificationResult.from_dict(self.result, read_own_volume(self.files["heatmap"]))


@dataclass
class Error(Message):
    TYPE: ClassVar = MessageType.ERROR
    id: str | None = None
    kind: ErrorKind = ErrorKind.INTERNAL
    message: str = ""


@dataclass
class Log(Message):
    TYPE: ClassVar = MessageType.LOG
    message: str = ""


@dataclass
class Fatal(Message):
    TYPE: ClassVar = MessageType.FATAL
    message: str = ""


@dataclass
class Exited(Message):
    TYPE: ClassVar = MessageType.EXITED
    returncode: int | None = None
    message: str = ""


Reply = Ready | Progress | Result | Error | Log | Fatal | Exited
REPLIES = {kind.TYPE: kind for kind in (Ready, Progress, Result, Error, Log, Fatal, Exited)}
FINAL = (Result, Error)  # the last answer to a request
ENDED = (Exited, Fatal)  # the worker is gone: no request gets another answer


# -- one encoder, one decoder -----------------------------------------------------------------
def encode(message: Message) -> str:
    """One line of ASCII JSON, newline included (no newline can occur inside)."""
    return json.dumps(message.to_dict(), separators=(",", ":"), ensure_ascii=True) + "\n"


def decode_reply(line: str) -> Reply:
    """A reply from a line; a line that is not one (stray output) is a Log."""
    fields = _json_object(line)
    kind = REPLIES.get(_message_type(fields))
    if kind is None:
        return Log(line.rstrip("\r"))
    return _build(kind, fields) or Log(line.rstrip("\r"))


def decode_request(line: str) -> Request:
    """A request from a line; ProtocolError (one line) when it is not one."""
    fields = _json_object(line)
    kind = REQUESTS.get(_message_type(fields))
    if kind is None:
        raise ProtocolError(f"unknown request {line.strip()[:200]!r}; expected a JSON object "
                            f"whose type is one of {', '.join(t.value for t in REQUESTS)}")
    request = _build(kind, fields)
    if request is None:
        raise ProtocolError(f"request {fields.get('id')!r} has fields a {kind.TYPE.value} "
                            f"request does not take: {sorted(set(fields) - _names(kind))}")
    for name in REQUIRED[kind.TYPE]:
        if getattr(request, name) in (None, "", []):
            raise ProtocolError(f"request {request.id!r} lacks {name!r}")
    return request


def request_id_of(line: str) -> str | None:
    """The id of a line that could not be decoded as a request, to answer it by."""
    return (_json_object(line) or {}).get("id")


class LineDecoder:
    """Turns chunks of text, split anywhere, into whole replies."""

    def __init__(self) -> None:
        self._pending = ""

    def feed(self, text: str) -> list[Reply]:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        return [decode_reply(line) for line in lines if line.strip()]


def _json_object(line: str) -> dict | None:
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _message_type(fields: dict | None) -> MessageType | None:
    try:
        return MessageType(fields.get("type")) if fields else None
    except ValueError:
        return None


def _names(kind) -> set[str]:
    return {f.name for f in dataclasses.fields(kind)} | {"type"}


def _build(kind, fields: dict):
    if not set(fields) <= _names(kind):
        return None
    values = {key: value for key, value in fields.items() if key != "type"}
    if "id" in values and values["id"] is not None:
        values["id"] = str(values["id"])
    if kind is Error:
        try:
            values["kind"] = ErrorKind(values.get("kind", ErrorKind.INTERNAL))
        except ValueError:
            values["kind"] = ErrorKind.INTERNAL
    return kind(**values)
