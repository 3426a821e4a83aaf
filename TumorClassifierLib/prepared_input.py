"""A scan read and preprocessed for a model's settings, waiting for the network. Imports no
torch: a batch reads and registers its first scans while the model is still loading."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import SimpleITK as sitk

from .errors import Cancelled
from .preprocessing import PreparedScan, preprocess
from .settings import PreprocessingConfig
from .volume import Volume, check_image, read_sitk_image


@dataclass(frozen=True, eq=False)
class PreparedInput:
    name: str
    scan: PreparedScan
    timings: dict[str, float]  # read and preprocessing stages

    def scan_volume(self) -> Volume:
        """The scan as read (float32), e.g. for an overlay picture without reading it again."""
        return Volume.from_sitk(self.scan.input_image)


def prepare_input(scan, preprocessing: PreprocessingConfig, mask=None,
                  allow_poor_registration: bool = False, stage=None) -> PreparedInput:
    """Read `scan` (a path, `Volume` or SimpleITK image) and its optional brain `mask`, and
    preprocess it with `preprocessing`. `stage(name, fraction)` is called as registration
    starts."""
    timings: dict[str, float] = {}
    start = time.perf_counter()
    image, name = as_image(scan)
    mask_image = as_image(mask)[0] if mask is not None else None
    timings["read"] = time.perf_counter() - start
    if stage is not None:
        stage("registering", 0.1)
    where = str(scan) if isinstance(scan, (str, os.PathLike)) else name  # errors: full path
    prepared = preprocess(image, preprocessing, mask=mask_image,
                          allow_poor_registration=allow_poor_registration, name=where)
    return PreparedInput(name, prepared, timings | prepared.timings)


def classify_in_stages(classifier, scan, cam_class=None, device=None, mask=None,
                       allow_poor_registration: bool = False, progress=None, cancel=None,
                       tta: bool = False):
    """`classifier.prepare` then `classifier.classify_prepared`, calling `progress(stage,
    fraction)` as each stage starts and stopping with `Cancelled` at the next stage once
    `cancel` (a threading.Event) is set: what `Classifier.classify` does, shared with the
    classifier that loads its model in the background."""
    def stage(name: str, fraction: float) -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled(f"cancelled while {name}")
        if progress is not None:
            progress(name, fraction)

    stage("preparing", 0.0)
    prepared = classifier.prepare(scan, mask=mask,
                                  allow_poor_registration=allow_poor_registration, stage=stage)
    return classifier.classify_prepared(prepared, cam_class=cam_class, device=device,
                                        stage=stage, tta=tta)


def as_image(scan) -> tuple[sitk.Image, str]:
    if isinstance(scan, (str, os.PathLike)):
        return read_sitk_image(scan), Path(scan).name
    if isinstance(scan, Volume):
        image = scan.to_sitk()
    elif isinstance(scan, sitk.Image):
        image = scan
    else:
        raise TypeError(f"scan must be a path, Volume or SimpleITK image, not "
                        f"{type(scan).__name__}")
    check_image(image, "input volume")
    return image, "input volume"
