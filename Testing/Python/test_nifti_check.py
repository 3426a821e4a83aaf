"""The NIfTI integrity check on small seeded files: every voxel is seen whatever the block size
(voxels straddling blocks, a header split across blocks), gzip files of several members are
whole files, and a cut anywhere is reported."""

import gzip

import numpy as np
import pytest
import SimpleITK as sitk

from TumorClassifierLib import nifti_check
from TumorClassifierLib.errors import InputError


def _nifti_bytes(tmp_path, array) -> bytes:
    path = tmp_path / "plain.nii"
    sitk.WriteImage(sitk.GetImageFromArray(array), str(path))
    return path.read_bytes()


@pytest.fixture(params=[7, 1001, 1 << 24], ids=["7-byte", "1001-byte", "default"])
def block_bytes(request, monkeypatch):
    monkeypatch.setattr(nifti_check, "_BLOCK_BYTES", request.param)
    return request.param


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_one_bad_voxel_is_found_wherever_it_lies(tmp_path, block_bytes, suffix):
    rng = np.random.default_rng(3)
    for flat_index in (0, 17, 999, 12 * 11 * 10 - 1):  # first, inside, last voxel
        array = rng.random((10, 11, 12), dtype=np.float32)
        array.flat[flat_index] = np.nan
        data = _nifti_bytes(tmp_path, array)
        path = tmp_path / f"bad{suffix}"
        path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
        with pytest.raises(InputError, match="NaN or infinite"):
            nifti_check.check_nifti_file(path)


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_whole_files_pass_and_cut_ones_do_not(tmp_path, block_bytes, suffix):
    array = np.random.default_rng(4).random((10, 11, 12), dtype=np.float32)
    data = _nifti_bytes(tmp_path, array)
    pack = gzip.compress if suffix.endswith(".gz") else bytes
    whole = tmp_path / f"whole{suffix}"
    whole.write_bytes(pack(data))
    nifti_check.check_nifti_file(whole)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(pack(data[:-4]))  # one voxel short
    with pytest.raises(InputError, match=r"promises 1320 voxels, the file holds 1319"):
        nifti_check.check_nifti_file(cut)


def test_a_gzip_of_several_members_is_one_file(tmp_path, block_bytes):
    array = np.random.default_rng(5).random((10, 11, 12), dtype=np.float32)
    data = _nifti_bytes(tmp_path, array)
    middle = len(data) // 2 + 3
    path = tmp_path / "members.nii.gz"
    path.write_bytes(gzip.compress(data[:middle]) + gzip.compress(data[middle:]))
    nifti_check.check_nifti_file(path)
    array[-1, -1, -1] = np.inf  # in the second member
    data = _nifti_bytes(tmp_path, array)
    path.write_bytes(gzip.compress(data[:middle]) + gzip.compress(data[middle:]))
    with pytest.raises(InputError, match="NaN or infinite"):
        nifti_check.check_nifti_file(path)


def test_a_gzip_cut_inside_its_compressed_stream_is_corrupt(tmp_path, block_bytes):
    data = gzip.compress(_nifti_bytes(tmp_path, np.ones((10, 11, 12), np.float32)))
    path = tmp_path / "cut.nii.gz"
    path.write_bytes(data[:-12])  # the end marker and part of the stream gone
    with pytest.raises(InputError, match="cut.nii.gz: is truncated"):
        nifti_check.check_nifti_file(path)
