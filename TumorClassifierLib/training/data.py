"""Training data: each scan is preprocessed once and cached on disk (MONAI PersistentDataset),
keyed by the file's content, the preprocessing configuration and the atlas; the paper's random
flips are applied on top, every time a case is drawn."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from monai.data import PersistentDataset
from monai.transforms import (
    Compose,
    MapTransform,
    RandAffined,
    RandFlipd,
    RandGaussianNoised,
    RandGaussianSmoothd,
    RandScaleIntensityd,
)

from ..atlas import load_atlas
from ..configuration import to_dict
from ..manifest import Case
from ..preprocessing import PREPROCESSING_REVISION, preprocess
from ..settings import AUGMENTATIONS, PreprocessingConfig
from ..volume import read_sitk_image


class PreprocessScan(MapTransform):
    """{"image": path, "brain_mask": path or ""} -> {"image": (1, K, J, I) float32 tensor}."""

    def __init__(self, config: PreprocessingConfig) -> None:
        super().__init__(keys=["image"])
        self.config = config

    def __call__(self, item: dict) -> dict:
        image = read_sitk_image(item["image"])
        mask = read_sitk_image(item["brain_mask"]) if item.get("brain_mask") else None
        prepared = preprocess(image, self.config, mask=mask, allow_poor_registration=True,
                              name=str(item["image"]))
        result = dict(item)
        result["image"] = torch.from_numpy(prepared.tensor)
        result["registration_ok"] = prepared.registration.ok
        return result


def content_hash_function(config: PreprocessingConfig):
    """MONAI cache key: the scan's bytes (every file of a DICOM folder), its mask's bytes, the
    preprocessing configuration and code revision, and the atlas identity - a renamed file
    reuses its cache, a changed one does not."""
    settings = (json.dumps(to_dict(config), sort_keys=True) + load_atlas().identity
                + f"revision {PREPROCESSING_REVISION}")

    def hash_item(item: dict) -> bytes:
        digest = hashlib.sha256(settings.encode())
        for key in ("image", "brain_mask"):
            if item.get(key):
                for file in _files_of(Path(item[key])):
                    digest.update(hashlib.sha256(file.read_bytes()).digest())
        return digest.hexdigest().encode()

    return hash_item


def _files_of(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]


def items_of(cases: list[Case], class_codes: tuple[str, ...]) -> list[dict]:
    return [{"image": str(case.path), "brain_mask": str(case.brain_mask or ""),
             "label": class_codes.index(case.label), "case": case.name} for case in cases]




def augmentation_transforms(augmentation: str, flip_probability: float = 0.5) -> list:
    """"paper": the paper's only augmentation, a flip of each spatial axis. "extended": those
    flips, then MONAI's random affine (rotation up to 10 degrees, scale +-10%, shift up to 6
    voxels), intensity scaling, blur and noise - applied inside the brain only, so that the
    network still sees zeros outside it, as at inference."""
    if augmentation not in AUGMENTATIONS:
        raise ValueError(f"augmentation must be one of {', '.join(AUGMENTATIONS)}, not "
                         f"{augmentation!r}")
    transforms = [RandFlipd(keys="image", prob=flip_probability, spatial_axis=axis)
                  for axis in range(3)]
    if augmentation == "extended":
        transforms += [
            RandAffined(keys="image", prob=0.5, rotate_range=(0.17, 0.17, 0.17),
                        scale_range=(0.1, 0.1, 0.1), translate_range=(6, 6, 6),
                        mode="bilinear", padding_mode="zeros"),
            RememberBrain(),
            RandScaleIntensityd(keys="image", factors=0.15, prob=0.5),
            RandGaussianSmoothd(keys="image", sigma_x=(0.4, 1.0), sigma_y=(0.4, 1.0),
                                sigma_z=(0.4, 1.0), prob=0.2),
            RandGaussianNoised(keys="image", std=0.1, prob=0.2),
            ZeroOutsideBrain(),
        ]
    return transforms


class RememberBrain(MapTransform):
    """Where the (already moved) network input is not zero: the brain."""

    def __init__(self) -> None:
        super().__init__(keys=["image"])

    def __call__(self, item: dict) -> dict:
        return dict(item) | {"_brain": item["image"] != 0}


class ZeroOutsideBrain(MapTransform):
    def __init__(self) -> None:
        super().__init__(keys=["image"])

    def __call__(self, item: dict) -> dict:
        result = {key: value for key, value in item.items() if key != "_brain"}
        result["image"] = item["image"] * item["_brain"]
        return result


def make_dataset(cases: list[Case], class_codes: tuple[str, ...], config: PreprocessingConfig,
                 cache_dir: str | os.PathLike, augment: bool,
                 flip_probability: float = 0.5, augmentation: str = "paper") -> PersistentDataset:
    transforms = [PreprocessScan(config)]
    if augment:
        transforms += augmentation_transforms(augmentation, flip_probability)
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    return PersistentDataset(items_of(cases, class_codes), Compose(transforms),
                             cache_dir=str(cache_dir), hash_func=content_hash_function(config))


def class_weights(labels: list[int], num_classes: int) -> torch.Tensor:
    """The paper's 'balanced' weights N / (C * n_c); a class absent from training gets 0."""
    counts = np.bincount(labels, minlength=num_classes).astype(float)
    weights = np.where(counts > 0, len(labels) / (num_classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(weights, dtype=torch.float32)
