"""TumorClassifier: intracranial tumour type from one 3D post-contrast T1 brain MRI, with a
Grad-CAM heatmap of where the network looked (after Chakrabarty et al., Radiology: AI 2021).

All computation lives in TumorClassifierLib; this file only wires Slicer's UI to it. Heavy
packages (torch, MONAI, the library) are imported inside functions, never at file scope.
"""

import logging
import os
import queue
import threading

import qt
import slicer
import vtk
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest,
                                           ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

MODULE_DIR = os.path.dirname(os.path.abspath(__file__))
CLASS_CODES = ("HGG", "LGG", "METS", "PITADE", "ACSCHW", "HEALTHY", "MENINGIOMA")
PREDICTED = "predicted class"
DEFAULT_MODEL = "bundled default model"
MODEL_SETTING = "TumorClassifier/ModelPath"
# What the library needs besides Slicer's own numpy, SimpleITK and VTK (never replaced).
PIP_REQUIREMENTS = ["monai>=1.3", "safetensors>=0.4", "tqdm>=4.60"]
TORCH_REQUIREMENT = ">=2.1"


class TumorClassifier(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Tumor Classifier")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Neuroimaging")]
        self.parent.dependencies = []
        self.parent.contributors = ["TumorClassifier developers"]
        self.parent.helpText = _(
            "Classifies one 3D post-contrast T1-weighted brain MRI as high-grade glioma, "
            "low-grade glioma, metastases, meningioma, pituitary adenoma, acoustic neuroma or no "
            "tumour, and shows a heatmap (HiResCAM, of the Grad-CAM family) of where the network "
            "looked. "
            "Not for clinical use. The bundled model was trained on synthetic phantoms only.")
        self.parent.acknowledgementText = _(
            "Method: Chakrabarty S et al., Radiology: Artificial Intelligence 2021 "
            "(PMC8489441). Atlas: McConnell Brain Imaging Centre, MNI, McGill University.")
        slicer.app.connect("startupCompleted()", registerSampleData)


def registerSampleData():
    """One sample phantom per class in the Sample Data module (local files, no download)."""
    import SampleData
    folder = os.path.join(MODULE_DIR, "Resources", "SampleData")
    iconPath = os.path.join(MODULE_DIR, "Resources", "Icons", "TumorClassifier.png")
    if not os.path.isdir(folder):
        return
    for fileName in sorted(os.listdir(folder)):
        if not fileName.endswith(".nii.gz") or fileName.endswith("_lesion.nii.gz"):
            continue
        path = os.path.join(folder, fileName)
        name = "TumorClassifier " + fileName.split("_")[2].upper()
        SampleData.SampleDataLogic.registerCustomSampleDataSource(
            category="TumorClassifier", sampleName=name, thumbnailFileName=iconPath,
            uris=qt.QUrl.fromLocalFile(path).toString(), fileNames=fileName, nodeNames=name,
            loadFileType="VolumeFile")


@parameterNodeWrapper
class TumorClassifierParameterNode:
    inputVolume: slicer.vtkMRMLScalarVolumeNode
    heatmapOpacity: float = 0.5


class TumorClassifierWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._worker = None
        self._cancel = None
        self._messages = queue.Queue()
        self._timer = qt.QTimer()
        self._timer.setInterval(100)
        self._timer.timeout.connect(self._poll)
        self._lastResult = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/TumorClassifier.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = TumorClassifierLogic()

        self.ui.modelComboBox.addItem(_(DEFAULT_MODEL), "")
        savedModel = qt.QSettings().value(MODEL_SETTING, "")
        if savedModel:
            self.ui.modelComboBox.addItem(savedModel, savedModel)
            self.ui.modelComboBox.setCurrentIndex(1)
        self.ui.deviceComboBox.addItem(_("Auto (GPU if available)"), "auto")
        self.ui.deviceComboBox.addItem(_("CPU"), "cpu")
        self.ui.camClassComboBox.addItem(_("Predicted class"), "")
        for code in CLASS_CODES:
            self.ui.camClassComboBox.addItem(code, code)

        self.ui.loadModelButton.connect("clicked(bool)", self.onLoadModel)
        self.ui.classifyButton.connect("clicked(bool)", self.onClassifyButton)
        self.ui.exportButton.connect("clicked(bool)", self.onExport)
        self.ui.opacitySlider.connect("valueChanged(double)", self.onOpacityChanged)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.initializeParameterNode()
        self._setRunning(False)

    def cleanup(self):
        self.removeObservers()
        if self._cancel is not None:
            self._cancel.set()

    def enter(self):
        self.initializeParameterNode()
        self._listGpus()

    def exit(self):
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None

    def onSceneStartClose(self, caller, event):
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self):
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            background = slicer.app.layoutManager().sliceWidget("Red").sliceLogic() \
                .GetSliceCompositeNode().GetBackgroundVolumeID() if slicer.app.layoutManager() \
                else None
            node = slicer.mrmlScene.GetNodeByID(background) if background else None
            node = node or slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if node:
                self._parameterNode.inputVolume = node

    def setParameterNode(self, parameterNode):
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
        self._parameterNode = parameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)

    def _listGpus(self):
        """One entry per CUDA GPU, once torch is installed (it is installed on first use)."""
        import importlib.util
        if self.ui.deviceComboBox.count > 2 or importlib.util.find_spec("torch") is None:
            return
        import torch
        for index in range(torch.cuda.device_count()):
            self.ui.deviceComboBox.addItem(
                f"GPU {index}: {torch.cuda.get_device_name(index)}", f"cuda:{index}")

    def onLoadModel(self):
        path = qt.QFileDialog.getExistingDirectory(
            slicer.util.mainWindow(), _("Model bundle folder (metadata.json + model.safetensors)"))
        if not path:
            return
        qt.QSettings().setValue(MODEL_SETTING, path)
        self.ui.modelComboBox.addItem(path, path)
        self.ui.modelComboBox.setCurrentIndex(self.ui.modelComboBox.count - 1)

    def onClassifyButton(self):
        if self._worker is not None:  # the button reads "Cancel" while running
            self._cancel.set()
            self.ui.statusLabel.text = _("Cancelling...")
            return
        volumeNode = self._parameterNode.inputVolume
        if volumeNode is None:
            slicer.util.errorDisplay(_("Select an input volume first."))
            return
        if not self.logic.ensureDependencies(askConfirmation=True):
            return
        model = self.ui.modelComboBox.currentData or None
        device = self.ui.deviceComboBox.currentData or "auto"
        camClass = self.ui.camClassComboBox.currentData or None
        tta = self.ui.ttaCheckBox.checked
        with slicer.util.tryWithErrorDisplay(_("Could not prepare the classification."),
                                             waitCursor=True):
            classifier = self.logic.classifier(model, device)
            from TumorClassifierLib.mrml_bridge import node_to_volume
            volume = node_to_volume(volumeNode)
        self._cancel = threading.Event()
        self._worker = threading.Thread(
            target=self._work, args=(classifier, volume, camClass, tta, volumeNode.GetName()),
            daemon=True)
        self._volumeNode = volumeNode
        self._setRunning(True)
        self._worker.start()
        self._timer.start()

    def _work(self, classifier, volume, camClass, tta, name):
        """Runs off the main thread: only the library, never the scene or the UI."""
        try:
            result = classifier.classify(
                volume, cam_class=camClass, cancel=self._cancel, tta=tta,
                progress=lambda stage, fraction: self._messages.put(("progress", stage,
                                                                     fraction)))
            self._messages.put(("done", result, None))
        except Exception as error:  # reported on the main thread
            self._messages.put(("error", error, name))

    def _poll(self):
        while not self._messages.empty():
            kind, first, second = self._messages.get()
            if kind == "progress":
                self.ui.progressBar.value = int(100 * second)
                self.ui.statusLabel.text = _("Stage: {stage}").format(stage=first)
                continue
            self._timer.stop()
            self._worker = None
            self._setRunning(False)
            if kind == "done":
                self._listGpus()
                self._showResult(first)
            else:
                from TumorClassifierLib.errors import Cancelled
                if isinstance(first, Cancelled):
                    self.ui.statusLabel.text = _("Cancelled; the scene was not changed.")
                else:
                    logging.exception(first)
                    self.ui.statusLabel.text = _("Failed.")
                    slicer.util.errorDisplay(str(first), windowTitle=_("Tumor Classifier"))

    def _showResult(self, result):
        self._lastResult = result
        self.logic.showResults(self._volumeNode, result, self.ui.opacitySlider.value)
        name = result.display_names[result.predicted_class]
        self.ui.resultLabel.text = f"{name}: {result.confidence:.0%}"
        self.ui.uncertaintyLabel.text = _(
            "Entropy {entropy:.2f} (0 = certain, 1 = all classes equally likely){flips}").format(
            entropy=result.entropy,
            flips=_("; mean of 8 flipped passes") if result.augmentations > 1 else "")
        self.ui.warningsLabel.text = "\n".join(result.warnings)
        self.ui.warningsLabel.visible = bool(result.warnings)
        table = self.logic.outputs[self._volumeNode.GetID()]["table"]
        self.ui.probabilityTableView.setMRMLTableNode(table)
        self.ui.statusLabel.text = _("Done in {seconds:.1f} s.").format(
            seconds=sum(result.timings.values()))
        self.ui.exportButton.enabled = True

    def _setRunning(self, running):
        self.ui.classifyButton.text = _("Cancel") if running else _("Classify")
        self.ui.progressBar.visible = running
        self.ui.progressBar.value = 0
        self.ui.inputsCollapsibleButton.enabled = not running

    def onOpacityChanged(self, value):
        self.logic.setHeatmapOpacity(value)

    def onExport(self):
        if self._lastResult is None:
            return
        folder = qt.QFileDialog.getExistingDirectory(slicer.util.mainWindow(),
                                                     _("Export report to folder"))
        if folder:
            with slicer.util.tryWithErrorDisplay(_("Export failed."), waitCursor=True):
                written = self.logic.exportReport(self._volumeNode, self._lastResult, folder)
                self.ui.statusLabel.text = _("Exported {count} files to {folder}").format(
                    count=len(written), folder=folder)


class TumorClassifierLogic(ScriptedLoadableModuleLogic):
    """Classification from Slicer's Python console (blocks until done):

        logic = slicer.util.getModuleLogic("TumorClassifier")
        result = logic.classifyVolume(slicer.util.getNode("MyScan"))
        print(result["result"].table())
    """

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        self._classifiers = {}
        self.outputs = {}  # input volume ID -> the nodes made for it

    def getParameterNode(self):
        return TumorClassifierParameterNode(super().getParameterNode())

    @staticmethod
    def ensureDependencies(askConfirmation=False):
        """torch through the PyTorch extension's PyTorchUtils, the rest with pip; Slicer's own
        numpy, SimpleITK and VTK are held at their versions. Returns False if declined."""
        import importlib.util
        if importlib.util.find_spec("torch") is None:
            try:
                import PyTorchUtils
            except ImportError:
                slicer.util.errorDisplay(_("Install the PyTorch extension from the Extensions "
                                           "Manager first, then restart Slicer."))
                return False
            torchLogic = PyTorchUtils.PyTorchUtilsLogic()
            if torchLogic.installTorch(askConfirmation=askConfirmation,
                                       torchVersionRequirement=TORCH_REQUIREMENT) is None:
                return False
        missing = [r for r in PIP_REQUIREMENTS if importlib.util.find_spec(
            r.split(">=")[0].replace("-", "_")) is None]
        if missing:
            if askConfirmation and not slicer.util.confirmOkCancelDisplay(
                    _("Tumor Classifier needs these Python packages: {packages}. Install "
                      "now?").format(packages=", ".join(missing))):
                return False
            try:
                slicer.util.pip_install(missing + _constraintArguments())
            except Exception as error:
                slicer.util.errorDisplay(_(
                    "Installing {packages} failed ({error}). Offline? Install them from wheel "
                    "files with slicer.util.pip_install('--no-index --find-links FOLDER "
                    "...').").format(packages=", ".join(missing), error=error))
                return False
        return True

    def classifier(self, model=None, device="auto"):
        """A loaded classifier, kept for reuse (loading checks hashes and runs a test input)."""
        key = (model or "", device)
        if key not in self._classifiers:
            from TumorClassifierLib.inference import Classifier
            self._classifiers[key] = Classifier.from_bundle(model, device=device)
        return self._classifiers[key]

    def classifyVolume(self, volumeNode, model=None, device="auto", camClass=None,
                       showResults=True, tta=False):
        """Classify a scalar volume node; returns {"result": ClassificationResult, "nodes":
        the heatmap, table and chart nodes (when showResults)}. `tta`: average over the 8
        flipped passes (result.entropy says how sure the model is)."""
        if not self.ensureDependencies():
            raise RuntimeError("TumorClassifier's Python dependencies are not installed")
        from TumorClassifierLib.mrml_bridge import node_to_volume
        result = self.classifier(model, device).classify(node_to_volume(volumeNode),
                                                        cam_class=camClass, tta=tta)
        nodes = self.showResults(volumeNode, result) if showResults else {}
        return {"result": result, "nodes": nodes}

    def classifyFiles(self, paths, outputCsv, heatmapDir=None, model=None, device="auto",
                      tta=False):
        """Batch over files without touching the scene: one row per scan in `outputCsv`,
        heatmaps and probability JSON files in `heatmapDir` (default: beside the CSV)."""
        if not self.ensureDependencies():
            raise RuntimeError("TumorClassifier's Python dependencies are not installed")
        from TumorClassifierLib.batch import cases_from_paths
        from TumorClassifierLib.batch_runner import classify_cases
        out = heatmapDir or os.path.dirname(os.path.abspath(outputCsv))
        return classify_cases(self.classifier(model, device), cases_from_paths(paths), out,
                              results_csv=outputCsv, overlay=False, echo=False, tta=tta)

    def showResults(self, volumeNode, result, opacity=0.5):
        from TumorClassifierLib.mrml_bridge import show_result
        nodes = show_result(slicer.mrmlScene, volumeNode, result, opacity)
        self.outputs[volumeNode.GetID()] = nodes
        slicer.util.setSliceViewerLayers(background=volumeNode, foreground=nodes["heatmap"],
                                         foregroundOpacity=opacity, fit=False)
        slicer.modules.plots.logic().ShowChartInLayout(nodes["chart"])
        return nodes

    def setHeatmapOpacity(self, opacity):
        for sliceCompositeNode in slicer.util.getNodesByClass("vtkMRMLSliceCompositeNode"):
            sliceCompositeNode.SetForegroundOpacity(opacity)

    def exportReport(self, volumeNode, result, folder):
        """probabilities.json and .csv, the heatmap (.nii.gz) and a screenshot of the views."""
        import csv
        import json
        name = volumeNode.GetName()
        paths = {"json": os.path.join(folder, f"{name}_probabilities.json"),
                 "csv": os.path.join(folder, f"{name}_probabilities.csv"),
                 "heatmap": os.path.join(folder, f"{name}_heatmap.nii.gz"),
                 "screenshot": os.path.join(folder, f"{name}_screenshot.png")}
        with open(paths["json"], "w", encoding="utf-8") as handle:
            json.dump(result.to_dict(), handle, indent=2)
        with open(paths["csv"], "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["class", "name", "probability"])
            for code, probability in sorted(result.probabilities.items(), key=lambda i: -i[1]):
                writer.writerow([code, result.display_names[code], f"{probability:.6f}"])
        from TumorClassifierLib.volume import write_volume
        write_volume(result.heatmap, paths["heatmap"])
        slicer.util.mainWindow().centralWidget().grab().save(paths["screenshot"])
        return paths


def _constraintArguments():
    """pip arguments that keep the versions of the packages Slicer itself ships."""
    import importlib.metadata
    import tempfile
    pins = []
    for package in ("numpy", "SimpleITK", "vtk"):
        try:
            pins.append(f"{package}=={importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    handle, path = tempfile.mkstemp(suffix="-constraints.txt")
    with os.fdopen(handle, "w") as constraints:
        constraints.write("\n".join(pins) + "\n")
    return ["-c", path]


class TumorClassifierTest(ScriptedLoadableModuleTest):
    """Run in Slicer (Developer mode, Reload and Test, or the launcher's --testing)."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_classify_phantom_on_cpu()

    def test_classify_phantom_on_cpu(self):
        self.delayDisplay("Building a phantom volume")
        logic = TumorClassifierLogic()
        self.assertTrue(logic.ensureDependencies())
        import numpy as np
        from TumorClassifierLib.mrml_bridge import node_to_volume, volume_to_node
        from TumorClassifierLib.phantoms import case_seed, generate_phantom
        from TumorClassifierLib.volume import Volume
        phantom = generate_phantom("MENINGIOMA", case_seed(99, "MENINGIOMA", 0))
        volumeNode = volume_to_node(Volume.from_sitk(phantom.scan), slicer.mrmlScene,
                                    "phantom")
        volumeNode.CreateDefaultDisplayNodes()
        self.delayDisplay("Classifying on the CPU")
        output = logic.classifyVolume(volumeNode, device="cpu")
        result = output["result"]
        self.assertAlmostEqual(sum(result.probabilities.values()), 1.0, places=6)
        heatmap = output["nodes"]["heatmap"]
        inputMatrix, heatmapMatrix = vtk.vtkMatrix4x4(), vtk.vtkMatrix4x4()
        volumeNode.GetIJKToRASMatrix(inputMatrix)
        heatmap.GetIJKToRASMatrix(heatmapMatrix)
        for row in range(4):
            for column in range(4):
                self.assertAlmostEqual(inputMatrix.GetElement(row, column),
                                       heatmapMatrix.GetElement(row, column), places=6)
        heat = node_to_volume(heatmap).array
        self.assertEqual(heat.shape, node_to_volume(volumeNode).array.shape)
        self.assertAlmostEqual(float(np.max(heat)), 1.0, places=5)
        self.delayDisplay("Test passed")
