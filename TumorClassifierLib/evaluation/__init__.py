"""Evaluating a model on a labelled manifest: evaluator (the batch engine plus lesion columns),
metrics (accuracy, per-class and attention metrics with MONAI), report (the HTML report).
"""
