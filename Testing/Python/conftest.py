"""Shared fixtures: small seeded volumes made from the bundled atlas, and tiny model bundles."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from TumorClassifierLib.atlas import load_atlas
from TumorClassifierLib.bundle import save_bundle
from TumorClassifierLib.geometry import centre_of, grid_around, image_index_to_world
from TumorClassifierLib.model_metadata import ModelMetadata
from TumorClassifierLib.network import NetworkConfig, TumorClassifierNet
from TumorClassifierLib.settings import PreprocessingConfig

REALDATA = Path(os.environ.get("TUMORCLASSIFIER_REALDATA",
                               Path(__file__).resolve().parents[3] / "shared" / "realdata"))
needs_realdata = pytest.mark.skipif(
    not (REALDATA / "MANIFEST.tsv").is_file(),
    reason=f"real scans not present at {REALDATA} (they are never copied into the repository)")


def pytest_collection_modifyitems(config, items):
    """Everything under integration/ is in the integration tier (`make test-quick` leaves it
    out; `make test` runs it)."""
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def atlas():
    return load_atlas()


def shrink(image: sitk.Image, factor: int = 2) -> sitk.Image:
    return sitk.BinShrink(image, [factor] * 3)


@pytest.fixture(scope="session")
def head(atlas) -> sitk.Image:
    """The atlas head with skull at 2 mm: a realistic, small 'scan'."""
    return shrink(atlas.with_skull)


def plant_lesion(image: sitk.Image, centre_mm, radius_mm: float, value: float) -> sitk.Image:
    """A copy of `image` with a bright ball at `centre_mm` (LPS world)."""
    array = sitk.GetArrayFromImage(image).astype(np.float32)
    k, j, i = np.indices(array.shape)
    points = np.stack([i, j, k], axis=-1).reshape(-1, 3).astype(float)
    world = points @ image_index_to_world(image)[:3, :3].T + np.asarray(image.GetOrigin())
    inside = (np.linalg.norm(world - np.asarray(centre_mm), axis=1) <= radius_mm)
    array.reshape(-1)[inside] = value
    result = sitk.GetImageFromArray(array)
    result.CopyInformation(image)
    return result


def restore(image: sitk.Image, direction, origin=None) -> sitk.Image:
    """Resample `image` onto a grid of the same spacing and extent but another direction
    (storage order); world content is unchanged."""
    reference = grid_around(centre_of(image), image.GetSize(), image.GetSpacing(), direction)
    if origin is not None:
        reference.SetOrigin(origin)
    return sitk.Resample(image, reference, sitk.Transform(), sitk.sitkLinear, 0.0)


TINY_NETWORK = NetworkConfig(base_filters=2, depth=3)
TINY_PREPROCESSING = PreprocessingConfig(input_shape=(32, 32, 32))


def make_tiny_bundle(path: Path, seed: int = 0, archive: bool = False) -> Path:
    torch.manual_seed(seed)
    network = TumorClassifierNet(TINY_NETWORK)
    metadata = ModelMetadata(name="tiny-test", network=TINY_NETWORK,
                             preprocessing=TINY_PREPROCESSING,
                             description="random weights, for tests only")
    return save_bundle(network, metadata, path, archive=archive)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    return make_tiny_bundle(tmp_path_factory.mktemp("bundle") / "tiny")


@pytest.fixture(scope="session")
def phantom_cohort(tmp_path_factory) -> Path:
    """One phantom each of four classes (seed 7), written as train/evaluate read them."""
    from TumorClassifierLib.phantoms.cohort import write_cohort
    return write_cohort(tmp_path_factory.mktemp("phantoms"), per_class=1, seed=7,
                        classes=("HGG", "PITADE", "ACSCHW", "HEALTHY"))


@pytest.fixture(scope="session")
def preprocessing_cache(tmp_path_factory) -> Path:
    """Shared by the training tests, so each scan is registered once per test session."""
    return tmp_path_factory.mktemp("cache")


def modules_loaded_by(code: str, modules: tuple[str, ...]) -> list[str]:
    """Which of `modules` a fresh interpreter has imported after running `code`."""
    import ast
    import subprocess
    import sys
    probe = f"import sys\n{code}\nprint(sorted(m for m in {modules!r} if m in sys.modules))"
    output = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True).stdout.strip()
    return ast.literal_eval(output)
