import numpy as np
import SimpleITK as sitk
from conftest import restore, shrink

from TumorClassifierLib.registration import register_to_atlas

CENTRE = (120.0, -120.0, 77.0)  # middle of the atlas box (LPS mm)
PROBES = [(CENTRE[0] + dx, CENTRE[1] + dy, CENTRE[2] + dz)
          for dx in (-60, 60) for dy in (-70, 70) for dz in (-50, 50)]  # spans the brain


def moved_copy(image: sitk.Image, transform: sitk.Transform) -> sitk.Image:
    """The image's content moved by the inverse of `transform` (a scan of a moved head)."""
    return sitk.Resample(image, image, transform, sitk.sitkLinear, 0.0)


def max_error_mm(found: sitk.Transform, truth_scan_to_atlas: sitk.Transform) -> float:
    # found maps atlas points to scan points; the truth maps scan points to atlas points.
    inverse = truth_scan_to_atlas.GetInverse()
    return max(np.linalg.norm(np.subtract(found.TransformPoint(p), inverse.TransformPoint(p)))
               for p in PROBES)


def known_motion() -> sitk.Euler3DTransform:
    return sitk.Euler3DTransform(CENTRE, 0.15, -0.10, 0.20, (8.0, -5.0, 12.0))


def test_recovers_a_known_rotation_and_translation_within_2mm(atlas, head):
    truth = known_motion()
    result = register_to_atlas(moved_copy(head, truth), atlas, skull_stripped=False)
    assert result.ok, result.problem
    assert max_error_mm(result.transform, truth) < 2.0
    assert result.correlation > 0.8


def test_skull_stripped_thick_slice_oblique_storage(atlas):
    """A skull-stripped head, moved, stored in another orientation with 6 mm slices."""
    truth = known_motion()
    moved = moved_copy(shrink(atlas.skull_stripped), truth)
    stored = restore(moved, (1.0, 0, 0, 0, 0, 1.0, 0, -1.0, 0))  # coronal storage order
    thick = sitk.Resample(stored, _with_spacing(stored, (2.0, 2.0, 6.0)), sitk.Transform(),
                          sitk.sitkLinear, 0.0)
    result = register_to_atlas(thick, atlas, skull_stripped=True)
    assert result.ok, result.problem
    assert max_error_mm(result.transform, truth) < 3.0  # 6 mm slices: a coarser target


def test_head_far_off_centre_of_its_field_of_view(atlas, head):
    """The head sits in one corner of a large field of view (shifted origin, padded image)."""
    padded = sitk.ConstantPad(head, (40, 40, 20), (0, 0, 0), 0.0)
    truth = sitk.Euler3DTransform(CENTRE, 0.0, 0.05, -0.1, (-30.0, 25.0, -15.0))
    result = register_to_atlas(moved_copy(padded, truth), atlas, skull_stripped=False)
    assert result.ok, result.problem
    assert max_error_mm(result.transform, truth) < 2.0


def test_repeat_runs_are_identical(atlas, head):
    moved = moved_copy(head, known_motion())
    first = register_to_atlas(moved, atlas, skull_stripped=False).transform.GetParameters()
    second = register_to_atlas(moved, atlas, skull_stripped=False).transform.GetParameters()
    assert first == second


def test_noise_is_flagged_as_not_a_brain(atlas, head):
    rng = np.random.default_rng(0)
    noise = sitk.GetImageFromArray(rng.random(sitk.GetArrayViewFromImage(head).shape)
                                   .astype(np.float32))
    noise.CopyInformation(head)
    result = register_to_atlas(noise, atlas, skull_stripped=False)
    assert not result.ok
    assert "brain" in result.problem


def _with_spacing(image: sitk.Image, spacing) -> sitk.Image:
    size = [int(round(n * s / t)) for n, s, t in zip(image.GetSize(), image.GetSpacing(), spacing)]
    reference = sitk.Image(size, sitk.sitkFloat32)
    reference.SetSpacing(spacing)
    reference.SetDirection(image.GetDirection())
    reference.SetOrigin(image.GetOrigin())
    return reference


def test_registrations_in_parallel_threads_match_one_alone(atlas, head):
    """The batch prepares scans in several threads at once: each registration must still run
    single-threaded inside ITK (reproducible), and ITK's thread setting must come back after."""
    from concurrent.futures import ThreadPoolExecutor
    before = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    moves = [known_motion(), sitk.Euler3DTransform(CENTRE, -0.1, 0.05, 0.0, (-6.0, 4.0, 3.0))]
    scans = [moved_copy(head, move) for move in moves]
    alone = [register_to_atlas(scan, atlas, skull_stripped=False).transform.GetParameters()
             for scan in scans]
    with ThreadPoolExecutor(3) as pool:
        together = list(pool.map(
            lambda scan: register_to_atlas(scan, atlas, skull_stripped=False)
            .transform.GetParameters(), scans + scans[:1]))
    assert together == alone + alone[:1]
    assert sitk.ProcessObject.GetGlobalDefaultNumberOfThreads() == before
