import csv

import pytest
import torch

from TumorClassifierLib.bundle import load_bundle
from TumorClassifierLib.manifest import read_manifest
from TumorClassifierLib.network import NetworkConfig
from TumorClassifierLib.settings import PreprocessingConfig, TrainingConfig
from TumorClassifierLib.training.data import class_weights
from TumorClassifierLib.training.trainer import train

TINY = NetworkConfig(base_filters=2, depth=3)
SMALL = PreprocessingConfig(input_shape=(32, 32, 32))


def quick(**overrides) -> TrainingConfig:
    values = dict(folds=2, batch_size=2, loader_workers=0, learning_rate=5e-3, seed=0)
    values.update(overrides)
    return TrainingConfig(**values)


def history(out):
    with open(out / "training" / "history.csv", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_a_few_epochs_lower_the_loss_and_save_a_bundle(phantom_cohort, preprocessing_cache,
                                                       tmp_path):
    cases = read_manifest(phantom_cohort)
    out = train(cases, tmp_path / "model", quick(max_epochs=6, flip_probability=0.0), TINY,
                SMALL, cache_dir=preprocessing_cache, progress=False)
    losses = [float(row["train_loss"]) for row in history(out)]
    assert losses[-1] < losses[0]
    bundle = load_bundle(out)
    record = bundle.metadata.training
    assert record["epochs_run"] == 6 and 1 <= record["best_epoch"] <= 6
    assert sum(record["training_cases"].values()) + sum(record["validation_cases"].values()) \
        == len(cases)
    assert (out / "training" / "history.png").stat().st_size > 1000
    for row in history(out):  # the pace every run records
        assert float(row["volumes_per_second"]) > 0
        assert 0 <= float(row["data_wait_share"]) <= 1


@pytest.mark.slow
def test_resumed_run_continues_from_its_checkpoint(phantom_cohort, preprocessing_cache,
                                                   tmp_path):
    cases = read_manifest(phantom_cohort)
    whole = train(cases, tmp_path / "whole", quick(max_epochs=4), TINY, SMALL,
                  cache_dir=preprocessing_cache, progress=False)
    part = train(cases, tmp_path / "part", quick(max_epochs=2), TINY, SMALL,
                 cache_dir=preprocessing_cache, progress=False)
    first_two = history(part)
    resumed = train(cases, tmp_path / "part", quick(max_epochs=4), TINY, SMALL,
                    cache_dir=preprocessing_cache, resume=True, progress=False)
    rows = history(resumed)
    assert [r["epoch"] for r in rows] == ["1", "2", "3", "4"]
    assert rows[:2] == first_two  # the first epochs are kept, not rerun
    # Same seeds, same data order: the resumed run ends where the uninterrupted one does.
    for a, b in zip(history(whole), rows):
        assert float(a["train_loss"]) == pytest.approx(float(b["train_loss"]), rel=1e-4)


def test_resume_without_a_checkpoint_is_a_clear_error(tmp_path):
    from TumorClassifierLib.errors import InputError
    from TumorClassifierLib.resources import sample_data_dir
    with pytest.raises(InputError, match="no checkpoint"):
        train(read_manifest(sample_data_dir() / "manifest.csv"), tmp_path / "none",
              quick(max_epochs=1), TINY,
              SMALL, cache_dir=tmp_path / "cache", resume=True, progress=False)


def test_balanced_class_weights_follow_the_paper():
    weights = class_weights([0, 0, 0, 1], 3)
    # N / (C * n_c): 4 / (3 * 3) and 4 / (3 * 1); an absent class gets 0
    assert torch.allclose(weights, torch.tensor([4 / 9, 4 / 3, 0.0]))


@pytest.mark.slow
def test_training_can_start_from_another_resolutions_bundle(phantom_cohort,
                                                            preprocessing_cache, tmp_path):
    from TumorClassifierLib.errors import InputError
    cases = read_manifest(phantom_cohort)
    low = train(cases, tmp_path / "low", quick(max_epochs=1), TINY, SMALL,
                cache_dir=preprocessing_cache, progress=False)
    higher = PreprocessingConfig(input_shape=(48, 48, 48))
    high = train(cases, tmp_path / "high", quick(max_epochs=1), TINY, higher,
                 cache_dir=preprocessing_cache, progress=False, init_from=low)
    record = load_bundle(high).metadata.training["initialised_from"]
    assert record["weights_sha256"] == load_bundle(low).metadata.weights_sha256
    assert record["input_shape"] == [32, 32, 32]
    with pytest.raises(InputError, match="network configuration differs"):
        train(cases, tmp_path / "other", quick(max_epochs=1), NetworkConfig(base_filters=4,
                                                                            depth=3),
              SMALL, cache_dir=preprocessing_cache, progress=False, init_from=low)


@pytest.mark.slow
def test_extended_augmentation_trains_and_the_bundle_records_it(phantom_cohort,
                                                               preprocessing_cache, tmp_path):
    cases = read_manifest(phantom_cohort)
    out = train(cases, tmp_path / "model", quick(max_epochs=2, augmentation="extended"), TINY,
                SMALL, cache_dir=preprocessing_cache, progress=False)
    record = load_bundle(out).metadata.training
    assert record["epochs_run"] == 2
    assert record["protocol"]["augmentation"] == "extended"  # the model card says so
