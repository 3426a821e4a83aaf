"""`train --synthetic`: heads drawn at training time, evaluations in place of epochs, a
progress log, and a resumed run that ends exactly where an uninterrupted one does."""

from __future__ import annotations

import json

import pytest
import torch

from TumorClassifierLib.bundle import load_bundle
from TumorClassifierLib.cli import main
from TumorClassifierLib.errors import InputError
from TumorClassifierLib.settings import (
    NetworkConfig,
    PreprocessingConfig,
    SyntheticConfig,
    TrainingConfig,
)
from TumorClassifierLib.training.synthetic import train_synthetic

TINY = NetworkConfig(base_filters=2, depth=3)
GRID = PreprocessingConfig(input_shape=(32, 32, 32))
CONFIG = TrainingConfig(batch_size=4, loader_workers=0, seed=3)


def synthetic(max_samples: int) -> SyntheticConfig:
    return SyntheticConfig(max_samples=max_samples, evaluate_every=8, validation_per_class=1,
                           held_out_family="sdf")


@pytest.mark.slow
def test_a_run_logs_its_progress_and_a_resumed_run_ends_where_a_whole_one_does(tmp_path):
    whole = train_synthetic(tmp_path / "whole", CONFIG, synthetic(16), TINY, GRID,
                            device="cpu", progress=False)
    train_synthetic(tmp_path / "parts", CONFIG, synthetic(8), TINY, GRID, device="cpu",
                    progress=False)
    parts = train_synthetic(tmp_path / "parts", CONFIG, synthetic(16), TINY, GRID,
                            device="cpu", resume=True, progress=False)
    lines = [json.loads(line) for line in
             (whole / "training" / "progress.jsonl").read_text().splitlines()]
    assert [line["samples"] for line in lines] == [8, 16]
    for key in ("volumes_per_second", "data_wait_share", "heldout_family_accuracy",
                "training_families_accuracy", "cpu", "precision"):
        assert key in lines[-1]
    a, b = load_bundle(whole), load_bundle(parts)
    for name, tensor in a.network.state_dict().items():
        assert torch.equal(tensor, b.network.state_dict()[name]), name
    record = a.metadata.training
    assert record["training_families"] == ["lumpy", "cluster", "field"]
    assert record["samples_seen"] == 16 and record["flip_axes"] == [2]
    assert a.metadata.preprocessing.input_shape == (32, 32, 32)
    inference = a.metadata.inference  # calibrated on the validation heads
    assert inference.tta_flip_axes == (2,) and inference.temperature > 0
    assert len(inference.feature_mean) == 8 and inference.feature_distance_limit > 0
    assert inference.heatmap_level == 0  # the 32^3 grid of 7.5 mm cells is the input's own


@pytest.mark.slow
def test_max_epochs_counts_evaluation_stretches(tmp_path):
    from dataclasses import replace
    out = train_synthetic(tmp_path / "one", replace(CONFIG, max_epochs=1), synthetic(0), TINY,
                          GRID, device="cpu", progress=False)
    assert load_bundle(out).metadata.training["samples_seen"] == 8


def test_resume_without_a_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="no checkpoint to resume from"):
        train_synthetic(tmp_path / "none", CONFIG, synthetic(8), TINY, GRID, device="cpu",
                        resume=True, progress=False)


@pytest.mark.parametrize("arguments, message", [
    (["--synthetic", "--held-out-family", "watercolour"], "invalid choice: 'watercolour'"),
    (["--synthetic", "--manifest", "m.csv"], "not allowed with argument"),
    ([], "one of the arguments --manifest --synthetic is required")])
def test_a_bad_family_or_a_wrong_source_is_a_usage_error(tmp_path, capsys, arguments, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--out", str(tmp_path)] + arguments)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_the_heatmap_keeps_the_products_cell_size_at_every_input_size():
    from TumorClassifierLib.training.synthetic import heatmap_level_for
    assert [heatmap_level_for((n,) * 3, NetworkConfig()) for n in (32, 64, 128)] == [0, 1, 2]
    assert heatmap_level_for((256,) * 3, NetworkConfig(depth=3)) == 2  # no deeper level
