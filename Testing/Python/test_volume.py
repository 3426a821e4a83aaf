import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from TumorClassifierLib import volume as volume_module
from TumorClassifierLib.errors import InputError
from TumorClassifierLib.manifest import case_name
from TumorClassifierLib.volume import Volume, read_volume, write_volume


def rotation(ax, ay, az):
    cx, cy, cz, sx, sy, sz = np.cos(ax), np.cos(ay), np.cos(az), np.sin(ax), np.sin(ay), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def oblique_volume(dtype=np.int16, seed=0) -> Volume:
    rng = np.random.default_rng(seed)
    array = rng.integers(0, 1000, size=(12, 20, 16)).astype(dtype)
    return Volume(array, (0.9, 1.1, 2.5), (-12.5, 30.25, 7.0),
                  tuple(rotation(0.1, -0.2, 0.3).ravel()))


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz", ".nrrd", ".mha", ".mhd"])
def test_round_trip_keeps_array_and_geometry(tmp_path, suffix):
    original = oblique_volume()
    path = write_volume(original, tmp_path / f"scan{suffix}")
    loaded = read_volume(path)
    np.testing.assert_array_equal(loaded.array, original.array)
    # NIfTI stores geometry as float32 quaternions: sub-micrometre differences are expected.
    assert loaded.same_geometry(original, atol=1e-4)


def write_dicom_series(volume: Volume, folder: Path) -> None:
    folder.mkdir()
    image = volume.to_sitk()
    direction = volume.direction_matrix()
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(image.GetDepth()):
        slice_image = image[:, :, k]
        position = image.TransformIndexToPhysicalPoint((0, 0, k))
        tags = {
            "0008|0060": "MR", "0020|000d": "1.2.826.0.1.3680043.2.1125.1",
            "0020|000e": "1.2.826.0.1.3680043.2.1125.2", "0020|0013": str(k + 1),
            "0020|0032": "\\".join(f"{v:.6f}" for v in position),
            "0020|0037": "\\".join(f"{v:.6f}" for v in
                                   (*direction[:, 0], *direction[:, 1])),
            "0018|0050": f"{volume.spacing[2]:.6f}",
        }
        for tag, value in tags.items():
            slice_image.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"slice{k:03d}.dcm"))
        writer.Execute(slice_image)


def test_dicom_series_folder_round_trip(tmp_path):
    original = oblique_volume()
    write_dicom_series(original, tmp_path / "series")
    loaded = read_volume(tmp_path / "series")
    np.testing.assert_array_equal(loaded.array, original.array)
    assert loaded.same_geometry(original, atol=1e-4)


def test_trailing_singleton_fourth_axis_is_squeezed(tmp_path):
    array = np.random.default_rng(1).random((1, 10, 12, 14)).astype(np.float32)
    image = sitk.GetImageFromArray(array, isVector=False)
    path = tmp_path / "one_frame.nii.gz"
    sitk.WriteImage(image, str(path))
    loaded = read_volume(path)
    assert loaded.array.shape == (10, 12, 14)
    np.testing.assert_array_equal(loaded.array, array[0])


def save_array(path: Path, array: np.ndarray, is_vector: bool = False) -> Path:
    sitk.WriteImage(sitk.GetImageFromArray(array, isVector=is_vector), str(path))
    return path


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.nii.gz", "no such file"),
    (lambda d: (d / "empty").mkdir() or d / "empty", "no DICOM series"),
    (lambda d: (d / "text.nii.gz").write_text("not an image", encoding="utf-8")
     and d / "text.nii.gz", "corrupt"),
    (lambda d: (d / "text.nrrd").write_text("not an image", encoding="utf-8") and d / "text.nrrd",
     "cannot be read"),
    (lambda d: save_array(d / "flat.nii.gz", np.ones((30, 40), np.float32)), "2D"),
    (lambda d: save_array(d / "series.nii.gz", np.random.rand(3, 10, 10, 10).astype(np.float32)),
     "4D"),
    (lambda d: save_array(d / "rgb.nrrd", np.random.rand(10, 10, 10, 3).astype(np.float32),
                          is_vector=True), "components"),
    (lambda d: save_array(d / "zeros.nii.gz", np.zeros((10, 10, 10), np.float32)), "constant"),
    (lambda d: save_array(d / "tiny.nii.gz", np.random.rand(3, 3, 3).astype(np.float32)),
     "too small"),
], ids=["missing", "folder-without-dicom", "text-as-nifti", "text-as-nrrd", "2d", "4d", "rgb",
        "constant", "tiny"])
def test_bad_inputs_give_one_line_errors_naming_the_file(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(InputError) as caught:
        read_volume(path)
    text = str(caught.value)
    assert str(path) in text and message in text and "\n" not in text


@pytest.mark.parametrize("bad_value", [np.nan, np.inf])
@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_non_finite_voxels_are_refused(tmp_path, bad_value, suffix):
    array = np.random.default_rng(2).random((10, 10, 10)).astype(np.float32)
    array[5, 5, 5] = bad_value
    path = save_array(tmp_path / f"nonfinite{suffix}", array)
    with pytest.raises(InputError, match="NaN or infinite"):
        read_volume(path)


def test_truncated_gzip_is_refused(tmp_path):
    path = write_volume(oblique_volume(np.float32), tmp_path / "whole.nii.gz")
    data = path.read_bytes()
    truncated = tmp_path / "truncated.nii.gz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated.nii.gz"):
        read_volume(truncated)
    # and a gzip whose content is cut inside the voxel data
    raw = gzip.decompress(data)
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(gzip.compress(raw[: len(raw) - 200]))
    with pytest.raises(InputError, match="cut.nii.gz"):
        read_volume(cut)


def test_truncated_uncompressed_nifti_is_refused(tmp_path):
    path = write_volume(oblique_volume(np.float32), tmp_path / "whole.nii", compress=False)
    data = path.read_bytes()
    truncated = tmp_path / "truncated.nii"
    truncated.write_bytes(data[: len(data) - 100])
    with pytest.raises(InputError, match="truncated.nii: is truncated"):
        read_volume(truncated)


def test_failed_write_leaves_no_file_and_keeps_the_earlier_one(tmp_path, monkeypatch):
    target = write_volume(oblique_volume(), tmp_path / "result.nii.gz")
    before = target.read_bytes()

    def half_write(image, name, useCompression=True):
        Path(name).write_bytes(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(volume_module.sitk, "WriteImage", half_write)
    with pytest.raises(RuntimeError):
        write_volume(oblique_volume(seed=3), target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.nii.gz"]


def test_index_to_world_matches_simpleitk():
    volume = oblique_volume()
    image = volume.to_sitk()
    index = (3, 7, 2)
    expected = image.TransformIndexToPhysicalPoint(index)
    np.testing.assert_allclose((volume.index_to_world() @ [*index, 1])[:3], expected, atol=1e-9)


def test_case_name_strips_known_suffixes():
    assert case_name("/data/sub-01_T1c.nii.gz") == "sub-01_T1c"
    assert case_name("scan.nrrd") == "scan"
    assert case_name("/dicom/series_folder") == "series_folder"


def huge_nifti_header(path: Path) -> Path:
    """A NIfTI header that promises 1024^3 uint8 voxels, without the gigabyte behind it."""
    header = bytearray(352)
    struct.pack_into("<i", header, 0, 348)
    struct.pack_into("<8h", header, 40, 3, 1024, 1024, 1024, 1, 1, 1, 1)
    struct.pack_into("<hh", header, 70, 2, 8)  # datatype uint8, 8 bits
    struct.pack_into("<8f", header, 76, 1, 1, 1, 1, 1, 1, 1, 1)
    struct.pack_into("<f", header, 108, 352)  # vox_offset
    header[344:348] = b"n+1\0"
    path.write_bytes(bytes(header))
    return path


def test_a_huge_volume_is_refused_from_its_header(tmp_path):
    path = huge_nifti_header(tmp_path / "huge.nii")
    with pytest.raises(InputError, match=r"1024x1024x1024 voxels .*resample it"):
        read_volume(path)


@pytest.mark.parametrize("spacing", [1e6, 80.0])
def test_implausible_spacing_is_refused(tmp_path, spacing):
    image = sitk.GetImageFromArray(np.random.rand(10, 10, 10).astype(np.float32))
    image.SetSpacing((1.0, spacing, 1.0))
    path = tmp_path / "far.mha"
    sitk.WriteImage(image, str(path))
    with pytest.raises(InputError, match="not plausible"):
        read_volume(path)
