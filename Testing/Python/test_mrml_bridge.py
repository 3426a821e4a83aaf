"""The MRML bridge against real Slicer MRML libraries (the `slicer-core` package)."""

import numpy as np
import pytest
import SimpleITK as sitk

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed (pip install "
                             "'.[test]' installs it)")
import vtk  # noqa: E402  (comes with slicer-core)

from TumorClassifierLib.inference import ClassificationResult, Classifier  # noqa: E402
from TumorClassifierLib.manifest import read_manifest  # noqa: E402
from TumorClassifierLib.mrml_bridge import (  # noqa: E402
    HEATMAP_THRESHOLD,
    node_to_volume,
    node_to_world_volume,
    render_slice,
    show_result,
    volume_to_node,
)
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


@pytest.mark.slow
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


def rigid_transform(scene, degrees=(25.0, -15.0, 40.0), shift=(30.0, -12.0, 18.0)):
    """A linear transform node: rotation about three axes and a translation (RAS, mm)."""
    transform = vtk.vtkTransform()
    transform.Translate(*shift)
    transform.RotateX(degrees[0])
    transform.RotateY(degrees[1])
    transform.RotateZ(degrees[2])
    node = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "pose")
    node.SetMatrixTransformToParent(transform.GetMatrix())
    return node


def matrix_of(node) -> np.ndarray:
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def test_world_volume_hardens_a_linear_parent_transform_without_touching_the_node(scene):
    node = volume_to_node(oblique_volume(), scene, "v")
    transform = rigid_transform(scene)
    node.SetAndObserveTransformNodeID(transform.GetID())
    before, nodes = matrix_of(node), scene.GetNumberOfNodes()
    world = node_to_world_volume(node)
    to_world = vtk.vtkMatrix4x4()
    transform.GetMatrixTransformToWorld(to_world)
    expected = np.array([[to_world.GetElement(r, c) for c in range(4)] for r in range(4)]) \
        @ before
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ world.index_to_world()
    np.testing.assert_allclose(ras, expected, atol=1e-9)
    np.testing.assert_array_equal(world.array, oblique_volume().array)
    assert np.array_equal(matrix_of(node), before) and scene.GetNumberOfNodes() == nodes
    assert node.GetTransformNodeID() == transform.GetID()


def test_world_volume_resamples_a_non_linear_parent_on_a_clone_that_is_removed(scene):
    volume = oblique_volume()
    node = volume_to_node(volume, scene, "v")
    grid = scene.AddNewNodeByClass("vtkMRMLGridTransformNode", "warp")
    field = vtk.vtkImageData()
    field.SetDimensions(4, 4, 4)
    field.SetOrigin(-60, -60, -60)
    field.SetSpacing(40, 40, 40)
    field.AllocateScalars(vtk.VTK_DOUBLE, 3)
    from vtk.util.numpy_support import vtk_to_numpy
    vtk_to_numpy(field.GetPointData().GetScalars())[:] = [5.0, 0.0, 0.0]  # a 5 mm shift
    warp = slicer.vtkOrientedGridTransform()
    warp.SetDisplacementGridData(field)
    grid.SetAndObserveTransformFromParent(warp)
    node.SetAndObserveTransformNodeID(grid.GetID())
    nodes, voxels = scene.GetNumberOfNodes(), slicer.util.arrayFromVolume(node).copy()
    world = node_to_world_volume(node)
    assert scene.GetNumberOfNodes() == nodes
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(node), voxels)
    assert world.array.shape[0] > 0 and np.isfinite(world.array).all()
    assert not np.allclose(world.origin, volume.origin) or not np.array_equal(
        world.array, volume.array)


def scan_under_a_transform(scene, sample_case):
    """(the sample loaded by Slicer, grey, under a rigid transform; that transform; its
    lesion mask as a Volume)."""
    scan = load_with_slicer(scene, sample_case.path)
    scan.GetDisplayNode().SetAndObserveColorNodeID("vtkMRMLColorTableNodeGrey")
    transform = rigid_transform(scene)
    scan.SetAndObserveTransformNodeID(transform.GetID())
    return scan, transform, read_volume(sample_case.lesion_mask)


def test_heatmap_under_a_rotated_and_shifted_parent_stays_on_the_lesion(scene, sample_case):
    """The worker classifies the hardened (world) volume; its heatmap comes back in world
    coordinates. Shown through show_result, the rendered overlay must still cover the lesion
    wherever the transform puts the scan, and follow the transform when it changes."""
    scan, transform, lesion = scan_under_a_transform(scene, sample_case)
    world = node_to_world_volume(scan)
    result = lesion_result(sample_case)
    from dataclasses import replace
    result = replace(result, heatmap=world.with_array(lesion.array.astype(np.float32)))
    heatmap = show_result(scene, scan, result)["heatmap"]
    assert heatmap.GetTransformNodeID() == transform.GetID()
    np.testing.assert_allclose(matrix_of(heatmap), matrix_of(scan), atol=1e-6)
    for move in ((0.0, 0.0, 0.0), (15.0, 10.0, -5.0)):  # the user moves the scan afterwards
        if any(move):
            current = vtk.vtkMatrix4x4()
            transform.GetMatrixTransformToParent(current)
            moved = vtk.vtkTransform()
            moved.Translate(*move)
            moved.Concatenate(current)
            transform.SetMatrixTransformToParent(moved.GetMatrix())
        assert overlay_share_on_lesion(scene, scan, heatmap, lesion, transform) > 0.95


def overlay_share_on_lesion(scene, scan, heatmap, lesion, transform) -> float:
    """Render an axial slice through the lesion (in world coordinates) and return the share
    of coloured pixels that map back, through the transform, into the (dilated) lesion."""
    k, j, i = (np.mean(axis) for axis in np.nonzero(lesion.array))
    local_ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lesion.index_to_world() @ [i, j, k, 1]
    to_world = vtk.vtkMatrix4x4()
    transform.GetMatrixTransformToWorld(to_world)
    to_world = np.array([[to_world.GetElement(r, c) for c in range(4)] for r in range(4)])
    centre = (to_world @ local_ras)[:3]
    pixels, xy_to_ras = render_slice(scene, scan, heatmap, centre, "Axial", size=384)
    rgb = pixels[..., :3].astype(int)
    coloured = (rgb[..., 0] - rgb[..., 2]) > 25
    assert coloured.sum() > 50
    rows, columns = np.nonzero(coloured)
    world_ras = np.c_[columns, rows, np.zeros_like(rows), np.ones_like(rows)] @ xy_to_ras.T
    local = world_ras @ np.linalg.inv(to_world).T
    lps = local[:, :3] * [-1, -1, 1]
    index = np.c_[lps, np.ones(len(lps))] @ np.linalg.inv(lesion.index_to_world()).T
    voxels = np.round(index[:, :3]).astype(int)[:, ::-1]
    dilated = sitk.GetArrayFromImage(sitk.BinaryDilate(
        sitk.GetImageFromArray(lesion.array.astype(np.uint8)), [1, 1, 1]))
    return float((dilated[tuple(np.clip(voxels, 0, np.array(dilated.shape) - 1).T)] > 0).mean())


def test_a_transform_changed_during_the_run_moves_the_heatmap_with_the_anatomy(scene,
                                                                                sample_case):
    """The worker classified the volume hardened at the start; the user then moved the scan
    50 mm before the result came back. Placed with the start's matrix, the heatmap is on the
    lesion; placed with the transform as it is at the end (the old way), it is not."""
    from dataclasses import replace

    from TumorClassifierLib.mrml_bridge import local_to_world
    scan, transform, lesion = scan_under_a_transform(scene, sample_case)
    world_at_start = local_to_world(scan)
    world = node_to_world_volume(scan)  # what the worker received
    result = replace(lesion_result(sample_case),
                     heatmap=world.with_array(lesion.array.astype(np.float32)))
    current = vtk.vtkMatrix4x4()
    transform.GetMatrixTransformToParent(current)
    moved = vtk.vtkTransform()
    moved.Translate(50.0, 0.0, 0.0)
    moved.Concatenate(current)
    transform.SetMatrixTransformToParent(moved.GetMatrix())  # during the run
    stale = show_result(scene, scan, result)["heatmap"]
    assert overlay_share_on_lesion(scene, scan, stale, lesion, transform) < 0.5
    heatmap = show_result(scene, scan, result, world_at_start=world_at_start)["heatmap"]
    assert heatmap.GetTransformNodeID() == transform.GetID()
    assert overlay_share_on_lesion(scene, scan, heatmap, lesion, transform) > 0.95
