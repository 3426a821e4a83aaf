"""How a painted phantom is "scanned": anatomy and pose variation, storage orientation, slice
thickness, field of view, skull stripping, bias field, noise, contrast and storage type.

Parameters are drawn once (`draw_acquisition`) and then applied deterministically (`acquire`),
so that every phantom's acquisition can be recorded and reproduced.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
import torch
import torch.nn.functional as F

from ..geometry import centre_of, image_index_to_world, index_to_world
from ..settings import PHANTOM_GENERATORS
from .anatomy import Canvas, smooth_noise

AXIS_VECTORS = {"R": (-1, 0, 0), "L": (1, 0, 0), "A": (0, -1, 0), "P": (0, 1, 0),
                "S": (0, 0, 1), "I": (0, 0, -1)}  # in LPS world coordinates
AXIAL_ORIENTATIONS = ("RAS", "LPS", "LAS", "RPS", "LPI", "RAI", "LAI")
OTHER_ORIENTATIONS = ("PIR", "ASL", "SAR", "IPL", "PSR")


@dataclass(frozen=True)
class Acquisition:
    rotation_deg: tuple[float, float, float]  # head pose
    shift_mm: tuple[float, float, float]
    scale: float  # head size
    elastic_mm: float  # amplitude of smooth anatomical deformation
    orientation: str  # storage order, e.g. "RAS", "PIR"
    in_plane_mm: float
    slice_mm: float
    fov_margin_mm: tuple[float, float, float]  # < 0 crops into the head's box
    skull_stripped: bool
    bias: float  # strength of the multiplicative bias field (log scale)
    noise: float  # Rician noise sigma relative to white matter
    gamma: float  # contrast change
    intensity_scale: float  # white matter ~ 1000 * intensity_scale
    dtype: str  # int16, uint16 or float32
    # Generator 2 only (generator 1 leaves them neutral, and draws exactly as it always did):
    generator: int = 1
    # Tissue intensities of this case: (atlas value, value here) control points of a
    # monotone curve; atlas values are relative to white matter (CSF 0.3, grey 0.7, WM 1,
    # enhancing 1.5). Empty: the atlas's own contrast.
    tissue_curve: tuple[tuple[float, float], ...] = ()
    noise_after_stripping: bool = False  # a stripped background that is not exactly zero
    ghosting: float = 0.0  # amplitude of a half-field-of-view ghost along the phase axis
    ghost_axis: int = 1  # array axis (k, j, i) of that ghost

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


GENERATORS = PHANTOM_GENERATORS


def draw_acquisition(rng: np.random.Generator, generator: int = 1) -> Acquisition:
    """Generator 1: the acquisition of the phantoms the first default models were trained
    and evaluated on (kept unchanged, so its cohorts can be drawn again). Generator 2 draws
    over wider, overlapping ranges in SynthSeg's spirit (Billot et al., Medical Image Analysis
    2023): each case its own tissue contrast, 1-7 mm slices, stronger bias and noise, noisy
    stripped backgrounds, ghosting."""
    if generator == 1:
        return _draw_acquisition_1(rng)
    if generator == 2:
        return _draw_acquisition_2(rng)
    raise ValueError(f"generator must be one of {GENERATORS}, not {generator!r}")


def _draw_acquisition_2(rng: np.random.Generator) -> Acquisition:
    thick = rng.random() < 0.5
    slice_mm = float(rng.uniform(2.5, 7.0)) if thick else float(rng.uniform(0.9, 1.5))
    orientation = (rng.choice(AXIAL_ORIENTATIONS) if thick or rng.random() < 0.6
                   else rng.choice(OTHER_ORIENTATIONS))
    stripped = bool(rng.random() < 0.35)
    return Acquisition(
        rotation_deg=tuple(float(v) for v in rng.uniform(-25, 25, 3)),
        shift_mm=tuple(float(v) for v in rng.uniform(-30, 30, 3)),
        scale=float(rng.uniform(0.85, 1.15)),
        elastic_mm=float(rng.uniform(0, 6)),
        orientation=str(orientation),
        # A fifth with the fine in-plane grids of some real scans (0.41-0.47 mm), the rest
        # 0.7-1.4 mm (fine grids are large: a phantom takes three times as long).
        in_plane_mm=float(rng.uniform(0.4, 0.7) if rng.random() < 0.2
                          else rng.uniform(0.7, 1.4)),
        slice_mm=slice_mm,
        # In plane as generator 1; along the slices down to a slab that misses part of the
        # head, as real 2D acquisitions often do.
        fov_margin_mm=(float(rng.uniform(-12, 25)), float(rng.uniform(-12, 25)),
                       float(rng.uniform(-30, 25))),
        skull_stripped=stripped,
        bias=float(rng.uniform(0, 0.5)),
        noise=float(rng.uniform(0.01, 0.08)),
        gamma=float(rng.uniform(0.75, 1.3)),
        intensity_scale=float(np.exp(rng.uniform(np.log(0.3), np.log(4.0)))),
        dtype=str(rng.choice(["int16", "uint16", "float32"], p=[0.4, 0.2, 0.4])),
        generator=2,
        tissue_curve=draw_tissue_curve(rng),
        noise_after_stripping=bool(stripped and rng.random() < 0.5),
        ghosting=float(rng.uniform(0.02, 0.12)) if rng.random() < 0.25 else 0.0,
        ghost_axis=int(rng.integers(1, 3)),
    )


def draw_tissue_curve(rng: np.random.Generator) -> tuple[tuple[float, float], ...]:
    """Per-case tissue intensities in a plausible post-contrast T1 order (CSF < grey < white <
    enhancing), with gaps that go down to the low grey-white contrast real T1c scans show."""
    grey = rng.uniform(0.72, 0.97)
    csf = rng.uniform(0.12, min(0.5, grey - 0.15))
    enhancing = rng.uniform(1.3, 1.8)  # lesions draw their own enhancement (lesion_forms)
    return ((0.0, 0.0), (0.3, float(csf)), (0.7, float(grey)), (1.0, 1.0),
            (1.5, float(enhancing)), (3.0, float(enhancing + 1.5 * (enhancing - 1.0) / 0.5)))


def apply_tissue_curve(image: np.ndarray, curve) -> np.ndarray:
    """The monotone piecewise-linear curve through `curve`'s points (extended linearly)."""
    if not curve:
        return image
    x, y = (np.array(values, np.float32) for values in zip(*curve))
    mapped = np.interp(image, x, y).astype(np.float32)
    slope = (y[-1] - y[-2]) / (x[-1] - x[-2])
    above = image > x[-1]
    mapped[above] = y[-1] + slope * (image[above] - x[-1])
    return mapped


def _draw_acquisition_1(rng: np.random.Generator) -> Acquisition:
    thick = rng.random() < 0.45
    slice_mm = float(rng.uniform(2.5, 6.0)) if thick else float(rng.uniform(0.9, 1.5))
    orientation = (rng.choice(AXIAL_ORIENTATIONS) if thick or rng.random() < 0.6
                   else rng.choice(OTHER_ORIENTATIONS))
    return Acquisition(
        rotation_deg=tuple(float(v) for v in rng.uniform(-20, 20, 3)),
        shift_mm=tuple(float(v) for v in rng.uniform(-25, 25, 3)),
        scale=float(rng.uniform(0.9, 1.1)),
        elastic_mm=float(rng.uniform(0, 4)),
        orientation=str(orientation),
        in_plane_mm=float(rng.uniform(0.8, 1.3)),
        slice_mm=slice_mm,
        fov_margin_mm=tuple(float(v) for v in rng.uniform(-12, 25, 3)),
        skull_stripped=bool(rng.random() < 0.3),
        bias=float(rng.uniform(0, 0.35)),
        noise=float(rng.uniform(0.01, 0.06)),
        gamma=float(rng.uniform(0.8, 1.25)),
        intensity_scale=float(np.exp(rng.uniform(np.log(0.3), np.log(4.0)))),
        dtype=str(rng.choice(["int16", "uint16", "float32"], p=[0.4, 0.2, 0.4])),
    )


def direction_of(orientation: str) -> np.ndarray:
    """3x3 direction matrix (columns = axis directions in LPS) of an orientation code."""
    matrix = np.array([AXIS_VECTORS[letter] for letter in orientation], dtype=float).T
    if abs(np.linalg.det(matrix)) != 1:
        raise ValueError(f"orientation {orientation!r} does not name three distinct axes")
    return matrix


def acquire(canvas: Canvas, acquisition: Acquisition,
            rng: np.random.Generator) -> tuple[sitk.Image, sitk.Image]:
    """The scan and its lesion mask (uint8) on the acquisition's grid."""
    reference = canvas.tissues.reference
    atlas_index_to_world = image_index_to_world(reference)
    pose = _pose_matrix(acquisition, reference)  # atlas world -> scanner world
    direction = direction_of(acquisition.orientation)
    # Thick slices are simulated as the average of 1 mm sub-slices (the slice profile).
    sub_slices = max(1, int(round(acquisition.slice_mm)))
    spacing = np.array([acquisition.in_plane_mm, acquisition.in_plane_mm,
                        acquisition.slice_mm / sub_slices])
    low, high = _box_in_grid_axes(canvas, pose, direction, acquisition.fov_margin_mm)
    size = np.maximum(np.ceil((high - low) / spacing).astype(int), 8)
    size[2] = int(np.ceil(size[2] / sub_slices)) * sub_slices
    origin = direction @ (low + spacing / 2)
    grid_to_world = index_to_world(direction, spacing, origin)
    grid_to_atlas = np.linalg.inv(atlas_index_to_world) @ np.linalg.inv(pose) @ grid_to_world

    sampled = _sample(canvas, grid_to_atlas, size, acquisition.elastic_mm, rng)
    image, brain, lesion = (channel.reshape(size[2] // sub_slices, sub_slices, size[1],
                                            size[0]).mean(axis=1) for channel in sampled)
    image = _appearance(image, brain, acquisition, rng)
    spacing[2] = acquisition.slice_mm
    geometry = dict(spacing=tuple(spacing), origin=tuple(origin + direction @
                                                         [0, 0, spacing[2] / 2 - spacing[2] /
                                                          sub_slices / 2]),
                    direction=tuple(direction.ravel()))
    return (_to_image(image, geometry), _to_image((lesion > 0.5).astype(np.uint8), geometry))


def _pose_matrix(acquisition: Acquisition, reference: sitk.Image) -> np.ndarray:
    rotation = sitk.Euler3DTransform((0, 0, 0), *np.radians(acquisition.rotation_deg))
    linear = np.asarray(rotation.GetMatrix()).reshape(3, 3) * acquisition.scale
    centre = centre_of(reference)
    pose = np.eye(4)
    pose[:3, :3] = linear
    pose[:3, 3] = np.asarray(acquisition.shift_mm) - linear @ centre  # head near isocentre
    return pose


def _box_in_grid_axes(canvas: Canvas, pose, direction, margins):
    """The head's extent along the grid axes (a scanner's field of view is set on the head,
    not on the atlas's air-filled box), widened or cut by the margins."""
    world = _head_points(canvas)
    scanner = world @ pose[:3, :3].T + pose[:3, 3]
    along_axes = scanner @ direction  # coordinates along the grid's axes
    margin = np.abs(direction.T @ np.asarray(margins))
    return along_axes.min(axis=0) - margin, along_axes.max(axis=0) + margin


def _head_points(canvas: Canvas) -> np.ndarray:
    """World (LPS) positions of a sparse sample of the atlas head's voxels."""
    tissues = canvas.tissues
    if getattr(tissues, "_head_points", None) is None:
        k, j, i = np.nonzero(tissues.image[::3, ::3, ::3] > 0.15)
        index = np.stack([i * 3, j * 3, k * 3, np.ones_like(i)], axis=1).astype(float)
        points = (index @ image_index_to_world(tissues.reference).T)[:, :3]
        object.__setattr__(tissues, "_head_points", points)  # cache on the shared tissues
    return tissues._head_points


def _sample(canvas: Canvas, grid_to_atlas: np.ndarray, size, elastic_mm: float, rng):
    """Trilinear sampling of image, brain and lesion through the affine plus a smooth elastic
    displacement, in one pass."""
    i, j, k = (torch.arange(n, dtype=torch.float32) for n in size)
    kk, jj, ii = torch.meshgrid(k, j, i, indexing="ij")
    matrix = torch.from_numpy(grid_to_atlas.astype(np.float32))
    points = [matrix[row, 0] * ii + matrix[row, 1] * jj + matrix[row, 2] * kk + matrix[row, 3]
              for row in range(3)]  # atlas (i, j, k) index = mm
    if elastic_mm > 0:
        for axis in range(3):
            points[axis] += torch.from_numpy(elastic_mm * smooth_noise(kk.shape, rng, 5))
    atlas_shape = canvas.image.shape  # (K, J, I)
    grid = torch.stack([points[0] / (atlas_shape[2] - 1), points[1] / (atlas_shape[1] - 1),
                        points[2] / (atlas_shape[0] - 1)], dim=-1) * 2 - 1
    del points, kk, jj, ii
    stack = torch.from_numpy(np.stack([canvas.image, canvas.brain, canvas.lesion]))[None]
    sampled = F.grid_sample(stack, grid[None], mode="bilinear", padding_mode="zeros",
                            align_corners=True)[0]
    return sampled.numpy()


def _appearance(image, brain, acquisition: Acquisition, rng) -> np.ndarray:
    image = apply_tissue_curve(np.clip(image, 0, None), acquisition.tissue_curve)
    image = image * np.exp(acquisition.bias * smooth_noise(image.shape, rng, 3))
    if acquisition.ghosting:
        shift = image.shape[acquisition.ghost_axis] // 2
        image = image + acquisition.ghosting * np.roll(image, shift, acquisition.ghost_axis)
    sigma = acquisition.noise
    noisy = _rician(image, sigma, rng)
    if acquisition.skull_stripped:
        noisy = noisy * (brain > 0.5)
        if acquisition.noise_after_stripping:
            noisy = _rician(noisy, sigma, rng)
    scaled = (noisy ** acquisition.gamma) * 1000.0 * acquisition.intensity_scale
    if acquisition.dtype == "float32":
        return scaled.astype(np.float32)
    info = np.iinfo(acquisition.dtype)
    return np.clip(np.round(scaled), info.min, info.max).astype(acquisition.dtype)


def _rician(image: np.ndarray, sigma: float, rng) -> np.ndarray:
    """Magnitude of the image plus complex Gaussian noise, as a magnitude MR image is."""
    return np.sqrt((image + rng.normal(0, sigma, image.shape)) ** 2 +
                   rng.normal(0, sigma, image.shape) ** 2)


def _to_image(array: np.ndarray, geometry: dict) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(geometry["spacing"])
    image.SetOrigin(geometry["origin"])
    image.SetDirection(geometry["direction"])
    return image
