"""Classify one scan end to end: read, preprocess, one forward pass with Grad-CAM, map back.

    classifier = Classifier.from_bundle()            # the bundled default model
    result = classifier.classify("scan.nii.gz")      # or a Volume / SimpleITK image
    result.predicted_class, result.probabilities, result.heatmap
"""

from __future__ import annotations

import copy
import os
import time
import warnings as python_warnings

import numpy as np
import SimpleITK as sitk
import torch

from .bundle import ModelBundle, load_bundle, software_versions
from .classes import canonical_code
from .device import autocast, resolve_device, resolve_precision
from .errors import Cancelled
from .gradcam import GradCAM
from .prepared_input import PreparedInput, prepare_input
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
        tta: test-time augmentation - average the probabilities over the 8 combinations of the
        paper's training flips (8x the network time; the heatmap is the unflipped pass's).
        """
        def stage(name: str, fraction: float) -> None:
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"cancelled while {name}")
            if progress is not None:
                progress(name, fraction)

        stage("preparing", 0.0)
        prepared = self.prepare(scan, mask=mask, allow_poor_registration=allow_poor_registration,
                                stage=stage)
        return self.classify_prepared(prepared, cam_class=cam_class, device=device, stage=stage,
                                      tta=tta)

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
        cam_index = None if cam_class is None else codes.index(canonical_code(cam_class, codes))
        target = resolve_device(device) if device is not None else self.device

        stage("classifying and computing the heatmap", 0.6)
        try:
            probabilities, cam, dtype, network_timings, method = self._forward(
                prepared.tensor, cam_index, target, tta)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            warnings.append(f"Out of GPU memory on {target}; ran on the CPU instead")
            target = torch.device("cpu")
            probabilities, cam, dtype, network_timings, method = self._forward(
                prepared.tensor, cam_index, target, tta)
        timings.update(network_timings)

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
            warnings=tuple(warnings), augmentations=len(FLIPS) if tta else 1,
            heatmap_method=method,
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

    def _forward(self, tensor: np.ndarray, cam_index, device: torch.device, tta: bool):
        """Class probabilities (averaged over the flips when `tta`) and the Grad-CAM map of the
        unflipped input for `cam_index`, or for the most probable class."""
        network = self._network_on(device)
        dtype = resolve_precision(self.precision, device)
        batch = torch.from_numpy(tensor).unsqueeze(0).to(device)
        settings = self.metadata.inference
        layer = network.level(settings.heatmap_level)
        flipped = []  # probabilities of the flipped passes
        timings = {}
        with python_warnings.catch_warnings():
            python_warnings.simplefilter("ignore", UserWarning)  # autocast chatter
            with autocast(device, dtype), \
                    GradCAM(network, layer, settings.heatmap_method) as explainer:
                if tta:
                    start = time.perf_counter()
                    with torch.no_grad():
                        for axes in FLIPS[1:]:
                            flipped.append(_softmax(network(torch.flip(batch, axes))))
                    timings["tta"] = time.perf_counter() - start
                average = {}

                def choose(logits):  # after the unflipped pass, before its backward pass
                    average["p"] = torch.stack([_softmax(logits)] + flipped).mean(0)
                    return cam_index if cam_index is not None else int(average["p"].argmax())
                _, cam = explainer(batch, class_index=choose)
                timings.update(explainer.timings)
        grid = "x".join(str(n) for n in explainer.activation_shape[::-1])
        method = (f"{settings.heatmap_method} at encoder level "
                  f"{list(network.levels).index(layer)} ({grid} grid)")
        return average["p"].numpy(), cam[0].cpu().numpy(), dtype, timings, method


HEATMAP_LEVELS = 1024
# Test-time augmentation: every combination of flips of the three spatial axes of a (B, C, D,
# H, W) batch - the paper's training augmentation. The unflipped input comes first.
FLIPS = ((), (2,), (3,), (4,), (2, 3), (2, 4), (3, 4), (2, 3, 4))


HEATMAP_MARGIN_MM = 10.0


def near_brain(prepared: PreparedScan, margin_mm: float = HEATMAP_MARGIN_MM) -> np.ndarray:
    """Where the heatmap is shown, on the network grid: the brain mask grown by `margin_mm`.
    Outside the brain the network's input is constant zero, and the coarse map (8^3 cells at
    128^3) stretched to the box's edges had its peak outside the head; the margin keeps the
    extra-axial tumours' edge of the brain (35-79% of a phantom pituitary adenoma, 65-79% of
    an acoustic neuroma lie inside the atlas brain mask)."""
    radius = max(1, int(round(margin_mm / min(prepared.grid.GetSpacing()))))
    mask = sitk.GetImageFromArray(prepared.brain_mask.astype(np.uint8))
    return sitk.GetArrayFromImage(sitk.BinaryDilate(mask, [radius] * 3, sitk.sitkBall)) > 0


def _softmax(logits: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits[0].detach().double().cpu(), dim=0)



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
