import numpy as np
import pytest
import SimpleITK as sitk

from TumorClassifierLib.manifest import read_manifest
from TumorClassifierLib.phantoms.acquisition import Acquisition, acquire, direction_of
from TumorClassifierLib.phantoms.anatomy import (
    CPA,
    MIDLINE_I,
    SELLA,
    Canvas,
    add_normal_enhancement,
    atlas_tissues,
)
from TumorClassifierLib.phantoms.cohort import case_seed, generate_phantom
from TumorClassifierLib.phantoms.generator1_lesions import PAINTERS
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_same_seed_same_phantom_other_seed_other_phantom():
    first = generate_phantom("METS", case_seed(5, "METS", 0))
    again = generate_phantom("METS", case_seed(5, "METS", 0))
    other = generate_phantom("METS", case_seed(5, "METS", 1))
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(first.scan),
                                  sitk.GetArrayViewFromImage(again.scan))
    assert first.scan.GetSize() != other.scan.GetSize() or not np.array_equal(
        sitk.GetArrayViewFromImage(first.scan), sitk.GetArrayViewFromImage(other.scan))


@pytest.mark.slow
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


@pytest.mark.slow
def test_cohort_manifest_and_the_whole_preprocessing_path(phantom_cohort):
    cases = read_manifest(phantom_cohort)
    assert sorted(c.label for c in cases) == ["ACSCHW", "HEALTHY", "HGG", "PITADE"]
    assert all(c.lesion_mask and c.lesion_mask.is_file() for c in cases)
    assert len({c.patient_id for c in cases}) == len(cases)
    for case in cases:
        prepared = preprocess(sitk.ReadImage(str(case.path)), name=case.name)
        assert prepared.registration.ok, (case.name, prepared.registration.problem)


def test_generator_1_still_draws_the_bundled_samples_voxel_for_voxel(tmp_path):
    """The samples were written by generator 1 (seed 3, 2 mm); it must not drift, so that its
    cohorts (the default model's training and test sets) can be drawn again."""
    from TumorClassifierLib.phantoms.cohort import _write_case
    from TumorClassifierLib.resources import sample_data_dir
    row = _write_case(("HGG", 0, 3, str(tmp_path), 2.0, 1, None))
    drawn = sitk.ReadImage(str(tmp_path / row["path"]))
    shipped = sitk.ReadImage(str(sample_data_dir() / row["path"]))
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(drawn),
                                  sitk.GetArrayViewFromImage(shipped))
    assert drawn.GetSpacing() == shipped.GetSpacing()


def test_tissue_curves_keep_the_t1c_order_and_reach_low_contrast():
    from TumorClassifierLib.phantoms.acquisition import apply_tissue_curve, draw_tissue_curve
    rng = np.random.default_rng(0)
    curves = [draw_tissue_curve(rng) for _ in range(400)]
    atlas_values = np.array([0.0, 0.3, 0.7, 1.0, 1.5, 2.5], np.float32)
    greys = []
    for curve in curves:
        mapped = apply_tissue_curve(atlas_values, curve)
        assert np.all(np.diff(mapped) > 0)  # CSF < grey < white < enhancing, monotone
        assert mapped[3] == pytest.approx(1.0)  # white matter stays the reference
        greys.append(mapped[2])
    assert min(greys) < 0.75 and max(greys) > 0.94  # from the atlas's contrast to almost none
    assert apply_tissue_curve(atlas_values, ()) is atlas_values  # generator 1: untouched


@pytest.mark.slow
def test_generator_2_reproducible_with_its_own_names_and_noisy_stripped_backgrounds(tmp_path):
    from TumorClassifierLib.phantoms.acquisition import draw_acquisition
    from TumorClassifierLib.phantoms.cohort import write_cohort
    from TumorClassifierLib.preprocessing import PreprocessingConfig, skull_evidence
    rng = np.random.default_rng(1)
    drawn = [draw_acquisition(rng, 2) for _ in range(300)]
    assert all(a.generator == 2 and a.tissue_curve for a in drawn)
    noisy = [a for a in drawn if a.noise_after_stripping]
    assert noisy and all(a.skull_stripped for a in noisy)
    assert 0.1 < np.mean([a.ghosting > 0 for a in drawn]) < 0.4
    assert max(a.slice_mm for a in drawn) > 6.5 and min(a.slice_mm for a in drawn) < 1.0
    with pytest.raises(ValueError, match="generator must be one of"):
        draw_acquisition(rng, 3)
    from TumorClassifierLib.phantoms.cohort import paint_case
    seed = next(s for s in range(50)
                if paint_case("HEALTHY", case_seed(s, "HEALTHY", 0), 2)[1].noise_after_stripping)
    manifest = write_cohort(tmp_path, per_class=1, seed=seed, classes=("HEALTHY",),
                            generator=2)
    case = read_manifest(manifest)[0]
    assert case.name.startswith("phantom_g2_")
    scan = sitk.ReadImage(str(case.path))
    array = sitk.GetArrayViewFromImage(scan)
    evidence = skull_evidence(scan, PreprocessingConfig())
    assert evidence.background_share < 0.6  # no single background value to find
    assert evidence.decision is True  # still recognised as stripped
    again = generate_phantom("HEALTHY", case_seed(seed, "HEALTHY", 0), 2)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(again.scan), array)



def painted_2(label, seed, family):
    from TumorClassifierLib.phantoms.generator2_lesions import PAINTERS_2
    rng = np.random.default_rng(seed)
    canvas = Canvas(atlas_tissues())
    add_normal_enhancement(canvas, rng, pituitary=label != "PITADE")
    if PAINTERS_2[label]:
        PAINTERS_2[label](canvas, rng, family)
    return canvas


@pytest.mark.slow
@pytest.mark.parametrize("family", ["lumpy", "cluster"])
@pytest.mark.parametrize("seed", [1, 2])
def test_generator_2_keeps_each_class_where_radiology_puts_it(seed, family):
    tissues = atlas_tissues()
    acoustic = painted_2("ACSCHW", seed, family).lesion
    assert min(np.linalg.norm(centroid(acoustic) - CPA[side]) for side in CPA) < 15
    pituitary = centroid(painted_2("PITADE", seed, family).lesion)
    assert abs(pituitary[0] - MIDLINE_I) < 5 and np.linalg.norm(pituitary - SELLA) < 22
    meningioma = painted_2("MENINGIOMA", seed, family).lesion > 0.5
    touches_falx = np.abs(np.nonzero(meningioma)[2] - MIDLINE_I).min() < 1.5
    assert tissues.surface_distance[meningioma].max() > -1.0 or touches_falx  # extra-axial
    for label in ("HGG", "LGG", "METS"):  # intra-axial: inside the brain
        lesion = painted_2(label, seed, family).lesion > 0.5
        assert lesion.any() and tissues.surface_distance[lesion].mean() < -3, label
    glioma = centroid(painted_2("HGG", seed, family).lesion)
    assert abs(glioma[0] - MIDLINE_I) > 10  # in a hemisphere
    assert not painted_2("HEALTHY", seed, family).lesion.any()


@pytest.mark.slow
def test_generator_2_sizes_patterns_and_counts_overlap_between_classes():
    """What must not tell classes apart does not: a small solitary enhancing lesion occurs
    as a metastasis and as an acoustic neuroma; a large one as a meningioma and as HGG."""
    def volumes(label, seeds=range(12)):
        result = []
        for seed in seeds:
            lesion = painted_2(label, seed, "lumpy" if seed % 2 else "cluster").lesion > 0.5
            components = sitk.ConnectedComponent(sitk.GetImageFromArray(lesion.astype(np.uint8)))
            result.append((lesion.sum() / 1000, int(sitk.GetArrayFromImage(components).max())))
        return result
    mets, acoustic, meningioma = volumes("METS"), volumes("ACSCHW"), volumes("MENINGIOMA")
    assert any(count == 1 for _, count in mets)  # solitary metastases exist
    assert min(v for v, _ in acoustic) < max(v for v, c in mets if c == 1)  # sizes overlap
    assert max(v for v, _ in meningioma) > 20 and min(v for v, _ in meningioma) < 5


@pytest.mark.slow
def test_families_draw_different_outlines_and_fixed_families_name_their_files(tmp_path):
    from TumorClassifierLib.phantoms.cohort import write_cohort
    from TumorClassifierLib.phantoms.lesion_forms import body
    grids = np.meshgrid(*[np.arange(-20, 21, dtype=np.float32)] * 3, indexing="ij")
    lumpy = body(grids, 12, np.random.default_rng(0), "lumpy")
    cluster = body(grids, 12, np.random.default_rng(0), "cluster")
    assert 0.2 < (lumpy > 0.5).sum() / (cluster > 0.5).sum() < 5  # the same size class
    assert not np.array_equal(lumpy > 0.5, cluster > 0.5)
    with pytest.raises(ValueError, match="family must be one of"):
        body(grids, 12, np.random.default_rng(0), "other")
    with pytest.raises(ValueError, match="families belong to generator 2"):
        generate_phantom("HGG", case_seed(1, "HGG", 0), 1, "lumpy")
    manifest = write_cohort(tmp_path, per_class=1, seed=4, classes=("ACSCHW",), generator=2,
                            family="cluster")
    case = read_manifest(manifest)[0]
    assert case.name == "phantom_g2_cluster_s4_acschw_0000"
    import json
    record = json.loads((tmp_path / f"{case.name}.json").read_text())
    assert record["family"] == "cluster" and record["acquisition"]["generator"] == 2
