"""Where a training run stands, and the paper's policy for it: which epoch is the best (highest
validation accuracy, ties to the lower validation loss) and when to stop (no new lowest
validation loss for `early_stopping_patience` epochs, or the time budget spent)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from ..settings import TrainingConfig


@dataclass
class TrainingState:
    epoch: int = 0
    best_accuracy: float = -1.0
    best_loss: float = math.inf
    best_epoch: int = -1
    epochs_without_improvement: int = 0  # in validation loss, for early stopping
    lowest_loss: float = math.inf
    history: list = field(default_factory=list)

    def record_epoch(self, val_loss: float, val_accuracy: float, row: dict) -> bool:
        """Count one finished epoch and its history row; True when it is the best so far."""
        self.epoch += 1
        improved = (val_accuracy > self.best_accuracy or
                    (val_accuracy == self.best_accuracy and val_loss < self.best_loss))
        if improved:
            self.best_accuracy, self.best_loss, self.best_epoch = (val_accuracy, val_loss,
                                                                   self.epoch)
        if val_loss < self.lowest_loss:
            self.lowest_loss, self.epochs_without_improvement = val_loss, 0
        else:
            self.epochs_without_improvement += 1
        self.history.append({"epoch": self.epoch} | row)
        return improved

    def should_stop_early(self, config: TrainingConfig, started: float) -> bool:
        """After an epoch, before `max_epochs`: early stopping, or `max_hours` spent since
        `started` (time.monotonic(), taken before the preprocessing)."""
        if self.epochs_without_improvement >= config.early_stopping_patience:
            return True
        return bool(config.max_hours and
                    (time.monotonic() - started) / 3600 >= config.max_hours)
