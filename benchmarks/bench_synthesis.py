"""Heads drawn at training time against the network that learns from them (issue 21's
target: waiting for heads at most 15% of training time).

    python benchmarks/bench_synthesis.py [--heads 14] [--steps 4] [--input 64]

Prints a table: seconds to draw one head on one core (one row per drawing family, every
class in turn) and seconds of one training step per head (batch 8, bf16 autocast where the
CPU has AVX512-BF16 or AMX, and float32), on all of this machine's cores, and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_vector_extensions, machine_description  # noqa: E402


def drawing_seconds(family: str, heads: int, shape) -> float:
    import torch

    from TumorClassifierLib.classes import CLASS_CODES
    from TumorClassifierLib.synthesis.heads import draw_head
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        draw_head((0, 0), "HEALTHY", family, shape)  # the atlas space, once
        start = time.perf_counter()
        for n in range(heads):
            draw_head((1, n), CLASS_CODES[n % len(CLASS_CODES)], family, shape)
        return (time.perf_counter() - start) / heads
    finally:
        torch.set_num_threads(threads)


def step_seconds(dtype, steps: int, shape, batch: int = 8) -> float:
    import torch
    import torch.nn.functional as F

    from TumorClassifierLib.device import autocast
    from TumorClassifierLib.network import TumorClassifierNet
    network = TumorClassifierNet()
    optimiser = torch.optim.Adam(network.parameters())
    images = torch.randn(batch, 1, *shape)
    labels = torch.randint(0, 7, (batch,))
    times = []
    for step in range(steps + 1):
        start = time.perf_counter()
        with autocast(torch.device("cpu"), dtype):
            logits = network(images)
        loss = F.cross_entropy(logits.float(), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step:  # the first step sets oneDNN up
            times.append((time.perf_counter() - start) / batch)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heads", type=int, default=14, help="heads a family")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--input", type=int, default=64)
    args = parser.parse_args()
    import torch

    from TumorClassifierLib.device import cpu_has_fast_bf16
    from TumorClassifierLib.synthesis.shapes import FAMILIES
    shape = (args.input,) * 3
    print(f"machine: {machine_description('cpu')}, vector extensions: "
          f"{cpu_vector_extensions()}")
    draws = {family: drawing_seconds(family, args.heads, shape) for family in FAMILIES}
    precisions = [torch.float32] + ([torch.bfloat16] if cpu_has_fast_bf16() else [])
    steps = {dtype: step_seconds(dtype, args.steps, shape) for dtype in precisions}
    mean_draw = statistics.mean(draws.values())
    print(f"\n| at {args.input}^3 | seconds a head |\n|---|---|")
    for family, seconds in draws.items():
        print(f"| drawing, family {family} (one core) | {seconds:.3f} |")
    for dtype, seconds in steps.items():
        name = str(dtype).replace("torch.", "")
        print(f"| training step, {name} (batch 8, {torch.get_num_threads()} threads) | "
              f"{seconds:.3f} |")
    for dtype, seconds in steps.items():
        name = str(dtype).replace("torch.", "")
        print(f"| drawing / training step, {name} | {mean_draw / seconds:.2f} |")


if __name__ == "__main__":
    main()
