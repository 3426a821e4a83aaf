"""From a scan in any geometry to the network's input, and back.

Steps (Chakrabarty et al. 2021; docs/method.md): optional N4 bias correction; affine registration
to the atlas; a brain mask (the atlas's, the user's, or the scan's own when it is already
skull-stripped); ONE linear resampling of the scan through the registration onto the atlas box
at 128³ in RAS order; z-score inside the brain mask, zeros outside. The transform is kept so
that maps on the network grid go back to the scan's own geometry.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from .atlas import Atlas, brain_mask_on_grid, load_atlas, reference_grid
from .errors import InputError, RegistrationFailed
from .registration import RegistrationResult, register_to_atlas
from .settings import PreprocessingConfig
from .volume import Volume

# Bumped whenever the code changes what preprocessing produces for the same scan and settings,
# so that training caches made by an older version are not reused. 2: registration on an
# LPS-ordered copy. 3: that copy scaled to 0..1. 4: the atlas chosen by the bright region's
# volume, both tried when unsure.
PREPROCESSING_REVISION = 4


@dataclass(frozen=True, eq=False)
class PreparedScan:
    tensor: np.ndarray  # (1, K, J, I) float32: the network input, channels first
    brain_mask: np.ndarray  # (K, J, I) bool, on the network grid
    grid: sitk.Image  # geometry of the network grid
    input_image: sitk.Image  # the scan as read (its geometry is where results go back to)
    registration: RegistrationResult
    skull_stripped: bool
    timings: dict[str, float]
    warnings: tuple[str, ...]

    def to_input_geometry(self, array_on_grid: np.ndarray) -> Volume:
        """Resample a (K, J, I) map on the network grid onto the scan's own voxels (linear)."""
        image = sitk.GetImageFromArray(np.asarray(array_on_grid, dtype=np.float32))
        image.CopyInformation(self.grid)
        back = sitk.Resample(image, self.input_image, self.registration.transform.GetInverse(),
                             sitk.sitkLinear, 0.0, sitk.sitkFloat32)
        return Volume.from_sitk(back)


def preprocess(scan: sitk.Image | Volume, config: PreprocessingConfig = PreprocessingConfig(),
               atlas: Atlas | None = None, mask: sitk.Image | Volume | None = None,
               allow_poor_registration: bool = False, name: str = "scan") -> PreparedScan:
    """Prepare one checked 3D scan for the network. `mask`: an optional brain mask in the scan's
    geometry. Raises RegistrationFailed (naming `name`) when the scan does not match the atlas,
    unless `allow_poor_registration`, which turns that into a warning."""
    atlas = atlas or load_atlas()
    image = scan.to_sitk() if isinstance(scan, Volume) else scan
    image = sitk.Cast(image, sitk.sitkFloat32)
    timings: dict[str, float] = {}
    warnings: list[str] = []

    if config.bias_correction:
        start = time.perf_counter()
        image = bias_correct(image)
        timings["bias_correction"] = time.perf_counter() - start

    refuse_label_maps(image, name)
    evidence = skull_evidence(image, config)
    start = time.perf_counter()
    registration = register_to_best_atlas(image, atlas, evidence, config)
    stripped = registration.skull_stripped_atlas
    timings["registration"] = time.perf_counter() - start
    if not registration.ok:
        if not allow_poor_registration:
            raise RegistrationFailed(f"{name}: {registration.problem}")
        warnings.append(f"Poor registration: {registration.problem}")
    if registration.brain_in_view < 0.9:
        warnings.append(f"Only {registration.brain_in_view:.0%} of the brain lies inside the "
                        "scan's field of view")

    start = time.perf_counter()
    grid = reference_grid(atlas, tuple(config.input_shape))
    # One linear resampling pass; NaN marks points outside the scan's field of view.
    resampled = sitk.GetArrayFromImage(
        sitk.Resample(image, grid, registration.transform, sitk.sitkLinear, float("nan")))
    in_view = np.isfinite(resampled)
    if mask is not None:
        brain = _user_mask_on_grid(mask, grid, registration.transform, name)
    elif stripped:
        brain = _own_brain_on_grid(image, evidence, config, grid, registration.transform)
    else:
        brain = brain_mask_on_grid(atlas, tuple(config.input_shape))
    brain = brain & in_view
    tensor = zscore_in_mask(np.nan_to_num(resampled, nan=0.0), brain, name)
    timings["resampling"] = time.perf_counter() - start
    return PreparedScan(tensor[np.newaxis], brain, grid, image, registration, stripped, timings,
                        tuple(warnings))


def zscore_in_mask(array: np.ndarray, mask: np.ndarray, name: str = "scan") -> np.ndarray:
    """(array - mean) / std over `mask`, zeros outside; float32."""
    values = array[mask].astype(np.float64)
    if values.size < 100:
        raise InputError(f"{name}: the brain mask covers only {values.size} voxels of the "
                         "network grid; the scan or mask does not cover a brain")
    std = values.std()
    if std == 0:
        raise InputError(f"{name}: the image is constant inside the brain")
    result = np.zeros(array.shape, dtype=np.float32)
    result[mask] = ((values - values.mean()) / std).astype(np.float32)
    return result


@dataclass(frozen=True)
class SkullEvidence:
    """What the scan says about being skull-stripped, before any registration."""
    bright_litres: float  # volume of the largest region brighter than the background
    bright_threshold: float  # the intensity that separates it (10% of the robust range)
    background: float  # the most common voxel value
    background_share: float  # its share of the voxels
    decision: bool | None  # True stripped, False with skull, None: try both atlases


def skull_evidence(image: sitk.Image, config: PreprocessingConfig) -> SkullEvidence:
    background, share = most_common_value(image)
    litres, threshold = bright_region_litres(image)
    if config.skull_stripped != "auto":
        decision = config.skull_stripped == "yes"
    elif litres <= config.stripped_max_litres:
        decision = True
    elif litres >= config.with_skull_min_litres:
        decision = False
    else:
        decision = None
    return SkullEvidence(litres, threshold, background, share, decision)


def is_skull_stripped(image: sitk.Image, config: PreprocessingConfig) -> bool | None:
    """True or False when the scan alone decides it; None when registration must."""
    return skull_evidence(image, config).decision


def register_to_best_atlas(image: sitk.Image, atlas: Atlas, evidence: SkullEvidence,
                           config: PreprocessingConfig):
    """The atlas the evidence names; both when it is unsure, or (in "auto") when the first
    choice fails its quality gates. Kept: a result that passes, then the higher correlation."""
    choices = [evidence.decision] if evidence.decision is not None else [True, False]
    results = [_registered(image, atlas, choice, evidence, config) for choice in choices]
    if config.skull_stripped == "auto" and len(results) == 1 and not results[0].ok:
        results.append(_registered(image, atlas, not choices[0], evidence, config))
    return max(results, key=lambda result: (result.ok, result.correlation))


# A stripped scan's bright region is its brain: at least this share of the registered atlas
# brain's volume (the real stripped scans: 0.83-1.14; bright balls in noise: 0.08).
MIN_BRIGHT_SHARE_OF_BRAIN = 0.4


@functools.lru_cache(maxsize=4)
def _atlas_brain_litres(atlas: Atlas) -> float:
    """The same for every scan: counted once per atlas."""
    return (float(sitk.GetArrayViewFromImage(atlas.brain_mask).sum())
            * float(np.prod(atlas.brain_mask.GetSpacing())) / 1e6)


def _registered(image, atlas: Atlas, stripped: bool, evidence: SkullEvidence,
                config: PreprocessingConfig) -> RegistrationResult:
    result = register_to_atlas(image, atlas, stripped, config.registration)
    if not (stripped and result.ok):
        return result
    brain_litres = _atlas_brain_litres(atlas) * float(np.prod(result.scales))
    if evidence.bright_litres >= MIN_BRIGHT_SHARE_OF_BRAIN * brain_litres:
        return result
    return dataclasses.replace(result, ok=False, problem=(
        f"the scan's bright region ({evidence.bright_litres:.2f} L) is far smaller than the "
        f"brain it registered to ({brain_litres:.2f} L); it may not be a brain MRI"))


BRIGHT_REGION_SPACING_MM = 4.0


def bright_region_litres(image: sitk.Image) -> tuple[float, float]:
    """(litres, threshold): the largest connected region brighter than the background by 10%
    of the intensity range, on a ~4 mm averaged copy (averaging takes the noise's spread away;
    the background level, read on the image's outer faces, takes its offset - a magnitude
    image's noise does not average to zero)."""
    factors = [max(1, int(round(BRIGHT_REGION_SPACING_MM / s))) for s in image.GetSpacing()]
    small = sitk.BinShrink(sitk.Cast(image, sitk.sitkFloat32), factors)
    array = sitk.GetArrayViewFromImage(small)
    faces = np.concatenate([array[[0, -1]].ravel(), array[:, [0, -1]].ravel(),
                            array[:, :, [0, -1]].ravel()])
    low = min(float(np.median(faces)), float(np.percentile(array, 25)))
    high = float(np.percentile(array, 99.5))
    threshold = low + 0.1 * (high - low)
    largest = _largest_component(small > threshold)
    voxel_litres = float(np.prod(small.GetSpacing())) / 1e6
    return float(sitk.GetArrayViewFromImage(largest).sum()) * voxel_litres, threshold


def _largest_component(binary: sitk.Image) -> sitk.Image:
    labels = sitk.RelabelComponent(sitk.ConnectedComponent(binary), sortByObjectSize=True)
    return sitk.Cast(labels == 1, sitk.sitkUInt8)


MIN_DISTINCT_INTENSITIES = 32


def refuse_label_maps(image: sitk.Image, name: str = "scan") -> None:
    """A segmentation or mask holds a handful of values; an MRI (even stored as uint8) holds
    many. Refused here, since such images can still register passably to the atlas (a 4-label
    map of boxes reached correlation 0.19)."""
    sample = sitk.GetArrayViewFromImage(image)[::2, ::2, ::2]
    distinct = np.unique(sample[:: max(1, sample.shape[0] // 32)])
    if distinct.size < MIN_DISTINCT_INTENSITIES:
        raise InputError(f"{name}: holds only {distinct.size} distinct intensities - a label "
                         "map or mask, not an MRI scan")


def most_common_value(image: sitk.Image) -> tuple[float, float]:
    """(the most common voxel value, its share of the voxels): a skull-stripped scan's
    background and how much of the image it fills."""
    # Every 2nd voxel along each axis is plenty for a share and 8x cheaper.
    sample = sitk.GetArrayViewFromImage(image)[::2, ::2, ::2]
    values, counts = np.unique(sample, return_counts=True)
    return float(values[counts.argmax()]), float(counts.max() / sample.size)


def _own_brain_on_grid(image, evidence: SkullEvidence, config: PreprocessingConfig, grid,
                       transform) -> np.ndarray:
    """The brain of an already skull-stripped scan: every voxel that is not its background
    value when the background is one exact value, else the bright region (smoothed a little,
    largest part, holes filled), so that noise in the background stays out."""
    if evidence.background_share >= config.stripped_mode_fraction:
        brain = sitk.Cast(image != evidence.background, sitk.sitkUInt8)
    else:
        smooth = sitk.SmoothingRecursiveGaussian(sitk.Cast(image, sitk.sitkFloat32), 1.0)
        brain = _largest_component(smooth > evidence.bright_threshold)
        brain = sitk.BinaryFillhole(brain)
    on_grid = sitk.Resample(brain, grid, transform, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    return sitk.GetArrayFromImage(on_grid).astype(bool)


def _user_mask_on_grid(mask, grid, transform, name) -> np.ndarray:
    mask_image = mask.to_sitk() if isinstance(mask, Volume) else mask
    if mask_image.GetDimension() != 3:
        raise InputError(f"{name}: the brain mask must be a 3D image")
    binary = sitk.Cast(sitk.Cast(mask_image, sitk.sitkFloat32) > 0, sitk.sitkUInt8)
    on_grid = sitk.Resample(binary, grid, transform, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    result = sitk.GetArrayFromImage(on_grid).astype(bool)
    if not result.any():
        raise InputError(f"{name}: the brain mask does not overlap the registered brain")
    return result


def bias_correct(image: sitk.Image, spacing_mm: float = 4.0) -> sitk.Image:
    """N4 bias-field correction estimated on a shrunk copy and applied at full resolution."""
    low = float(sitk.GetArrayViewFromImage(image).min())
    positive = image - low + 1.0 if low <= 0 else image  # N4 works on a log scale
    factors = [max(1, int(round(spacing_mm / s))) for s in image.GetSpacing()]
    small = sitk.Shrink(positive, factors)
    head = sitk.OtsuThreshold(small, 0, 1, 200)
    corrector = sitk.N4BiasFieldCorrectionImageFilter()
    corrector.SetMaximumNumberOfIterations([50, 50, 50])
    corrector.Execute(small, head)
    log_field = corrector.GetLogBiasFieldAsImage(positive)
    return sitk.Cast(positive / sitk.Exp(log_field), sitk.sitkFloat32)
