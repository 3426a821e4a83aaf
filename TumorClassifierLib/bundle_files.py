"""A model bundle's two files, read from its folder or .zip without torch: for loading the
model (bundle.py) and for reading its metadata alone (model_metadata.py)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from .errors import InputError
from .resources import default_model_dir

WEIGHTS_FILE = "model.safetensors"
METADATA_FILE = "metadata.json"
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin")


def default_bundle() -> Path:
    """The bundled default model's folder; InputError when none is installed."""
    path = default_model_dir()
    if not (path / METADATA_FILE).is_file():
        raise InputError(f"no default model is installed ({path / METADATA_FILE} is "
                         "missing); pass a model bundle with --model, or train one with "
                         "'tumorclassifier train'")
    return path


def read_bundle_files(path: Path, weights: bool = True) -> tuple[str, bytes]:
    """(metadata text, weights bytes - empty when not `weights`)."""
    if not path.exists():
        raise InputError(f"{path}: no such model bundle")
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise InputError(f"{path}: is a pickle-based PyTorch file; models are only loaded from "
                         "safetensors bundles, because unpickling can run arbitrary code")
    if path.is_dir():
        metadata_file, weights_file = path / METADATA_FILE, path / WEIGHTS_FILE
        for file in (metadata_file, weights_file):
            if not file.is_file():
                raise InputError(f"{path}: not a model bundle ({file.name} is missing)")
        return (metadata_file.read_text(encoding="utf-8"),
                weights_file.read_bytes() if weights else b"")
    try:
        with zipfile.ZipFile(path) as bundle_zip:
            names = {Path(name).name: name for name in bundle_zip.namelist()}
            if METADATA_FILE not in names or WEIGHTS_FILE not in names:
                raise InputError(f"{path}: not a model bundle (needs {METADATA_FILE} and "
                                 f"{WEIGHTS_FILE})")
            return (bundle_zip.read(names[METADATA_FILE]).decode("utf-8"),
                    bundle_zip.read(names[WEIGHTS_FILE]) if weights else b"")
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise InputError(f"{path}: not a model bundle folder or a readable .zip "
                         f"({error})") from None
