"""Training with the paper's protocol (Chakrabarty et al. 2021; docs/method.md), every value
overridable:

Adam 5e-4, batch 5, up to 200 epochs, ReduceLROnPlateau on validation loss (0.5, patience 10),
early stopping on validation loss (patience 50), cross-entropy with balanced class weights
N / (C n_c) applied per sample, L2 1e-5 on conv and dense kernels, random flips of each axis,
k-fold cross-validation (8) stratified by class and grouped by patient; the checkpoint with the
best validation accuracy (ties: lowest validation loss) becomes the model bundle.

Runs the same under `torchrun` (DistributedDataParallel; gloo on CPU, NCCL on GPUs).

`train()` only strings the parts together, as MONAI's engines and handlers do: set-up
(preparation.py), one epoch (epoch.py), the best-epoch and stopping policy (state.py), what is
kept as it goes (checkpoint.py), and the bundle written at the end (here).
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import torch.distributed as dist

from ..bundle import save_bundle
from ..classes import DISPLAY_NAMES
from ..configuration import to_dict
from ..errors import InputError
from ..manifest import Case
from ..model_metadata import ModelMetadata
from ..settings import NetworkConfig, PreprocessingConfig, TrainingConfig
from .checkpoint import (
    load_best_weights,
    load_checkpoint,
    save_best_weights,
    save_checkpoint,
    write_history,
)
from .epoch import Optimisation, run_epoch
from .preparation import TrainingRun, prepare_run
from .state import TrainingState


def train(cases: list[Case], out: str | os.PathLike, config: TrainingConfig = TrainingConfig(),
          network_config: NetworkConfig = NetworkConfig(),
          preprocessing: PreprocessingConfig = PreprocessingConfig(),
          cache_dir: str | os.PathLike | None = None, device: str = "auto",
          resume: bool = False, name: str = "tumorclassifier", description: str = "",
          progress: bool = True, init_from: str | os.PathLike | None = None) -> Path | None:
    """Train one fold's model and write it as a bundle at `out` (logs in `out/training/`).
    Returns the bundle's path; under torchrun only rank 0 writes it and gets it back.
    `init_from`: a bundle whose weights start the training (same network, any input size:
    the network is fully convolutional), e.g. one trained at a lower resolution first."""
    started = time.monotonic()  # --max-hours counts the preprocessing too
    out = Path(out)
    if resume and not (out / "training" / "last.pt").is_file():
        raise InputError(f"{out / 'training' / 'last.pt'}: no checkpoint to resume from")
    run = prepare_run(cases, out, config, network_config, preprocessing, cache_dir, device,
                      init_from, progress)
    if resume:
        state = load_checkpoint(run.log_dir, run.network, run.optimizer, run.scheduler)
    else:
        state = TrainingState()
        if run.rank == 0:
            run.log_dir.mkdir(parents=True, exist_ok=True)
    optimisation = Optimisation(run.optimizer, run.class_weights, config.weight_decay_l2)
    while state.epoch < config.max_epochs:
        epoch_start = time.monotonic()
        title = f"epoch {state.epoch + 1}/{config.max_epochs}" if progress and run.rank == 0 \
            else ""
        trained = run_epoch(run.model, run.network, run.train_loader(state.epoch), run.device,
                            run.dtype, optimisation, title)
        validated = run_epoch(run.model, run.network, run.val_loader, run.device, run.dtype)
        run.scheduler.step(validated.loss)
        improved = state.record_epoch(validated.loss, validated.accuracy, {
            "train_loss": trained.loss, "train_accuracy": trained.accuracy,
            "val_loss": validated.loss, "val_accuracy": validated.accuracy,
            "learning_rate": run.optimizer.param_groups[0]["lr"],
            "seconds": round(time.monotonic() - epoch_start, 1)} | trained.pace)
        if run.rank == 0:
            keep(run, state, improved)
        if state.should_stop_early(config, started):
            break
    if run.rank == 0:
        write_model_bundle(run, state, cases, network_config, preprocessing, name, description,
                           out)
    if run.world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return out if run.rank == 0 else None


def keep(run: TrainingRun, state: TrainingState, improved: bool) -> None:
    """After each epoch (rank 0): the best weights when they improved, the checkpoint, the
    history and one line on stdout."""
    if improved:
        save_best_weights(run.log_dir, run.network)
    save_checkpoint(run.log_dir, run.network, run.optimizer, run.scheduler, state)
    write_history(run.log_dir, state.history)
    last = state.history[-1]
    print(f"epoch {state.epoch}: train loss {last['train_loss']:.4f} acc "
          f"{last['train_accuracy']:.3f} | val loss {last['val_loss']:.4f} acc "
          f"{last['val_accuracy']:.3f} | lr {last['learning_rate']:.2e}"
          f"{' *' if improved else ''}", flush=True)


def write_model_bundle(run: TrainingRun, state: TrainingState, cases: list[Case],
                       network_config: NetworkConfig, preprocessing: PreprocessingConfig,
                       name: str, description: str, out: Path) -> None:
    """The best epoch's weights as a model bundle, with the training record."""
    load_best_weights(run.log_dir, run.network)
    record = training_record(cases, run, state)
    if run.start_weights:
        record["initialised_from"] = run.start_weights
    metadata = ModelMetadata(name=name, description=description, preprocessing=preprocessing,
                             network=network_config, class_codes=run.codes,
                             display_names=dict(DISPLAY_NAMES), training=record)
    save_bundle(run.network.cpu(), metadata, out)


def training_record(cases: list[Case], run: TrainingRun, state: TrainingState) -> dict:
    def counts(group):
        return {code: sum(c.label == code for c in group) for code in run.codes}
    config = run.config
    listing = "\n".join(sorted(f"{c.name},{c.label},{c.patient_id}" for c in cases))
    return {"protocol": to_dict(config), "fold": config.fold, "folds": config.folds,
            "training_cases": counts(run.training), "validation_cases": counts(run.validation),
            "case_list_sha256": hashlib.sha256(listing.encode()).hexdigest(),
            "epochs_run": state.epoch, "best_epoch": state.best_epoch,
            "best_validation": {"accuracy": state.best_accuracy, "loss": state.best_loss},
            "final_learning_rate": state.history[-1]["learning_rate"] if state.history else None,
            "history": state.history}
