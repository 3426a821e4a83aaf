"""`tumorclassifier evaluate --synthetic`: a model on fresh heads drawn at their seeds
(synthesis/), e.g. a drawing family it never trained on. The heads are already network
inputs, so this evaluates the network, its heatmap and its calibration without registration;
the report is the same as for a manifest of scans (report.py), its table cases.csv."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..classes import CLASS_CODES
from ..files import atomic_output
from ..inference import HEATMAP_MARGIN_MM, Classifier, grown_mask
from ..results_table import EVALUATION_COLUMNS, Status, columns, write_rows
from ..synthesis.dataset import TEST, SyntheticHeads
from ..synthesis.space import atlas_space
from .evaluator import heat_versus_lesion, model_summary
from .metrics import attention_metrics, calibration_metrics, classification_metrics
from .report import write_report

SYNTHETIC_COLUMNS = ("family", "feature_distance") + EVALUATION_COLUMNS


def evaluate_synthetic(classifier: Classifier, out: str | Path, families: tuple[str, ...],
                       per_class: int, seed: int, progress: bool = True) -> dict:
    from tqdm import tqdm
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    codes = classifier.metadata.class_codes
    shape = tuple(classifier.metadata.preprocessing.input_shape)
    heads = SyntheticHeads(seed, TEST, tuple(families), per_class * len(CLASS_CODES), shape)
    spacing_xyz = atlas_space(shape).voxel_mm[::-1]
    rows = []
    for index in tqdm(range(len(heads)), desc="synthetic heads", unit="head",
                      disable=not progress):
        head = heads[index]
        network_pass = classifier.explain(head["image"].numpy())
        probabilities = network_pass.probabilities
        label = CLASS_CODES[head["label"]]
        brain = head["image"][0].numpy() != 0
        heat = network_pass.cam * grown_mask(brain, spacing_xyz, HEATMAP_MARGIN_MM)
        row = {"case": f"synthetic_s{seed}_{head['index']:05d}", "source": "synthetic",
               "status": Status.OK.value, "label": label,
               "family": heads.family_of(head["index"]),
               "predicted_class": codes[int(np.argmax(probabilities))],
               "confidence": float(probabilities.max()),
               "feature_distance": network_pass.feature_distance}
        row |= {f"p_{code}": float(p) for code, p in zip(codes, probabilities)}
        row["correct"] = int(row["predicted_class"] == label)
        row |= heat_versus_lesion(heat, head["lesion"].numpy(), spacing_xyz)
        rows.append(row)
    labels = np.array([codes.index(r["label"]) for r in rows])
    probabilities = np.array([[r[f"p_{code}"] for code in codes] for r in rows])
    metrics = classification_metrics(labels, probabilities, codes)
    metrics["grad_cam"] = attention_metrics(rows, codes)
    metrics["calibration"] = calibration_metrics(labels, probabilities)
    metrics["model"] = model_summary(classifier.metadata)
    metrics["data"] = {"synthetic_families": list(families), "seed": seed,
                       "per_class": per_class, "grid": list(shape),
                       "command": f"tumorclassifier evaluate --synthetic --families "
                                  f"{' '.join(families)} --per-class {per_class} --seed {seed}"}
    write_rows(out / "cases.csv", rows, columns(codes, SYNTHETIC_COLUMNS))
    with atomic_output(out / "metrics.json", ".json") as temporary:
        temporary.write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    write_report(metrics, rows, codes, dict(classifier.metadata.display_names), out)
    return metrics
