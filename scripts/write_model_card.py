"""Write a model's card (Markdown) from its bundle metadata and an evaluation's metrics.json.

    .venv/bin/python scripts/write_model_card.py BUNDLE REPORT_DIR OUT.md --test-set "..."
"""

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("report", type=Path, help="folder holding the evaluation's metrics.json")
    parser.add_argument("out", type=Path)
    parser.add_argument("--test-set", required=True, help="one line saying what was evaluated")
    parser.add_argument("--report-link", default="", help="where the full report lives")
    parser.add_argument("--notes", default="", help="a paragraph on how it was trained")
    args = parser.parse_args()

    from TumorClassifierLib.bundle import load_bundle
    metadata = load_bundle(args.bundle).metadata
    metrics = json.loads((args.report / "metrics.json").read_text(encoding="utf-8"))
    record = metadata.training
    protocol = record["protocol"]
    rows = "\n".join(
        f"| {code} | {values['support']} | {_f(values['sensitivity'])} | "
        f"{_f(values['specificity'])} | {_f(values['ppv'])} | {_f(values['npv'])} | "
        f"{_f(values['f1'])} | {_f(values['roc_auc'])} | {_f(values['auprc'])} |"
        for code, values in metrics["per_class"].items())
    confusion = "\n".join(
        f"| **{code}** | " + " | ".join(str(v) for v in row) + " |"
        for code, row in zip(metrics["classes"], metrics["confusion_matrix"]))
    attention = metrics.get("grad_cam", {}).get("all_tumours")
    attention_text = (
        f"Over {attention['cases']} tumour cases with a lesion mask, the heatmap's peak "
        f"({metadata.inference.heatmap_method} at encoder level "
        f"{metadata.inference.heatmap_level}) fell "
        f"inside the lesion in {attention['peak_in_lesion_rate']:.1%} and within 15 mm of it in "
        f"{attention['peak_within_15mm_rate']:.1%} (median distance "
        f"{attention['median_peak_distance_mm']:.1f} mm); on average "
        f"{attention['mean_heatmap_fraction_in_lesion']:.1%} of the heatmap lay inside the "
        "lesion." if attention else "No lesion masks were evaluated.")
    initial = record.get("initialised_from")
    start = (f" It started from the weights of `{initial['name']}` "
             f"(input {initial['input_shape']}, {initial['epochs_run']} epochs)."
             if initial else "")
    trained = (_synthetic_training(record, start) if record.get("synthetic")
               else _cohort_training(record, protocol, start))
    calibration = metrics.get("calibration")
    calibration_text = (
        f"Calibration on this test set: expected calibration error "
        f"{calibration['expected_calibration_error']:.3f} (temperature "
        f"{metadata.inference.temperature:.2f}); wrong answers at 0.9 or above: "
        f"{calibration['wrong_at_0.9_or_above']}." if calibration else "")
    text = f"""# Model card: {metadata.name}

**For demonstration and testing only - not for clinical use.** {metadata.description}

## What it is
The network of Chakrabarty et al. (Radiology: AI 2021): {metadata.network.depth} levels from
{metadata.network.base_filters} filters, {len(metadata.class_codes)} classes
({", ".join(metadata.class_codes)}), input {list(metadata.preprocessing.input_shape)} voxels
over the atlas box (BraTS/SRI24 space, atlas sha256 `{metadata.atlas_sha256[:16]}...`), weights
sha256 `{metadata.weights_sha256[:16]}...`. Software: {json.dumps(metadata.software)}.

## How it was trained
{trained} {args.notes}

## How it does
{args.test_set}: accuracy **{metrics['accuracy']:.1%}** on {metrics['cases']} cases.

| class | n | sensitivity | specificity | PPV | NPV | F1 | ROC AUC | AUPRC |
|---|---|---|---|---|---|---|---|---|
{rows}

Confusion matrix (rows: true class, columns: predicted, in the order
{", ".join(metrics["classes"])}):

| | {" | ".join(metrics["classes"])} |
|---|{"---|" * len(metrics["classes"])}
{confusion}

{attention_text}
{calibration_text}
{("Full report: " + args.report_link) if args.report_link else ""}

## Limits
Phantoms are not patients: accuracy on phantoms says nothing about accuracy on real scans (see
`docs/realdata.md` for the real scans this project can test on). Train your own model on real,
labelled data with `tumorclassifier train` (README) before drawing any conclusion.
"""
    args.out.write_text(text, encoding="utf-8")
    print(args.out)


def _cohort_training(record: dict, protocol: dict, start: str) -> str:
    return f"""Synthetic phantoms only (`tumorclassifier phantoms`), never real scans.
{record['folds']}-fold split stratified by class and grouped by patient; this model is fold
{record['fold']} (trained on the other folds, validated on it). Training cases per class:
{json.dumps(record['training_cases'])}; validation: {json.dumps(record['validation_cases'])}.
Protocol: {json.dumps(protocol)}. Epochs run: {record['epochs_run']}; best epoch
{record['best_epoch']} with validation accuracy {record['best_validation']['accuracy']:.3f}
and loss {record['best_validation']['loss']:.3f}.{start}"""


def _synthetic_training(record: dict, start: str) -> str:
    synthetic, machine = record["synthetic"], record["machine"]
    best = record["best_validation"]
    return f"""Synthetic heads drawn at training time (`tumorclassifier train --synthetic`,
docs/synthesis.md), never real scans: {record['samples_seen']} distinct heads of the drawing
families {", ".join(record['training_families'])}; the family
`{synthetic['held_out_family']}` was never trained on, and the checkpoint was chosen on it
({synthetic['validation_per_class']} heads a class; best after {record['best_samples']} heads,
accuracy {best['heldout_family_accuracy']:.3f}). Flips: {synthetic['flips']} (axes
{record['flip_axes']}). Protocol: {json.dumps(record['protocol'])}. Trained on
{machine['device']} ({machine['cpu']}, {machine['cpu_vector_extensions']}) in
{machine['precision']}; training progress: `training/progress.jsonl`.{start} Temperature
scaling and the feature reference for the "unlike the training scans" warning were fitted on
the validation heads ({record['calibration']['heads']})."""


def _f(value) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
