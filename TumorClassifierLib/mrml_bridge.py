"""Between the library and a Slicer MRML scene: volumes to and from scalar volume nodes, and
a classification result shown in the scene. Needs only what the `slicer-core` package
provides (no slicer.app, no Qt), so it runs inside Slicer and in plain pytest.

Geometry: our `Volume` is in ITK's LPS world; MRML's IJK-to-RAS matrix is the same matrix with
the first two world axes negated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .resources import resources_dir
from .volume import Volume

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
SOURCE_ATTRIBUTE = "TumorClassifier.SourceVolumeID"
ROLE_ATTRIBUTE = "TumorClassifier.Role"
HEATMAP_THRESHOLD = 0.1  # below it the heatmap is transparent over the scan


def volume_to_node(volume: Volume, scene, name: str, node=None):
    """A vtkMRMLScalarVolumeNode (new, or `node` updated) holding `volume`."""
    import slicer
    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(volume.array))
    node.SetIJKToRASMatrix(_vtk_matrix(LPS_TO_RAS @ volume.index_to_world()))
    return node


def node_to_volume(node) -> Volume:
    import slicer
    index_to_world = LPS_TO_RAS @ _ijk_to_ras(node)  # the flip is its own inverse
    spacing = np.linalg.norm(index_to_world[:3, :3], axis=0)
    direction = index_to_world[:3, :3] / spacing
    array = np.array(slicer.util.arrayFromVolume(node), copy=True)
    return Volume(array, tuple(spacing), tuple(index_to_world[:3, 3]), tuple(direction.ravel()))


def node_to_world_volume(node) -> Volume:
    """The node's volume with its parent transforms hardened, i.e. where it is shown in the
    world, without changing the node. A linear transform only changes the geometry (no
    resampling); a non-linear one is hardened on a temporary clone that is removed again."""
    transform = node.GetParentTransformNode()
    if transform is None:
        return node_to_volume(node)
    if transform.IsTransformToWorldLinear():
        volume = node_to_volume(node)
        to_world = LPS_TO_RAS @ _matrix_to_world(transform) @ LPS_TO_RAS
        index_to_world = to_world @ volume.index_to_world()
        spacing = np.linalg.norm(index_to_world[:3, :3], axis=0)
        direction = index_to_world[:3, :3] / spacing
        if np.allclose(direction.T @ direction, np.eye(3), atol=1e-6):
            return Volume(volume.array, tuple(spacing), tuple(index_to_world[:3, 3]),
                          tuple(direction.ravel()))
    return _hardened_clone_volume(node)


def local_to_world(node) -> np.ndarray | None:
    """The 4x4 (RAS) matrix from the node's own coordinates to the world, as its parent
    transforms stand now; the identity without one; None under a non-linear transform."""
    transform = node.GetParentTransformNode()
    if transform is None:
        return np.eye(4)
    return _matrix_to_world(transform) if transform.IsTransformToWorldLinear() else None


def _matrix_to_world(transform) -> np.ndarray:
    import vtk
    matrix = vtk.vtkMatrix4x4()
    transform.GetMatrixTransformToWorld(matrix)
    return _numpy_matrix(matrix)


def _ijk_to_ras(node) -> np.ndarray:
    import vtk
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return _numpy_matrix(matrix)


def _numpy_matrix(matrix) -> np.ndarray:
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def _vtk_matrix(array: np.ndarray):
    import vtk
    matrix = vtk.vtkMatrix4x4()
    for row in range(4):
        for column in range(4):
            matrix.SetElement(row, column, array[row, column])
    return matrix


def _hardened_clone_volume(node) -> Volume:
    """A sheared or non-linear parent transform: MRML resamples a temporary clone."""
    import slicer
    import vtk
    scene = node.GetScene()
    clone = slicer.vtkSlicerVolumesLogic().CloneVolumeWithoutImageData(
        scene, node, f"{node.GetName()} (TumorClassifier temporary)")
    try:
        image = vtk.vtkImageData()
        image.DeepCopy(node.GetImageData())  # hardening must not touch the user's voxels
        clone.SetAndObserveImageData(image)
        clone.SetAndObserveTransformNodeID(node.GetTransformNodeID())
        slicer.vtkSlicerTransformLogic().hardenTransform(clone)
        return node_to_volume(clone)
    finally:
        for index in range(clone.GetNumberOfDisplayNodes()):
            scene.RemoveNode(clone.GetNthDisplayNode(index))
        scene.RemoveNode(clone)


def inferno_color_node(scene):
    """The Inferno colour table, loaded once per scene from the shipped colour file."""
    existing = scene.GetFirstNodeByName("TumorClassifier Inferno")
    if existing is not None:
        return existing
    node = scene.AddNewNodeByClass("vtkMRMLColorTableNode", "TumorClassifier Inferno")
    node.SetTypeToUser()
    entries = _read_color_file(resources_dir() / "Colors" / "Inferno.txt")
    node.SetNumberOfColors(len(entries))
    for index, (label, rgba) in enumerate(entries):
        node.SetColor(index, label, *rgba)
    node.SetAttribute("Category", "TumorClassifier")
    return node


def _read_color_file(path: Path) -> list[tuple[str, tuple[float, ...]]]:
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            _, label, *rgba = line.split()
            entries.append((label, tuple(float(v) / 255 for v in rgba)))
    return entries


def show_result(scene, input_node, result, opacity: float = 0.5,
                world_at_start: np.ndarray | None = None) -> dict:
    """Put a ClassificationResult in the scene, next to `input_node`: the heatmap volume
    (the input's exact geometry, Inferno, window 0..1, near-zero transparent), a probability
    table and a bar chart. Re-running on the same input replaces its earlier outputs.
    `result.heatmap` is in world coordinates, as computed from `node_to_world_volume`; it is
    placed under the input's parent transform. `world_at_start`: `local_to_world(input_node)`
    when that world volume was made - a transform changed during the run then moves the
    heatmap with the anatomy instead of leaving it where the anatomy was."""
    heatmap = _output_node(scene, input_node, "heatmap", "vtkMRMLScalarVolumeNode",
                           f"{input_node.GetName()} Grad-CAM")
    volume_to_node(result.heatmap, scene, heatmap.GetName(), node=heatmap)
    _follow_parent_transform(heatmap, input_node, world_at_start)
    _style_heatmap(scene, heatmap)
    table = _output_node(scene, input_node, "table", "vtkMRMLTableNode",
                         f"{input_node.GetName()} class probabilities")
    fill_probability_table(table, result)
    chart = _bar_chart(scene, input_node, table)
    _place_under(scene, input_node, [heatmap, table, chart])
    heatmap.SetAttribute("TumorClassifier.Opacity", str(opacity))
    return {"heatmap": heatmap, "table": table, "chart": chart}


def _follow_parent_transform(heatmap, input_node, world_at_start=None) -> None:
    """The heatmap arrives in world coordinates as they were when the input was hardened. It
    is moved into the input's own coordinates with that transform and put under the input's
    parent transform now, so that it sits on the anatomy however the transform changed since;
    when the input was or is under a non-linear transform it stays in world coordinates."""
    transform = input_node.GetParentTransformNode()
    start = local_to_world(input_node) if world_at_start is None else world_at_start
    if transform is None and np.allclose(start, np.eye(4)):
        heatmap.SetAndObserveTransformNodeID(None)
        return
    if (transform is not None and not transform.IsTransformToWorldLinear()) or start is None:
        heatmap.SetAndObserveTransformNodeID(None)
        return
    ijk_to_local = np.linalg.inv(start) @ _ijk_to_ras(heatmap)
    heatmap.SetIJKToRASMatrix(_vtk_matrix(ijk_to_local))
    heatmap.SetAndObserveTransformNodeID(transform.GetID() if transform is not None else None)


def _output_node(scene, input_node, role: str, class_name: str, name: str):
    for node in _nodes_of(scene, class_name):
        if (node.GetAttribute(SOURCE_ATTRIBUTE) == input_node.GetID()
                and node.GetAttribute(ROLE_ATTRIBUTE) == role):
            return node
    node = scene.AddNewNodeByClass(class_name, name)
    node.SetAttribute(SOURCE_ATTRIBUTE, input_node.GetID())
    node.SetAttribute(ROLE_ATTRIBUTE, role)
    return node


def _nodes_of(scene, class_name: str) -> list:
    collection = scene.GetNodesByClass(class_name)
    return [collection.GetItemAsObject(i) for i in range(collection.GetNumberOfItems())]


def _style_heatmap(scene, heatmap) -> None:
    if heatmap.GetDisplayNode() is None:
        heatmap.CreateDefaultDisplayNodes()
    display = heatmap.GetDisplayNode()
    display.SetAndObserveColorNodeID(inferno_color_node(scene).GetID())
    display.AutoWindowLevelOff()
    display.SetWindowLevelMinMax(0.0, 1.0)
    display.AutoThresholdOff()
    display.SetLowerThreshold(HEATMAP_THRESHOLD)
    display.SetUpperThreshold(1.0)
    display.ApplyThresholdOn()  # thresholded-out voxels are transparent in slice views
    display.SetInterpolate(1)


def fill_probability_table(table, result) -> None:
    """Rows: classes sorted by probability; columns: code, name, probability."""
    import vtk
    ordered = sorted(result.probabilities.items(), key=lambda item: -item[1])
    columns = [vtk.vtkStringArray(), vtk.vtkStringArray(), vtk.vtkDoubleArray()]
    for column, title in zip(columns, ("Class", "Name", "Probability")):
        column.SetName(title)
    for code, probability in ordered:
        columns[0].InsertNextValue(code)
        columns[1].InsertNextValue(result.display_names[code])
        columns[2].InsertNextValue(probability)
    data = vtk.vtkTable()
    for column in columns:
        data.AddColumn(column)
    table.SetAndObserveTable(data)
    table.SetUseColumnTitleAsColumnHeader(True)


def _bar_chart(scene, input_node, table):
    series = _output_node(scene, input_node, "series", "vtkMRMLPlotSeriesNode",
                          f"{input_node.GetName()} probabilities")
    series.SetAndObserveTableNodeID(table.GetID())
    series.SetXColumnName("Class")
    series.SetYColumnName("Probability")
    series.SetLabelColumnName("Class")
    series.SetPlotType(series.PlotTypeBar)
    chart = _output_node(scene, input_node, "chart", "vtkMRMLPlotChartNode",
                         f"{input_node.GetName()} classification")
    chart.RemoveAllPlotSeriesNodeIDs()
    chart.AddAndObservePlotSeriesNodeID(series.GetID())
    chart.SetTitle("Tumour class probabilities")
    chart.SetYAxisRange(0, 1)
    chart.SetYAxisRangeAuto(False)
    return chart


def _place_under(scene, input_node, nodes) -> None:
    """Outputs become children of the input volume in the subject hierarchy."""
    import slicer
    hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    parent = hierarchy.GetItemByDataNode(input_node)
    for node in nodes:
        item = hierarchy.GetItemByDataNode(node)
        if item and hierarchy.GetItemParent(item) != parent:
            hierarchy.SetItemParent(item, parent)


def remove_outputs(scene, input_node) -> None:
    """Remove everything `show_result` made for this input (e.g. a cancelled run)."""
    for class_name in ("vtkMRMLScalarVolumeNode", "vtkMRMLTableNode", "vtkMRMLPlotSeriesNode",
                       "vtkMRMLPlotChartNode"):
        for node in _nodes_of(scene, class_name):
            if node.GetAttribute(SOURCE_ATTRIBUTE) == input_node.GetID():
                scene.RemoveNode(node)


def render_slice(scene, background, foreground, centre_ras, orientation: str = "Axial",
                 size: int = 256, opacity: float = 0.5):
    """Render one slice view offscreen with vtkMRMLSliceLogic (no OpenGL needed): the
    foreground blended over the background through `centre_ras`. Returns the RGBA pixels
    (rows bottom-up, as VTK stores them) and the 4x4 pixel (x, y, 0, 1) to RAS matrix."""
    import slicer
    from vtk.util.numpy_support import vtk_to_numpy
    logic = slicer.vtkMRMLSliceLogic()
    logic.SetMRMLScene(scene)
    defaults = scene.GetDefaultNodeByClass("vtkMRMLSliceNode")
    if defaults is None or not defaults.HasSliceOrientationPreset(orientation):
        # A bare scene (slicer-core, no application) has no orientation presets, and without
        # them every orientation silently stayed axial. New slice nodes copy them.
        slicer.vtkMRMLSliceNode.AddDefaultSliceOrientationPresets(scene)
    slice_node = logic.AddSliceNode(f"TumorClassifier{orientation}")
    if not slice_node.SetOrientation(orientation):
        raise ValueError(f"unknown slice orientation {orientation!r}")
    slice_node.SetDimensions(size, size, 1)
    composite = logic.GetSliceCompositeNode()
    composite.SetBackgroundVolumeID(background.GetID())
    composite.SetForegroundVolumeID(foreground.GetID() if foreground else None)
    composite.SetForegroundOpacity(opacity)
    logic.FitSliceToAll()
    slice_node.JumpSliceByCentering(*centre_ras)
    connection = logic.GetImageDataConnection()
    connection.GetProducer().Update()
    image = connection.GetProducer().GetOutputDataObject(connection.GetIndex())
    width, height, _ = image.GetDimensions()
    pixels = vtk_to_numpy(image.GetPointData().GetScalars()).reshape(height, width, -1).copy()
    matrix = _numpy_matrix(slice_node.GetXYToRAS())
    logic.SetMRMLScene(None)
    # Leave no view behind: a second render would otherwise pick up this one's nodes.
    scene.RemoveNode(composite)
    scene.RemoveNode(slice_node)
    return pixels, matrix
