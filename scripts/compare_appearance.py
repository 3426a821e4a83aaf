"""Phantoms against real scans, by appearance only - never by diagnosis or accuracy.

    python scripts/compare_appearance.py [--per-class 5] [--seed 11] [--out docs/appearance]

Both go through the product's own preprocessing (atlas registration, 128^3 grid, z-score
inside the brain). Compared: the histogram of the network's input inside the brain; the noise
left inside the brain (the spread of what a 1-voxel Gaussian smoothing removes, in z units);
and, inside lesion masks where a real case has one (never its label), the lesion's mean and
90th-percentile z (how dark or bright it is against the rest of the brain). Writes
appearance.png and appearance.json to --out and prints a table. The real scans are read from
../shared/realdata and ../shared/realdata_extra; a missing folder is skipped with a message.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from TumorClassifierLib.atlas import load_atlas  # noqa: E402
from TumorClassifierLib.manifest import read_manifest  # noqa: E402
from TumorClassifierLib.preprocessing import PreprocessingConfig, preprocess  # noqa: E402
from TumorClassifierLib.volume import read_sitk_image  # noqa: E402

sys.path.insert(0, str(ROOT / "scripts"))
from realdata_manifests import real_rows  # noqa: E402

BINS = np.linspace(-4, 8, 97)


def statistics(image: sitk.Image, lesion: sitk.Image | None, atlas, config) -> dict:
    prepared = preprocess(image, config, atlas=atlas, allow_poor_registration=True)
    inside = None
    if lesion is not None:
        on_grid = sitk.Resample(sitk.Cast(lesion > 0, sitk.sitkUInt8), prepared.grid,
                                prepared.registration.transform, sitk.sitkNearestNeighbor, 0)
        inside = sitk.GetArrayFromImage(on_grid).astype(bool)
    result = tensor_statistics(prepared.tensor[0], prepared.brain_mask, inside)
    result["registration_correlation"] = prepared.registration.correlation
    return result


def tensor_statistics(tensor: np.ndarray, brain: np.ndarray,
                      lesion: np.ndarray | None) -> dict:
    """The statistics of one network input (K, J, I), its brain mask and lesion mask."""
    inner = sitk.GetArrayFromImage(sitk.BinaryErode(
        sitk.GetImageFromArray(brain.astype(np.uint8)), [2, 2, 2])).astype(bool)
    smooth = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(
        sitk.GetImageFromArray(tensor), 1.0))
    residual = (tensor - smooth)[inner]
    result = {"histogram": np.histogram(tensor[brain], BINS, density=True)[0].tolist(),
              "noise": float(1.4826 * np.median(np.abs(residual - np.median(residual))))}
    if lesion is not None:
        inside = lesion & brain
        if inside.sum() >= 20:
            result["lesion_mean_z"] = float(tensor[inside].mean())
            result["lesion_p90_z"] = float(np.percentile(tensor[inside], 90))
    return result


def synthetic_cases(per_class: int, seed: int):
    """Heads drawn at training time (synthesis/) on the product's 128^3 grid, the four
    drawing families in turn: (name, statistics)."""
    from TumorClassifierLib.classes import CLASS_CODES
    from TumorClassifierLib.synthesis.dataset import TEST, SyntheticHeads
    from TumorClassifierLib.synthesis.shapes import FAMILIES
    heads = SyntheticHeads(seed, TEST, FAMILIES, per_class * len(CLASS_CODES), (128, 128, 128))
    for index in range(len(heads)):
        head = heads[index]
        tensor = head["image"][0].numpy()
        yield f"synthetic_{index:03d}", tensor_statistics(tensor, tensor != 0,
                                                           head["lesion"].numpy())


def real_cases():
    for case, row in real_rows():
        masks = [m.split(" (")[0].strip() for m in row["masks"].split(";")]
        tumour = next((case / m for m in masks if m.startswith("tumor")), None)
        yield row["case"], case / row["image"], tumour


def phantom_cases(per_class: int, seed: int, folder: Path, generator: int):
    from TumorClassifierLib.phantoms.cohort import write_cohort
    manifest = write_cohort(folder, per_class=per_class, seed=seed, workers=2,
                            generator=generator)
    for case in read_manifest(manifest):
        yield case.name, case.path, case.lesion_mask


def collect(cases, atlas, config) -> dict:
    results = {}
    for name, path, lesion in cases:
        image = read_sitk_image(path)
        mask = sitk.ReadImage(str(lesion)) if lesion is not None else None  # may be empty
        results[name] = statistics(image, mask, atlas, config)
        print(f"  {name:<34} noise {results[name]['noise']:.3f}  lesion p90 z "
              f"{results[name].get('lesion_p90_z', float('nan')):5.2f}", flush=True)
    return results


COLOURS = ("tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def figure(groups: dict, path: Path) -> None:
    """groups: label -> {case: statistics}; the real scans last."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    centres = (BINS[:-1] + BINS[1:]) / 2
    colours = dict(zip(groups, COLOURS[:len(groups) - 1] + ("tab:blue",)))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for label, group in groups.items():
        curves = np.array([r["histogram"] for r in group.values()])
        axes[0].fill_between(centres, *np.percentile(curves, [10, 90], axis=0),
                             color=colours[label], alpha=0.2)
        axes[0].plot(centres, np.median(curves, axis=0), color=colours[label],
                     label=f"{label} (n={len(group)}): median, 10-90%")
    axes[0].set(xlabel="network input inside the brain (z)", ylabel="density", xlim=(-4, 6),
                title="Intensity histogram after preprocessing")
    axes[0].legend(fontsize=8)
    for column, (key, title) in enumerate((("noise", "Noise left inside the brain (z)"),
                                           ("lesion_p90_z", "Lesion 90th percentile (z)")), 1):
        for row, (label, group) in enumerate(groups.items()):
            values = [r[key] for r in group.values() if key in r]
            jitter = np.random.default_rng(0).uniform(-0.15, 0.15, len(values))
            axes[column].scatter(values, row + jitter, color=colours[label], s=14)
        axes[column].set(yticks=range(len(groups)), yticklabels=list(groups), title=title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def add_histogram_overlap(groups: dict) -> None:
    """Each case's histogram overlap with the real scans' median histogram (1 = the same
    shape, 0 = disjoint): the sum over bins of the smaller density times the bin width."""
    real = np.median([r["histogram"] for r in groups["real scans"].values()], axis=0)
    width = BINS[1] - BINS[0]
    for group in groups.values():
        for statistics_of_case in group.values():
            statistics_of_case["histogram_overlap"] = float(
                np.minimum(statistics_of_case["histogram"], real).sum() * width)


def summary_rows(groups: dict) -> list[str]:
    rows = ["| statistic | " + " | ".join(f"{label}: median (range)" for label in groups) + " |",
            "|---" * (len(groups) + 1) + "|"]
    for key in ("histogram_overlap", "noise", "lesion_mean_z", "lesion_p90_z"):
        parts = []
        for group in groups.values():
            values = [r[key] for r in group.values() if key in r]
            parts.append(f"{np.median(values):.2f} ({min(values):.2f}-{max(values):.2f}), "
                         f"n={len(values)}" if values else "-")
        rows.append(f"| {key} | " + " | ".join(parts) + " |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=5)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "appearance")
    parser.add_argument("--generator", type=int, nargs="+", default=[1, 2],
                        help="phantom generators to compare (phantoms/cohort.py)")
    parser.add_argument("--synthetic", action="store_true", help="also heads drawn at "
                        "training time (synthesis/), --per-class of each class")
    parser.add_argument("--reuse", action="store_true", help="keep the groups already in "
                        "OUT/appearance.json (phantoms, real scans) and add only the "
                        "synthetic heads")
    args = parser.parse_args()
    if args.reuse:
        stored = json.loads((args.out / "appearance.json").read_text("utf-8"))["groups"]
        groups = {k: v for k, v in stored.items() if k not in ("real scans", SYNTHETIC)}
        real = stored["real scans"]
    else:
        atlas, config = load_atlas(), PreprocessingConfig()
        print("real scans")
        real = collect(real_cases(), atlas, config)
        if not real:
            raise SystemExit("no real scans were found; nothing to compare against")
        groups = {}
        for generator in args.generator:
            with tempfile.TemporaryDirectory() as folder:
                print(f"phantoms of generator {generator} ({args.per_class} per class, seed "
                      f"{args.seed})")
                groups[f"phantoms, generator {generator}"] = collect(
                    phantom_cases(args.per_class, args.seed, Path(folder), generator), atlas,
                    config)
    if args.synthetic:
        print(f"{SYNTHETIC} ({args.per_class} per class, seed {args.seed})")
        groups[SYNTHETIC] = dict(synthetic_cases(args.per_class, args.seed))
    groups["real scans"] = real
    add_histogram_overlap(groups)
    figure(groups, args.out / "appearance.png")
    (args.out / "appearance.json").write_text(json.dumps(
        {"groups": groups, "bins": BINS.tolist()}, indent=1), "utf-8")
    print("\n".join(summary_rows(groups)))


SYNTHETIC = "synthetic heads (training time)"


if __name__ == "__main__":
    main()
