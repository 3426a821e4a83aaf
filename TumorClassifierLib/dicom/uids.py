"""UIDs for the objects of one result: derived from what the result is (the source series,
the model's weights, the probabilities, the heatmap), so that a resumed run that computes the
same result writes the same UIDs - an archive keeps one copy - and any other result gets new
ones. Under the 2.25 root: a name-based UUID (version 5) as a decimal integer (PS3.5 B.2), which
needs no registered prefix. (pydicom's generate_uid ignores its entropy sources under 2.25 and
returns a random UUID.)"""

from __future__ import annotations

import hashlib
import json
import uuid


def result_fingerprint(source_series_uid: str, result) -> str:
    """What makes this result this result (a ClassificationResult and its source series)."""
    content = {"series": source_series_uid, "model": result.model,
               "probabilities": {code: round(p, 6) for code, p in result.probabilities.items()},
               "cam_class": result.cam_class, "heatmap_method": result.heatmap_method,
               "augmentations": result.augmentations, "warnings": list(result.warnings),
               "heatmap": hashlib.sha256(result.heatmap.array.tobytes()).hexdigest()}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def uid_for(fingerprint: str, role: str) -> str:
    """One UID per role ("sr-series", "sr", "pm-series", "pm", ...) of one result; also one
    per model for the device that observed ("device", with the weights' sha256)."""
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, f'{fingerprint}/{role}').int}"
