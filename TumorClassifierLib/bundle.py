"""Model bundles: a folder (or a .zip of it) holding `model.safetensors` and `metadata.json`.

The metadata (model_metadata.py, torch-free) says everything needed to use the weights
correctly; loading checks it against the weights (sha256, shapes, finite values) and the
installed atlas, and never unpickles anything.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from .atlas import load_atlas
from .bundle_files import METADATA_FILE, WEIGHTS_FILE, default_bundle, read_bundle_files
from .configuration import to_dict
from .errors import InputError
from .files import atomic_output
from .model_metadata import InferenceConfig, ModelMetadata, parse_metadata
from .network import TumorClassifierNet

__all__ = ["InferenceConfig", "ModelBundle", "ModelMetadata", "load_bundle", "save_bundle",
           "software_versions"]

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
    metadata = parse_metadata(metadata_text, path)
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


def _check_finite(state: dict, path: Path) -> None:
    # The metadata's checks and the strict load fix the output's shape; what is left to go
    # wrong is a NaN or infinite weight (a diverged training), which would give NaN outputs.
    # A sum is NaN or infinite whenever a value is, and costs a tenth of isfinite().all();
    # only a non-finite sum (or an overflowing one) is looked at element by element.
    floating = {name: tensor for name, tensor in state.items() if tensor.is_floating_point()}
    if not floating:
        return
    sums = torch.stack([tensor.sum(dtype=torch.float64) for tensor in floating.values()])
    if bool(torch.isfinite(sums).all()):
        return
    for name, tensor in floating.items():
        if not torch.isfinite(tensor).all():
            raise InputError(f"{path}: the weights hold NaN or infinite values ({name}); the "
                             "training that made them diverged")
