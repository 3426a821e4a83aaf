"""The source series of a scan read from a DICOM folder, as the objects that reference it need
it: every image's header (no pixels), in the order SimpleITK stacks them (ascending along the
slice normal), checked to be one series of one geometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from ..errors import InputError

REQUIRED = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID",
            "FrameOfReferenceUID", "ImagePositionPatient", "ImageOrientationPatient",
            "PixelSpacing", "Rows", "Columns")


def read_source_series(folder: str | Path) -> list[pydicom.Dataset]:
    """The headers of the one image series in `folder`, in slice order. InputError (naming the
    folder) when it holds no DICOM images, several series, or images that lack what a
    derived object must reference."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: DICOM results need the scan's DICOM series folder")
    datasets = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            datasets.append(pydicom.dcmread(path, stop_before_pixels=True))
        except (InvalidDicomError, OSError):
            continue  # not DICOM (a README, a DICOMDIR's companions): SimpleITK skips them too
    images = [d for d in datasets if "ImagePositionPatient" in d and "Rows" in d]
    if not images:
        raise InputError(f"{folder}: holds no DICOM images")
    series = sorted({str(d.get("SeriesInstanceUID", "")) for d in images})
    if len(series) > 1:
        raise InputError(f"{folder}: holds {len(series)} series; DICOM results need the folder "
                         "of one series")
    missing = sorted({name for d in images for name in REQUIRED if name not in d})
    if missing:
        raise InputError(f"{folder}: its images lack {', '.join(missing)}, which DICOM results "
                         "must reference")
    orientation = np.asarray(images[0].ImageOrientationPatient, dtype=float)
    if any(not np.allclose(np.asarray(d.ImageOrientationPatient, float), orientation, atol=1e-4)
           for d in images):
        raise InputError(f"{folder}: its images do not share one orientation")
    normal = np.cross(orientation[:3], orientation[3:])
    return sorted(images, key=lambda d: float(np.dot(normal, np.asarray(
        d.ImagePositionPatient, dtype=float))))
