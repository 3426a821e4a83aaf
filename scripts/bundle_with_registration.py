"""A copy of a model bundle with other registration settings (the same weights), to measure
what cheaper registration does to a model's answers before adopting it.

    python scripts/bundle_with_registration.py BUNDLE OUT [--pyramid-4mm] [--float16]

--pyramid-4mm: the "4 mm; rigid 2,1; affine 1" settings of scripts/measure_registration.py
(0.39 of the registration time on the real scans, docs/decisions.md). --float16: store the
weights as float16 (half the file).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PYRAMID_4MM = dict(working_spacing_mm=4.0, rigid_shrink_factors=(2, 1),
                   rigid_smoothing_mm=(4.0, 0.0), affine_shrink_factors=(1,),
                   affine_smoothing_mm=(0.0,))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--pyramid-4mm", action="store_true")
    parser.add_argument("--float16", action="store_true")
    args = parser.parse_args()
    import torch

    from TumorClassifierLib.bundle import load_bundle, save_bundle
    bundle = load_bundle(args.bundle)
    metadata = bundle.metadata
    if args.pyramid_4mm:
        preprocessing = metadata.preprocessing
        registration = dataclasses.replace(preprocessing.registration, **PYRAMID_4MM)
        metadata = dataclasses.replace(metadata, preprocessing=dataclasses.replace(
            preprocessing, registration=registration))
    save_bundle(bundle.network, metadata, args.out,
                weights_dtype=torch.float16 if args.float16 else None)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
