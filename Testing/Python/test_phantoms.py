import numpy as np
import pytest
import SimpleITK as sitk

from TumorClassifierLib.batch import read_manifest
from TumorClassifierLib.phantom_acquisition import Acquisition, acquire, direction_of
from TumorClassifierLib.phantom_anatomy import (CPA, MIDLINE_I, SELLA, Canvas,
                                                add_normal_enhancement, atlas_tissues)
from TumorClassifierLib.phantom_lesions import PAINTERS
from TumorClassifierLib.phantoms import case_seed, generate_phantom
from TumorClassifierLib.preprocessing import preprocess


def painted(label, seed):
    rng = np.random.default_rng(seed)
    canvas = Canvas(atlas_tissues())
    add_normal_enhancement(canvas, rng, pituitary=label != "PITADE")
    if PAINTERS[label]:
        PAINTERS[label](canvas, rng)
    return canvas


def centroid(mask):
    k, j, i = np.nonzero(mask > 0.5)
    return np.array([i.mean(), j.mean(), k.mean()])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_each_class_lesion_lies_where_its_prior_puts_it(seed):
    tissues = atlas_tissues()
    acoustic = painted("ACSCHW", seed).lesion
    assert min(np.linalg.norm(centroid(acoustic) - CPA[side]) for side in CPA) < 15

    pituitary = centroid(painted("PITADE", seed).lesion)
    assert abs(pituitary[0] - MIDLINE_I) < 4 and np.linalg.norm(pituitary - SELLA) < 20

    meningioma = painted("MENINGIOMA", seed).lesion > 0.5
    # Extra-axial: it reaches the dura - the brain's surface or the falx in the midline.
    i = np.nonzero(meningioma)[2]
    touches_falx = np.abs(i - MIDLINE_I).min() < 1.5
    assert tissues.surface_distance[meningioma].max() > -1.0 or touches_falx

    glioma = painted("HGG", seed)
    volume_ml = (glioma.lesion > 0.5).sum() / 1000
    assert 10 < volume_ml < 140  # a 3-6 cm mass
    assert abs(centroid(glioma.lesion)[0] - MIDLINE_I) > 10  # in a hemisphere
    core = glioma.image[glioma.lesion > 0.5]
    assert core.max() > 1.25 and core.min() < 0.45  # enhancing rim, necrotic core

    metastases = painted("METS", seed).lesion > 0.5
    components = sitk.ConnectedComponent(sitk.GetImageFromArray(metastases.astype(np.uint8)))
    assert 2 <= sitk.GetArrayViewFromImage(components).max() <= 6

    low_grade = painted("LGG", seed)
    assert low_grade.image[low_grade.lesion > 0.5].mean() < 0.8  # T1-dark, no ring

    healthy = painted("HEALTHY", seed)
    assert not healthy.lesion.any()
    assert (healthy.image[tissues.brain | (tissues.surface_distance < 4)] > 1.2).sum() > 500


def test_same_seed_same_phantom_other_seed_other_phantom():
    first = generate_phantom("METS", case_seed(5, "METS", 0))
    again = generate_phantom("METS", case_seed(5, "METS", 0))
    other = generate_phantom("METS", case_seed(5, "METS", 1))
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(first.scan),
                                  sitk.GetArrayViewFromImage(again.scan))
    assert first.scan.GetSize() != other.scan.GetSize() or not np.array_equal(
        sitk.GetArrayViewFromImage(first.scan), sitk.GetArrayViewFromImage(other.scan))


def test_acquisition_parameters_are_honoured():
    canvas = painted("HGG", 4)
    acquisition = Acquisition(rotation_deg=(10.0, -5.0, 15.0), shift_mm=(5.0, 0.0, -8.0),
                              scale=1.0, elastic_mm=2.0, orientation="PIR", in_plane_mm=1.2,
                              slice_mm=5.0, fov_margin_mm=(5.0, 5.0, 5.0), skull_stripped=True,
                              bias=0.2, noise=0.03, gamma=1.0, intensity_scale=2.0,
                              dtype="int16")
    scan, lesion = acquire(canvas, acquisition, np.random.default_rng(0))
    assert scan.GetSpacing() == pytest.approx((1.2, 1.2, 5.0))
    np.testing.assert_allclose(np.reshape(scan.GetDirection(), (3, 3)), direction_of("PIR"))
    array = sitk.GetArrayViewFromImage(scan)
    assert array.dtype == np.int16
    mode_share = np.mean(array == 0)
    assert mode_share > 0.5  # skull-stripped: a clean zero background
    inside = sitk.GetArrayViewFromImage(lesion) > 0
    assert inside.sum() > 1000 and lesion.GetSize() == scan.GetSize()
    assert array[inside].mean() > np.percentile(array[array > 0], 50)  # the rim enhances


def test_cohort_manifest_and_the_whole_preprocessing_path(phantom_cohort):
    cases = read_manifest(phantom_cohort)
    assert sorted(c.label for c in cases) == ["ACSCHW", "HEALTHY", "HGG", "PITADE"]
    assert all(c.lesion_mask and c.lesion_mask.is_file() for c in cases)
    assert len({c.patient_id for c in cases}) == len(cases)
    for case in cases:
        prepared = preprocess(sitk.ReadImage(str(case.path)), name=case.name)
        assert prepared.registration.ok, (case.name, prepared.registration.problem)
