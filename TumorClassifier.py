"""TumorClassifier: intracranial tumour type from one 3D post-contrast T1 brain MRI, with a
heatmap of where the network looked (after Chakrabarty et al., Radiology: AI 2021).

All computation lives in TumorClassifierLib, and the network runs in a worker process of
Slicer's own Python (TumorClassifierLib/worker/), never in a thread of the application:
Slicer's interpreter holds the GIL while Qt idles, so a Python thread would crawl. This file
wires the panel and the scene to that worker. Nothing heavy is imported at file scope, and
torch is never imported in the application at all.
"""

import logging
import os
import shutil
import sys
import tempfile

import qt
import slicer
import vtk
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

MODULE_DIR = os.path.dirname(os.path.abspath(__file__))
DEFAULT_MODEL = "bundled default model"
MODEL_SETTING = "TumorClassifier/ModelPath"
POLL_INTERVAL_MS = 20  # while the worker has work; a non-blocking read costs microseconds
IDLE_RELEASE_SETTING = "TumorClassifier/WorkerIdleReleaseSeconds"
WARM_UP_SETTING = "TumorClassifier/StartWorkerWhenShown"


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
        self._job = None
        self._lastResult = None
        self._lastInputNode = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/TumorClassifier.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = TumorClassifierLogic()
        self.logic.workerReadyCallback = self._fillDevices
        self.logic.busyCallback = self._onConsoleBusy

        self.ui.modelComboBox.addItem(_(DEFAULT_MODEL), "")
        savedModel = qt.QSettings().value(MODEL_SETTING, "")
        if savedModel:
            self.ui.modelComboBox.addItem(savedModel, savedModel)
            self.ui.modelComboBox.setCurrentIndex(1)
        self.ui.deviceComboBox.addItem(_("Auto (GPU if available)"), "auto")
        self.ui.deviceComboBox.addItem(_("CPU"), "cpu")

        self.ui.loadModelButton.connect("clicked(bool)", self.onLoadModel)
        self.ui.modelComboBox.connect("currentIndexChanged(int)", self.onModelChanged)
        self.ui.classifyButton.connect("clicked(bool)", self.onClassifyButton)
        self.ui.exportButton.connect("clicked(bool)", self.onExport)
        self.ui.opacitySlider.connect("valueChanged(double)", self.onOpacityChanged)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        slicer.app.connect("aboutToQuit()", self.logic.shutdownWorker)
        self.initializeParameterNode()
        self.onModelChanged()
        self._setRunning(False)

    def cleanup(self):
        self.removeObservers()
        if self.logic is not None:
            self.logic.shutdownWorker()

    def enter(self):
        self.initializeParameterNode()
        self.logic.warmUp()

    def exit(self):
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None

    def onSceneStartClose(self, caller, event):
        self.setParameterNode(None)
        self._lastResult = self._lastInputNode = None
        self.ui.exportButton.enabled = False

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self):
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            node = _backgroundVolume() or slicer.mrmlScene.GetFirstNodeByClass(
                "vtkMRMLScalarVolumeNode")
            if node:
                self._parameterNode.inputVolume = node

    def setParameterNode(self, parameterNode):
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
        self._parameterNode = parameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)

    def _fillDevices(self, devices):
        """The worker says which GPUs its torch sees (torch is never imported here)."""
        known = {self.ui.deviceComboBox.itemData(i) for i in range(self.ui.deviceComboBox.count)}
        for device in devices:
            if device["device"] != "cpu" and device["device"] not in known:
                self.ui.deviceComboBox.addItem(
                    f"GPU {device['device'].split(':')[-1]}: {device['name']}", device["device"])

    def onLoadModel(self):
        path = qt.QFileDialog.getExistingDirectory(
            slicer.util.mainWindow(), _("Model bundle folder (metadata.json + model.safetensors)"))
        if not path:
            return
        qt.QSettings().setValue(MODEL_SETTING, path)
        self.ui.modelComboBox.addItem(path, path)
        self.ui.modelComboBox.setCurrentIndex(self.ui.modelComboBox.count - 1)

    def onModelChanged(self, index=None):
        """The heatmap class choices are the selected model's own classes."""
        self.ui.camClassComboBox.clear()
        self.ui.camClassComboBox.addItem(_("Predicted class"), "")
        try:
            classes = self.logic.modelClasses(self.ui.modelComboBox.currentData or None)
        except ValueError as error:
            self.ui.statusLabel.text = str(error)
            return
        for code, name in classes:
            self.ui.camClassComboBox.addItem(f"{code} - {name}", code)

    def onClassifyButton(self):
        if self._job is not None or self.logic.busy:  # it reads "Cancel" while anything runs
            self.logic.cancel()
            return
        volumeNode = self._parameterNode.inputVolume if self._parameterNode else None
        if volumeNode is None:
            slicer.util.errorDisplay(_("Select an input volume first."))
            return
        self.ui.classifyButton.enabled = False  # no second click while anything installs
        try:
            if not self.logic.ensureDependencies(askConfirmation=True):
                return
        finally:
            self.ui.classifyButton.enabled = True
        options = {"model": self.ui.modelComboBox.currentData or None,
                   "device": self.ui.deviceComboBox.currentData or "auto",
                   "camClass": self.ui.camClassComboBox.currentData or None,
                   "tta": self.ui.ttaCheckBox.checked}
        with slicer.util.tryWithErrorDisplay(_("Could not start the classification."),
                                             waitCursor=True):
            self._job = self.logic.startClassification(
                volumeNode, onProgress=self._onProgress, onFinished=self._onFinished, **options)
            self._setRunning(True)
            self.ui.statusLabel.text = _("Starting...")

    def _onConsoleBusy(self, busy):
        """A console call (classifyFiles, fetchModel) runs in the same worker: the button
        cancels it too."""
        if self._job is None:
            self._setRunning(busy)
            self.ui.statusLabel.text = _("A console request is running.") if busy else ""

    def _onProgress(self, stage, fraction):
        self.ui.progressBar.value = int(100 * fraction)
        self.ui.statusLabel.text = _("Stage: {stage}").format(stage=stage)

    def _onFinished(self, job):
        self._job = None
        self._setRunning(False)
        if job.status == "done":
            self._showResult(job)
        elif job.status == "cancelled":
            self.ui.statusLabel.text = job.message or _("Cancelled; the scene was not changed.")
        else:
            logging.error(f"TumorClassifier: {job.message}")
            self.ui.statusLabel.text = _("Failed: {message}").format(message=job.message)
            slicer.util.errorDisplay(job.message, windowTitle=_("Tumor Classifier"))

    def _showResult(self, job):
        result = job.result
        self._lastResult, self._lastInputNode = result, job.inputNode
        name = result.display_names[result.predicted_class]
        self.ui.resultLabel.text = f"{name}: {result.confidence:.0%}"
        self.ui.uncertaintyLabel.text = _(
            "Entropy {entropy:.2f} (0 = certain, 1 = all classes equally likely){flips}").format(
            entropy=result.entropy,
            flips=_("; mean of {count} flipped passes").format(count=result.augmentations)
            if result.augmentations > 1 else "")
        self.ui.warningsLabel.text = "\n".join(result.warnings)
        self.ui.warningsLabel.visible = bool(result.warnings)
        self.ui.probabilityTableView.setMRMLTableNode(job.nodes["table"])
        self.ui.statusLabel.text = _("Done in {seconds:.1f} s.").format(seconds=job.seconds)
        self.ui.exportButton.enabled = True

    def _setRunning(self, running):
        self.ui.classifyButton.text = _("Cancel") if running else _("Classify")
        self.ui.progressBar.visible = running
        self.ui.progressBar.value = 0
        self.ui.inputsCollapsibleButton.enabled = not running

    def onOpacityChanged(self, value):
        if self._lastInputNode is not None:
            self.logic.setHeatmapOpacity(self._lastInputNode, value)

    def onExport(self):
        if self._lastResult is None:
            return
        folder = qt.QFileDialog.getExistingDirectory(slicer.util.mainWindow(),
                                                     _("Export report to folder"))
        if folder:
            with slicer.util.tryWithErrorDisplay(_("Export failed."), waitCursor=True):
                written = self.logic.exportReport(self._lastInputNode, self._lastResult, folder)
                self.ui.statusLabel.text = _("Exported {count} files to {folder}").format(
                    count=len(written), folder=folder)


def _backgroundVolume():
    """The volume shown in the first slice view, if there is a layout with slice views."""
    layoutManager = slicer.app.layoutManager()
    if layoutManager is None:
        return None
    for viewName in layoutManager.sliceViewNames():
        sliceWidget = layoutManager.sliceWidget(viewName)
        if sliceWidget is None:
            continue
        volumeID = sliceWidget.sliceLogic().GetSliceCompositeNode().GetBackgroundVolumeID()
        if volumeID:
            return slicer.mrmlScene.GetNodeByID(volumeID)
    return None


class ClassificationJob:
    """One classification of a volume node: the worker's job plus what the scene needs (the
    input node, its temporary folder, where it was in the world, the nodes shown).
    status: running, done, failed or cancelled."""

    def __init__(self, inputNode, folder, onProgress, onFinished, showResults):
        self.inputNode = inputNode
        self.folder = folder
        self.onProgress = onProgress
        self.onFinished = onFinished
        self.showResults = showResults
        self.workerJob = None
        self.worldAtStart = None  # the input's local-to-world matrix when it was hardened
        self.status = "running"
        self.message = ""
        self.result = None
        self.nodes = {}
        self.seconds = 0.0

    @property
    def finished(self):
        return self.status != "running"


class TumorClassifierLogic(ScriptedLoadableModuleLogic, VTKObservationMixin):
    """Classification through a worker process of Slicer's Python. From the Python console:

        logic = slicer.util.getModuleLogic("TumorClassifier")
        output = logic.classifyVolume(slicer.util.getNode("MyScan"))   # waits, keeps the GUI live
        print(output["result"].table())
        logic.classifyFiles(["a.nii.gz", "b.nrrd"], "results/")         # resumable batch
        logic.cancel()                                                  # from anywhere: stops all
    """

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        VTKObservationMixin.__init__(self)
        self.jobs = None  # TumorClassifierLib.worker.jobs.JobRunner, made on first use
        self.job = None  # the panel's (or classifyVolume's) ClassificationJob
        self.workerReadyCallback = None
        self.busyCallback = None  # busyCallback(True/False): console requests, for the panel
        self.installing = False
        self.pythonExecutable = None  # default: PythonSlicer
        self.workerEnvironment = None  # default: Slicer's startup environment
        self.idleReleaseSeconds = _idleReleaseSeconds()  # None: the worker is kept
        self._consoleRequests = 0
        self._timer = qt.QTimer()
        self._timer.setInterval(POLL_INTERVAL_MS)
        self._timer.timeout.connect(self.pollWorker)
        self._idleTimer = qt.QTimer()
        self._idleTimer.setSingleShot(True)
        self._idleTimer.timeout.connect(self.releaseIdleWorker)

    def getParameterNode(self):
        return TumorClassifierParameterNode(super().getParameterNode())

    def ensureDependencies(self, askConfirmation=False):
        """torch through the PyTorch extension (the user's choice of CUDA or CPU build), the
        rest with pip while the installed torch, numpy, SimpleITK and vtk are held at their
        versions. Returns False if declined or impossible (the user has been told why)."""
        from TumorClassifierLib.requirements import (
            SLICER_PIP_PACKAGES,
            describe_problems,
            installed_version,
            missing_or_old,
            requirement,
        )
        if self.installing:
            return False
        self.installing = True
        try:
            torchVersion = installed_version("torch")
            if torchVersion is None:
                if not self._installTorch(askConfirmation):
                    return False
            elif missing_or_old(("torch",)):
                slicer.util.errorDisplay(_(
                    "PyTorch {version} is too old: Tumor Classifier needs {needed}. Open the "
                    "PyTorch Utils module, uninstall PyTorch, install it again (it picks a new "
                    "version for your GPU), and restart Slicer.").format(
                        version=torchVersion, needed=requirement("torch")))
                return False
            problems = missing_or_old(SLICER_PIP_PACKAGES)
            if problems:
                packages = [requirement(name) for name in problems]
                if askConfirmation and not slicer.util.confirmOkCancelDisplay(_(
                        "Tumor Classifier needs these Python packages: {packages}. Install "
                        "now? PyTorch, numpy, SimpleITK and VTK are kept as they are.").format(
                            packages=", ".join(packages))):
                    return False
                self._pipInstall(packages)
            remaining = missing_or_old()
            if remaining:
                slicer.util.errorDisplay(_(
                    "Tumor Classifier cannot run: {problems}. If a package needs a newer "
                    "PyTorch, update PyTorch in the PyTorch Utils module; offline, install "
                    "wheel files with slicer.util.pip_install('--no-index --find-links FOLDER "
                    "PACKAGE').").format(problems=describe_problems(remaining)))
                return False
            return True
        finally:
            self.installing = False

    @staticmethod
    def _installTorch(askConfirmation):
        """PyTorch with the PyTorch extension's installer, light-the-torch (it picks the build
        that fits the GPU, or the CPU build), run in its own process. Not through
        PyTorchUtilsLogic.installTorch: that imports torch into the application afterwards
        (and installs torchvision), and torch must only ever run in the worker."""
        import importlib
        import importlib.util

        from TumorClassifierLib.requirements import installed_version, requirement
        try:
            import PyTorchUtils
        except ImportError:
            slicer.util.errorDisplay(_("Install the PyTorch extension from the Extensions "
                                       "Manager first, then restart Slicer."))
            return False
        torchRequirement = requirement("torch")
        if askConfirmation and not slicer.util.confirmOkCancelDisplay(_(
                "Tumor Classifier needs PyTorch ({requirement}). Download and install it now "
                "with the PyTorch extension's installer? It picks the build for your GPU, or "
                "the CPU build; this can take some minutes.").format(
                    requirement=torchRequirement)):
            return False
        if importlib.util.find_spec("light_the_torch") is None:
            PyTorchUtils.PyTorchUtilsLogic._installLightTheTorch()
        slicer.util._executePythonModule("light_the_torch", ["install", torchRequirement])
        importlib.invalidate_caches()
        return installed_version("torch") is not None

    @staticmethod
    def _pipInstall(packages):
        """pip with constraints that keep torch, numpy, SimpleITK and vtk as installed, so that
        no install can swap the torch build the user chose."""
        import importlib

        from TumorClassifierLib.requirements import pinned_constraints
        handle, constraints = tempfile.mkstemp(suffix="-constraints.txt")
        with os.fdopen(handle, "w") as stream:
            stream.write("\n".join(pinned_constraints()) + "\n")
        try:
            slicer.util.pip_install(packages + ["-c", constraints])
        except Exception as error:  # pip's own message says what failed
            logging.error(f"TumorClassifier: pip install {' '.join(packages)} failed: {error}")
        finally:
            os.remove(constraints)
            importlib.invalidate_caches()

    # -- models ---------------------------------------------------------------------------
    @staticmethod
    def modelClasses(model=None):
        """[(code, name)] of a bundle (None: the bundled default), read without torch."""
        from TumorClassifierLib.model_metadata import read_model_metadata
        metadata = read_model_metadata(model)
        return [(code, metadata.display_names[code]) for code in metadata.class_codes]

    # -- the worker -----------------------------------------------------------------------
    @property
    def worker(self):
        """The WorkerProcess (None before the first request)."""
        return self.jobs.process if self.jobs is not None else None

    @property
    def busy(self):
        return self.jobs is not None and self.jobs.busy

    def startWorker(self):
        """Start the worker process if it is not running (returns at once)."""
        from TumorClassifierLib.worker.jobs import JobRunner
        from TumorClassifierLib.worker.process import WorkerProcess
        if self.jobs is None:
            self.jobs = JobRunner(
                lambda: WorkerProcess(python=self.pythonExecutable or _pythonSlicer(),
                                      env=self.workerEnvironment or _startupEnvironment()),
                on_ready=self._onReady)
        self._idleTimer.stop()
        self._timer.start()
        return self.jobs.start()

    def warmUp(self):
        """Start the worker when the panel is shown, so that the first Classify finds torch
        and MONAI imported (the worker's start-up is most of a first run's wait). Only where
        everything is installed (nothing is installed or asked here), and not when the
        setting WARM_UP_SETTING is false; an idle worker is released as always."""
        if self.installing or (self.jobs is not None and self.jobs.alive):
            return
        if str(qt.QSettings().value(WARM_UP_SETTING, "true")).lower() in ("false", "0"):
            return
        from TumorClassifierLib.requirements import missing_or_old
        if missing_or_old():
            return
        try:
            self.startWorker()
        except Exception as error:  # the first Classify reports it properly
            logging.info(f"TumorClassifier: the worker could not be started ahead: {error}")

    def _onReady(self, ready):
        if self.workerReadyCallback:
            self.workerReadyCallback(ready.devices)

    def shutdownWorker(self):
        """End the worker (module cleanup, application exit); a running job is cancelled."""
        self.cancel()
        self._timer.stop()
        self._idleTimer.stop()
        if self.jobs is not None:
            self.jobs.close(timeout=2)

    def pollWorker(self):
        """Hand what the worker has said to its jobs (the timer calls this)."""
        if self.jobs is None:
            return
        self.jobs.pump()
        if not self.jobs.busy and (self.jobs.info or not self.jobs.alive):
            self._timer.stop()  # nothing to wait for; the next request starts it again
            if self.jobs.alive and self.idleReleaseSeconds is not None:
                self._idleTimer.start(int(1000 * self.idleReleaseSeconds))

    def releaseIdleWorker(self):
        """An idle worker holds the model and its memory (about 1.3 GB): give them back after
        idleReleaseSeconds; the next request starts a new worker."""
        if self.jobs is not None and self.jobs.release_if_idle(self.idleReleaseSeconds or 0):
            logging.info("TumorClassifier: the idle worker was released")

    # -- classifying ----------------------------------------------------------------------
    def startClassification(self, volumeNode, model=None, device="auto", camClass=None,
                            tta=False, force=False, onProgress=None, onFinished=None,
                            showResults=True):
        """Start classifying `volumeNode` in the worker; returns the ClassificationJob.
        `onFinished(job)` is called once, on the main thread, when it is done, failed or
        cancelled. The node itself is never changed: a copy with its parent transforms
        hardened goes to the worker."""
        from TumorClassifierLib.mrml_bridge import local_to_world, node_to_world_volume
        from TumorClassifierLib.volume import write_volume
        from TumorClassifierLib.worker.protocol import ClassifyRequest
        if self.busy:
            raise RuntimeError(_("A classification is already running; cancel it first."))
        if volumeNode is None or volumeNode.GetImageData() is None:
            raise ValueError(_("The input volume has no image data."))
        folder = tempfile.mkdtemp(prefix="TumorClassifier-", dir=_temporaryFolder())
        job = ClassificationJob(volumeNode, folder, onProgress, onFinished, showResults)
        try:
            path = os.path.join(folder, "input.nrrd")
            job.worldAtStart = local_to_world(volumeNode)
            write_volume(node_to_world_volume(volumeNode), path, compress=False)
            self.startWorker()
            job.workerJob = self.jobs.submit(
                ClassifyRequest(input=path, out=os.path.join(folder, "out"),
                                case=volumeNode.GetName(), model=model, device=device,
                                cam_class=camClass, tta=bool(tta), force=bool(force),
                                heatmap_format="nrrd"),  # a temporary file: uncompressed
                on_progress=lambda p: job.onProgress and job.onProgress(p.stage, p.fraction),
                on_finished=lambda workerJob: self._onWorkerJobFinished(job))
        except Exception:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self.job = job
        self._observeScene()
        return job

    def cancel(self, message=None):
        """Stop the running classification and any console request (classifyFiles,
        fetchModel) at once: the worker is killed, so even the network stops, and every caller
        waiting for an answer gets "cancelled". The scene is left as it was. The next
        classification starts a new worker."""
        if self.busy:
            self.jobs.kill(message or _("Cancelled; the scene was not changed."))

    def _onWorkerJobFinished(self, job):
        workerJob = job.workerJob
        if workerJob.status.value != "done":
            self._finish(job, workerJob.status.value, workerJob.message)
            return
        try:
            job.result = workerJob.reply.classification()
            if job.showResults:
                job.nodes = self.showResults(job.inputNode, job.result,
                                             worldAtStart=job.worldAtStart)
        except Exception as error:
            logging.exception("TumorClassifier: could not load the worker's results")
            self._finish(job, "failed", _("Could not load the results: {error}").format(
                error=error))
            return
        self._finish(job, "done")

    def _finish(self, job, status, message=""):
        if self.job is job:
            self.job = None
        self._stopObservingScene()
        job.status, job.message = status, message
        job.seconds = job.workerJob.seconds
        shutil.rmtree(job.folder, ignore_errors=True)
        if job.onFinished:
            job.onFinished(job)

    def _observeScene(self):
        """A scene close cancels everything; deleting the panel's input cancels its job."""
        if not self.hasObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent,
                                self._onSceneClose):
            self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent,
                             self._onSceneClose)
            self.addObserver(slicer.mrmlScene, slicer.mrmlScene.NodeAboutToBeRemovedEvent,
                             self._onNodeRemoved)

    def _stopObservingScene(self):
        if self.job is None and not self._consoleRequests:
            self.removeObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent,
                                self._onSceneClose)
            self.removeObserver(slicer.mrmlScene, slicer.mrmlScene.NodeAboutToBeRemovedEvent,
                                self._onNodeRemoved)

    def _onSceneClose(self, caller, event):
        self.cancel(_("Cancelled: the scene was closed."))

    @vtk.calldata_type(vtk.VTK_OBJECT)
    def _onNodeRemoved(self, caller, event, node):
        if self.job is not None and node is self.job.inputNode:
            self.cancel(_("Cancelled: the input volume was removed."))

    def waitFor(self, job, timeout=None):
        """Keep the application responsive until `job` has finished (cancelled after
        `timeout` seconds)."""
        self.jobs.wait(job.workerJob, idle=slicer.app.processEvents, timeout=timeout)
        return job

    def classifyVolume(self, volumeNode, model=None, device="auto", camClass=None,
                       showResults=True, tta=False, force=False, wait=True, onProgress=None):
        """Classify a scalar volume node in the worker. wait=True (the default) returns
        {"result": ClassificationResult, "nodes": the heatmap, table and chart nodes} and
        raises RuntimeError on failure; wait=False returns the running ClassificationJob."""
        if not self.ensureDependencies():
            raise RuntimeError("TumorClassifier's Python dependencies are not installed")
        job = self.startClassification(volumeNode, model=model, device=device,
                                       camClass=camClass, tta=tta, force=force,
                                       onProgress=onProgress, showResults=showResults)
        if not wait:
            return job
        self.waitFor(job)
        if job.status != "done":
            raise RuntimeError(job.message)
        return {"result": job.result, "nodes": job.nodes}

    def classifyFiles(self, paths, outDir, resultsCsv=None, model=None, device="auto",
                      tta=False, overlay=True, onProgress=None):
        """Classify files in the worker without touching the scene, as the command line does:
        per case `<case>_probabilities.json`, `<case>_heatmap.nii.gz` (and an overlay PNG) in
        `outDir`, one row per case in `resultsCsv` (default outDir/results.csv). A re-run
        skips the cases already in the table. Returns the batch summary (a dict). The panel's
        Cancel, logic.cancel() or a scene close stop it with a "Cancelled" RuntimeError."""
        from TumorClassifierLib.worker.protocol import BatchRequest
        if not self.ensureDependencies():
            raise RuntimeError("TumorClassifier's Python dependencies are not installed")
        return self._request(BatchRequest(
            inputs=[str(p) for p in paths], out=str(outDir),
            results_csv=str(resultsCsv) if resultsCsv else None, model=model, device=device,
            tta=bool(tta), overlay=bool(overlay)), onProgress).summary

    def fetchModel(self, url, sha256, onProgress=None):
        """Download a published model bundle once into the user's model cache (shared by
        Slicer versions), or find it there - also a file put there by hand, offline - and
        return its path, for `model=` or the panel's model list."""
        from TumorClassifierLib.worker.protocol import FetchModelRequest
        if not self.ensureDependencies():
            raise RuntimeError("TumorClassifier's Python dependencies are not installed")
        return self._request(FetchModelRequest(url=url, sha256=sha256), onProgress).path

    def _request(self, request, onProgress=None):
        """A console request: the application stays responsive until its answer (the worker's
        Result); RuntimeError with the worker's one-line message on failure or cancel."""
        if self.busy:
            raise RuntimeError(_("A classification is running; wait for it or cancel it."))
        self.startWorker()
        job = self.jobs.submit(request, on_progress=lambda p: onProgress and onProgress(
            p.stage, p.fraction))
        self._consoleRequests += 1
        self._observeScene()
        self._setBusy(True)
        try:
            self.jobs.wait(job, idle=slicer.app.processEvents)
        finally:
            self._consoleRequests -= 1
            self._stopObservingScene()
            self._setBusy(False)
        return job.outcome()

    def _setBusy(self, busy):
        if self.busyCallback:
            self.busyCallback(busy)

    # -- the scene ------------------------------------------------------------------------
    def showResults(self, volumeNode, result, opacity=0.5, worldAtStart=None):
        from TumorClassifierLib.mrml_bridge import show_result
        nodes = show_result(slicer.mrmlScene, volumeNode, result, opacity, worldAtStart)
        slicer.util.setSliceViewerLayers(background=volumeNode, foreground=nodes["heatmap"],
                                         foregroundOpacity=opacity, fit=False)
        slicer.modules.plots.logic().ShowChartInLayout(nodes["chart"])
        return nodes

    @staticmethod
    def heatmapNode(volumeNode):
        from TumorClassifierLib.mrml_bridge import ROLE_ATTRIBUTE, SOURCE_ATTRIBUTE
        for node in slicer.util.getNodesByClass("vtkMRMLScalarVolumeNode"):
            if (node.GetAttribute(SOURCE_ATTRIBUTE) == volumeNode.GetID()
                    and node.GetAttribute(ROLE_ATTRIBUTE) == "heatmap"):
                return node
        return None

    def setHeatmapOpacity(self, volumeNode, opacity):
        """Only the slice views that show this input's heatmap as their foreground."""
        heatmap = self.heatmapNode(volumeNode)
        if heatmap is None:
            return
        for composite in slicer.util.getNodesByClass("vtkMRMLSliceCompositeNode"):
            if composite.GetForegroundVolumeID() == heatmap.GetID():
                composite.SetForegroundOpacity(opacity)

    def exportReport(self, volumeNode, result, folder):
        """The command line's files (probabilities JSON, heatmap .nii.gz), a CSV of the
        probabilities and a screenshot of the view layout; each written atomically."""
        from pathlib import Path

        from TumorClassifierLib.files import atomic_output
        from TumorClassifierLib.manifest import Case
        from TumorClassifierLib.outputs import write_case_outputs, write_probabilities_csv
        name = volumeNode.GetName()
        folder = Path(folder)
        paths = write_case_outputs(result, Case(name, Path(name)), folder, overlay=False)
        paths["csv"] = write_probabilities_csv(result, folder / f"{name}_probabilities.csv")
        layoutManager = slicer.app.layoutManager()
        if layoutManager is not None:
            import ctk
            paths["screenshot"] = folder / f"{name}_screenshot.png"
            with atomic_output(paths["screenshot"], ".png") as temporary:
                ctk.ctkWidgetsUtils.grabWidget(layoutManager.viewport()).save(str(temporary))
        return paths


def _pythonSlicer():
    """Slicer's own Python interpreter for the worker (PythonSlicer, beside the application)."""
    names = ("PythonSlicer.exe", "PythonSlicer") if os.name == "nt" else ("PythonSlicer",)
    folders = [os.path.dirname(sys.executable)]
    applicationDir = getattr(slicer.app, "slicerHome", None)
    if applicationDir:
        folders.append(os.path.join(applicationDir, "bin"))
    for folder in folders:
        for name in names:
            if os.path.isfile(os.path.join(folder, name)):
                return os.path.join(folder, name)
    found = shutil.which("PythonSlicer")
    if found:
        return found
    if os.path.basename(sys.executable).lower().startswith("python"):
        return sys.executable  # already a Python interpreter (PythonSlicer itself, or a test)
    raise RuntimeError(_("Slicer's Python (PythonSlicer) was not found in {folders}.").format(
        folders=", ".join(folders)))


def _startupEnvironment():
    """The environment Slicer started with: PythonSlicer sets up its own paths from it, as
    slicer.util.launchConsoleProcess does."""
    startup = getattr(slicer.util, "startupEnvironment", None)
    try:
        return dict(startup()) if startup else dict(os.environ)
    except Exception:
        return dict(os.environ)


def _idleReleaseSeconds():
    """From the application settings (IDLE_RELEASE_SETTING; 0 or less: never), else the
    library's default."""
    from TumorClassifierLib.settings import WORKER_IDLE_RELEASE_S
    try:
        seconds = float(qt.QSettings().value(IDLE_RELEASE_SETTING, WORKER_IDLE_RELEASE_S))
    except (TypeError, ValueError):
        seconds = WORKER_IDLE_RELEASE_S
    return seconds if seconds > 0 else None


def _temporaryFolder():
    path = getattr(slicer.app, "temporaryPath", None)
    return path if path and os.path.isdir(path) else None


class TumorClassifierTest(ScriptedLoadableModuleTest):
    """Run in Slicer: Developer mode's Reload and Test, or
    Slicer --no-main-window --python-code "slicer.selfTests['TumorClassifier'](); exit()"."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_classify_sample_through_the_worker()

    def test_classify_sample_through_the_worker(self):
        import numpy as np

        from TumorClassifierLib.mrml_bridge import node_to_volume
        from TumorClassifierLib.resources import sample_data_dir
        self.delayDisplay("Loading a sample phantom (meningioma)")
        path = str(sample_data_dir() / "phantom_s3_meningioma_0000.nii.gz")
        volumeNode = slicer.util.loadVolume(path)
        logic = TumorClassifierLogic()
        self.assertTrue(logic.ensureDependencies())
        self.delayDisplay("Classifying in the worker process, on the CPU")
        output = logic.classifyVolume(volumeNode, device="cpu")
        result = output["result"]
        self.assertAlmostEqual(sum(result.probabilities.values()), 1.0, places=5)
        heatmap = output["nodes"]["heatmap"]
        inputMatrix, heatmapMatrix = vtk.vtkMatrix4x4(), vtk.vtkMatrix4x4()
        volumeNode.GetIJKToRASMatrix(inputMatrix)
        heatmap.GetIJKToRASMatrix(heatmapMatrix)
        for row in range(4):
            for column in range(4):
                self.assertAlmostEqual(inputMatrix.GetElement(row, column),
                                       heatmapMatrix.GetElement(row, column), places=4)
        heat = node_to_volume(heatmap).array
        self.assertEqual(heat.shape, node_to_volume(volumeNode).array.shape)
        self.assertAlmostEqual(float(np.max(heat)), 1.0, places=5)
        # The overlay: every slice view shows the heatmap over the input.
        for composite in slicer.util.getNodesByClass("vtkMRMLSliceCompositeNode"):
            self.assertEqual(composite.GetForegroundVolumeID(), heatmap.GetID())
            self.assertEqual(composite.GetBackgroundVolumeID(), volumeNode.GetID())
        # The peak of the heatmap lies in the phantom's lesion (dilated by 15 mm).
        from TumorClassifierLib.settings import NEAR_LESION_MM
        lesion = slicer.util.loadVolume(path.replace(".nii.gz", "_lesion.nii.gz"))
        self.assertTrue(_peakNearMask(heatmap, lesion, NEAR_LESION_MM))
        logic.shutdownWorker()
        self.delayDisplay("Test passed")


def _peakNearMask(heatmap, mask, millimetres):
    import numpy as np

    from TumorClassifierLib.heatmap_peak import peak_world
    from TumorClassifierLib.mrml_bridge import node_to_volume
    heat, lesion = node_to_volume(heatmap), node_to_volume(mask)
    peakWorld = peak_world(heat)
    k, j, i = np.nonzero(lesion.array)
    lesionWorld = (lesion.index_to_world() @ np.c_[i, j, k, np.ones(len(i))].T)[:3].T
    return float(np.min(np.linalg.norm(lesionWorld - peakWorld, axis=1))) <= millimetres
