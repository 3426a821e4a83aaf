import shutil

import numpy as np
import pytest
import torch

from TumorClassifierLib.settings import PreprocessingConfig
from TumorClassifierLib.training import data as training_data
from TumorClassifierLib.training.data import content_hash_function


def test_cache_key_follows_content_settings_and_code_revision(tmp_path, monkeypatch):
    first = tmp_path / "a.nii.gz"
    first.write_bytes(b"scan bytes")
    renamed = tmp_path / "renamed.nii.gz"
    shutil.copy(first, renamed)
    changed = tmp_path / "changed.nii.gz"
    changed.write_bytes(b"other bytes")
    key = content_hash_function(PreprocessingConfig())
    assert key({"image": str(first)}) == key({"image": str(renamed)})
    assert key({"image": str(first)}) != key({"image": str(changed)})
    other_settings = content_hash_function(PreprocessingConfig(input_shape=(64, 64, 64)))
    assert other_settings({"image": str(first)}) != key({"image": str(first)})
    monkeypatch.setattr(training_data, "PREPROCESSING_REVISION",
                        training_data.PREPROCESSING_REVISION + 1)
    assert content_hash_function(PreprocessingConfig())({"image": str(first)}) != \
        key({"image": str(first)})



def ball_input(seed: int = 0):
    """A network input as preprocessing makes it: z-scored values in a ball, zeros outside."""
    k, j, i = np.indices((24, 24, 24))
    inside = (k - 12) ** 2 + (j - 11) ** 2 + (i - 13) ** 2 < 64
    values = np.zeros((24, 24, 24), np.float32)
    values[inside] = np.random.default_rng(seed).normal(0, 1, inside.sum())
    return {"image": torch.from_numpy(values[np.newaxis])}


def test_paper_augmentation_is_the_three_flips_only():
    from monai.transforms import RandFlipd

    from TumorClassifierLib.training.data import augmentation_transforms
    transforms = augmentation_transforms("paper", 0.5)
    assert len(transforms) == 3 and all(isinstance(t, RandFlipd) for t in transforms)
    with pytest.raises(ValueError, match="augmentation must be one of"):
        augmentation_transforms("strong")


def test_extended_augmentation_moves_and_changes_but_keeps_zeros_outside_the_brain():
    from monai.transforms import Compose

    from TumorClassifierLib.training.data import augmentation_transforms
    chain = Compose(augmentation_transforms("extended", 0.5)).set_random_state(3)
    outputs = [chain(ball_input()) for _ in range(8)]
    original = ball_input()["image"]
    assert all(o["image"].shape == original.shape and "_brain" not in o for o in outputs)
    assert any(not torch.equal(o["image"], original) for o in outputs)
    for output in outputs:
        image = torch.as_tensor(output["image"])
        outside = image == 0
        assert 0.75 < outside.float().mean() < 0.99  # a ball still, and zeros around it
    again = Compose(augmentation_transforms("extended", 0.5)).set_random_state(3)
    assert torch.equal(torch.as_tensor(again(ball_input())["image"]),
                       torch.as_tensor(outputs[0]["image"]))


def test_training_config_refuses_an_unknown_augmentation():
    from TumorClassifierLib.settings import TrainingConfig
    assert TrainingConfig(augmentation="extended").augmentation == "extended"
    with pytest.raises(ValueError, match="augmentation must be one of paper, extended"):
        TrainingConfig(augmentation="strong")
