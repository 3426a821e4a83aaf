"""The browser viewer without a browser: its address and token, a session's uploads (checked,
capped, kept in the session's own folder) and its classification through the real worker
process. The page itself is driven in Chromium by integration/test_web_viewer.py."""

import time

import numpy as np
import pytest
import SimpleITK as sitk

from TumorClassifierLib.errors import InputError
from TumorClassifierLib.volume import read_sitk_image
from TumorClassifierLib.web.access import access_for
from TumorClassifierLib.web.session import Outcome, ViewerSession


def test_the_token_is_random_long_and_in_the_address():
    first, second = access_for(), access_for()
    assert first.host == "127.0.0.1" and first.token != second.token
    assert len(first.token) >= 32 and first.url.endswith(f"?secret={first.token}")
    assert access_for("::1", 9000, "x" * 16).url == f"http://[::1]:9000/?secret={'x' * 16}"
    with pytest.raises(InputError, match="at least 16"):
        access_for(token="short")
    with pytest.raises(InputError, match="--port"):
        access_for(port=70000)


@pytest.fixture
def session(tmp_path):
    session = ViewerSession(upload_limit_mb=1)
    yield session
    session.close()
    assert not session.folder.exists()  # a session's files go with it


def nifti_bytes(tmp_path, shape=(20, 20, 20)) -> bytes:
    path = tmp_path / "scan.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(
        np.random.default_rng(0).random(shape).astype(np.float32)), str(path))
    return path.read_bytes()


def test_an_upload_is_checked_and_kept_in_the_sessions_folder(session, tmp_path):
    path = session.add_upload([("../../escape.nii.gz", nifti_bytes(tmp_path))])
    assert path.name == "escape.nii.gz" and session.folder in path.parents


@pytest.mark.parametrize("files, message", [
    ([], "nothing was uploaded"),
    ([("notes.txt", b"hello")], "notes.txt: not a NIfTI, NRRD or MHA file"),
    ([("broken.nii.gz", b"not an image")], "broken.nii.gz: is truncated or corrupt"),
    ([("huge.nii", b"\0" * (1024 * 1024 + 1))], "huge.nii: 1 MB is more than the 1 MB"),
    ([("..", b"x")], "not a file name"),
], ids=["nothing", "text", "corrupt", "over-the-cap", "dots"])
def test_a_bad_upload_gets_one_line_naming_it(session, files, message):
    with pytest.raises(InputError) as caught:
        session.add_upload(files)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert str(session.folder) not in str(caught.value)  # no server paths in the page


def test_the_files_of_a_dicom_series_are_one_upload(session, tmp_path):
    image = sitk.Cast(sitk.GetImageFromArray(
        (np.random.default_rng(1).random((12, 20, 20)) * 1000).astype(np.int16)), sitk.sitkInt16)
    image.SetSpacing((1.0, 1.0, 2.0))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    files = []
    for k in range(image.GetDepth()):
        slice_ = image[:, :, k]
        slice_.SetMetaData("0020|0013", str(k + 1))  # instance number
        slice_.SetMetaData("0020|0032", f"0\\0\\{2.0 * k}")  # image position
        slice_.SetMetaData("0020|000e", "1.2.826.0.1.3680043.2.1125.1.1")  # one series
        path = tmp_path / f"slice_{k:02d}.dcm"
        writer.SetFileName(str(path))
        writer.Execute(slice_)
        files.append((path.name, path.read_bytes()))
    folder = session.add_upload(files)
    assert folder.is_dir() and read_sitk_image(folder).GetSize() == (20, 20, 12)


def test_sessions_do_not_share_folders(tmp_path):
    first, second = ViewerSession(), ViewerSession()
    try:
        assert first.folder != second.folder
        uploaded = first.add_upload([("a.nii.gz", nifti_bytes(tmp_path))])
        assert second.folder not in uploaded.parents
    finally:
        first.close()
        second.close()


@pytest.mark.slow
def test_a_classification_runs_in_the_worker_and_reports_progress(head, tiny_bundle, tmp_path):
    scan = tmp_path / "head.nii.gz"
    sitk.WriteImage(head, str(scan))
    session = ViewerSession(model=tiny_bundle, device="cpu")
    try:
        session.start_classification(scan, "head")
        with pytest.raises(InputError, match="already running"):
            session.start_classification(scan, "head")
        deadline, answers = time.monotonic() + 120, []
        while time.monotonic() < deadline and not isinstance((answers or [None])[-1], Outcome):
            answer = session.poll()
            if answer is not None:
                answers.append(answer)
            time.sleep(0.05)
        outcome = answers[-1]
        assert isinstance(outcome, Outcome) and not outcome.error, outcome
        assert set(outcome.files) >= {"heatmap", "probabilities", "overlay"}
        assert abs(sum(outcome.result["probabilities"].values()) - 1) < 1e-6
        assert len(answers) > 1  # progress came before the end
    finally:
        session.close()


@pytest.mark.parametrize("args, message", [
    (["view", "/no/such/scan.nii.gz"], "/no/such/scan.nii.gz: no such file"),
    (["view", "--token", "short"], "--token must be at least 16 characters"),
    (["view", "--model", "/no/such/model"], "/no/such/model"),
])
def test_view_mistakes_exit_2_with_one_line(args, message, capsys):
    from TumorClassifierLib.cli import main
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err


def test_view_without_the_web_extra_says_how_to_install_it(monkeypatch, capsys):
    import sys

    from TumorClassifierLib.cli import main
    monkeypatch.setitem(sys.modules, "trame.app", None)  # as if trame were not installed
    monkeypatch.delitem(sys.modules, "TumorClassifierLib.web.app", raising=False)
    assert main(["view"]) == 2
    assert "pip install 'tumorclassifier[web]'" in capsys.readouterr().err
