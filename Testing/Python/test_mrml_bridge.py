"""The MRML bridge against real Slicer MRML libraries (the `slicer-core` package)."""

import numpy as np
import pytest
import SimpleITK as sitk

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed (pip install "
                             "'.[test]' installs it)")
import vtk  # noqa: E402  (comes with slicer-core)

from TumorClassifierLib.batch import read_manifest  # noqa: E402
from TumorClassifierLib.inference import ClassificationResult, Classifier  # noqa: E402
from TumorClassifierLib.mrml_bridge import (HEATMAP_THRESHOLD, node_to_volume,  # noqa: E402
                                            render_slice, show_result, volume_to_node)
from TumorClassifierLib.resources import sample_data_dir  # noqa: E402
from TumorClassifierLib.volume import Volume, read_volume, write_volume  # noqa: E402


@pytest.fixture()
def scene():
    scene = slicer.vtkMRMLScene()
    colors = slicer.vtkMRMLColorLogic()  # default colour tables (Grey), as Slicer has them
    colors.SetMRMLScene(scene)
    yield scene
    colors.SetMRMLScene(None)
    scene.Clear(1)


def oblique_volume() -> Volume:
    rotation = np.asarray(sitk.Euler3DTransform((0, 0, 0), 0.2, -0.1, 0.3).GetMatrix())
    array = np.random.default_rng(0).random((12, 20, 16)).astype(np.float32)
    return Volume(array, (0.9, 1.1, 2.5), (-12.5, 30.25, 7.0), tuple(rotation))


def load_with_slicer(scene, path):
    logic = slicer.vtkSlicerVolumesLogic()
    logic.SetMRMLScene(scene)
    node = logic.AddArchetypeVolume(str(path), "loaded")
    assert node is not None
    return node


@pytest.mark.parametrize("direction", [(1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0),
                                       (-1.0, 0, 0, 0, -1.0, 0, 0, 0, 1.0), None],
                         ids=["LPS", "RAS", "oblique"])
def test_volume_node_round_trip_is_exact(scene, direction):
    volume = oblique_volume()
    if direction is not None:
        volume = Volume(volume.array, volume.spacing, volume.origin, direction)
    back = node_to_volume(volume_to_node(volume, scene, "v"))
    np.testing.assert_array_equal(back.array, volume.array)
    assert back.same_geometry(volume, atol=1e-9)


def test_slicer_loaded_nifti_equals_the_library_read(scene, tmp_path):
    path = write_volume(oblique_volume(), tmp_path / "oblique.nii.gz")
    node = load_with_slicer(scene, path)
    from_slicer, from_library = node_to_volume(node), read_volume(path)
    np.testing.assert_array_equal(from_slicer.array, from_library.array)
    assert from_slicer.same_geometry(from_library, atol=1e-5)


@pytest.fixture(scope="module")
def sample_case():
    cases = {c.label: c for c in read_manifest(sample_data_dir() / "manifest.csv")}
    return cases["ACSCHW"]


def test_slicer_loaded_scan_classifies_like_the_file(scene, tiny_bundle, sample_case):
    classifier = Classifier.from_bundle(tiny_bundle, device="cpu")
    node = load_with_slicer(scene, sample_case.path)
    from_node = classifier.classify(node_to_volume(node))
    from_file = classifier.classify(sample_case.path)
    assert from_node.probabilities == pytest.approx(from_file.probabilities, abs=1e-6)


def lesion_result(case) -> ClassificationResult:
    """A result whose heatmap is the phantom's own lesion: checks geometry, not the model."""
    lesion = read_volume(case.lesion_mask)
    probabilities = dict(zip(["HGG", "LGG", "METS", "PITADE", "ACSCHW", "HEALTHY",
                              "MENINGIOMA"], [0.05, 0.05, 0.05, 0.05, 0.6, 0.1, 0.1]))
    from TumorClassifierLib.classes import DISPLAY_NAMES
    return ClassificationResult(
        source=case.name, probabilities=probabilities, display_names=dict(DISPLAY_NAMES),
        predicted_class="ACSCHW", cam_class="ACSCHW",
        heatmap=lesion.with_array(lesion.array.astype(np.float32)), registration={},
        timings={}, device="cpu", precision="float32")


def test_results_in_the_scene(scene, sample_case):
    scan = load_with_slicer(scene, sample_case.path)
    outputs = show_result(scene, scan, lesion_result(sample_case))
    heatmap = outputs["heatmap"]
    scan_matrix, heat_matrix = vtk.vtkMatrix4x4(), vtk.vtkMatrix4x4()
    scan.GetIJKToRASMatrix(scan_matrix)
    heatmap.GetIJKToRASMatrix(heat_matrix)
    assert all(scan_matrix.GetElement(r, c) == pytest.approx(heat_matrix.GetElement(r, c))
               for r in range(4) for c in range(4))
    assert heatmap.GetImageData().GetDimensions() == scan.GetImageData().GetDimensions()
    display = heatmap.GetDisplayNode()
    assert display.GetColorNode().GetName() == "TumorClassifier Inferno"
    assert display.GetColorNode().GetNumberOfColors() == 256
    assert (display.GetWindowLevelMin(), display.GetWindowLevelMax()) == (0.0, 1.0)
    assert display.GetApplyThreshold() and display.GetLowerThreshold() == HEATMAP_THRESHOLD

    table = outputs["table"].GetTable()
    assert table.GetNumberOfRows() == 7
    probabilities = [table.GetValue(row, 2).ToDouble() for row in range(7)]
    assert sum(probabilities) == pytest.approx(1.0)
    assert probabilities == sorted(probabilities, reverse=True)
    assert table.GetValue(0, 0).ToString() == "ACSCHW"

    hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    scan_item = hierarchy.GetItemByDataNode(scan)
    for node in outputs.values():
        assert hierarchy.GetItemParent(hierarchy.GetItemByDataNode(node)) == scan_item


def test_rerunning_replaces_outputs_instead_of_piling_up(scene, sample_case):
    scan = load_with_slicer(scene, sample_case.path)
    first = show_result(scene, scan, lesion_result(sample_case))
    count = scene.GetNumberOfNodes()
    second = show_result(scene, scan, lesion_result(sample_case))
    assert scene.GetNumberOfNodes() == count
    assert all(first[k].GetID() == second[k].GetID() for k in first)


@pytest.mark.parametrize("orientation, normal", [("Axial", 2), ("Coronal", 1),
                                                 ("Sagittal", 0)])
def test_overlay_pixels_sit_on_the_phantoms_lesion(scene, sample_case, tmp_path, orientation,
                                                    normal):
    scan = load_with_slicer(scene, sample_case.path)
    scan.GetDisplayNode().SetAndObserveColorNodeID("vtkMRMLColorTableNodeGrey")
    outputs = show_result(scene, scan, lesion_result(sample_case))
    lesion = read_volume(sample_case.lesion_mask)
    k, j, i = (np.mean(axis) for axis in np.nonzero(lesion.array))
    centre_lps = (lesion.index_to_world() @ [i, j, k, 1])[:3]
    pixels, xy_to_ras = render_slice(scene, scan, outputs["heatmap"], centre_lps * [-1, -1, 1],
                                     orientation, size=192)
    slice_normal = np.cross(xy_to_ras[:3, 0], xy_to_ras[:3, 1])
    assert np.argmax(np.abs(slice_normal)) == normal  # the view is the one asked for
    rgb = pixels[..., :3].astype(int)
    coloured = (rgb[..., 0] - rgb[..., 2]) > 25  # Inferno over grey turns red/yellow
    assert coloured.sum() > 20
    rows, columns = np.nonzero(coloured)
    ras = np.c_[columns, rows, np.zeros_like(rows), np.ones_like(rows)] @ xy_to_ras.T
    lps = ras[:, :3] * [-1, -1, 1]
    index = np.c_[lps, np.ones(len(lps))] @ np.linalg.inv(lesion.index_to_world()).T
    voxels = np.round(index[:, :3]).astype(int)[:, ::-1]  # (k, j, i)
    dilated = sitk.GetArrayFromImage(sitk.BinaryDilate(
        sitk.GetImageFromArray(lesion.array.astype(np.uint8)), [1, 1, 1]))
    inside = dilated[tuple(np.clip(voxels, 0, np.array(dilated.shape) - 1).T)] > 0
    assert inside.mean() > 0.95
    writer = vtk.vtkPNGWriter()  # the rendering also writes as a PNG offscreen
    image = vtk.vtkImageData()
    image.SetDimensions(pixels.shape[1], pixels.shape[0], 1)
    from vtk.util.numpy_support import numpy_to_vtk
    image.GetPointData().SetScalars(numpy_to_vtk(pixels.reshape(-1, pixels.shape[2])))
    writer.SetFileName(str(tmp_path / "overlay.png"))
    writer.SetInputData(image)
    writer.Write()
    assert (tmp_path / "overlay.png").stat().st_size > 500
