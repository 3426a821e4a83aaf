"""The `Volume` type and reading/writing of 3D medical images through SimpleITK.

A `Volume` is an array plus its physical geometry in ITK's (LPS) world convention:
`array` has shape (K, J, I) - the numpy order SimpleITK uses, slowest axis first - while
`spacing` and `origin` are given for the (I, J, K) axes and `direction` is the 3×3 matrix whose
columns are the I, J, K axis directions in LPS.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from . import geometry
from .errors import ConstantImage, InputError
from .files import atomic_output
from .nifti_check import check_nifti_file

NIFTI_SUFFIXES = (".nii", ".nii.gz")
READABLE_SUFFIXES = NIFTI_SUFFIXES + (".nrrd", ".nhdr", ".mha", ".mhd")
MIN_VOXELS_PER_AXIS = 8
# Refused before the voxels are loaded: 2^28 voxels is 1 GiB as float32, and a scan is held a
# few times over while it is prepared. Research MRI stays far below (512x512x400 is 2^26.6).
MAX_VOXELS = 2**28
MAX_SPACING_MM = 50.0  # a coarser grid than this is not a 3D MRI of a head


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3D scalar image with its geometry. `array`: (K, J, I); spacing/origin: (I, J, K) in mm."""

    array: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]  # 9 numbers, row-major 3×3, columns = axis directions (LPS)

    def __post_init__(self) -> None:
        if self.array.ndim != 3:
            raise ValueError(f"Volume array must be 3D (K, J, I), not shape {self.array.shape}")
        object.__setattr__(self, "spacing", tuple(float(s) for s in self.spacing))
        object.__setattr__(self, "origin", tuple(float(o) for o in self.origin))
        object.__setattr__(self, "direction", tuple(float(d) for d in np.ravel(self.direction)))
        if len(self.spacing) != 3 or len(self.origin) != 3 or len(self.direction) != 9:
            raise ValueError("spacing and origin need 3 numbers and direction 9")

    @property
    def size(self) -> tuple[int, int, int]:
        """Number of voxels along (I, J, K), as SimpleITK reports it."""
        k, j, i = self.array.shape
        return (i, j, k)

    def direction_matrix(self) -> np.ndarray:
        return np.asarray(self.direction, dtype=float).reshape(3, 3)

    def index_to_world(self) -> np.ndarray:
        """4×4 matrix from continuous (i, j, k, 1) index to LPS world (x, y, z, 1) in mm."""
        return geometry.index_to_world(self.direction, self.spacing, self.origin)

    def same_geometry(self, other: Volume, atol: float = 1e-4) -> bool:
        return (self.array.shape == other.array.shape
                and np.allclose(self.spacing, other.spacing, atol=atol)
                and np.allclose(self.origin, other.origin, atol=atol)
                and np.allclose(self.direction, other.direction, atol=atol))

    def with_array(self, array: np.ndarray) -> Volume:
        """A volume with the same geometry and a new array of the same shape."""
        if array.shape != self.array.shape:
            raise ValueError(f"array shape {array.shape} differs from {self.array.shape}")
        return Volume(array, self.spacing, self.origin, self.direction)

    def to_sitk(self) -> sitk.Image:
        image = sitk.GetImageFromArray(np.ascontiguousarray(self.array), isVector=False)
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)
        return image

    @classmethod
    def from_sitk(cls, image: sitk.Image) -> Volume:
        return cls(sitk.GetArrayFromImage(image), image.GetSpacing(), image.GetOrigin(),
                   image.GetDirection())


def read_volume(path: str | os.PathLike) -> Volume:
    """Read a NIfTI, NRRD, MHA/MHD file or a DICOM series folder as a checked 3D `Volume`.

    Raises `InputError` (a ValueError) naming the file and the problem for anything that is not
    a readable, finite, non-constant 3D scalar image.
    """
    return Volume.from_sitk(read_sitk_image(path))


def read_own_volume(path: str | os.PathLike) -> Volume:
    """A file this package wrote itself (a worker's heatmap): read without the input checks,
    which cost more than the read for a float map."""
    return Volume.from_sitk(sitk.ReadImage(str(path)))


def read_sitk_image(path: str | os.PathLike) -> sitk.Image:
    """Like `read_volume` but returns the checked SimpleITK image."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_dir():
        image = _read_dicom_folder(path)
    else:
        _check_size_in_header(path)
        if path.name.lower().endswith(NIFTI_SUFFIXES + (".img", ".img.gz")):
            check_nifti_file(path)
        try:
            image = sitk.ReadImage(str(path))
        except RuntimeError as error:
            raise InputError(f"{path}: cannot be read as an image ({_first_line(error)})") from None
    image = _squeeze_trailing_axis(image, path)
    check_image(image, path)
    return image


def check_image(image: sitk.Image, path: str | os.PathLike) -> None:
    """Raise InputError unless `image` is a finite, non-constant, 3D scalar image."""
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{path}: has {image.GetNumberOfComponentsPerPixel()} components per "
                         "voxel (RGB or vector image); a scalar MRI volume is needed")
    size = image.GetSize()
    if image.GetDimension() == 2:
        raise InputError(f"{path}: is a 2D image ({size[0]}x{size[1]}); a 3D volume is needed")
    if image.GetDimension() != 3:
        raise InputError(f"{path}: is {image.GetDimension()}D with size {size}; a single 3D "
                         "volume is needed (split time series first)")
    if min(size) < MIN_VOXELS_PER_AXIS:
        raise InputError(f"{path}: is too small ({size[0]}x{size[1]}x{size[2]} voxels); at least "
                         f"{MIN_VOXELS_PER_AXIS} voxels along each axis are needed")
    spacing = np.asarray(image.GetSpacing())
    if not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
        raise InputError(f"{path}: voxel spacing {tuple(spacing)} is not 3 positive numbers")
    if np.any(spacing > MAX_SPACING_MM):
        raise InputError(f"{path}: voxel spacing {tuple(float(s) for s in spacing)} mm is not "
                         f"plausible for a 3D MRI (more than {MAX_SPACING_MM:g} mm); check the "
                         "file's header")
    _check_voxel_count(size, path)
    array = sitk.GetArrayViewFromImage(image)
    if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise InputError(f"{path}: has {bad} NaN or infinite voxels")
    low, high = array.min(), array.max()
    if low == high:
        raise ConstantImage(f"{path}: is constant (every voxel is {low}); it holds no image")


def write_volume(volume: Volume | sitk.Image, path: str | os.PathLike,
                 compress: bool = True) -> Path:
    """Write atomically: to a temporary name beside `path`, then rename, so that a crash never
    leaves a half-written file under the final name."""
    image = volume.to_sitk() if isinstance(volume, Volume) else volume
    path = Path(path)
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".nii.gz") else path.suffix
    with atomic_output(path, suffix) as temporary:
        sitk.WriteImage(image, str(temporary), useCompression=compress)
    return path


def _check_size_in_header(path: Path) -> None:
    """Refuse a huge image from its header alone, before its voxels fill the memory."""
    size = _header_size(str(path))
    if size:  # unreadable headers get their own message from the full read
        _check_voxel_count(size, path)


def _check_voxel_count(size, path) -> None:
    count = int(np.prod(np.asarray(size, dtype=np.int64)))
    if count > MAX_VOXELS:
        raise InputError(f"{path}: is {'x'.join(map(str, size))} voxels ({count / 1e6:.0f} "
                         f"million), more than the {MAX_VOXELS / 1e6:.0f} million this tool "
                         "reads; resample it to a coarser grid first (about 1 mm is plenty)")


def _read_dicom_folder(folder: Path) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    series_ids = reader.GetGDCMSeriesIDs(str(folder))
    if not series_ids:
        raise InputError(f"{folder}: is a folder with no DICOM series in it")
    # Several series in one folder: take the one with the most slices (the main volume).
    files = max((reader.GetGDCMSeriesFileNames(str(folder), sid) for sid in series_ids), key=len)
    slice_size = _header_size(files[0])
    if slice_size:
        _check_voxel_count(tuple(slice_size[:2]) + (len(files),), folder)
    reader.SetFileNames(files)
    try:
        return reader.Execute()
    except RuntimeError as error:
        raise InputError(f"{folder}: DICOM series cannot be read ({_first_line(error)})") from None


def _header_size(file_name: str) -> tuple[int, ...] | None:
    reader = sitk.ImageFileReader()
    reader.SetFileName(file_name)
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return None
    return reader.GetSize()


def _squeeze_trailing_axis(image: sitk.Image, path: Path) -> sitk.Image:
    if image.GetDimension() == 4 and image.GetSize()[3] == 1:
        size = list(image.GetSize())
        size[3] = 0  # Extract with a zero size drops that axis.
        return sitk.Extract(image, size, [0, 0, 0, 0])
    return image


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    # ITK's messages start with a file:line location; the last line says what went wrong.
    return lines[-1] if lines else type(error).__name__
