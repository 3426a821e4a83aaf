"""The DICOM objects of one classification, built with highdicom from the source series'
headers (source.py): the heatmap as a Parametric Map on the source's frames, and a
Comprehensive 3D SR (TID 1500 Imaging Measurement Report) that states the predicted class,
every class's probability, the model, the heatmap method and the warnings, and references
the map and the source images. Patient and study attributes come from the source; nothing
about the patient is made up."""

from __future__ import annotations

import numpy as np
import pydicom
from highdicom import VOILUTTransformation, sr
from highdicom.coding_schemes import CodingSchemeIdentificationItem
from highdicom.pm import ParametricMap, RealWorldValueMapping
from pydicom.sr.codedict import codes

from .. import __version__
from ..errors import InputError
from .codes import (
    CLASS_SCHEME,
    COMMENT,
    HEATMAP_QUANTITY,
    NO_UNITS,
    PROCEDURE,
    class_concept,
    probability_concept,
)
from .uids import result_fingerprint, uid_for

MANUFACTURER = "TumorClassifier"
SERIES_NUMBER_OFFSET = 1000  # result series: the source's number plus this (SR: plus one more)
POSITION_TOLERANCE_MM = 0.1
CLASS_SCHEME_ITEM = CodingSchemeIdentificationItem(
    designator=CLASS_SCHEME, name="TumorClassifier tumour classes",
    responsible_organization=MANUFACTURER)


def heatmap_frames(result, source: list[pydicom.Dataset]) -> np.ndarray:
    """The heatmap as frames (slices, rows, columns) in the source's slice order; InputError
    when it is not on the source's grid (the scan was not this series as read)."""
    frames = np.asarray(result.heatmap.array, dtype=np.float32)
    first = source[0]
    expected = (len(source), int(first.Rows), int(first.Columns))
    origin = np.asarray(result.heatmap.origin, dtype=float)
    if frames.shape != expected or not np.allclose(
            origin, np.asarray(first.ImagePositionPatient, float), atol=POSITION_TOLERANCE_MM):
        raise InputError(f"series {first.SeriesInstanceUID}: the heatmap ({frames.shape}) is "
                         f"not on the series' grid ({expected}); DICOM results need the scan "
                         "read from this series folder")
    return frames


def build_parametric_map(result, source: list[pydicom.Dataset],
                         fingerprint: str) -> ParametricMap:
    model = result.model or {}
    mapping = RealWorldValueMapping(
        lut_label="HEATMAP", lut_explanation=(result.heatmap_method or "heatmap")[:64],
        unit=NO_UNITS, value_range=(0.0, 1.0), slope=1.0, intercept=0.0,
        quantity_definition=HEATMAP_QUANTITY)
    parametric_map = ParametricMap(
        source_images=source, pixel_array=heatmap_frames(result, source),
        series_instance_uid=uid_for(fingerprint, "pm-series"),
        series_number=_series_number(source, 1), sop_instance_uid=uid_for(fingerprint, "pm"),
        instance_number=1, manufacturer=MANUFACTURER,
        manufacturer_model_name=str(model.get("name", "model"))[:64],
        software_versions=__version__,
        device_serial_number=str(model.get("weights_sha256", ""))[:16] or "unknown",
        contains_recognizable_visual_features=False, real_world_value_mappings=[mapping],
        voi_lut_transformations=[VOILUTTransformation(window_center=0.5, window_width=1.0)],
        content_description=f"Where the network looked: {result.cam_class}"[:64],
        content_label="HEATMAP", series_description=f"{MANUFACTURER}: heatmap")
    # Laterality is Type 2C in the General Series module: present, empty, for the brain (an
    # unpaired structure); dciodvfy cannot evaluate the condition and asks for it.
    parametric_map.Laterality = ""
    return parametric_map


def build_report(result, source: list[pydicom.Dataset],
                 fingerprint: str) -> sr.Comprehensive3DSR:
    model = result.model or {}
    weights = str(model.get("weights_sha256", ""))
    device = sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=sr.DeviceObserverIdentifyingAttributes(
            uid=uid_for(weights, "device"),
            name=MANUFACTURER, model_name=str(model.get("name", "model"))[:64]))
    names = result.display_names
    group = sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=sr.TrackingIdentifier(uid=uid_for(fingerprint, "tracking"),
                                                  identifier="Tumour type"),
        algorithm_id=sr.AlgorithmIdentification(
            name=str(model.get("name", "model"))[:64], version=weights[:64] or "unknown",
            parameters=[(result.heatmap_method or "heatmap")[:64],
                        f"network passes averaged: {result.augmentations}"]),
        finding_type=class_concept(result.predicted_class, names[result.predicted_class]),
        measurements=[sr.Measurement(name=probability_concept(code, names[code]),
                                     value=float(probability), unit=NO_UNITS)
                      for code, probability in result.probabilities.items()])
    for warning in result.warnings:
        group[0].ContentSequence.append(sr.TextContentItem(
            name=COMMENT, value=warning[:1024],
            relationship_type=sr.RelationshipTypeValues.CONTAINS))
    report = sr.MeasurementReport(
        observation_context=sr.ObservationContext(observer_device_context=device),
        procedure_reported=PROCEDURE, imaging_measurements=[group])
    return sr.Comprehensive3DSR(
        evidence=source, content=report, series_instance_uid=uid_for(fingerprint, "sr-series"),
        series_number=_series_number(source, 2), sop_instance_uid=uid_for(fingerprint, "sr"),
        instance_number=1, manufacturer=MANUFACTURER, coding_schemes=[CLASS_SCHEME_ITEM],
        series_description=f"{MANUFACTURER}: tumour type"[:64])


def build_objects(result, source: list[pydicom.Dataset]) -> dict[str, pydicom.Dataset]:
    fingerprint = result_fingerprint(str(source[0].SeriesInstanceUID), result)
    parametric_map = build_parametric_map(result, source, fingerprint)
    return {"parametric_map": parametric_map,
            "report": build_report(result, source, fingerprint)}


def _series_number(source: list[pydicom.Dataset], offset: int) -> int:
    number = source[0].get("SeriesNumber")
    return (int(number) if number not in (None, "") else 0) + SERIES_NUMBER_OFFSET + offset
