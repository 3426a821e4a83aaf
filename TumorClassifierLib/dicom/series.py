"""A scan written as an MR image series, one file per slice, as a scanner would send it: how
the project's phantoms reach an archive in tests and demonstrations. Intensities are scaled to
12-bit unsigned integers; the geometry is the image's own; the UIDs follow from `identity`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage

from .uids import uid_for


def write_mr_series(image: sitk.Image, folder: str | Path, identity: str,
                    description: str = "T1 post-contrast", series_number: int = 1,
                    patient_id: str = "PHANTOM", study_identity: str | None = None) -> Path:
    """`image` as files `folder`/NNN.dcm. `identity` names the series (its UIDs derive from
    it); series of one `study_identity` share a study and a frame of reference."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    array = sitk.GetArrayFromImage(image).astype(np.float64)
    low, high = float(array.min()), float(array.max())
    scaled = np.round((array - low) / max(high - low, 1e-12) * 4095).astype(np.uint16)
    study = study_identity or identity
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    for k in range(array.shape[0]):
        dataset = _header(uid_for(identity, f"image-{k}"))
        dataset.PatientName, dataset.PatientID = f"{patient_id}^", patient_id
        dataset.StudyInstanceUID = uid_for(study, "study")
        dataset.FrameOfReferenceUID = uid_for(study, "frame-of-reference")
        dataset.SeriesInstanceUID = uid_for(identity, "series")
        dataset.StudyID, dataset.AccessionNumber = study[-16:], ""
        dataset.SeriesNumber, dataset.InstanceNumber = series_number, k + 1
        dataset.SeriesDescription = description
        dataset.SliceThickness = image.GetSpacing()[2]
        dataset.ImagePositionPatient = [float(v) for v in
                                        image.TransformIndexToPhysicalPoint((0, 0, k))]
        dataset.ImageOrientationPatient = [float(v) for v in
                                           list(direction[:, 0]) + list(direction[:, 1])]
        dataset.PixelSpacing = [image.GetSpacing()[1], image.GetSpacing()[0]]
        dataset.Rows, dataset.Columns = array.shape[1], array.shape[2]
        dataset.PixelData = scaled[k].tobytes()
        dataset.save_as(folder / f"{k:03d}.dcm", enforce_file_format=True)
    return folder


def _header(sop_instance_uid: str) -> pydicom.Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = pydicom.Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID, dataset.SOPInstanceUID = MRImageStorage, sop_instance_uid
    dataset.Modality, dataset.Manufacturer = "MR", "TumorClassifier phantom"
    dataset.PatientBirthDate, dataset.PatientSex = "", "O"
    dataset.StudyDate, dataset.StudyTime, dataset.ReferringPhysicianName = "20260101", "120000", ""
    dataset.PositionReferenceIndicator = ""
    # Type 2C in General Series: the brain is unpaired (Laterality empty); a head first supine
    # position is what a brain MR has.
    dataset.Laterality, dataset.PatientPosition = "", "HFS"
    dataset.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
    dataset.ScanningSequence, dataset.SequenceVariant, dataset.ScanOptions = "GR", "SP", ""
    dataset.MRAcquisitionType, dataset.EchoTime, dataset.RepetitionTime = "3D", 3.0, 8.0
    dataset.EchoTrainLength, dataset.MagneticFieldStrength = 1, 3.0
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, "MONOCHROME2"
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 16, 12, 11
    dataset.PixelRepresentation = 0
    return dataset
