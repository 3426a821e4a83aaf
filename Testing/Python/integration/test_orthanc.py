"""A real PACS: Debian's Orthanc with its DICOMweb plugin, started here on 127.0.0.1 (a free
port; remote access refused, authentication on, its own storage in a temporary folder) and
stopped by its PID. Series go in over STOW-RS; the post-contrast T1 series is found by QIDO-RS,
retrieved by WADO-RS, classified, and its DICOM results stored back and found again.
Skipped, saying so, where Orthanc or its DICOMweb plugin is not installed (.ci/run installs
them)."""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pydicom
import pytest
import requests
import SimpleITK as sitk

pytest.importorskip("highdicom", reason="the [dicom] extra (highdicom) is needed")
pytest.importorskip("dicomweb_client", reason="the [dicom] extra (dicomweb-client) is needed")

from TumorClassifierLib.dicom.archive import Archive, session_from  # noqa: E402
from TumorClassifierLib.dicom.series import write_mr_series  # noqa: E402
from TumorClassifierLib.dicom.write import write_dicom_results  # noqa: E402
from TumorClassifierLib.errors import InputError  # noqa: E402
from TumorClassifierLib.inference import Classifier  # noqa: E402

PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
REAL_SERIES = Path(__file__).resolve().parents[4] / "shared" / "realdata" / "an_vs_seg_001" / \
    "dicom"
pytestmark = [pytest.mark.integration, pytest.mark.skipif(
    shutil.which("Orthanc") is None or not PLUGIN.is_file(),
    reason="Debian's orthanc and orthanc-dicomweb are not installed")]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    """(DICOMweb root, user, password) of an Orthanc of this test's own."""
    folder = tmp_path_factory.mktemp("orthanc")
    port, password = free_port(), secrets.token_urlsafe(16)
    config = {"Name": "TumorClassifierTest", "StorageDirectory": str(folder / "storage"),
              "IndexDirectory": str(folder / "storage"), "HttpPort": port,
              "DicomServerEnabled": False, "RemoteAccessAllowed": False,
              "AuthenticationEnabled": True, "RegisteredUsers": {"classifier": password},
              "Plugins": [str(PLUGIN)], "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}}
    (folder / "orthanc.json").write_text(json.dumps(config), encoding="utf-8")
    log = open(folder / "orthanc.log", "wb")
    process = subprocess.Popen(["Orthanc", str(folder / "orthanc.json")], stdout=log,
                               stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/system", auth=("classifier", password),
                                timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            assert process.poll() is None, (folder / "orthanc.log").read_text(errors="replace")
            assert time.monotonic() < deadline, "Orthanc did not start within 60 s"
            time.sleep(0.2)
        yield f"{base}/dicom-web", "classifier", password
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture
def archive(orthanc, monkeypatch):
    url, user, password = orthanc
    monkeypatch.setenv("TUMORCLASSIFIER_DICOMWEB_BASIC", f"{user}:{password}")
    return Archive(url, session_from())


@pytest.fixture(scope="module")
def phantom_study(head, tmp_path_factory):
    """A study of two series the project writes: a post-contrast T1 and a T2 (the same head)."""
    small = sitk.Resample(head, [s // 2 for s in head.GetSize()], sitk.Transform(),
                          sitk.sitkLinear, head.GetOrigin(),
                          [2 * s for s in head.GetSpacing()], head.GetDirection())
    folder = tmp_path_factory.mktemp("study")
    return [write_mr_series(small, folder / name, f"phantom-{name}", description, number,
                            study_identity="phantom-study")
            for name, description, number in (("t1c", "T1 post-contrast", 3),
                                              ("t2", "T2 FLAIR", 4))]


def upload(archive: Archive, folder: Path) -> str:
    paths = sorted(folder.iterdir())
    study = str(pydicom.dcmread(paths[0], stop_before_pixels=True).StudyInstanceUID)
    archive.store(study, paths)
    return study


def test_a_study_is_found_retrieved_classified_and_its_results_stored_back(
        archive, phantom_study, tiny_bundle, tmp_path):
    study = ""
    for folder in phantom_study:
        study = upload(archive, folder)
    chosen = archive.choose_series(study)
    assert chosen.description == "T1 post-contrast" and chosen.instances == len(
        list(phantom_study[0].iterdir()))
    retrieved = archive.retrieve(study, chosen, tmp_path / "retrieved")
    result = Classifier.from_bundle(tiny_bundle, device="cpu").classify(retrieved)
    files = write_dicom_results(result, retrieved, tmp_path / "results", "case")
    archive.store(study, list(files.values()))
    every = {s.uid: s for s in archive.series_of(study)}
    assert sorted((s.modality, s.description) for s in every.values()) == [
        ("MR", "T1 post-contrast"), ("MR", "T2 FLAIR"), ("OT", "TumorClassifier: heatmap"),
        ("SR", "TumorClassifier: tumour type")]
    report = pydicom.dcmread(files["report"])
    referenced = {item.ReferencedSOPInstanceUID
                  for evidence in report.CurrentRequestedProcedureEvidenceSequence
                  for series in evidence.ReferencedSeriesSequence
                  for item in series.ReferencedSOPSequence}
    held = {instance["00080018"]["Value"][0] for instance in
            archive.client.search_for_instances(study, chosen.uid)}
    assert referenced == held  # the report's references resolve in the archive
    stored_map = archive.client.retrieve_instance(
        study, pydicom.dcmread(files["parametric_map"]).SeriesInstanceUID,
        pydicom.dcmread(files["parametric_map"]).SOPInstanceUID)
    source = pydicom.dcmread(sorted(phantom_study[0].iterdir())[0], stop_before_pixels=True)
    assert stored_map.FrameOfReferenceUID == source.FrameOfReferenceUID
    archive.store(study, list(files.values()))  # stored again: the same UIDs, one copy
    assert len(archive.series_of(study)) == 4


def test_several_or_no_candidates_are_one_line_listing_the_series(archive, phantom_study):
    study = upload(archive, phantom_study[1])
    upload(archive, phantom_study[0])
    named = archive.choose_series(study, series_uid=archive.choose_series(study).uid)
    assert named.description == "T1 post-contrast"
    with pytest.raises(InputError) as caught:
        archive.choose_series(study, series_uid="1.2.3")
    assert "has no series 1.2.3" in str(caught.value) and "T2 FLAIR" in str(caught.value)
    with pytest.raises(InputError, match="holds no series"):
        archive.choose_series("1.2.3.4.5")


def test_wrong_credentials_and_a_dead_archive_are_one_line(orthanc, monkeypatch):
    url, user, _ = orthanc
    monkeypatch.setenv("TUMORCLASSIFIER_DICOMWEB_BASIC", f"{user}:wrong")
    with pytest.raises(InputError, match="answered 401 \\(check the credentials\\)"):
        Archive(url, session_from()).series_of("1.2.3")
    with pytest.raises(InputError, match="cannot be reached"):
        Archive(f"http://127.0.0.1:{free_port()}/dicom-web").series_of("1.2.3")


@pytest.mark.skipif(not REAL_SERIES.is_dir(), reason="the real DICOM series "
                    "(../shared/realdata/an_vs_seg_001) is not on this machine")
def test_a_real_series_without_contrast_in_its_name_must_be_named(archive, tiny_bundle,
                                                                  tmp_path):
    study = upload(archive, REAL_SERIES)
    with pytest.raises(InputError) as caught:
        archive.choose_series(study)
    message = str(caught.value)
    assert "no series looks like a post-contrast T1" in message and "--series" in message
    assert "t1_mpr_tra_gk_v4" in message and "\n" not in message
    series_uid = str(pydicom.dcmread(sorted(REAL_SERIES.iterdir())[0],
                                     stop_before_pixels=True).SeriesInstanceUID)
    retrieved = archive.retrieve(study, archive.choose_series(study, series_uid),
                                 tmp_path / "real")
    result = Classifier.from_bundle(tiny_bundle, device="cpu").classify(retrieved)
    archive.store(study, list(write_dicom_results(result, retrieved, tmp_path / "out",
                                                  "real").values()))
    assert len(archive.series_of(study)) == 3


@pytest.fixture(scope="module")
def small_head(head):
    return sitk.Resample(head, [s // 2 for s in head.GetSize()], sitk.Transform(),
                         sitk.sitkLinear, head.GetOrigin(), [2 * s for s in head.GetSpacing()],
                         head.GetDirection())


def test_a_study_list_runs_as_a_batch_that_survives_a_kill_and_resumes(
        orthanc, archive, small_head, tiny_bundle, tmp_path):
    """Six studies (one with no post-contrast T1): the command is killed after its first row,
    run again, and then every usable study has exactly one report and one map in the archive,
    the table one row per study, and the unusable one an error row naming it."""
    import csv
    import os
    import sys
    url, user, password = orthanc
    studies = []
    for n in range(6):
        description = "T2 FLAIR" if n == 5 else "T1 post-contrast"
        folder = write_mr_series(small_head, tmp_path / "in" / str(n), f"batch-{n}",
                                 description, patient_id=f"P{n}")
        studies.append(upload(archive, folder))
    table = tmp_path / "studies.csv"
    with open(table, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["study", "case"])
        writer.writerows((uid, f"study{n}") for n, uid in enumerate(studies))
    command = [sys.executable, "-m", "TumorClassifierLib.cli", "classify", "--dicomweb", url,
               "--studies", str(table), "--out", str(tmp_path / "out"), "--model",
               str(tiny_bundle), "--device", "cpu", "--no-overlay"]
    env = dict(os.environ, TUMORCLASSIFIER_DICOMWEB_BASIC=f"{user}:{password}")
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    results = tmp_path / "out" / "results.csv"
    deadline = time.monotonic() + 300
    while not (results.is_file() and len(results.read_text().splitlines()) >= 2):
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    first.kill()
    first.wait()
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 2, again.stderr  # one study could not be classified
    assert "skipped" in again.stderr
    from TumorClassifierLib.results_table import read_rows
    rows = {row["case"]: row for row in read_rows(results)}
    assert sorted(rows) == [f"study{n}" for n in range(6)]
    assert [rows[f"study{n}"]["status"] for n in range(6)] == ["ok"] * 5 + ["error"]
    assert "no series looks like a post-contrast T1" in rows["study5"]["error"]
    for n, uid in enumerate(studies[:5]):
        modalities = sorted(s.modality for s in archive.series_of(uid))
        assert modalities == ["MR", "OT", "SR"], (n, modalities)  # one report, one map
        assert all(series.instances == 1 for series in archive.series_of(uid)
                   if series.modality != "MR")


def test_the_command_line_refuses_mixed_or_missing_inputs_in_one_line(orthanc, capsys):
    from TumorClassifierLib.cli import main
    url = orthanc[0]
    for args, message in ((["--dicomweb", url], "give --study UID"),
                          (["--dicomweb", url, "x.nii.gz", "--study", "1"], "leave out scans"),
                          (["--dicomweb", url, "--study", "1", "--study", "2", "--series", "3"],
                           "--series goes with exactly one --study")):
        assert main(["classify", *args]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err


def half_a_store_then_a_dropped_connection(session, url, data=None, headers=None, **kwargs):
    """Instead of requests' POST: send the request line, the headers and half of the body to
    the real archive over a socket of its own, then drop the connection - an archive that goes
    away in the middle of a store, as the archive sees it."""
    from urllib.parse import urlsplit
    body = data if isinstance(data, bytes) else b"".join(data)
    parts = urlsplit(url)
    headers = {key: value for key, value in (headers or {}).items()
               if key.lower() not in ("transfer-encoding", "host", "content-length")}
    headers |= {"Host": parts.netloc, "Content-Length": str(len(body))}
    user, password = session.auth
    import base64
    headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    head = f"POST {parts.path}{'?' + parts.query if parts.query else ''} HTTP/1.1\r\n" + \
        "".join(f"{key}: {value}\r\n" for key, value in headers.items()) + "\r\n"
    with socket.create_connection((parts.hostname, parts.port)) as raw:
        raw.sendall(head.encode() + body[:len(body) // 2])
    raise requests.ConnectionError("the connection was dropped in the middle of the store")


def test_an_archive_that_drops_the_connection_mid_store_leaves_no_partial_series(
        orthanc, archive, small_head, tiny_bundle, tmp_path, monkeypatch, capsys):
    from TumorClassifierLib.cli import main
    from TumorClassifierLib.results_table import read_rows
    url, user, password = orthanc
    study = upload(archive, write_mr_series(small_head, tmp_path / "in", "dropped",
                                            patient_id="DROP"))
    monkeypatch.setenv("TUMORCLASSIFIER_DICOMWEB_BASIC", f"{user}:{password}")
    out = tmp_path / "out"
    args = ["classify", "--dicomweb", url, "--study", study, "--out", str(out), "--model",
            str(tiny_bundle), "--device", "cpu", "--no-overlay"]
    with monkeypatch.context() as patched:
        patched.setattr(requests.Session, "post", half_a_store_then_a_dropped_connection)
        assert main(args) == 2
    row, = read_rows(out / "results.csv")
    assert row["status"] == "error" and study in row["error"] and "\n" not in row["error"]
    assert sorted(s.modality for s in archive.series_of(study)) == ["MR"]  # nothing partial
    capsys.readouterr()
    assert main(args) == 0  # the re-run finishes the job
    assert sorted(s.modality for s in archive.series_of(study)) == ["MR", "OT", "SR"]
    assert [r["status"] for r in read_rows(out / "results.csv")] == ["ok"]
