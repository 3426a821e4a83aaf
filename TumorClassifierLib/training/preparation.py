"""Setting a training run up: the folds, the cached datasets and loaders, the device and
precision, the network (optionally from another bundle's weights), the optimiser and the
learning-rate schedule, and the processes of a torchrun launch."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from monai.data import DataLoader
from torch.utils.data import DistributedSampler

from ..classes import CLASS_CODES
from ..device import resolve_device, resolve_precision
from ..errors import InputError
from ..manifest import Case
from ..network import TumorClassifierNet
from ..settings import NetworkConfig, PreprocessingConfig, TrainingConfig
from .data import class_weights, make_dataset
from .folds import assign_folds


@dataclass
class TrainingRun:
    """Everything a training loop works with, made once by `prepare_run`."""
    config: TrainingConfig
    codes: tuple[str, ...]
    training: list[Case]
    validation: list[Case]
    rank: int
    world: int
    device: torch.device
    dtype: torch.dtype
    train_set: object
    sampler: DistributedSampler | None
    val_loader: DataLoader
    network: TumorClassifierNet
    model: torch.nn.Module  # the network, or its DistributedDataParallel wrapper
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau
    class_weights: torch.Tensor
    log_dir: Path
    start_weights: dict | None  # what init_from loaded, for the training record

    def train_loader(self, epoch: int) -> DataLoader:
        """This epoch's shuffled loader. Shuffling and flips are seeded by (seed, epoch): a
        resumed run draws what an uninterrupted one would have."""
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)
        return DataLoader(
            self.train_set, batch_size=self.config.batch_size, shuffle=self.sampler is None,
            sampler=self.sampler, num_workers=self.config.loader_workers,
            generator=torch.Generator().manual_seed(self.config.seed * 100_003 + epoch))


def prepare_run(cases: list[Case], out: Path, config: TrainingConfig,
                network_config: NetworkConfig, preprocessing: PreprocessingConfig,
                cache_dir: str | os.PathLike | None, device: str,
                init_from: str | os.PathLike | None, progress: bool) -> TrainingRun:
    rank, world = distributed_setup()
    codes = tuple(CLASS_CODES)
    unknown = sorted({c.label for c in cases} - set(codes))
    if unknown:
        raise InputError(f"unknown label(s) {', '.join(unknown)}; use {', '.join(codes)}")
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
    warm_cache([train_set, val_set], config.loader_workers, rank, progress)

    network = TumorClassifierNet(network_config)
    start_weights = initial_weights(network, init_from) if init_from else None
    network = network.to(target)
    model = torch.nn.parallel.DistributedDataParallel(network) if world > 1 else network
    optimizer = torch.optim.Adam(network.parameters(), lr=config.learning_rate)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=config.plateau_factor, patience=config.plateau_patience)
    weights = class_weights([codes.index(c.label) for c in training], len(codes)).to(target)
    return TrainingRun(config, codes, training, validation, rank, world, target, dtype,
                       train_set, sampler, val_loader, network, model, optimizer, scheduler,
                       weights, out / "training", start_weights)


def initial_weights(network: TumorClassifierNet, bundle_path) -> dict:
    """Load a bundle's weights into `network` (same configuration, any input size: the network
    is fully convolutional); returns what was loaded, for the training record."""
    from ..bundle import load_bundle
    bundle = load_bundle(bundle_path)
    if bundle.metadata.network != network.config:
        raise InputError(f"{bundle_path}: its network configuration differs from this run's")
    network.load_state_dict(bundle.network.state_dict())
    return {"name": bundle.metadata.name, "weights_sha256": bundle.metadata.weights_sha256,
            "input_shape": list(bundle.metadata.preprocessing.input_shape),
            "epochs_run": bundle.metadata.training.get("epochs_run")}


def warm_cache(datasets, workers: int, rank: int, progress: bool) -> None:
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


def distributed_setup() -> tuple[int, int]:
    """(rank, world size): (0, 1) for a plain run; under torchrun, joins the process group
    (NCCL on GPUs, gloo on CPUs)."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    return (dist.get_rank(), world) if world > 1 else (0, 1)
