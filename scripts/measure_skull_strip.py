"""How well the skull-stripped decision and the atlas choice hold up: phantoms drawn with skull,
stripped with an exact background, and stripped with a noisy, interpolated background (what a
second generator produced), and the real scans when ../shared/realdata is there (registration
only: never their diagnoses).

    python scripts/measure_skull_strip.py [--per-class 2] [--seed 11]

Prints one line per scan and a summary: the bright region's litres, the decision before
registration, the atlas kept, correlation and whether the registration passed.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from TumorClassifierLib.atlas import load_atlas  # noqa: E402
from TumorClassifierLib.classes import CLASS_CODES  # noqa: E402
from TumorClassifierLib.geometry import centre_of  # noqa: E402
from TumorClassifierLib.phantoms.acquisition import acquire  # noqa: E402
from TumorClassifierLib.phantoms.cohort import case_seed, paint_case  # noqa: E402
from TumorClassifierLib.preprocessing import (  # noqa: E402
    PreprocessingConfig,
    most_common_value,
    register_to_best_atlas,
    skull_evidence,
)
from TumorClassifierLib.volume import read_sitk_image  # noqa: E402

sys.path.insert(0, str(ROOT / "scripts"))
from realdata_manifests import real_rows  # noqa: E402

OLD_MODE_FRACTION = 0.6  # the rule before: stripped when one value fills 60% of the voxels


def phantom_variants(label: str, seed: tuple[int, ...]):
    """The same drawn head acquired with skull, stripped, and stripped with background noise
    added after stripping and the image resampled by a small rotation (interpolation)."""
    canvas, acquisition, rng, _ = paint_case(label, seed)
    state = rng.bit_generator.state
    for name, stripped in (("with skull", False), ("stripped", True), ("stripped+noise", True)):
        rng.bit_generator.state = state
        scan, _ = acquire(canvas, dataclasses.replace(acquisition, skull_stripped=stripped), rng)
        if name == "stripped+noise":
            scan = noisy_background(scan, acquisition, rng)
        yield name, not stripped, scan


def noisy_background(scan: sitk.Image, acquisition, rng) -> sitk.Image:
    array = sitk.GetArrayFromImage(scan).astype(np.float32)
    sigma = 1000.0 * acquisition.intensity_scale * rng.uniform(0.02, 0.08)
    array = np.sqrt((array + rng.normal(0, sigma, array.shape)) ** 2 +
                    rng.normal(0, sigma, array.shape) ** 2)
    noisy = sitk.GetImageFromArray(array)
    noisy.CopyInformation(scan)
    turn = sitk.Euler3DTransform(tuple(centre_of(scan)), *np.radians(rng.uniform(-3, 3, 3)))
    return sitk.Resample(noisy, noisy, turn, sitk.sitkLinear, 0.0)


def real_scans():
    for case, row in real_rows():
        image = read_sitk_image(case / row["image"])
        yield row["case"], row["skull"], not row["skull"].startswith(
            ("skull-stripped", "mostly stripped")), image


def judge(name, kind, with_skull, image, atlas, config, rows):
    evidence = skull_evidence(image, config)
    result = register_to_best_atlas(image, atlas, evidence, config)
    right = result.skull_stripped_atlas != with_skull
    decision = {True: "stripped", False: "with skull", None: "both"}[evidence.decision]
    old_rule_right = (most_common_value(image)[1] >= OLD_MODE_FRACTION) != with_skull
    rows.append((kind, right, result.ok, old_rule_right))
    print(f"{name:<30} {kind:<16} {evidence.bright_litres:5.2f} L  {decision:<10} -> "
          f"{'stripped' if result.skull_stripped_atlas else 'with skull':<10} "
          f"r={result.correlation:.2f} {'ok' if result.ok else 'FAILED'}"
          f"{'' if right else '  WRONG ATLAS'}{'' if old_rule_right else '  (old rule: wrong)'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=2)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    atlas, config, rows = load_atlas(), PreprocessingConfig(), []
    for label in CLASS_CODES:
        for number in range(args.per_class):
            seed = case_seed(args.seed, label, number)
            for kind, with_skull, scan in phantom_variants(label, seed):
                judge(f"phantom {label} {number}", kind, with_skull, scan, atlas, config, rows)
    for case, skull, with_skull, image in real_scans():
        judge(case, f"real: {skull[:10]}", with_skull, image, atlas, config, rows)
    print("summary (kind: right atlas / registration passed / scans / right by the old rule)")
    for kind in dict.fromkeys(kind for kind, *_ in rows):
        chosen = [(right, ok, old) for k, right, ok, old in rows if k == kind]
        print(f"  {kind:<18} {sum(r for r, _, _ in chosen)} / {sum(o for _, o, _ in chosen)} / "
              f"{len(chosen)} / {sum(old for _, _, old in chosen)}")


if __name__ == "__main__":
    main()
