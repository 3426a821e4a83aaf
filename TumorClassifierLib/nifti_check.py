"""Integrity check of NIfTI files, done before SimpleITK reads them.

ITK's NIfTI reader fills a truncated file (plain or gzip) with zeros and reads NaN voxels as 0,
silently (docs/decisions.md). So the header is parsed here, the voxel data streamed
once, its length compared with what the header promises, and float voxels checked for NaN/Inf.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from .errors import InputError

# NIfTI datatype code -> numpy type (the scalar types; complex and RGB are left to ITK).
_DTYPES = {2: np.uint8, 4: np.int16, 8: np.int32, 16: np.float32, 64: np.float64, 256: np.int8,
           512: np.uint16, 768: np.uint32, 1024: np.int64, 1280: np.uint64}
_CHUNK_VOXELS = 1 << 22


def check_nifti_file(path: Path) -> None:
    """Raise InputError if `path` is shorter than its header says or holds NaN/Inf voxels."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as stream:
            header = stream.read(540)
            dtype, count, offset = _parse_header(header, path)
            stream.seek(offset)  # gzip streams seek forward by decompressing
            _stream_voxels(stream, dtype, count, path)
    except (EOFError, OSError, zlib.error) as error:
        raise InputError(f"{path}: is truncated or corrupt ({error})") from None


def _parse_header(header: bytes, path: Path) -> tuple[np.dtype | None, int, int]:
    if len(header) < 348:
        raise InputError(f"{path}: is too short to be a NIfTI file")
    for order in "<>":
        size = int(np.frombuffer(header[:4], f"{order}i4")[0])
        if size == 348:  # NIfTI-1
            dims = np.frombuffer(header[40:56], f"{order}i2").astype(np.int64)
            code = int(np.frombuffer(header[70:72], f"{order}i2")[0])
            offset = int(np.frombuffer(header[108:112], f"{order}f4")[0])
            break
        if size == 540:  # NIfTI-2
            dims = np.frombuffer(header[16:80], f"{order}i8")
            code = int(np.frombuffer(header[12:14], f"{order}i2")[0])
            offset = int(np.frombuffer(header[168:176], f"{order}i8")[0])
            break
    else:
        raise InputError(f"{path}: has no valid NIfTI header")
    rank = int(dims[0])
    if not 1 <= rank <= 7 or np.any(dims[1:rank + 1] < 1):
        raise InputError(f"{path}: NIfTI header has invalid dimensions {dims[1:8].tolist()}")
    count = int(np.prod(dims[1:rank + 1]))
    dtype = _DTYPES.get(code)
    return (np.dtype(dtype).newbyteorder(order) if dtype else None), count, max(offset, 348)


def _stream_voxels(stream, dtype, count: int, path: Path) -> None:
    if dtype is None:  # an unusual type: leave it to ITK
        return
    remaining = count
    while remaining > 0:
        want = min(remaining, _CHUNK_VOXELS)
        data = stream.read(want * dtype.itemsize)
        if len(data) < want * dtype.itemsize:
            raise InputError(f"{path}: is truncated (the header promises {count} voxels, the "
                             f"file holds {count - remaining + len(data) // dtype.itemsize})")
        if dtype.kind == "f":
            values = np.frombuffer(data, dtype)
            if not np.all(np.isfinite(values)):
                bad = int(np.count_nonzero(~np.isfinite(values)))
                raise InputError(f"{path}: has NaN or infinite voxels ({bad} or more)")
        remaining -= want
