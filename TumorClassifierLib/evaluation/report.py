"""Figures and a self-contained HTML page for an evaluation (the paper's figures)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np

from ..files import atomic_output
from .metrics import precision_recall_curve, roc_curve


def write_report(metrics: dict, rows: list[dict], codes, names: dict, out: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot

    labels = np.array([codes.index(r["label"]) for r in rows], dtype=int)
    probabilities = np.array([[r[f"p_{c}"] for c in codes] for r in rows]).reshape(-1,
                                                                                   len(codes))
    figures = {
        "confusion_matrix.png": _confusion(pyplot, metrics, codes),
        "roc_curves.png": _curves(pyplot, labels, probabilities, codes, metrics, "roc"),
        "precision_recall_curves.png": _curves(pyplot, labels, probabilities, codes, metrics,
                                               "pr"),
        "misclassified_probabilities.png": _misclassified(pyplot, rows, codes),
        "probability_dispersion.png": _dispersion(pyplot, rows, codes),
        "grad_cam_in_lesion.png": _attention(pyplot, metrics, codes),
        "reliability_diagram.png": _reliability(pyplot, metrics),
    }
    written = {}
    for name, figure in figures.items():
        if figure is None:
            continue
        with atomic_output(out / name, ".png") as temporary:
            figure.savefig(temporary, format="png", dpi=90, bbox_inches="tight")
        pyplot.close(figure)
        written[name] = out / name
    page = _html(metrics, names, written)
    with atomic_output(out / "report.html", ".html") as temporary:
        temporary.write_text(page, encoding="utf-8")
    return out / "report.html"


def _confusion(pyplot, metrics, codes):
    counts = np.array(metrics["confusion_matrix"])
    normalised = np.array(metrics["confusion_matrix_normalised"])
    figure, axes = pyplot.subplots(1, 2, figsize=(13, 5.5))
    for axis, matrix, title, fmt in ((axes[0], counts, "counts", "{:d}"),
                                     (axes[1], normalised, "row-normalised", "{:.2f}")):
        axis.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
        for (i, j), value in np.ndenumerate(matrix):
            axis.text(j, i, fmt.format(value), ha="center", va="center",
                      color="white" if normalised[i, j] > 0.6 else "black", fontsize=9)
        axis.set_xticks(range(len(codes)), codes, rotation=45, ha="right")
        axis.set_yticks(range(len(codes)), codes)
        axis.set(xlabel="predicted", ylabel="true", title=f"Confusion matrix ({title})")
    figure.tight_layout()
    return figure


def _curves(pyplot, labels, probabilities, codes, metrics, kind):
    if len(labels) == 0:
        return None
    figure, axis = pyplot.subplots(figsize=(6.5, 6))
    for index, code in enumerate(codes):
        truth = labels == index
        if truth.all() or not truth.any():
            continue
        if kind == "roc":
            x, y = roc_curve(probabilities[:, index], truth)
            value = metrics["per_class"][code]["roc_auc"]
            axis.plot(x, y, label=f"{code} (AUC {value:.3f})")
        else:
            x, y = precision_recall_curve(probabilities[:, index], truth)
            value = metrics["per_class"][code]["auprc"]
            axis.step(np.r_[0, x], np.r_[y[0], y], where="post",
                      label=f"{code} (AUPRC {value:.3f})")
    if kind == "roc":
        axis.plot([0, 1], [0, 1], color="grey", linestyle=":")
        axis.set(xlabel="1 - specificity", ylabel="sensitivity", title="ROC, one vs rest")
    else:
        axis.set(xlabel="recall (sensitivity)", ylabel="precision (PPV)",
                 title="Precision-recall, one vs rest")
    axis.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01))
    axis.legend(loc="lower right" if kind == "roc" else "lower left", fontsize=8)
    axis.grid(alpha=0.3)
    return figure


def _misclassified(pyplot, rows, codes):
    wrong = [r for r in rows if not r["correct"]]
    if not wrong:
        return None
    figure, axis = pyplot.subplots(figsize=(max(6, 0.45 * len(wrong) + 2), 5))
    bottom = np.zeros(len(wrong))
    colours = pyplot.get_cmap("tab10")
    for index, code in enumerate(codes):
        values = np.array([r[f"p_{code}"] for r in wrong])
        axis.bar(range(len(wrong)), values, bottom=bottom, color=colours(index), label=code)
        bottom += values
    axis.set_xticks(range(len(wrong)), [f"{r['case']}\n(true {r['label']})" for r in wrong],
                    rotation=90, fontsize=7)
    axis.set(ylabel="predicted probability", title="Misclassified cases", ylim=(0, 1))
    axis.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    return figure


def _dispersion(pyplot, rows, codes):
    if not rows:
        return None
    figure, axes = pyplot.subplots(1, 2, figsize=(13, 4.5), sharey=True)
    for axis, correct in zip(axes, (1, 0)):
        groups = [[max(r[f"p_{c}"] for c in codes) for r in rows
                   if r["label"] == code and r["correct"] == correct] for code in codes]
        positions = [i for i, g in enumerate(groups) if g]
        if positions:
            axis.boxplot([groups[i] for i in positions], positions=positions, widths=0.5)
            rng = np.random.default_rng(0)
            for i in positions:
                axis.scatter(i + rng.uniform(-0.15, 0.15, len(groups[i])), groups[i], s=8,
                             alpha=0.6)
        axis.set_xticks(range(len(codes)), codes, rotation=45, ha="right")
        axis.set(title=f"{'Correct' if correct else 'Incorrect'} predictions, by true class",
                 ylabel="probability of the predicted class", ylim=(0, 1.02))
        axis.grid(alpha=0.3)
    return figure


def _attention(pyplot, metrics, codes):
    stats = metrics.get("grad_cam", {})
    present = [c for c in codes if c in stats]
    if not present:
        return None
    figure, axis = pyplot.subplots(figsize=(8, 4))
    x = np.arange(len(present))
    axis.bar(x - 0.2, [stats[c]["mean_heatmap_fraction_in_lesion"] for c in present], 0.4,
             label="share of heatmap inside lesion (mean)")
    axis.bar(x + 0.2, [stats[c]["peak_in_lesion_rate"] for c in present], 0.4,
             label="heatmap peak inside lesion (rate)")
    axis.set_xticks(x, present)
    method = metrics.get("model", {}).get("heatmap", "Grad-CAM")
    axis.set(ylim=(0, 1), title=f"Where the heatmap looked ({method})")
    axis.legend(fontsize=8)
    return figure


def _reliability(pyplot, metrics):
    calibration = metrics.get("calibration")
    if not calibration:
        return None
    filled = [b for b in calibration["bins"] if b["cases"]]
    figure, axis = pyplot.subplots(figsize=(5, 5))
    axis.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect calibration")
    axis.bar([(b["lower"] + b["upper"]) / 2 for b in filled], [b["accuracy"] for b in filled],
             width=filled[0]["upper"] - filled[0]["lower"] if filled else 0.05,
             edgecolor="black", alpha=0.7, label="accuracy in the bin")
    axis.plot([b["confidence"] for b in filled], [b["accuracy"] for b in filled], "o",
              color="black", markersize=3, label="mean confidence in the bin")
    axis.set(xlim=(0, 1), ylim=(0, 1), xlabel="top probability", ylabel="accuracy",
             title=f"Reliability (ECE {calibration['expected_calibration_error']:.3f})")
    axis.legend(fontsize=8, loc="upper left")
    return figure


def _html(metrics: dict, names: dict, figures: dict) -> str:
    def cell(value):
        return "-" if value is None else (f"{value:.3f}" if isinstance(value, float)
                                          else html.escape(str(value)))
    keys = ["support", "sensitivity", "specificity", "ppv", "npv", "f1", "roc_auc", "auprc"]
    header = "".join(f"<th>{k.upper() if len(k) <= 3 else k}</th>" for k in keys)
    body = "".join(
        f"<tr><td>{html.escape(code)}</td><td>{html.escape(names.get(code, code))}</td>"
        + "".join(f"<td>{cell(values.get(k))}</td>" for k in keys) + "</tr>"
        for code, values in metrics["per_class"].items())
    images = "".join(
        f"<figure><img alt='{name}' src='data:image/png;base64,"
        f"{base64.b64encode(path.read_bytes()).decode()}'><figcaption>{name}</figcaption>"
        "</figure>" for name, path in figures.items())
    failed = "".join(f"<li>{html.escape(f['case'])}: {html.escape(f['error'])}</li>"
                     for f in metrics.get("failed_cases", []))
    attention = metrics.get("grad_cam", {}).get("all_tumours")
    method = html.escape(metrics.get("model", {}).get("heatmap", "Grad-CAM"))
    attention_line = (f"<p>Heatmap ({method}) over {attention['cases']} tumour cases with a "
                      "lesion mask: "
                      f"peak inside the lesion in {attention['peak_in_lesion_rate']:.1%}, "
                      f"within 15 mm of it in {attention['peak_within_15mm_rate']:.1%} "
                      f"(median distance {attention['median_peak_distance_mm']:.1f} mm); "
                      f"{attention['mean_heatmap_fraction_in_lesion']:.1%} of the heatmap lies "
                      "inside the lesion on average.</p>" if attention else "")
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8">
<title>TumorClassifier evaluation</title><style>
body{{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
td:nth-child(-n+2){{text-align:left}}img{{max-width:100%}}figure{{margin:1em 0}}
</style></head><body>
<h1>TumorClassifier evaluation</h1>
<p>Model: {html.escape(metrics['model']['name'])} (weights sha256
{metrics['model']['weights_sha256'][:16]}...). Cases evaluated: {metrics['cases']}.
<b>Accuracy: {cell(metrics['accuracy'])}</b></p>
{attention_line}
{_calibration_line(metrics)}
<table><tr><th>class</th><th>name</th>{header}</tr>{body}</table>
{'<h2>Failed cases</h2><ul>' + failed + '</ul>' if failed else ''}
{images}
</body></html>"""


def _calibration_line(metrics: dict) -> str:
    calibration = metrics.get("calibration")
    if not calibration or calibration["expected_calibration_error"] is None:
        return ""
    highest = calibration["highest_wrong_confidence"]
    return (f"<p>Calibration: expected calibration error "
            f"{calibration['expected_calibration_error']:.3f}; wrong answers at 0.9 or above: "
            f"{calibration['wrong_at_0.9_or_above']}"
            + (f" (the most confident wrong answer: {highest:.2f})" if highest is not None
               else "") + ".</p>")
