"""Integrity check of NIfTI files, done before SimpleITK reads them.

ITK's NIfTI reader fills a truncated file (plain or gzip) with zeros and reads NaN voxels as 0,
silently (docs/decisions.md). So the header is parsed here, the voxel data streamed
once, its length compared with what the header promises, and float voxels checked for NaN/Inf.

The file is read and decompressed in large blocks: every block hands the interpreter lock over
and back, and while torch imports in another thread (the first scan) each hand-over waits up to
the interpreter's switch interval; `gzip.open`'s small reads made this check 100 times slower
there (docs/decisions.md).
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .errors import InputError

# NIfTI datatype code -> numpy type (the scalar types; complex and RGB are left to ITK).
_DTYPES = {2: np.uint8, 4: np.int16, 8: np.int32, 16: np.float32, 64: np.float64, 256: np.int8,
           512: np.uint16, 768: np.uint32, 1024: np.int64, 1280: np.uint64}
_BLOCK_BYTES = 1 << 24  # decompressed bytes per step
_GZIP_MAGIC = b"\x1f\x8b"
_HEADER_BYTES = 540  # a NIfTI-2 header; NIfTI-1's 348 bytes fit in it


def check_nifti_file(path: Path) -> None:
    """Raise InputError if `path` is shorter than its header says or holds NaN/Inf voxels."""
    try:
        blocks = _file_blocks(path)
        head = b""
        for block in blocks:
            head += block
            if len(head) >= _HEADER_BYTES:
                break
        dtype, count, offset = _parse_header(head[:_HEADER_BYTES], path)
        if dtype is not None:  # an unusual type: leave it to ITK
            _check_voxels(itertools.chain([head], blocks), offset, dtype, count, path)
    except (OSError, zlib.error) as error:
        raise InputError(f"{path}: is truncated or corrupt ({error})") from None


def _file_blocks(path: Path) -> Iterator[bytes]:
    """The file's bytes, decompressed when it is gzip, in blocks of at most _BLOCK_BYTES."""
    with open(path, "rb") as stream:
        if not path.name.lower().endswith(".gz"):
            while block := stream.read(_BLOCK_BYTES):
                yield block
            return
        yield from _gunzip_blocks(stream)


def _gunzip_blocks(stream) -> Iterator[bytes]:
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip framing
    pending = stream.read(_BLOCK_BYTES)
    if not pending.startswith(_GZIP_MAGIC):
        raise OSError("not a gzip file")
    while True:
        block = decompressor.decompress(pending, _BLOCK_BYTES)
        if block:
            yield block
        pending = decompressor.unconsumed_tail
        if decompressor.eof:  # a member ends: another may follow, as gzip allows
            pending = decompressor.unused_data + stream.read(_BLOCK_BYTES)
            if not pending.startswith(_GZIP_MAGIC):
                return  # the end, or padding after it (ignored, like gzip and ITK do)
            decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif not pending:
            pending = stream.read(_BLOCK_BYTES)
            if not pending:
                raise OSError("the compressed data ends before its end marker")


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


def _check_voxels(blocks: Iterator[bytes], offset: int, dtype: np.dtype, count: int,
                  path: Path) -> None:
    """Skip `offset` bytes of `blocks`, then check `count` voxels of `dtype` in what follows."""
    needed, seen, skip, carry = count * dtype.itemsize, 0, offset, b""
    for block in blocks:
        if skip >= len(block):
            skip -= len(block)
            continue
        data = memoryview(block)[skip:skip + needed - seen]
        skip, seen = 0, seen + len(data)
        if dtype.kind == "f":  # voxels may straddle two blocks: the partial one is carried
            if carry:
                data = memoryview(carry + data)
            whole = len(data) - len(data) % dtype.itemsize
            values = np.frombuffer(data[:whole], dtype)
            if not np.all(np.isfinite(values)):
                bad = int(np.count_nonzero(~np.isfinite(values)))
                raise InputError(f"{path}: has NaN or infinite voxels ({bad} or more)")
            carry = bytes(data[whole:])
        if seen >= needed:
            return
    raise InputError(f"{path}: is truncated (the header promises {count} voxels, the file "
                     f"holds {seen // dtype.itemsize})")
