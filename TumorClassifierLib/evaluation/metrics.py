"""The paper's evaluation numbers from a table of true labels and predicted probabilities:
accuracy; per class sensitivity, specificity, PPV, NPV, F1, one-vs-rest ROC AUC and AUPRC;
confusion matrices. Built on MONAI's metrics."""

from __future__ import annotations

import numpy as np
import torch
from monai.metrics import (
    compute_average_precision,
    compute_confusion_matrix_metric,
    compute_roc_auc,
    get_confusion_matrix,
)

from ..settings import NEAR_LESION_MM

PER_CLASS = {"sensitivity": "sensitivity", "specificity": "specificity", "ppv": "precision",
             "npv": "negative predictive value", "f1": "f1 score"}


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray,
                           codes: tuple[str, ...]) -> dict:
    """labels: (N,) class indices; probabilities: (N, C). Classes absent from `labels` get
    None for the numbers that need positives (sensitivity, AUC, AUPRC)."""
    labels = np.asarray(labels, dtype=int)
    probabilities = np.asarray(probabilities, dtype=float)
    count = len(codes)
    predicted = probabilities.argmax(axis=1)
    one_hot_true = torch.nn.functional.one_hot(torch.as_tensor(labels), count).float()
    one_hot_pred = torch.nn.functional.one_hot(torch.as_tensor(predicted), count).float()
    # MONAI: one (TP, FP, TN, FN) row per class, summed over cases.
    matrix = get_confusion_matrix(one_hot_pred, one_hot_true).sum(dim=0)
    per_class = {code: {} for code in codes}
    for key, monai_name in PER_CLASS.items():
        values = compute_confusion_matrix_metric(monai_name, matrix)
        for code, value in zip(codes, values.tolist()):
            per_class[code][key] = None if np.isnan(value) else value
    for index, code in enumerate(codes):
        positives = int((labels == index).sum())
        per_class[code]["support"] = positives
        scores = torch.as_tensor(probabilities[:, index])
        truth = torch.as_tensor((labels == index).astype(float))
        has_both = 0 < positives < len(labels)
        per_class[code]["roc_auc"] = float(compute_roc_auc(scores, truth)) if has_both else None
        per_class[code]["auprc"] = (float(compute_average_precision(scores, truth))
                                    if has_both else None)
    confusion = np.zeros((count, count), dtype=int)
    np.add.at(confusion, (labels, predicted), 1)
    row_sums = confusion.sum(axis=1, keepdims=True)
    return {
        "cases": int(len(labels)),
        "accuracy": float((predicted == labels).mean()) if len(labels) else None,
        "per_class": per_class,
        "confusion_matrix": confusion.tolist(),  # rows: true class, columns: predicted
        "confusion_matrix_normalised": np.divide(confusion, np.maximum(row_sums, 1)).tolist(),
        "classes": list(codes),
    }


def roc_curve(scores: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate) at every distinct threshold, from (0, 0)."""
    order = np.argsort(-scores, kind="stable")
    scores, truth = scores[order], truth[order].astype(float)
    ends = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]  # last index of each tie
    true_positives = np.cumsum(truth)[ends]
    false_positives = (ends + 1) - true_positives
    return (np.r_[0, false_positives / max(len(truth) - truth.sum(), 1)],
            np.r_[0, true_positives / max(truth.sum(), 1)])


def precision_recall_curve(scores: np.ndarray,
                           truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(recall, precision) at every distinct threshold, highest threshold first."""
    order = np.argsort(-scores, kind="stable")
    scores, truth = scores[order], truth[order].astype(float)
    ends = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    true_positives = np.cumsum(truth)[ends]
    return true_positives / max(truth.sum(), 1), true_positives / (ends + 1)


def calibration_metrics(labels: np.ndarray, probabilities: np.ndarray, bins: int = 15) -> dict:
    """How far the top probability is from how often it is right: the expected calibration
    error over `bins` equal-width confidence bins (Guo et al. 2017), each bin's accuracy and
    mean confidence (the reliability diagram), and the confidently wrong answers."""
    labels = np.asarray(labels, dtype=int)
    probabilities = np.asarray(probabilities, dtype=float)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    table, error = [], 0.0
    for index in range(bins):
        inside = which == index
        count = int(inside.sum())
        row = {"lower": float(edges[index]), "upper": float(edges[index + 1]), "cases": count,
               "accuracy": float(correct[inside].mean()) if count else None,
               "confidence": float(confidence[inside].mean()) if count else None}
        if count:
            error += count / len(labels) * abs(row["accuracy"] - row["confidence"])
        table.append(row)
    wrong = confidence[~correct]
    return {"expected_calibration_error": float(error) if len(labels) else None,
            "bins": table, "wrong_at_0.9_or_above": int((wrong >= 0.9).sum()),
            "highest_wrong_confidence": float(wrong.max()) if wrong.size else None}




def attention_metrics(rows: list[dict], codes: tuple[str, ...]) -> dict:
    """Over cases with a lesion mask, per class and for all tumours: the mean share of the
    Grad-CAM heatmap inside the lesion, how often its peak falls inside the lesion, the median
    distance from the peak to the lesion and how often that is within NEAR_LESION_MM."""
    def summary(selected: list[dict]) -> dict:
        distances = [r["cam_peak_distance_mm"] for r in selected]
        return {"cases": len(selected),
                "mean_heatmap_fraction_in_lesion": float(np.mean(
                    [r["cam_in_lesion"] for r in selected])),
                "peak_in_lesion_rate": float(np.mean([r["cam_peak_in_lesion"]
                                                      for r in selected])),
                "median_peak_distance_mm": float(np.median(distances)),
                "peak_within_15mm_rate": float(np.mean(np.asarray(distances)
                                                       <= NEAR_LESION_MM))}

    with_mask = [r for r in rows if r.get("cam_peak_in_lesion") is not None]
    result = {code: summary([r for r in with_mask if r["label"] == code]) for code in codes
              if any(r["label"] == code for r in with_mask)}
    if with_mask:
        result["all_tumours"] = summary(with_mask)
    return result
