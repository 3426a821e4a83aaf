"""The histogram of synthetic heads' network input inside the brain, pooled over heads: a quick
look at the intensity distribution the generator draws (e.g. a CSF spike, docs/decisions.md).

    python scripts/synthetic_brain_histogram.py [--heads 14] [--family lumpy] [--seed 11]

Prints the density in bins of 0.25 z from -4 to 4.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heads", type=int, default=14)
    parser.add_argument("--family", default="lumpy")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--input", type=int, default=64)
    args = parser.parse_args()
    from TumorClassifierLib.classes import CLASS_CODES
    from TumorClassifierLib.synthesis.heads import draw_head
    values = []
    for n in range(args.heads):
        head = draw_head((args.seed, 3, n), CLASS_CODES[n % len(CLASS_CODES)], args.family,
                         (args.input,) * 3)
        values.append(head.image[0][head.brain].numpy())
    edges = np.linspace(-4, 4, 33)
    density, _ = np.histogram(np.concatenate(values), edges, density=True)
    for low, value in zip(edges[:-1], density):
        print(f"{low:+.2f} .. {low + 0.25:+.2f}  {value:.3f}")


if __name__ == "__main__":
    main()
