"""Model bundles: a folder (or a .zip of it) holding `model.safetensors` and `metadata.json`.

The metadata says everything needed to use the weights correctly: class codes and names, the
input shape, the whole preprocessing and network configuration, the atlas the model was trained
against (by hash), the training record, software versions and the weights' sha256. Loading
checks all of that, runs a small fake input through the network, and never unpickles anything.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from .atlas import load_atlas
from .bundle_files import METADATA_FILE, WEIGHTS_FILE, default_bundle, read_bundle_files
from .classes import CLASS_CODES, DISPLAY_NAMES
from .configuration import from_dict, to_dict
from .errors import InputError
from .network import NetworkConfig, TumorClassifierNet
from .settings import PreprocessingConfig
from .volume import atomic_output

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
        from .gradcam import METHODS
        if self.heatmap_method not in METHODS:
            raise ValueError(f"heatmap_method must be one of {', '.join(METHODS)}, not "
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


@dataclass(frozen=True, eq=False)
class ModelBundle:
    network: TumorClassifierNet  # in eval mode, on the CPU
    metadata: ModelMetadata
    path: Path | None = None


@functools.cache
def software_versions() -> dict:
    import monai
    import numpy
    import SimpleITK

    from . import __version__
    return {"tumorclassifier": __version__, "torch": torch.__version__,
            "monai": monai.__version__, "simpleitk": SimpleITK.Version.VersionString(),
            "numpy": numpy.__version__, "python": platform.python_version()}


def save_bundle(network: TumorClassifierNet, metadata: ModelMetadata, path: str | os.PathLike,
                archive: bool | None = None, weights_dtype: torch.dtype | None = None) -> Path:
    """Write a bundle folder, or a .zip archive when `path` ends in .zip (or `archive`); each
    file is written under a temporary name and renamed into place. `weights_dtype`: store the
    floating-point weights in this type (torch.float16 halves the file; loading widens them
    back to the network's float32)."""
    path = Path(path)
    archive = path.suffix.lower() == ".zip" if archive is None else archive

    def stored(tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.detach().cpu()
        if weights_dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(weights_dtype)
        return tensor.contiguous()
    weights = save_safetensors({k: stored(v) for k, v in network.state_dict().items()})
    metadata_dict = to_dict(metadata)
    metadata_dict.update(weights_sha256=hashlib.sha256(weights).hexdigest(),
                         atlas_sha256=metadata.atlas_sha256 or load_atlas().identity,
                         software=metadata.software or software_versions())
    text = json.dumps(metadata_dict, indent=2)
    if archive:
        with atomic_output(path, ".zip") as temporary:
            with zipfile.ZipFile(temporary, "w", zipfile.ZIP_STORED) as bundle_zip:
                bundle_zip.writestr(METADATA_FILE, text)
                bundle_zip.writestr(WEIGHTS_FILE, weights)
    else:
        # Weights first, metadata last: it carries the weights' hash, so a crash between the
        # two leaves a bundle that loading refuses, never one that loads the wrong weights.
        # Other files in the folder (a training log) are kept.
        with atomic_output(path / WEIGHTS_FILE, ".safetensors") as temporary:
            temporary.write_bytes(weights)
        with atomic_output(path / METADATA_FILE, ".json") as temporary:
            temporary.write_text(text, encoding="utf-8")
    return path


def load_bundle(path: str | os.PathLike | None = None) -> ModelBundle:
    """Load and verify a bundle; `None` loads the bundled default model. InputError on any
    problem, naming the bundle."""
    path = default_bundle() if path is None else Path(path)
    metadata_text, weights = read_bundle_files(path)
    try:
        raw = json.loads(metadata_text)
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: {METADATA_FILE} is not valid JSON ({error})") from None
    metadata = _parse_metadata(raw, path)
    if hashlib.sha256(weights).hexdigest() != metadata.weights_sha256:
        raise InputError(f"{path}: the weights do not match the sha256 in {METADATA_FILE}; "
                         "the file was changed or damaged")
    if metadata.atlas_sha256 != load_atlas().identity:
        raise InputError(f"{path}: the model was trained against a different atlas "
                         f"(sha256 {metadata.atlas_sha256[:12]}...) than the one installed")
    network = TumorClassifierNet(metadata.network)
    try:
        state = load_safetensors(weights)
        network.load_state_dict(state, strict=True)
    except Exception as error:  # safetensors raises its own error types
        raise InputError(f"{path}: weights do not fit the network configuration "
                         f"({str(error).splitlines()[0]})") from None
    _check_finite(state, path)
    network.eval()
    return ModelBundle(network, metadata, path)


def _parse_metadata(raw: dict, path: Path) -> ModelMetadata:
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise InputError(f"{path}: {METADATA_FILE} is not TumorClassifier model metadata")
    version = raw.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise InputError(f"{path}: model format version {version} is newer than this "
                         f"TumorClassifier understands ({FORMAT_VERSION}); please update")
    metadata = from_dict(ModelMetadata, raw, f"{path}: {METADATA_FILE}")
    return metadata


def _check_finite(state: dict, path: Path) -> None:
    # The metadata's checks and the strict load fix the output's shape; what is left to go
    # wrong is a NaN or infinite weight (a diverged training), which would give NaN outputs.
    for name, tensor in state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise InputError(f"{path}: the weights hold NaN or infinite values ({name}); the "
                             "training that made them diverged")
