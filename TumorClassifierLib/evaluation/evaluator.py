"""`tumorclassifier evaluate --model B --manifest test.csv --out REPORT_DIR`

Runs the batch engine (`batch.classify_cases`: resumable, prefetching, one row per case, an
error row for a case that fails) over a labelled manifest with two more kinds of column: the
label and whether the prediction matched it, and where the heatmap falls when a lesion mask is
given. Then writes metrics.json, PNG figures and a self-contained report.html. The per-case
heatmaps and probabilities go to REPORT_DIR/cases/, the table to REPORT_DIR/cases.csv.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..batch import classify_cases
from ..errors import ConstantImage, InputError
from ..files import atomic_output
from ..heatmap_peak import peak_index
from ..inference import ClassificationResult, Classifier
from ..manifest import Case
from ..results_table import EVALUATION_COLUMNS, read_rows, succeeded
from ..volume import read_sitk_image
from .metrics import attention_metrics, calibration_metrics, classification_metrics


def evaluate(classifier: Classifier, cases: list[Case], out: str | Path,
             progress: bool = True, prefetch: int = 1, debug: bool = False) -> dict:
    out = Path(out)
    codes = classifier.metadata.class_codes
    unlabelled = [c.name for c in cases if c.label not in codes]
    if unlabelled:
        raise InputError(f"evaluation needs a label from {', '.join(codes)} for every case; "
                         f"missing or unknown for {', '.join(unlabelled[:5])}")
    classify_cases(classifier, cases, out / "cases", overlay=False,
                   results_csv=out / "cases.csv", debug=debug, show_progress=progress,
                   echo=False, prefetch=prefetch, extra_columns=EVALUATION_COLUMNS,
                   row_extras=evaluation_columns)
    labels_by_case = {c.name: c.label for c in cases}
    rows = [r for r in read_rows(out / "cases.csv") if r["case"] in labels_by_case]
    ok = [r for r in rows if succeeded(r)]
    labels = np.array([codes.index(labels_by_case[r["case"]]) for r in ok], dtype=int)
    probabilities = np.array([[r[f"p_{code}"] for code in codes] for r in ok]).reshape(-1,
                                                                                       len(codes))
    metrics = classification_metrics(labels, probabilities, codes)
    metrics["failed_cases"] = [{"case": r["case"], "error": r["error"]} for r in rows
                               if not succeeded(r)]
    metrics["grad_cam"] = attention_metrics(ok, codes)
    metrics["calibration"] = calibration_metrics(labels, probabilities)
    metrics["model"] = model_summary(classifier.metadata)
    with atomic_output(out / "metrics.json", ".json") as temporary:
        temporary.write_text(json.dumps(_rounded(metrics), indent=2), encoding="utf-8")
    from .report import write_report
    write_report(metrics, ok, codes, dict(classifier.metadata.display_names), out)
    return metrics


def model_summary(metadata) -> dict:
    """Which model an evaluation's metrics belong to, and which heatmap it showed."""
    settings = metadata.inference
    return {"name": metadata.name, "weights_sha256": metadata.weights_sha256,
            "heatmap": f"{settings.heatmap_method} at encoder level {settings.heatmap_level}"}


def evaluation_columns(case: Case, result: ClassificationResult) -> dict:
    row = {"label": case.label, "correct": int(result.predicted_class == case.label)}
    if case.lesion_mask is not None:
        row.update(heatmap_versus_lesion(result, case.lesion_mask))
    return row


def heatmap_versus_lesion(result: ClassificationResult, lesion_path: Path) -> dict:
    """Share of the heatmap inside the lesion, whether its peak is inside, and the peak's
    distance to the lesion in mm. Empty for a case without lesion (a healthy scan)."""
    heatmap = result.heatmap.to_sitk()
    lesion = sitk.Resample(read_sitk_image_allowing_empty(lesion_path), heatmap,
                           sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    return heat_versus_lesion(result.heatmap.array, sitk.GetArrayFromImage(lesion) > 0,
                              heatmap.GetSpacing())


def heat_versus_lesion(heat: np.ndarray, inside: np.ndarray, spacing_xyz) -> dict:
    """The same on arrays (K, J, I) of one grid with voxel size `spacing_xyz` (i, j, k)."""
    if not inside.any():
        return {}
    peak = peak_index(heat)
    lesion = sitk.GetImageFromArray(inside.astype(np.uint8))
    lesion.SetSpacing(tuple(float(s) for s in spacing_xyz))
    distance = sitk.GetArrayFromImage(sitk.SignedMaurerDistanceMap(
        lesion, insideIsPositive=False, squaredDistance=False, useImageSpacing=True))
    return {"cam_in_lesion": round(float(heat[inside].sum() / max(heat.sum(), 1e-12)), 5),
            "cam_peak_in_lesion": int(inside[peak]),
            "cam_peak_distance_mm": round(max(float(distance[peak]), 0.0), 2)}


def read_sitk_image_allowing_empty(path: Path) -> sitk.Image:
    """Lesion masks may legitimately be all zero (healthy phantoms), which the scan reader
    refuses as 'constant'."""
    try:
        return read_sitk_image(path)
    except ConstantImage:
        return sitk.ReadImage(str(path))


def _rounded(value):
    if isinstance(value, float):
        return round(value, 5)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value
