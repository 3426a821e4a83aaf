"""What a training run keeps in OUT/training/ as it goes: the resumable checkpoint (last.pt),
the best weights so far (best.safetensors) and the history (history.csv, history.png)."""

from __future__ import annotations

import csv
import dataclasses
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..errors import InputError
from .state import TrainingState


def save_checkpoint(log_dir: Path, network, optimizer, scheduler, state: TrainingState) -> None:
    """Everything needed to resume, saved with plain tensors and numbers only, so that it loads
    with torch.load(weights_only=True)."""
    payload = {"model": network.state_dict(), "optimizer": optimizer.state_dict(),
               "scheduler": scheduler.state_dict(), "state": dataclasses.asdict(state),
               "rng": torch.get_rng_state()}
    temporary = log_dir / "last.pt.part"
    torch.save(payload, temporary)
    os.replace(temporary, log_dir / "last.pt")


def load_checkpoint(log_dir: Path, network, optimizer, scheduler) -> TrainingState:
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


def save_best_weights(log_dir: Path, network) -> None:
    save_file({k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()},
              str(log_dir / "best.safetensors"))


def load_best_weights(log_dir: Path, network) -> None:
    network.load_state_dict(load_file(str(log_dir / "best.safetensors")))


def write_history(log_dir: Path, history: list[dict]) -> None:
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
