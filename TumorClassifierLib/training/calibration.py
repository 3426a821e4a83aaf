"""After training: temperature scaling (Guo et al., ICML 2017) fitted on validation heads, and
the reference of the network's pooled features that `Classifier` measures a scan against to
warn when it is unlike anything the model was trained on. Both go into the bundle's
`inference` settings; the weights are untouched."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from ..device import autocast

UNFAMILIAR_QUANTILE = 0.99  # validation heads further than this share of them: warn


def logits_and_features(network, batches, device: torch.device, dtype):
    """(logits (N, C) float64, pooled features (N, F) float64, labels (N,)) over `batches` of
    {"image", "label"}."""
    pooled = []
    hook = network.pool.register_forward_hook(
        lambda module, inputs, output: pooled.append(output.detach().flatten(1).float().cpu()))
    logits, labels = [], []
    network.eval()
    try:
        with torch.no_grad(), autocast(device, dtype):
            for batch in batches:
                logits.append(network(torch.as_tensor(batch["image"]).float().to(device))
                              .float().cpu())
                labels.append(torch.as_tensor(batch["label"]).long())
    finally:
        hook.remove()
    return (torch.cat(logits).double(), torch.cat(pooled).double(), torch.cat(labels))


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature T > 0 that minimises the cross-entropy of softmax(logits / T)."""
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def loss():
        optimiser.zero_grad()
        value = F.cross_entropy(logits / log_t.exp(), labels)
        value.backward()
        return value
    optimiser.step(loss)
    return float(log_t.detach().exp().clamp(0.05, 20.0))


def feature_reference(features: torch.Tensor) -> dict:
    """Mean and spread per feature, and the distance (inference.feature_distance) that
    UNFAMILIAR_QUANTILE of these heads stay under."""
    from ..inference import feature_distance
    values = features.numpy()
    mean, spread = values.mean(0), values.std(0)
    distances = [feature_distance(row, mean, spread) for row in values]
    return {"feature_mean": tuple(float(v) for v in mean),
            "feature_spread": tuple(float(v) for v in spread),
            "feature_distance_limit": float(np.quantile(distances, UNFAMILIAR_QUANTILE))}


def calibrated_inference(inference, network, batches, device, dtype, flip_axes):
    """`inference` (an InferenceConfig) with the temperature, the feature reference and the
    trained flips filled in from `batches` of validation heads."""
    logits, features, labels = logits_and_features(network, batches, device, dtype)
    return dataclasses.replace(inference, temperature=fit_temperature(logits, labels),
                               tta_flip_axes=tuple(flip_axes), **feature_reference(features))
