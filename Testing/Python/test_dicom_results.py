"""DICOM results of a scan that came from DICOM (TumorClassifierLib/dicom/): a Comprehensive 3D
SR and a Parametric Map that pass the standard's validator (dciodvfy, Debian's dicom3tools),
read back with highdicom to what was classified, carry the source's patient and study, and
whose UIDs repeat for the same result and change for another. On a small MR series the project
writes (dicom/series.py, itself checked by dciodvfy), and on the real acoustic neuroma series of
../shared/realdata (skipped where absent). The archive: integration/test_orthanc.py."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from TumorClassifierLib.errors import InputError

highdicom = pytest.importorskip("highdicom", reason="the [dicom] extra (highdicom) is needed")

from TumorClassifierLib.dicom.series import write_mr_series  # noqa: E402
from TumorClassifierLib.dicom.source import read_source_series  # noqa: E402
from TumorClassifierLib.dicom.write import write_dicom_results  # noqa: E402
from TumorClassifierLib.inference import Classifier  # noqa: E402

REAL_SERIES = Path(__file__).resolve().parents[3] / "shared" / "realdata" / "an_vs_seg_001" / \
    "dicom"


@pytest.fixture(scope="module")
def series(head, tmp_path_factory) -> Path:
    small = sitk.Resample(head, [s // 2 for s in head.GetSize()], sitk.Transform(),
                          sitk.sitkLinear, head.GetOrigin(),
                          [2 * s for s in head.GetSpacing()], head.GetDirection())
    return write_mr_series(small, tmp_path_factory.mktemp("dicom") / "series", "test-series",
                           series_number=7)


@pytest.fixture(scope="module")
def classifier(tiny_bundle):
    return Classifier.from_bundle(tiny_bundle, device="cpu")


def dciodvfy_errors(path: Path) -> list[str]:
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (Debian's dicom3tools) is not installed; .ci/run installs it")
    done = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    return [line for line in (done.stdout + done.stderr).splitlines()
            if line.startswith("Error")]


def test_the_projects_mr_series_passes_the_validator(series):
    assert dciodvfy_errors(sorted(series.iterdir())[0]) == []
    assert len(read_source_series(series)) == len(list(series.iterdir()))


def check_results(result, source_folder: Path, out: Path) -> dict:
    files = write_dicom_results(result, source_folder, out, "case")
    assert sorted(p.name for p in out.iterdir()) == ["case_heatmap_pm.dcm", "case_report_sr.dcm"]
    for path in files.values():
        assert dciodvfy_errors(path) == [], path.name
    source = read_source_series(source_folder)
    report = highdicom.sr.srread(files["report"])
    pmap = highdicom.pm.ParametricMap.from_dataset(pydicom.dcmread(files["parametric_map"]))
    for dataset in (report, pmap):
        for name in ("PatientID", "PatientName", "StudyInstanceUID", "StudyDate"):
            assert dataset.get(name) == source[0].get(name), name
        assert dataset.SeriesInstanceUID != source[0].SeriesInstanceUID
    group, = report.content.get_image_measurement_groups()
    assert group.finding_type.value == result.predicted_class
    assert group.finding_type.scheme_designator == "99TUMCLS"
    probabilities = {m.name.value.removeprefix("P-"): m.value for m in group.get_measurements()}
    assert probabilities == pytest.approx(result.probabilities, abs=1e-6)
    referenced = {item.ReferencedSOPInstanceUID
                  for study in report.CurrentRequestedProcedureEvidenceSequence
                  for series in study.ReferencedSeriesSequence
                  for item in series.ReferencedSOPSequence}
    assert referenced == {d.SOPInstanceUID for d in source}
    assert pmap.FrameOfReferenceUID == source[0].FrameOfReferenceUID
    frames = np.frombuffer(pmap.FloatPixelData, dtype="<f4").reshape(
        int(pmap.NumberOfFrames), int(pmap.Rows), int(pmap.Columns))
    heat = result.heatmap
    axes = np.asarray(heat.direction, dtype=float).reshape(3, 3)
    for frame, groups in zip(frames, pmap.PerFrameFunctionalGroupsSequence):
        where = np.asarray(groups.PlanePositionSequence[0].ImagePositionPatient, float)
        k = (where - np.asarray(heat.origin)) @ axes[:, 2] / heat.spacing[2]
        assert abs(k - round(k)) < 1e-3  # each frame lies on one of the heatmap's slices
        np.testing.assert_allclose(frame, heat.array[int(round(k))], atol=1e-6)
    assert len(frames) == heat.array.shape[0]
    return {role: pydicom.dcmread(path).SOPInstanceUID for role, path in files.items()}


@pytest.mark.slow
def test_the_objects_pass_the_validator_and_read_back_to_the_result(classifier, series,
                                                                     tmp_path):
    result = classifier.classify(series)
    first = check_results(result, series, tmp_path / "first")
    again = check_results(classifier.classify(series), series, tmp_path / "again")
    assert again == first  # the same result, resumed: the same UIDs
    other = dataclasses.replace(result, cam_class="HEALTHY")
    assert write_dicom_results(other, series, tmp_path / "other", "case") and \
        check_results(other, series, tmp_path / "other2").keys() == first.keys()
    other_uids = {role: pydicom.dcmread(path).SOPInstanceUID for role, path in
                  write_dicom_results(other, series, tmp_path / "other3", "case").items()}
    assert not set(other_uids.values()) & set(first.values())


@pytest.mark.slow
@pytest.mark.skipif(not REAL_SERIES.is_dir(), reason="the real DICOM series "
                    "(../shared/realdata/an_vs_seg_001) is not on this machine")
def test_a_real_scanner_series(classifier, tmp_path):
    check_results(classifier.classify(REAL_SERIES), REAL_SERIES, tmp_path)


def test_a_folder_that_is_not_one_series_is_one_line_naming_it(series, tmp_path):
    with pytest.raises(InputError, match="holds no DICOM images"):
        read_source_series(tmp_path)
    mixed = tmp_path / "mixed"
    shutil.copytree(series, mixed)
    stranger = pydicom.dcmread(mixed / "000.dcm")
    stranger.SeriesInstanceUID = "1.2.3.4"
    stranger.save_as(mixed / "stranger.dcm")
    with pytest.raises(InputError, match="holds 2 series"):
        read_source_series(mixed)


def test_a_heatmap_off_the_series_grid_writes_nothing(classifier, series, tmp_path):
    result = classifier.classify(series)
    moved = dataclasses.replace(result, heatmap=dataclasses.replace(
        result.heatmap, origin=tuple(np.asarray(result.heatmap.origin) + 5.0)))
    with pytest.raises(InputError, match="not on the series' grid"):
        write_dicom_results(moved, series, tmp_path / "out", "case")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_classifying_does_not_load_the_dicom_extra():
    from conftest import modules_loaded_by
    code = ("import TumorClassifierLib.cli as c, TumorClassifierLib.batch, "
            "TumorClassifierLib.inference, TumorClassifierLib.worker.server; c.build_parser()")
    assert modules_loaded_by(code, ("highdicom", "dicomweb_client")) == []


@pytest.mark.slow
def test_classify_dicom_out_writes_them_beside_the_clis_files_and_the_table_names_them(
        series, tiny_bundle, tmp_path, capsys):
    from TumorClassifierLib.cli import main
    from TumorClassifierLib.results_table import read_rows
    out = tmp_path / "out"
    assert main(["classify", str(series), "--out", str(out), "--model", str(tiny_bundle),
                 "--device", "cpu", "--dicom-out", "--no-overlay"]) == 0
    row, = read_rows(out / "results.csv")
    assert row["status"] == "ok" and row["dicom_report"] == "series_report_sr.dcm"
    assert {p.name for p in out.iterdir()} >= {"series_report_sr.dcm", "series_heatmap_pm.dcm",
                                               "series_probabilities.json"}
    assert dciodvfy_errors(out / "series_report_sr.dcm") == []
    nifti = tmp_path / "scan.nii.gz"
    sitk.WriteImage(sitk.ReadImage(str(out / "series_heatmap.nii.gz")), str(nifti))
    assert main(["classify", str(nifti), "--out", str(tmp_path / "n"), "--model",
                 str(tiny_bundle), "--device", "cpu", "--dicom-out"]) != 0
    row, = read_rows(tmp_path / "n" / "results.csv")
    assert "DICOM results need the scan's DICOM series folder" in row["error"]
    assert not list((tmp_path / "n").glob("*.dcm"))


def test_dicom_out_without_the_extra_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    import sys

    from TumorClassifierLib.cli import main
    monkeypatch.setitem(sys.modules, "highdicom", None)  # as if the extra were not installed
    assert main(["classify", str(tmp_path / "x.nii.gz"), "--out", str(tmp_path),
                 "--dicom-out"]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install 'tumorclassifier[dicom]'" in err and "\n" not in err
