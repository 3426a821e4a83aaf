"""Affine registration of a scan to the atlas with SimpleITK, and a quality check.

Centre-of-mass initialisation, then rigid (Euler3D) and affine stages, each multi-resolution
with Mattes mutual information, on images shrunk to a few millimetres for speed. The result is
one affine transform that maps atlas (world) points to scan (world) points.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from .atlas import Atlas, downsampled, physical_bounds
from .settings import RegistrationConfig


@dataclass(frozen=True, eq=False)
class RegistrationResult:
    transform: sitk.AffineTransform  # atlas world point -> scan world point
    correlation: float  # normalised cross-correlation inside the atlas brain, -1..1
    scales: tuple[float, float, float]  # singular values of the affine matrix
    brain_in_view: float  # fraction of the atlas brain that falls inside the scan
    skull_stripped_atlas: bool
    ok: bool
    problem: str  # empty when ok

    def summary(self) -> dict:
        return {"correlation": round(self.correlation, 4),
                "scales": [round(s, 4) for s in self.scales],
                "brain_in_view": round(self.brain_in_view, 4),
                "atlas": "skull-stripped" if self.skull_stripped_atlas else "with skull",
                "ok": self.ok, "problem": self.problem}


def register_to_atlas(scan: sitk.Image, atlas: Atlas, skull_stripped: bool,
                      config: RegistrationConfig = RegistrationConfig()) -> RegistrationResult:
    with _single_itk_thread():
        return _register(scan, atlas, skull_stripped, config)


_itk_threads_lock = threading.Lock()
_itk_single_thread_users = 0
_itk_threads_before = 0


@contextlib.contextmanager
def _single_itk_thread():
    """ITK's threaded metric sums in a varying order; one thread makes two runs identical
    (its cost: docs/decisions.md). Counted, so that registrations running at once in several
    Python threads (the batch's preparation threads) keep ITK single-threaded until the last
    one ends."""
    global _itk_single_thread_users, _itk_threads_before
    with _itk_threads_lock:
        if _itk_single_thread_users == 0:
            _itk_threads_before = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
            sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
        _itk_single_thread_users += 1
    try:
        yield
    finally:
        with _itk_threads_lock:
            _itk_single_thread_users -= 1
            if _itk_single_thread_users == 0:
                sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(_itk_threads_before)


def _register(scan, atlas, skull_stripped, config) -> RegistrationResult:
    fixed, fixed_mask = downsampled(atlas, skull_stripped, config.working_spacing_mm)
    moving = _registration_copy(scan, config.working_spacing_mm)

    initial = sitk.CenteredTransformInitializer(
        fixed, moving, sitk.Euler3DTransform(),
        sitk.CenteredTransformInitializerFilter.MOMENTS)
    rigid = sitk.Euler3DTransform(initial)
    _run_stage(fixed, moving, rigid, config, config.rigid_shrink_factors,
               config.rigid_smoothing_mm)

    affine = sitk.AffineTransform(3)
    affine.SetCenter(rigid.GetCenter())
    affine.SetMatrix(rigid.GetMatrix())
    affine.SetTranslation(rigid.GetTranslation())
    _run_stage(fixed, moving, affine, config, config.affine_shrink_factors,
               config.affine_smoothing_mm)
    return _assess(fixed, fixed_mask, moving, affine, skull_stripped, config)


def _registration_copy(scan: sitk.Image, spacing_mm: float) -> sitk.Image:
    """Float copy at about `spacing_mm`, shifted so the background is 0 and clipped at a high
    percentile, so that centre-of-mass initialisation is not thrown by negative backgrounds
    (z-scored inputs) or a few very bright voxels (vessels, frames).

    The voxels are first put in one storage order (LPS; an exact permutation and flip), so that
    the same scan stored as RAS, LAS, PIR... is shrunk identically and registers identically:
    otherwise BinShrink groups other voxel pairs and the optimiser ends elsewhere
    (docs/decisions.md)."""
    scan = sitk.DICOMOrient(scan, "LPS")
    factors = [max(1, int(round(spacing_mm / s))) for s in scan.GetSpacing()]
    small = sitk.BinShrink(sitk.Cast(scan, sitk.sitkFloat32), factors)
    array = sitk.GetArrayFromImage(small)
    low, high = np.percentile(array, [0.0, 99.5])
    # Scaled to 0..1: the same anatomy stored with other intensity units then registers the
    # same way (x1000 had sent the optimiser elsewhere on a phantom, 0.07 in probabilities).
    array = (np.clip(array, low, high) - low) / max(float(high - low), 1e-12)
    result = sitk.GetImageFromArray(array.astype(np.float32))
    result.CopyInformation(small)
    return result


def _run_stage(fixed, moving, transform, config, shrink_factors, smoothing_mm) -> None:
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=config.histogram_bins)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(config.sampling_fraction, config.seed)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=config.learning_rate, minStep=config.min_step,
        numberOfIterations=config.iterations,
        gradientMagnitudeTolerance=1e-6, relaxationFactor=0.5)
    method.SetOptimizerScales(_physical_scales(fixed, transform))
    method.SetShrinkFactorsPerLevel(list(shrink_factors))
    method.SetSmoothingSigmasPerLevel(list(smoothing_mm))
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    method.SetInitialTransform(transform, inPlace=True)
    method.Execute(fixed, moving)


def _physical_scales(fixed: sitk.Image, transform: sitk.Transform) -> list[float]:
    """Optimizer scales as (mm moved per unit parameter change)^2, like ITK's physical-shift
    estimator, but computed in closed form: that estimator samples points from ITK's global
    random generator, which made repeated registrations of the same scan differ."""
    low, high = physical_bounds(fixed)
    radius = float(np.linalg.norm(high - low) / 2)  # farthest voxel from the centre
    count = transform.GetNumberOfParameters()
    # Euler3D: 3 angles then 3 translations; Affine: 9 matrix entries then 3 translations.
    return [radius ** 2] * (count - 3) + [1.0] * 3


def _assess(fixed, fixed_mask, moving, affine, skull_stripped, config) -> RegistrationResult:
    warped = sitk.Resample(moving, fixed, affine, sitk.sitkLinear, float("nan"))
    brain = sitk.GetArrayViewFromImage(fixed_mask).astype(bool)
    warped_array = sitk.GetArrayViewFromImage(warped)
    in_view = brain & np.isfinite(warped_array)
    brain_in_view = float(in_view.sum() / max(brain.sum(), 1))
    correlation = _correlation(sitk.GetArrayViewFromImage(fixed)[in_view], warped_array[in_view])
    scales = tuple(float(s) for s in
                   np.linalg.svd(np.asarray(affine.GetMatrix()).reshape(3, 3), compute_uv=False))
    problem = ""
    if correlation < config.min_correlation:
        problem = (f"the scan does not match the atlas brain after registration (correlation "
                   f"{correlation:.2f} < {config.min_correlation}); it may not be a brain MRI")
    elif not config.scale_range[0] <= min(scales) <= max(scales) <= config.scale_range[1]:
        problem = (f"registration scaled the atlas implausibly ({min(scales):.2f}-"
                   f"{max(scales):.2f}); it may not be a brain MRI")
    return RegistrationResult(affine, correlation, scales, brain_in_view, skull_stripped,
                              not problem, problem)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 2:
        return 0.0
    a = a - a.mean()
    b = b - b.mean()
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denominator) if denominator > 0 else 0.0
