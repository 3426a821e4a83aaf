"""Training on heads drawn at training time (synthesis/): `tumorclassifier train --synthetic`.

Each stretch of `evaluate_every` fresh heads plays the part of an epoch: then the model is
evaluated on the held-out drawing family (the best checkpoint is chosen on it) and on fresh
heads of the training families (the learning-rate plateau watches those), the checkpoint is
saved, and a line goes to OUT/training/progress.jsonl (heads a second, the share of time spent
waiting for heads, both accuracies, the CPU and precision). A run stopped at any point resumes
from its last checkpoint with `--resume` and draws exactly the heads an uninterrupted run
would have. The optimiser, loss and policy are the paper's (trainer.py), applied per stretch.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from ..bundle import save_bundle
from ..classes import CLASS_CODES, DISPLAY_NAMES
from ..configuration import to_dict
from ..device import cpu_name, cpu_vector_extensions, resolve_device, resolve_precision
from ..errors import InputError
from ..model_metadata import InferenceConfig, ModelMetadata
from ..network import TumorClassifierNet
from ..settings import (
    SYNTHETIC_FAMILIES,
    NetworkConfig,
    PreprocessingConfig,
    SyntheticConfig,
    TrainingConfig,
)
from ..synthesis.dataset import (
    FLIP_AXES,
    SELECTION,
    TRAINING,
    TRAINING_FAMILIES_CHECK,
    SyntheticHeads,
    single_threaded_worker,
)
from .calibration import calibrated_inference
from .checkpoint import load_best_weights, load_checkpoint, save_best_weights, save_checkpoint
from .epoch import Optimisation, run_epoch
from .preparation import initial_weights
from .state import TrainingState


def train_synthetic(out, config: TrainingConfig = TrainingConfig(),
                    synthetic: SyntheticConfig = SyntheticConfig(),
                    network_config: NetworkConfig = NetworkConfig(),
                    preprocessing: PreprocessingConfig = PreprocessingConfig(),
                    device: str = "auto", resume: bool = False, init_from=None,
                    name: str = "tumorclassifier-synthetic", description: str = "",
                    progress: bool = True) -> Path:
    started = time.monotonic()
    out, shape = Path(out), tuple(preprocessing.input_shape)
    log_dir = out / "training"
    if resume and not (log_dir / "last.pt").is_file():
        raise InputError(f"{log_dir / 'last.pt'}: no checkpoint to resume from")
    families = tuple(f for f in SYNTHETIC_FAMILIES if f != synthetic.held_out_family)
    target = resolve_device(device)
    dtype = resolve_precision(config.precision, target)
    torch.manual_seed(config.seed)
    network = TumorClassifierNet(network_config)
    start_weights = initial_weights(network, init_from) if init_from else None
    network = network.to(target)
    optimizer = torch.optim.Adam(network.parameters(), lr=config.learning_rate)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=config.plateau_factor, patience=config.plateau_patience)
    if resume:
        state = load_checkpoint(log_dir, network, optimizer, scheduler)
    else:
        state = TrainingState()
        log_dir.mkdir(parents=True, exist_ok=True)
    machine = {"device": str(target), "precision": str(dtype).replace("torch.", ""),
               "cpu": cpu_name(), "cpu_vector_extensions": cpu_vector_extensions(),
               "torch_threads": torch.get_num_threads()}
    validation = _draw(synthetic, config, shape, SELECTION, (synthetic.held_out_family,))
    check = _draw(synthetic, config, shape, TRAINING_FAMILIES_CHECK, families)
    optimisation = Optimisation(optimizer, torch.ones(len(CLASS_CODES), device=target),
                                config.weight_decay_l2)
    while not _finished(state, config, synthetic, started):
        seen = state.epoch * synthetic.evaluate_every
        heads = SyntheticHeads(config.seed, TRAINING, families, synthetic.evaluate_every, shape,
                               offset=seen, flips=synthetic.flips,
                               flip_probability=config.flip_probability)
        title = f"heads {seen}-{seen + synthetic.evaluate_every}" if progress else ""
        trained = run_epoch(network, network, _loader(heads, config, shuffle=False), target,
                            dtype, optimisation, title)
        chosen_on = run_epoch(network, network, validation, target, dtype)
        watched = run_epoch(network, network, check, target, dtype)
        scheduler.step(watched.loss)
        row = {"samples": seen + synthetic.evaluate_every,
               "hours": round((time.monotonic() - started) / 3600, 4),
               "train_loss": trained.loss, "train_accuracy": trained.accuracy,
               "heldout_family_loss": chosen_on.loss,
               "heldout_family_accuracy": chosen_on.accuracy,
               "training_families_loss": watched.loss,
               "training_families_accuracy": watched.accuracy,
               "learning_rate": optimizer.param_groups[0]["lr"]} | trained.pace
        improved = state.record_epoch(chosen_on.loss, chosen_on.accuracy, row)
        if improved:
            save_best_weights(log_dir, network)
        save_checkpoint(log_dir, network, optimizer, scheduler, state)
        with open(log_dir / "progress.jsonl", "a", encoding="utf-8") as log:
            log.write(json.dumps(state.history[-1] | machine) + "\n")
        print(f"{row['samples']} heads: train loss {trained.loss:.3f} acc "
              f"{trained.accuracy:.3f} | held-out family {chosen_on.accuracy:.3f} | training "
              f"families {watched.accuracy:.3f} | {trained.pace['volumes_per_second']:.2f} "
              f"heads/s, waiting {trained.pace['data_wait_share']:.0%}"
              f"{' *' if improved else ''}", flush=True)
    if state.best_epoch < 1:
        raise InputError(f"{out}: no evaluation was reached; nothing to write")
    load_best_weights(log_dir, network)
    inference = calibrated_inference(
        InferenceConfig(heatmap_level=heatmap_level_for(shape, network_config)), network,
        validation + check, target, dtype, _flip_axes(synthetic))
    record = {"data": "synthetic heads drawn at training time (synthesis/)",
              "synthetic": to_dict(synthetic), "protocol": to_dict(config),
              "training_families": list(families), "flip_axes": _flip_axes(synthetic),
              "samples_seen": state.epoch * synthetic.evaluate_every,
              "best_samples": state.best_epoch * synthetic.evaluate_every,
              "best_validation": {"heldout_family_accuracy": state.best_accuracy,
                                  "heldout_family_loss": state.best_loss},
              "calibration": {"fitted_on": "both validation sets (held-out family and "
                                            "training families)", "heads": 2 * len(CLASS_CODES)
                              * synthetic.validation_per_class},
              "machine": machine, "history": state.history}
    if start_weights:
        record["initialised_from"] = start_weights
    metadata = ModelMetadata(name=name, description=description, preprocessing=preprocessing,
                             network=network_config, class_codes=tuple(CLASS_CODES),
                             display_names=dict(DISPLAY_NAMES), inference=inference,
                             training=record)
    save_bundle(network.cpu(), metadata, out)
    return out


def heatmap_level_for(shape, network_config: NetworkConfig) -> int:
    """The encoder level whose grid has cells of the size the product's heatmap was chosen
    at: HiResCAM at level 2 of a 128^3 input, a 32^3 grid of 7.5 mm cells (docs/decisions.md).
    A 64^3 input gets level 1, which has that grid."""
    level = int(round(math.log2(max(min(shape), 32) / 32)))
    return min(level, network_config.depth - 1)


def _flip_axes(synthetic: SyntheticConfig) -> list[int]:
    """The flipped axes as spatial axes of a (K, J, I) volume (0: K ... 2: I)."""
    return [axis - 1 for axis in FLIP_AXES[synthetic.flips]]


def _finished(state: TrainingState, config: TrainingConfig, synthetic: SyntheticConfig,
              started: float) -> bool:
    seen = state.epoch * synthetic.evaluate_every
    if synthetic.max_samples and seen >= synthetic.max_samples:
        return True
    if state.epoch >= config.max_epochs:  # an evaluation stretch is this run's epoch
        return True
    return state.epoch > 0 and state.should_stop_early(config, started)


def _loader(dataset, config: TrainingConfig, shuffle: bool) -> DataLoader:
    workers = config.loader_workers
    options = {"multiprocessing_context": "spawn", "prefetch_factor": 4,
               "worker_init_fn": single_threaded_worker} if workers else {}
    # Its own generator: making a loader then draws nothing from the global stream that
    # dropout uses, so a resumed run's dropout matches an uninterrupted run's.
    return DataLoader(dataset, batch_size=config.batch_size, shuffle=shuffle,
                      num_workers=workers, generator=torch.Generator().manual_seed(0),
                      **options)


def _draw(synthetic: SyntheticConfig, config: TrainingConfig, shape, stream: int,
          families: tuple[str, ...]) -> list[dict]:
    """A fixed validation set, drawn once (in the loader's workers) and kept as batches."""
    heads = SyntheticHeads(config.seed, stream, families,
                           synthetic.validation_per_class * len(CLASS_CODES), shape)
    return [{"image": batch["image"], "label": batch["label"]}
            for batch in _loader(heads, config, shuffle=False)]
