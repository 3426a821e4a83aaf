"""Temperature scaling and the feature reference fitted after training."""

from __future__ import annotations

import numpy as np
import torch

from TumorClassifierLib.inference import feature_distance
from TumorClassifierLib.training.calibration import feature_reference, fit_temperature


def test_the_fitted_temperature_undoes_overconfident_logits():
    generator = torch.Generator().manual_seed(0)
    calibrated = torch.randn(4000, 7, generator=generator, dtype=torch.float64) * 2
    labels = torch.multinomial(torch.softmax(calibrated, 1), 1, generator=generator)[:, 0]
    assert abs(fit_temperature(calibrated * 3, labels) - 3) < 0.3
    assert abs(fit_temperature(calibrated, labels) - 1) < 0.1


def test_the_feature_limit_leaves_about_one_in_a_hundred_reference_heads_beyond_it():
    features = torch.randn(1000, 16, generator=torch.Generator().manual_seed(1),
                           dtype=torch.float64) * 3 + 5
    reference = feature_reference(features)
    mean, spread = (np.asarray(reference[key]) for key in ("feature_mean", "feature_spread"))
    distances = np.array([feature_distance(row, mean, spread) for row in features.numpy()])
    assert 0.005 <= (distances > reference["feature_distance_limit"]).mean() <= 0.02
    assert feature_distance(mean + 10 * spread, mean, spread) > reference["feature_distance_limit"]
