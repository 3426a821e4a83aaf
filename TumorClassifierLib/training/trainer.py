"""Training with the paper's protocol (Chakrabarty et al. 2021; PAPER.md), every value
overridable:

Adam 5e-4, batch 5, up to 200 epochs, ReduceLROnPlateau on validation loss (0.5, patience 10),
early stopping on validation loss (patience 50), cross-entropy with balanced class weights
N / (C n_c) applied per sample, L2 1e-5 on conv and dense kernels, random flips of each axis,
k-fold cross-validation (8) stratified by class and grouped by patient; the checkpoint with the
best validation accuracy (ties: lowest validation loss) becomes the model bundle.

Runs the same under `torchrun` (DistributedDataParallel; gloo on CPU, NCCL on GPUs).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from monai.data import DataLoader
from safetensors.torch import load_file, save_file
from torch.utils.data import DistributedSampler

from ..manifest import Case
from ..bundle import ModelMetadata, save_bundle
from ..classes import CLASS_CODES, DISPLAY_NAMES
from ..configuration import to_dict
from ..device import autocast, resolve_device, resolve_precision
from ..errors import InputError
from .folds import assign_folds
from ..network import NetworkConfig, TumorClassifierNet
from ..preprocessing import PreprocessingConfig
from ..settings import TrainingConfig
from .data import class_weights, make_dataset


@dataclass
class TrainingState:
    epoch: int = 0
    best_accuracy: float = -1.0
    best_loss: float = math.inf
    best_epoch: int = -1
    epochs_without_improvement: int = 0  # in validation loss, for early stopping
    lowest_loss: float = math.inf
    history: list = field(default_factory=list)


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
    rank, world = _distributed_setup()
    codes = tuple(CLASS_CODES)
    unknown = sorted({c.label for c in cases} - set(codes))
    if unknown:
        raise InputError(f"unknown label(s) {', '.join(unknown)}; use {', '.join(codes)}")
    if resume and not (out / "training" / "last.pt").is_file():
        raise InputError(f"{out / 'training' / 'last.pt'}: no checkpoint to resume from")
    fold_of = assign_folds(cases, config.folds, config.seed)
    training = [c for c, f in zip(cases, fold_of) if f != config.fold]
    validation = [c for c, f in zip(cases, fold_of) if f == config.fold]
    if not training or not validation:
        raise InputError(f"fold {config.fold} leaves no training or no validation cases")
    torch.manual_seed(config.seed + rank)

    target = resolve_device(device)
    if world > 1 and target.type == "cuda":
        target = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    dtype = resolve_precision(config.precision, target)
    if target.type == "cuda":  # fixed input shape: let cuDNN pick its fastest 3D convolutions
        torch.backends.cudnn.benchmark = True
    cache = Path(cache_dir) if cache_dir else out / "training" / "cache"
    train_set = make_dataset(training, codes, preprocessing, cache, augment=True,
                             flip_probability=config.flip_probability,
                             augmentation=config.augmentation)
    val_set = make_dataset(validation, codes, preprocessing, cache, augment=False)
    sampler = DistributedSampler(train_set, world, rank, seed=config.seed) if world > 1 else None
    val_loader = DataLoader(val_set, batch_size=config.batch_size,
                            num_workers=config.loader_workers)

    _warm_cache([train_set, val_set], config.loader_workers, rank, progress)
    network = TumorClassifierNet(network_config)
    start_weights = _initial_weights(network, init_from) if init_from else None
    network = network.to(target)
    model = torch.nn.parallel.DistributedDataParallel(network) if world > 1 else network
    optimizer = torch.optim.Adam(network.parameters(), lr=config.learning_rate)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=config.plateau_factor, patience=config.plateau_patience)
    weights = class_weights([codes.index(c.label) for c in training], len(codes)).to(target)

    log_dir = out / "training"
    state = TrainingState()
    if resume:
        state = _load_checkpoint(log_dir, network, optimizer, scheduler)
    elif rank == 0:
        log_dir.mkdir(parents=True, exist_ok=True)
    while state.epoch < config.max_epochs:
        if sampler is not None:
            sampler.set_epoch(state.epoch)
        # Shuffling and flips seeded by (seed, epoch): a resumed run draws what an
        # uninterrupted one would have.
        train_loader = DataLoader(
            train_set, batch_size=config.batch_size, shuffle=sampler is None, sampler=sampler,
            num_workers=config.loader_workers,
            generator=torch.Generator().manual_seed(config.seed * 100_003 + state.epoch))
        epoch_start = time.monotonic()
        train_loss, train_accuracy, pace = _run_epoch(
            model, network, train_loader, weights, optimizer, config, target, dtype, rank,
            progress, f"epoch {state.epoch + 1}/{config.max_epochs}")
        val_loss, val_accuracy, _ = _run_epoch(model, network, val_loader, None, None, config,
                                               target, dtype, rank, False, "")
        scheduler.step(val_loss)
        state.epoch += 1
        improved = (val_accuracy > state.best_accuracy or
                    (val_accuracy == state.best_accuracy and val_loss < state.best_loss))
        if improved:
            state.best_accuracy, state.best_loss, state.best_epoch = (val_accuracy, val_loss,
                                                                      state.epoch)
        if val_loss < state.lowest_loss:
            state.lowest_loss, state.epochs_without_improvement = val_loss, 0
        else:
            state.epochs_without_improvement += 1
        state.history.append({"epoch": state.epoch, "train_loss": train_loss,
                              "train_accuracy": train_accuracy, "val_loss": val_loss,
                              "val_accuracy": val_accuracy,
                              "learning_rate": optimizer.param_groups[0]["lr"],
                              "seconds": round(time.monotonic() - epoch_start, 1)} | pace)
        if rank == 0:
            if improved:
                save_file({k: v.detach().cpu().contiguous()
                           for k, v in network.state_dict().items()},
                          str(log_dir / "best.safetensors"))
            _save_checkpoint(log_dir, network, optimizer, scheduler, state)
            _write_history(log_dir, state.history)
            print(f"epoch {state.epoch}: train loss {train_loss:.4f} acc {train_accuracy:.3f} | "
                  f"val loss {val_loss:.4f} acc {val_accuracy:.3f} | lr "
                  f"{optimizer.param_groups[0]['lr']:.2e}{' *' if improved else ''}", flush=True)
        if state.epochs_without_improvement >= config.early_stopping_patience:
            break
        if config.max_hours and (time.monotonic() - started) / 3600 >= config.max_hours:
            break

    if rank == 0:
        network.load_state_dict(load_file(str(log_dir / "best.safetensors")))
        record = _training_record(cases, training, validation, config, state, codes)
        if start_weights:
            record["initialised_from"] = start_weights
        metadata = ModelMetadata(name=name, description=description,
                                 preprocessing=preprocessing, network=network_config,
                                 class_codes=codes, display_names=dict(DISPLAY_NAMES),
                                 training=record)
        save_bundle(network.cpu(), metadata, out)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return out if rank == 0 else None


def _initial_weights(network: TumorClassifierNet, bundle_path) -> dict:
    from ..bundle import load_bundle
    bundle = load_bundle(bundle_path)
    if bundle.metadata.network != network.config:
        raise InputError(f"{bundle_path}: its network configuration differs from this run's")
    network.load_state_dict(bundle.network.state_dict())
    return {"name": bundle.metadata.name, "weights_sha256": bundle.metadata.weights_sha256,
            "input_shape": list(bundle.metadata.preprocessing.input_shape),
            "epochs_run": bundle.metadata.training.get("epochs_run")}


def _run_epoch(model, network, loader, weights, optimizer, config, device, dtype, rank,
               progress, title) -> tuple[float, float, dict]:
    """One pass; trains when `optimizer` is given. Returns (mean loss, accuracy) over all
    processes, and this process's pace: volumes per second and the share of the pass spent
    waiting for the data loader (the device idles then: each step ends with a sync)."""
    from tqdm import tqdm
    training = optimizer is not None
    model.train(training)
    totals = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, count
    batches = tqdm(loader, desc=title, unit="batch", leave=False,
                   disable=not (progress and rank == 0))
    waited, volumes, started = 0.0, 0, time.perf_counter()
    iterator = iter(batches)
    while True:
        fetch_start = time.perf_counter()
        batch = next(iterator, None)
        waited += time.perf_counter() - fetch_start
        if batch is None:
            break
        images = torch.as_tensor(batch["image"]).float().to(device)
        labels = torch.as_tensor(batch["label"]).long().to(device)
        with torch.set_grad_enabled(training), autocast(device, dtype):
            logits = model(images)
        per_sample = F.cross_entropy(logits.float(), labels, reduction="none")
        if training:
            loss = (per_sample * weights[labels]).mean() + \
                config.weight_decay_l2 * network.kernel_l2().to(device)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        totals += torch.tensor([per_sample.sum().item(),
                                (logits.argmax(1) == labels).sum().item(), len(labels)],
                               dtype=torch.float64)
        volumes += len(labels)
        batches.set_postfix(loss=f"{totals[0] / totals[2]:.3f}")
    elapsed = max(time.perf_counter() - started, 1e-9)
    pace = {"volumes_per_second": round(volumes / elapsed, 3),
            "data_wait_share": round(waited / elapsed, 3)}
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(totals)
    count = max(totals[2].item(), 1)
    return totals[0].item() / count, totals[1].item() / count, pace


def _warm_cache(datasets, workers: int, rank: int, progress: bool) -> None:
    """Preprocess every scan once, in parallel, before the first epoch (registration is the
    slow part); later epochs read the cache. Reports cases whose registration looked poor."""
    from tqdm import tqdm
    if rank != 0 and dist.is_initialized():
        dist.barrier()  # rank 0 fills the shared cache; the others wait, then read it
        return
    poor = []
    for dataset in datasets:
        loader = DataLoader(dataset, batch_size=1, num_workers=max(1, workers),
                            collate_fn=lambda items: items[0])
        for item in tqdm(loader, desc="preparing scans", unit="scan", leave=False,
                         disable=not progress):
            if not item["registration_ok"]:
                poor.append(item["case"])
    if poor:
        print(f"warning: poor atlas registration for {len(poor)} case(s): "
              f"{', '.join(poor[:10])}", flush=True)
    if dist.is_initialized():
        dist.barrier()


def _distributed_setup() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def _save_checkpoint(log_dir, network, optimizer, scheduler, state) -> None:
    """Everything needed to resume, saved with plain tensors and numbers only, so that it loads
    with torch.load(weights_only=True)."""
    payload = {"model": network.state_dict(), "optimizer": optimizer.state_dict(),
               "scheduler": scheduler.state_dict(), "state": dataclasses.asdict(state),
               "rng": torch.get_rng_state()}
    temporary = log_dir / "last.pt.part"
    torch.save(payload, temporary)
    os.replace(temporary, log_dir / "last.pt")


def _load_checkpoint(log_dir, network, optimizer, scheduler) -> TrainingState:
    path = log_dir / "last.pt"
    if not path.is_file():
        raise InputError(f"{path}: no checkpoint to resume from")
    payload = torch.load(path, weights_only=True)
    network.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    torch.set_rng_state(payload["rng"])
    print(f"resuming after epoch {payload['state']['epoch']}", flush=True)
    return TrainingState(**payload["state"])


def _write_history(log_dir: Path, history: list[dict]) -> None:
    with open(log_dir / "history.csv", "w", newline="", encoding="utf-8") as handle:
        columns = list(dict.fromkeys(key for row in history for key in row))  # resumed
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")  # runs may add some
        writer.writeheader()
        writer.writerows(history)
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot
    epochs = [h["epoch"] for h in history]
    figure, (left, right) = pyplot.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, [h["train_loss"] for h in history], label="train")
    left.plot(epochs, [h["val_loss"] for h in history], label="validation")
    left.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    right.plot(epochs, [h["train_accuracy"] for h in history], label="train")
    right.plot(epochs, [h["val_accuracy"] for h in history], label="validation")
    right.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1.02))
    for axis in (left, right):
        axis.legend()
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(log_dir / "history.png", dpi=80)
    pyplot.close(figure)


def _training_record(cases, training, validation, config, state, codes) -> dict:
    def counts(group):
        return {code: sum(c.label == code for c in group) for code in codes}
    listing = "\n".join(sorted(f"{c.name},{c.label},{c.patient_id}" for c in cases))
    best = state.history[state.best_epoch - 1] if state.best_epoch > 0 else {}
    return {"protocol": to_dict(config), "fold": config.fold, "folds": config.folds,
            "training_cases": counts(training), "validation_cases": counts(validation),
            "case_list_sha256": hashlib.sha256(listing.encode()).hexdigest(),
            "epochs_run": state.epoch, "best_epoch": state.best_epoch,
            "best_validation": {"accuracy": state.best_accuracy, "loss": state.best_loss},
            "final_learning_rate": state.history[-1]["learning_rate"] if state.history else None,
            "history": state.history}
