"""Registration speed against quality on the real scans (issue 14): the current settings and
cheaper candidates, single-threaded and so bit-identical from run to run.

    .venv/bin/python scripts/measure_registration.py

For each scan and setting: seconds of registration (both atlases when unsure), the normalised
cross-correlation with the atlas inside its brain, for skull-stripped scans the Dice of the
scan's own brain with the atlas brain on the network grid, and for every scan how far the
atlas brain's points land from where the current settings put them (mean, mm). The real scans
are used for registration quality only, never for classification accuracy. Prints a table.
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from realdata_manifests import real_rows  # noqa: E402

from TumorClassifierLib.atlas import brain_mask_on_grid, load_atlas  # noqa: E402
from TumorClassifierLib.preprocessing import preprocess  # noqa: E402
from TumorClassifierLib.settings import PreprocessingConfig, RegistrationConfig  # noqa: E402
from TumorClassifierLib.volume import read_sitk_image  # noqa: E402

CURRENT = RegistrationConfig()
CANDIDATES = {
    "current": CURRENT,
    "rigid 2,1": dataclasses.replace(CURRENT, rigid_shrink_factors=(2, 1),
                                     rigid_smoothing_mm=(2.0, 0.0)),
    "4 mm": dataclasses.replace(CURRENT, working_spacing_mm=4.0,
                                rigid_shrink_factors=(2, 1), rigid_smoothing_mm=(4.0, 0.0),
                                affine_shrink_factors=(1,), affine_smoothing_mm=(0.0,)),
    "5% samples": dataclasses.replace(CURRENT, sampling_fraction=0.05),
    "min step 0.03": dataclasses.replace(CURRENT, min_step=0.03),
}


def brain_points(atlas, count: int = 4000) -> np.ndarray:
    mask = sitk.GetArrayFromImage(atlas.brain_mask)
    k, j, i = np.nonzero(mask)
    pick = np.random.default_rng(0).choice(len(i), size=min(count, len(i)), replace=False)
    return np.array([atlas.brain_mask.TransformIndexToPhysicalPoint(
        (int(i[p]), int(j[p]), int(k[p]))) for p in pick])


def main() -> None:
    atlas = load_atlas()
    points = brain_points(atlas)
    grid_brain = brain_mask_on_grid(atlas, PreprocessingConfig().input_shape)
    results = {name: [] for name in CANDIDATES}
    for case, row in real_rows():
        image = read_sitk_image(case / row["image"])
        reference = None
        for name, registration in CANDIDATES.items():
            config = PreprocessingConfig(registration=registration)
            start = time.perf_counter()
            prepared = preprocess(image, config, atlas, allow_poor_registration=True,
                                  name=row["case"])
            seconds = time.perf_counter() - start - prepared.timings.get("resampling", 0.0)
            transform = prepared.registration.transform
            moved = np.array([transform.TransformPoint(tuple(p)) for p in points])
            if reference is None:
                reference = moved
            dice = None
            if prepared.skull_stripped:
                own = prepared.brain_mask
                dice = 2 * (own & grid_brain).sum() / max(own.sum() + grid_brain.sum(), 1)
            results[name].append({
                "case": row["case"], "seconds": prepared.timings["registration"],
                "ncc": prepared.registration.correlation, "dice": dice,
                "shift_mm": float(np.linalg.norm(moved - reference, axis=1).mean()),
                "ok": prepared.registration.ok, "total": seconds})
        print(f"{row['case']}: " + ", ".join(
            f"{name} {results[name][-1]['seconds']:.2f} s NCC {results[name][-1]['ncc']:.3f}"
            for name in CANDIDATES), flush=True)
    print("\n| settings | registration s (median) | / current | NCC median (min) | "
          "stripped Dice median (min) | mean shift from current, mm (max) | passing gates |")
    print("|---|---|---|---|---|---|---|")
    base = statistics.median(r["seconds"] for r in results["current"])
    for name, rows in results.items():
        seconds = statistics.median(r["seconds"] for r in rows)
        ncc = [r["ncc"] for r in rows]
        dice = [r["dice"] for r in rows if r["dice"] is not None]
        shift = [r["shift_mm"] for r in rows]
        print(f"| {name} | {seconds:.2f} | {seconds / base:.2f} | {statistics.median(ncc):.3f}"
              f" ({min(ncc):.3f}) | "
              + (f"{statistics.median(dice):.3f} ({min(dice):.3f})" if dice else "-")
              + f" | {statistics.median(shift):.2f} ({max(shift):.2f}) | "
              f"{sum(r['ok'] for r in rows)}/{len(rows)} |")


if __name__ == "__main__":
    main()
