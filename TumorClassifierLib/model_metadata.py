"""A model's metadata, its card and their reading, without torch: the bundle loader
(bundle.py), the command line, the Slicer module and the background loader all read a model's
settings through here.

The metadata says everything needed to use the weights correctly: class codes and names, the
input shape, the whole preprocessing and network configuration, how to run and explain the
network (InferenceConfig), the atlas the model was trained against (by hash), the training
record, software versions and the weights' sha256.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .bundle_files import METADATA_FILE, default_bundle, read_bundle_files
from .classes import CLASS_CODES, DISPLAY_NAMES
from .configuration import from_dict
from .errors import InputError
from .settings import HEATMAP_METHODS, NetworkConfig, PreprocessingConfig

FORMAT = "tumorclassifier-model"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class InferenceConfig:
    low_confidence_threshold: float = 0.5  # below this top probability, warn the user
    # The heatmap: HiResCAM at level 2, a 32^3 grid at 128^3 input (docs/decisions.md).
    heatmap_method: str = "hirescam"  # or "gradcam" (gradcam.METHODS)
    heatmap_level: int = 2  # encoder level whose output is explained (0: full resolution)
    # Temperature scaling (Guo et al. 2017): probabilities are softmax(logits / temperature),
    # fitted on validation heads after training (training/calibration.py); 1: none.
    temperature: float = 1.0
    # The spatial axes (0: K, 1: J, 2: I = left-right) the network was trained flipped along:
    # test-time augmentation averages over every combination of these.
    tta_flip_axes: tuple[int, ...] = (0, 1, 2)
    # What the network's pooled features looked like on validation heads (mean and spread per
    # feature) and the distance that 99% of them stayed under: a scan further away gets a
    # warning that it is unlike the training data. Empty: no such check.
    feature_mean: tuple[float, ...] = ()
    feature_spread: tuple[float, ...] = ()
    feature_distance_limit: float = 0.0

    def __post_init__(self) -> None:
        if self.heatmap_method not in HEATMAP_METHODS:
            raise ValueError(f"heatmap_method must be one of {', '.join(HEATMAP_METHODS)}, not "
                             f"{self.heatmap_method!r}")
        if not isinstance(self.heatmap_level, int) or self.heatmap_level < 0:
            raise ValueError(f"heatmap_level must be a whole number >= 0, not "
                             f"{self.heatmap_level!r}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, not {self.temperature!r}")
        if any(axis not in (0, 1, 2) for axis in self.tta_flip_axes):
            raise ValueError(f"tta_flip_axes must be among 0, 1, 2, not {self.tta_flip_axes!r}")
        if len(self.feature_mean) != len(self.feature_spread):
            raise ValueError("feature_mean and feature_spread must have the same length")


@dataclass(frozen=True)
class ModelMetadata:
    name: str
    class_codes: tuple[str, ...] = CLASS_CODES
    display_names: dict = field(default_factory=lambda: dict(DISPLAY_NAMES))
    preprocessing: PreprocessingConfig = field(default_factory=PreprocessingConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    atlas_sha256: str = ""
    description: str = ""
    training: dict = field(default_factory=dict)  # free-form record: data, protocol, metrics
    software: dict = field(default_factory=dict)
    weights_sha256: str = ""
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if len(self.class_codes) != self.network.num_classes:
            raise ValueError(f"{len(self.class_codes)} class codes for a network with "
                             f"{self.network.num_classes} outputs")
        missing = [code for code in self.class_codes if code not in self.display_names]
        if missing:
            raise ValueError(f"display_names lacks {', '.join(missing)}")

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """(C, K, J, I) of one network input."""
        i, j, k = self.preprocessing.input_shape
        return (self.network.in_channels, k, j, i)


def read_model_metadata(path: str | os.PathLike | None = None) -> ModelMetadata:
    """A bundle's metadata (None: the bundled default model), without its weights."""
    path = Path(path) if path else default_bundle()
    text, _ = read_bundle_files(path, weights=False)
    return parse_metadata(text, path)


def parse_metadata(text: str, path: Path) -> ModelMetadata:
    """A bundle's metadata.json text, checked strictly (unknown keys are errors); InputError
    naming the bundle."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: {METADATA_FILE} is not valid JSON ({error})") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise InputError(f"{path}: {METADATA_FILE} is not TumorClassifier model metadata")
    version = raw.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise InputError(f"{path}: model format version {version} is newer than this "
                         f"TumorClassifier understands ({FORMAT_VERSION}); please update")
    return from_dict(ModelMetadata, raw, f"{path}: {METADATA_FILE}")


def model_card(metadata: ModelMetadata) -> dict:
    """What a person is shown about a model: name, description, classes, input, training."""
    training = metadata.training
    return {"name": metadata.name, "description": metadata.description,
            "classes": [metadata.display_names.get(code, code) for code in metadata.class_codes],
            "input_shape": list(metadata.preprocessing.input_shape),
            "trained_on": training.get("data") or "a labelled cohort",
            "weights_sha256": metadata.weights_sha256}
