"""The worker process's wire format: one JSON object per line, both ways (no torch, no Qt).

Requests (stdin), each with an `id` chosen by the client:
    {"id": "1", "type": "classify", "input": PATH, "out": DIR, "case": NAME,
     "model": BUNDLE|null, "device": "auto", "precision": "auto", "cam_class": null,
     "tta": false, "force": false, "overlay": false, "heatmap_format": "nii.gz"|"nrrd"}
    {"id": "2", "type": "batch", "inputs": [PATH...], "out": DIR, "results_csv": PATH|null,
     "model": ..., "device": ..., ...}
    {"id": "3", "type": "fetch_model", "url": URL, "sha256": HEX, "cache": DIR|null}
Answers (stdout):
    {"type": "ready", "protocol": 1, "pid": N, "devices": [...], "versions": {...}}
    {"type": "progress", "id": ..., "stage": TEXT, "fraction": 0..1, "message": TEXT}
    {"type": "result", "id": ..., "files": {"heatmap": PATH, "probabilities": PATH},
     "result": {... ClassificationResult.to_dict() ...}}            (classify)
    {"type": "result", "id": ..., "summary": {...}}                  (batch)
    {"type": "result", "id": ..., "path": PATH}                      (fetch_model)
    {"type": "error", "id": ..., "kind": "input"|"internal", "message": ONE LINE}
A line that is not a JSON object (something printed by a library) is passed on as
{"type": "log", "message": LINE}.
"""

from __future__ import annotations

import json

PROTOCOL_VERSION = 1
REQUEST_TYPES = ("classify", "batch", "fetch_model")
FINAL_TYPES = ("result", "error")  # the last answer to a request


def encode(message: dict) -> str:
    """One line of JSON, newline included (no newline can occur inside)."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=True) + "\n"


class LineDecoder:
    """Turns chunks of text, split anywhere, into whole messages."""

    def __init__(self) -> None:
        self._pending = ""

    def feed(self, text: str) -> list[dict]:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        return [decode(line) for line in lines if line.strip()]


def decode(line: str) -> dict:
    try:
        message = json.loads(line)
    except json.JSONDecodeError:
        message = None
    if not isinstance(message, dict) or "type" not in message:
        return {"type": "log", "message": line.rstrip("\r")}
    return message
