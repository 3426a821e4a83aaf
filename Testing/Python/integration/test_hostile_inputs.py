"""Every kind of bad input in ONE batch through the command line: each gets a one-line error
row naming its file and fault, leaves no outputs, and the good scan among them still runs."""

import csv
import gzip

import numpy as np
import SimpleITK as sitk
from test_volume import huge_nifti_header, save_array

from TumorClassifierLib.cli import main
from TumorClassifierLib.volume import write_volume


def _truncated(path):
    image = sitk.GetImageFromArray(np.random.default_rng(0).random((20, 20, 20),
                                                                    dtype=np.float32))
    sitk.WriteImage(image, str(path))
    data = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(data[: len(data) // 2]))
    return path


def _with_value(path, value):
    array = np.random.default_rng(1).random((20, 20, 20)).astype(np.float32)
    array[5, 5, 5] = value
    return save_array(path, array)


def _spacing(path, spacing):
    image = sitk.GetImageFromArray(np.random.default_rng(2).random((20, 20, 20),
                                                                   dtype=np.float32))
    image.SetSpacing(spacing)
    sitk.WriteImage(image, str(path))
    return path


def _label_map(head, path):
    labels = (sitk.GetArrayFromImage(head) > 500).astype(np.uint8)
    image = sitk.GetImageFromArray(labels * 2)
    image.CopyInformation(head)
    return write_volume(image, path)


def _blobs(path):
    """Bright balls in noise: an image, but not a head (registration correlation 0.04)."""
    rng = np.random.default_rng(0)
    shape = (100, 120, 120)
    grid = np.stack(np.indices(shape), axis=-1)
    array = rng.normal(0, 10, shape)
    for _ in range(12):
        centre = rng.uniform([10, 10, 10], np.array(shape) - 10)
        array += 800 * (np.linalg.norm(grid - centre, axis=-1) < rng.uniform(5, 20))
    image = sitk.GetImageFromArray(array.astype(np.float32))
    image.SetSpacing((1.5, 1.5, 1.5))
    return write_volume(image, path)


HOSTILE = {  # name -> (maker(folder, head), words the error must contain)
    "missing": (lambda d, h: d / "missing.nii.gz", "no such file"),
    "folder without DICOM": (lambda d, h: (d / "empty").mkdir() or d / "empty",
                             "no DICOM series"),
    "truncated gzip": (lambda d, h: _truncated(d / "truncated.nii.gz"), "truncated"),
    "text named .nii.gz": (lambda d, h: (d / "text.nii.gz").write_text("no", encoding="utf-8")
                           and d / "text.nii.gz", "corrupt"),
    "2D": (lambda d, h: save_array(d / "flat.nii.gz", np.ones((30, 40), np.float32)), "2D"),
    "4D": (lambda d, h: save_array(d / "series.nii.gz", np.random.rand(3, 10, 10, 10)
                                   .astype(np.float32)), "4D"),
    "RGB": (lambda d, h: save_array(d / "rgb.nrrd", np.random.rand(10, 10, 10, 3)
                                    .astype(np.float32), is_vector=True), "components"),
    "all zero": (lambda d, h: save_array(d / "zeros.nii.gz", np.zeros((10, 10, 10), np.float32)),
                 "constant"),
    "constant": (lambda d, h: save_array(d / "sevens.nrrd", np.full((10, 10, 10), 7, np.int16)),
                 "constant"),
    "NaN": (lambda d, h: _with_value(d / "nan.nii.gz", np.nan), "NaN"),
    "Inf": (lambda d, h: _with_value(d / "inf.mha", np.inf), "infinite"),
    "3x3x3": (lambda d, h: save_array(d / "tiny.nii.gz", np.random.rand(3, 3, 3)
                                      .astype(np.float32)), "too small"),
    "1024^3": (lambda d, h: huge_nifti_header(d / "huge.nii"), "1024x1024x1024"),
    "spacing 1e6": (lambda d, h: _spacing(d / "far.mha", (1e6, 1.0, 1.0)), "not plausible"),
    "label map": (lambda d, h: _label_map(h, d / "labels.nii.gz"), "label map"),
    "non-brain blobs": (lambda d, h: _blobs(d / "blobs.nii.gz"), "may not be a brain MRI"),
}


def test_each_hostile_input_gets_its_own_error_row_and_the_rest_go_on(head, tiny_bundle,
                                                                      tmp_path, capsys):
    folder = tmp_path / "in ü"  # spaces and non-ASCII in every path
    folder.mkdir()
    paths = {name: make(folder, head) for name, (make, _) in HOSTILE.items()}
    good = write_volume(head, folder / "good scan.nii.gz")
    out = tmp_path / "out"
    arguments = ["classify", *map(str, paths.values()), str(good), "--model", str(tiny_bundle),
                 "--out", str(out)]
    assert main(arguments) == 2
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    with open(out / "results.csv", newline="", encoding="utf-8") as handle:
        rows = {row["source"]: row for row in csv.DictReader(handle)}
    assert rows[str(good)]["status"] == "ok"
    for name, (_, words) in HOSTILE.items():
        row = rows[str(paths[name])]
        assert row["status"] == "error", name
        assert str(paths[name]) in row["error"] and words in row["error"], (name, row["error"])
        assert "\n" not in row["error"]
        assert f"error: {row['error']}" in stderr
        assert not list(out.glob(f"{row['case']}_*")), f"{name} left outputs"
