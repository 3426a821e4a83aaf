"""Classify one scan end to end: read, preprocess, one forward pass with Grad-CAM, map back.

    classifier = Classifier.from_bundle()            # the bundled default model
    result = classifier.classify("scan.nii.gz")      # or a Volume / SimpleITK image
    result.predicted_class, result.probabilities, result.heatmap
"""

from __future__ import annotations

import copy
import itertools
import os
import time
import warnings as python_warnings
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
import torch

from .bundle import ModelBundle, load_bundle, software_versions
from .classes import canonical_code
from .device import autocast, resolve_device, resolve_precision
from .gradcam import GradCAM
from .prepared_input import PreparedInput, classify_in_stages, prepare_input
from .preprocessing import PreparedScan
from .result import ClassificationResult
from .volume import Volume


class Classifier:
    """A loaded model ready to classify scans. Holds the network on its device."""

    def __init__(self, bundle: ModelBundle, device: str = "auto",
                 precision: str = "auto") -> None:
        self.bundle = bundle
        self.metadata = bundle.metadata
        self.device = resolve_device(device)
        self.precision = precision
        resolve_precision(precision, self.device)  # validate early
        self._networks: dict[str, torch.nn.Module] = {}

    @classmethod
    def from_bundle(cls, path: str | os.PathLike | None = None, device: str = "auto",
                    precision: str = "auto") -> Classifier:
        """Load a model bundle (folder or .zip); None loads the bundled default model."""
        return cls(load_bundle(path), device=device, precision=precision)

    def classify(self, scan: Volume | sitk.Image | str | os.PathLike, cam_class=None,
                 device: str | None = None, mask=None, allow_poor_registration: bool = False,
                 progress=None, cancel=None, tta: bool = False) -> ClassificationResult:
        """Classify one 3D T1c scan and compute its Grad-CAM heatmap.

        scan: a path (NIfTI, NRRD, MHA, DICOM folder), a `Volume` or a SimpleITK image.
        cam_class: class code, name or index to explain; None explains the predicted class.
        mask: optional brain mask (path, Volume or image) in the scan's geometry.
        progress: optional callable(stage, fraction) called as each stage starts.
        cancel: optional threading.Event; when set, the run stops with `Cancelled` at the next
        stage boundary.
        tta: test-time augmentation - average the probabilities over every combination of the
        flips the model was trained with (the bundle's `inference.tta_flip_axes`: 8 passes for
        the paper's three axes, 2 for left-right only; the heatmap is the unflipped pass's).
        """
        return classify_in_stages(self, scan, cam_class=cam_class, device=device, mask=mask,
                                  allow_poor_registration=allow_poor_registration,
                                  progress=progress, cancel=cancel, tta=tta)

    def prepare(self, scan, mask=None, allow_poor_registration: bool = False,
                stage=None) -> PreparedInput:
        """Read and preprocess a scan for this model (no network): the part of `classify` that
        a batch can run for the next scan while the network works on this one."""
        return prepare_input(scan, self.metadata.preprocessing, mask, allow_poor_registration,
                             stage)

    def classify_prepared(self, prepared_input: PreparedInput, cam_class=None,
                          device: str | None = None, stage=None,
                          tta: bool = False) -> ClassificationResult:
        """The network, Grad-CAM and the heatmap's way back for a `prepare`d scan."""
        stage = stage or (lambda name, fraction: None)
        prepared = prepared_input.scan
        timings = dict(prepared_input.timings)
        warnings = list(prepared.warnings)
        codes = self.metadata.class_codes
        cam_index = self._cam_index(cam_class)
        target = resolve_device(device) if device is not None else self.device

        stage("classifying and computing the heatmap", 0.6)
        try:
            network_pass = self._forward(prepared.tensor, cam_index, target, tta)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            warnings.append(f"Out of GPU memory on {target}; ran on the CPU instead")
            target = torch.device("cpu")
            network_pass = self._forward(prepared.tensor, cam_index, target, tta)
        probabilities, cam, dtype = network_pass.probabilities, network_pass.cam, \
            network_pass.dtype
        timings.update(network_pass.timings)
        warnings.extend(self.unfamiliarity_warnings(network_pass.feature_distance))

        stage("mapping the heatmap back", 0.9)
        start = time.perf_counter()
        heatmap = prepared.to_input_geometry(cam * near_brain(prepared))
        heatmap = heatmap.with_array(quantised_unit_map(heatmap.array))
        timings["heatmap_to_input"] = time.perf_counter() - start

        predicted = codes[int(np.argmax(probabilities))]
        stage("done", 1.0)
        threshold = self.metadata.inference.low_confidence_threshold
        if probabilities.max() < threshold:
            warnings.append(f"Low confidence: the most likely class has "
                            f"{probabilities.max():.0%} (< {threshold:.0%})")
        return ClassificationResult(
            source=prepared_input.name,
            probabilities={code: float(p) for code, p in zip(codes, probabilities)},
            display_names=dict(self.metadata.display_names), predicted_class=predicted,
            cam_class=codes[cam_index] if cam_index is not None else predicted,
            heatmap=heatmap, registration=prepared.registration.summary(), timings=timings,
            device=str(target), precision=str(dtype).replace("torch.", ""),
            warnings=tuple(warnings), augmentations=network_pass.augmentations,
            heatmap_method=network_pass.method,
            model={"name": self.metadata.name, "weights_sha256": self.metadata.weights_sha256},
            software=dict(software_versions()))

    def _network_on(self, device: torch.device) -> torch.nn.Module:
        key = str(device)
        if key not in self._networks:
            network = self.bundle.network
            if device.type != "cpu":  # keep the CPU copy for out-of-memory fallback
                network = copy.deepcopy(network).to(device)
            self._networks[key] = network.eval()
        return self._networks[key]

    def explain(self, tensor: np.ndarray, cam_class=None, tta: bool = False,
                device: str | None = None) -> NetworkPass:
        """The network and the heatmap for a network input (1, K, J, I) that is already on the
        model's grid (a synthetic head, or `prepare(...).scan.tensor`)."""
        target = resolve_device(device) if device is not None else self.device
        return self._forward(np.asarray(tensor, np.float32), self._cam_index(cam_class), target,
                             tta)

    def _cam_index(self, cam_class) -> int | None:
        codes = self.metadata.class_codes
        return None if cam_class is None else codes.index(canonical_code(cam_class, codes))

    def unfamiliarity_warnings(self, distance: float | None) -> list[str]:
        """A plain warning when the scan's pooled features lie further from the validation
        heads' than 99% of those heads did."""
        limit = self.metadata.inference.feature_distance_limit
        if distance is None or not limit or distance <= limit:
            return []
        return [f"Unlike the scans this model was trained on (feature distance {distance:.1f}; "
                f"99% of its validation scans were under {limit:.1f}): the result is less "
                "reliable than usual"]

    def _forward(self, tensor: np.ndarray, cam_index, device: torch.device,
                 tta: bool) -> NetworkPass:
        """Class probabilities (averaged over the flips when `tta`) and the Grad-CAM map of the
        unflipped input for `cam_index`, or for the most probable class."""
        network = self._network_on(device)
        dtype = resolve_precision(self.precision, device)
        batch = torch.from_numpy(tensor).unsqueeze(0).to(device)
        settings = self.metadata.inference
        layer = network.level(settings.heatmap_level)
        flips = flip_combinations(settings.tta_flip_axes) if tta else ((),)
        flipped = []  # probabilities of the flipped passes
        timings = {}
        pooled = {}  # the last pass's pooled features: the unflipped one, which runs last
        hook = network.pool.register_forward_hook(
            lambda module, inputs, output: pooled.update(features=output.detach()))
        try:
            with python_warnings.catch_warnings():
                python_warnings.simplefilter("ignore", UserWarning)  # autocast chatter
                with autocast(device, dtype), \
                        GradCAM(network, layer, settings.heatmap_method) as explainer:
                    if tta:
                        start = time.perf_counter()
                        with torch.no_grad():
                            for axes in flips[1:]:
                                flipped.append(self._softmax(network(torch.flip(batch, axes))))
                        timings["tta"] = time.perf_counter() - start
                    average = {}

                    def choose(logits):  # after the unflipped pass, before its backward pass
                        average["p"] = torch.stack([self._softmax(logits)] + flipped).mean(0)
                        return cam_index if cam_index is not None else int(average["p"].argmax())

                    _, cam = explainer(batch, class_index=choose)
                    timings.update(explainer.timings)
        finally:
            hook.remove()
        grid = "x".join(str(n) for n in explainer.activation_shape[::-1])
        method = (f"{settings.heatmap_method} at encoder level "
                  f"{list(network.levels).index(layer)} ({grid} grid)")
        return NetworkPass(average["p"].numpy(), cam[0].cpu().numpy(), dtype, timings, method,
                           len(flips), self._feature_distance(pooled.get("features")))

    def _softmax(self, logits: torch.Tensor) -> torch.Tensor:
        scaled = logits[0].detach().double().cpu() / self.metadata.inference.temperature
        return torch.softmax(scaled, dim=0)

    def _feature_distance(self, features: torch.Tensor | None) -> float | None:
        settings = self.metadata.inference
        if features is None or not settings.feature_mean:
            return None
        return feature_distance(features.flatten().float().cpu().numpy(),
                                np.asarray(settings.feature_mean),
                                np.asarray(settings.feature_spread))


def feature_distance(features: np.ndarray, mean: np.ndarray, spread: np.ndarray) -> float:
    """Root mean square of the features' standardised differences from the reference (a
    diagonal Mahalanobis distance per feature)."""
    return float(np.sqrt(np.mean(((features - mean) / np.maximum(spread, 1e-6)) ** 2)))


@dataclass(frozen=True)
class NetworkPass:
    probabilities: np.ndarray  # (classes,), averaged over the flips when augmented
    cam: np.ndarray  # (K, J, I) on the network grid, for the explained class
    dtype: torch.dtype
    timings: dict
    method: str  # which heatmap, at which level and grid
    augmentations: int  # network passes averaged
    feature_distance: float | None  # from the bundle's reference; None without one


def flip_combinations(spatial_axes) -> tuple[tuple[int, ...], ...]:
    """Every combination of flips of the given spatial axes (0: K, 1: J, 2: I) as axes of a
    (B, C, K, J, I) batch, the unflipped input first."""
    axes = [int(a) + 2 for a in sorted(set(spatial_axes))]
    return tuple(combination for size in range(len(axes) + 1)
                 for combination in itertools.combinations(axes, size))


HEATMAP_LEVELS = 1024


HEATMAP_MARGIN_MM = 10.0


def near_brain(prepared: PreparedScan, margin_mm: float = HEATMAP_MARGIN_MM) -> np.ndarray:
    """Where the heatmap is shown, on the network grid: the brain mask grown by `margin_mm`.
    Outside the brain the network's input is constant zero, and the coarse map (8^3 cells at
    128^3) stretched to the box's edges had its peak outside the head; the margin keeps the
    extra-axial tumours' edge of the brain (35-79% of a phantom pituitary adenoma, 65-79% of
    an acoustic neuroma lie inside the atlas brain mask)."""
    return grown_mask(prepared.brain_mask, prepared.grid.GetSpacing(), margin_mm)


def grown_mask(mask: np.ndarray, spacing_xyz, margin_mm: float) -> np.ndarray:
    """A (K, J, I) mask dilated by about `margin_mm` (a ball of whole voxels)."""
    radius = max(1, int(round(margin_mm / min(spacing_xyz))))
    image = sitk.GetImageFromArray(np.asarray(mask).astype(np.uint8))
    return sitk.GetArrayFromImage(sitk.BinaryDilate(image, [radius] * 3, sitk.sitkBall)) > 0



def quantised_unit_map(array: np.ndarray, levels: int = HEATMAP_LEVELS) -> np.ndarray:
    """Scale so that the peak is 1 (interpolation onto the scan's voxels can shave the top off),
    then round to multiples of 1/levels. Grad-CAM comes from a coarse grid (8^3 at 128^3), so
    steps of 1/1024 are invisible, and they let the heatmap's .nii.gz compress far better
    (docs/decisions.md)."""
    peak = float(array.max())
    # In place after one float32 copy.
    result = np.multiply(array, levels / peak if peak > 0 else levels, dtype=np.float32)
    np.rint(result, out=result)
    result *= np.float32(1.0 / levels)  # exact for a power of two such as 1024
    return result
