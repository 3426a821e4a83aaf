"""Heads by index, for torch's DataLoader. Head n of a stream is drawn from the seed
(run seed, stream, n): the same index always gives the same head, whatever the number of
loader workers, so a resumed run draws what an uninterrupted one would have, and a
validation set is fixed by its seeds.

Streams: TRAINING (the families a run trains on, cycled), SELECTION (the held-out family; the
best checkpoint is chosen on it), TRAINING_FAMILIES_CHECK (fresh heads of the training
families; the learning-rate plateau watches it), TEST (`evaluate --synthetic`: a model's test
heads; drawn with a seed that no training run used, they are fresh).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from ..classes import CLASS_CODES
from .heads import draw_head

TRAINING, SELECTION, TRAINING_FAMILIES_CHECK, TEST = 0, 1, 2, 3
# Array axes of a (1, K, J, I) head that each flip setting may flip: I is left-right.
FLIP_AXES = {"left-right": (3,), "paper": (1, 2, 3)}


class SyntheticHeads(Dataset):
    def __init__(self, seed: int, stream: int, families: tuple[str, ...], length: int,
                 shape: tuple[int, int, int] = (64, 64, 64), offset: int = 0,
                 flips: str | None = None, flip_probability: float = 0.5) -> None:
        if not families:
            raise ValueError("at least one drawing family is needed")
        self.seed, self.stream, self.families = int(seed), int(stream), tuple(families)
        self.length, self.offset, self.shape = int(length), int(offset), tuple(shape)
        self.flip_axes = FLIP_AXES[flips] if flips else ()
        self.flip_probability = float(flip_probability)

    def __len__(self) -> int:
        return self.length

    def label_of(self, n: int) -> int:
        return n % len(CLASS_CODES)  # every batch holds every class about equally

    def family_of(self, n: int) -> str:
        return self.families[(n // len(CLASS_CODES)) % len(self.families)]

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.length:
            raise IndexError(index)
        n = self.offset + int(index)
        label = self.label_of(n)
        head = draw_head((self.seed, self.stream, n), CLASS_CODES[label], self.family_of(n),
                         self.shape)
        image, lesion = head.image, head.lesion
        if self.flip_axes:
            rng = np.random.default_rng((self.seed, self.stream, n, 1))
            axes = [a for a in self.flip_axes if rng.random() < self.flip_probability]
            if axes:
                image = torch.flip(image, axes)
                lesion = torch.flip(lesion, [a - 1 for a in axes])
        return {"image": image, "label": label, "lesion": lesion, "index": n}


def single_threaded_worker(_worker_id: int) -> None:
    """Each loader worker draws on one core; the training process keeps the others."""
    torch.set_num_threads(1)
