"""One pass over a data loader: training (with the paper's weighted loss and L2 on the kernels)
or validation, with the pace it went at."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F

from ..device import autocast


@dataclass(frozen=True)
class EpochResult:
    loss: float  # mean over every volume of every process
    accuracy: float
    # This process's pace: volumes per second, and the share of the pass spent waiting for the
    # data loader (the device idles then: each step ends with a sync).
    pace: dict


@dataclass(frozen=True)
class Optimisation:
    """What a training pass needs beyond a validation pass."""
    optimizer: torch.optim.Optimizer
    class_weights: torch.Tensor  # on the device, one per class (balanced)
    weight_decay_l2: float


def run_epoch(model: torch.nn.Module, network, loader, device: torch.device, dtype,
              optimisation: Optimisation | None = None, progress_title: str = "") -> EpochResult:
    """One pass of `model` (the network, or its DistributedDataParallel wrapper) over `loader`;
    trains when `optimisation` is given. `progress_title`: show a progress bar with it."""
    from tqdm import tqdm
    training = optimisation is not None
    model.train(training)
    totals = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, count
    batches = tqdm(loader, desc=progress_title, unit="batch", leave=False,
                   disable=not progress_title)
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
            loss = (per_sample * optimisation.class_weights[labels]).mean() + \
                optimisation.weight_decay_l2 * network.kernel_l2().to(device)
            optimisation.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimisation.optimizer.step()
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
    return EpochResult(totals[0].item() / count, totals[1].item() / count, pace)
