"""TEST HARNESS - stands in for the parts of the 3D Slicer application that no package provides,
so that TumorClassifier.py (the real module, unchanged) can be loaded and clicked in pytest.

What is real: Qt (PySide6 on the offscreen platform: real widgets, timers, events, the .ui
file loaded by QUiLoader), MRML (the `slicer-core` package: scenes, nodes, observers, events),
the module file itself, the library and its worker process.

What is stood in for, and how (each piece is small and named here):
- `qt`: PySide6's classes, reached the way PythonQt exposes them: a Q_PROPERTY is read and
  written as an attribute (`button.text = "x"`), and `connect("clicked(bool)", slot)` connects
  a signal by its C++ signature.
- The CTK/MRML widgets of the .ui (ctkCollapsibleButton, ctkSliderWidget, qMRMLNodeComboBox,
  qMRMLTableView, qMRMLWidget): plain Qt widgets with the properties, signals and methods the
  module uses.
- `slicer.modules.plots.logic()` (records the chart shown), `slicer.app` (processEvents,
  layoutManager() - None, as without a main window -, startupEnvironment, temporaryPath, the
  override cursor, aboutToQuit), `slicer.util`'s dialogs
  (they record what they would have shown), `slicer.util.loadUI`, `childWidgetVariables` and
  `loadVolume` (through MRML's volumes logic),
  `slicer.i18n`, `slicer.ScriptedLoadableModule` and `slicer.parameterNodeWrapper` (a
  parameter node that stores the two kinds of parameter the module uses on a real
  vtkMRMLScriptedModuleNode and binds them to widgets by their SlicerParameterName).
- The idle loop: Slicer's main thread holds the interpreter lock while Qt waits for events
  (CTK starts PythonQt without thread support). `idle()` reproduces that: between rounds of
  event processing it sleeps in C with the lock held (usleep through ctypes.PyDLL), so a Python
  thread of the application would crawl here as it does in Slicer.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import os
import sys
import time
import types
import unittest
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import slicer  # noqa: E402  (slicer-core: real MRML)
from PySide6 import QtCore, QtGui, QtWidgets  # noqa: E402
from PySide6.QtCore import Property, Signal  # noqa: E402
from PySide6.QtUiTools import QUiLoader  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
_LIBC = ctypes.PyDLL(None)  # PyDLL: the call keeps the interpreter lock, as Slicer's idle loop


# -- PythonQt-style access to PySide6 objects ---------------------------------------------------
class PythonQtObject:
    """Wraps a QObject the way PythonQt presents it to Slicer modules."""

    __slots__ = ("_object",)

    def __init__(self, qobject) -> None:
        object.__setattr__(self, "_object", qobject)

    def _is_property(self, name: str) -> bool:
        meta = self._object.metaObject()
        return meta.indexOfProperty(name) >= 0

    def __getattr__(self, name):
        if self._is_property(name):
            return self._object.property(name)
        attribute = getattr(self._object, name)
        if callable(attribute) and not isinstance(attribute, QtCore.SignalInstance):
            def call(*args):  # PythonQt takes wrapped objects where Qt wants the real ones
                return attribute(*(_unwrap(a) for a in args))
            return call
        return attribute

    def __setattr__(self, name, value) -> None:
        if not self._is_property(name):
            raise AttributeError(f"{type(self._object).__name__} has no Qt property {name!r}")
        if not self._object.setProperty(name, value):
            raise AttributeError(f"{type(self._object).__name__}.{name} could not be set")

    def connect(self, signature: str, slot) -> None:
        getattr(self._object, signature.split("(")[0]).connect(slot)

    def unwrap(self):
        return self._object


def _unwrap(value):
    return value.unwrap() if isinstance(value, PythonQtObject) else value


# -- the CTK and MRML widgets the .ui uses ---------------------------------------------------
class ctkCollapsibleButton(QtWidgets.QGroupBox):
    def _text(self):
        return self.title()

    def _set_text(self, value):
        self.setTitle(value)

    text = Property(str, _text, _set_text)


class ctkSliderWidget(QtWidgets.QWidget):
    valueChanged = Signal(float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._value, self._minimum, self._maximum, self._step = 0.0, 0.0, 100.0, 1.0

    def _get_value(self):
        return self._value

    def _set_value(self, value):
        value = min(max(float(value), self._minimum), self._maximum)
        if value != self._value:
            self._value = value
            self.valueChanged.emit(value)

    def _set_maximum(self, value):
        self._maximum = float(value)

    def _set_minimum(self, value):
        self._minimum = float(value)

    def _set_step(self, value):
        self._step = float(value)

    value = Property(float, _get_value, _set_value)
    maximum = Property(float, lambda self: self._maximum, _set_maximum)
    minimum = Property(float, lambda self: self._minimum, _set_minimum)
    singleStep = Property(float, lambda self: self._step, _set_step)


class qMRMLWidget(QtWidgets.QWidget):
    def setMRMLScene(self, scene):  # the .ui's mrmlSceneChanged connection, done directly
        for child in self.findChildren(qMRMLNodeComboBox):
            child.setMRMLScene(scene)


class qMRMLNodeComboBox(QtWidgets.QComboBox):
    """Lists the scene's nodes of `nodeTypes`; currentNodeChanged carries the node."""
    currentNodeChanged = Signal(object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._types, self._scene, self._tags = [], None, []
        self._show_child, self._add, self._remove = True, False, False
        self.currentIndexChanged.connect(lambda index: self.currentNodeChanged.emit(
            self.currentNode()))

    nodeTypes = Property("QStringList", lambda self: self._types,
                         lambda self, value: setattr(self, "_types", list(value)))
    showChildNodeTypes = Property(bool, lambda self: self._show_child,
                                  lambda self, value: setattr(self, "_show_child", value))
    addEnabled = Property(bool, lambda self: self._add,
                          lambda self, value: setattr(self, "_add", value))
    removeEnabled = Property(bool, lambda self: self._remove,
                             lambda self, value: setattr(self, "_remove", value))

    def setMRMLScene(self, scene):
        for tag in self._tags:
            self._scene.RemoveObserver(tag)
        self._scene, self._tags = scene, []
        if scene is not None:
            for event in (scene.NodeAddedEvent, scene.NodeRemovedEvent, scene.EndCloseEvent):
                self._tags.append(scene.AddObserver(event, lambda *args: self._refill()))
        self._refill()

    def _nodes(self):
        nodes = []
        for class_name in self._types:
            collection = self._scene.GetNodesByClass(class_name)
            nodes += [collection.GetItemAsObject(i) for i in range(collection.GetNumberOfItems())]
        return [n for n in nodes if self._show_child or n.GetClassName() in self._types]

    def _refill(self):
        current = self.currentNode()
        self.blockSignals(True)
        self.clear()
        for node in self._nodes() if self._scene is not None else []:
            self.addItem(node.GetName(), node.GetID())
        index = self.findData(current.GetID()) if current is not None else -1
        self.setCurrentIndex(index if index >= 0 else (0 if self.count() else -1))
        self.blockSignals(False)
        if self.currentNode() is not current:
            self.currentNodeChanged.emit(self.currentNode())

    def currentNode(self):
        node_id = self.currentData()
        return self._scene.GetNodeByID(node_id) if node_id and self._scene else None

    def setCurrentNode(self, node):
        self.setCurrentIndex(self.findData(node.GetID()) if node is not None else -1)


class qMRMLTableView(QtWidgets.QTableView):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.table_node = None

    def setMRMLTableNode(self, node):
        self.table_node = node


CUSTOM_WIDGETS = (ctkCollapsibleButton, ctkSliderWidget, qMRMLWidget, qMRMLNodeComboBox,
                  qMRMLTableView)


def load_ui(path):
    loader = QUiLoader()
    for widget_class in CUSTOM_WIDGETS:
        loader.registerCustomWidget(widget_class)
    widget = loader.load(str(path))
    if widget is None:
        raise RuntimeError(f"Could not load UI file: {path}")
    return PythonQtObject(widget)


def child_widget_variables(widget):
    ui = types.SimpleNamespace()
    for child in _unwrap(widget).findChildren(QtWidgets.QWidget):
        if child.objectName():
            setattr(ui, child.objectName(), PythonQtObject(child))
    return ui


# -- slicer.parameterNodeWrapper, for the parameter kinds the module uses ---------------------
def parameterNodeWrapper(cls):
    annotations = dict(cls.__annotations__)
    defaults = {name: getattr(cls, name) for name in annotations if hasattr(cls, name)}

    class Wrapper:
        def __init__(self, node):
            object.__setattr__(self, "parameterNode", node)
            for name, default in defaults.items():
                if not node.GetParameter(name):
                    node.SetParameter(name, repr(default))

        def __getattr__(self, name):
            if name not in annotations:
                raise AttributeError(name)
            node = self.parameterNode
            if isinstance(annotations[name], type) and issubclass(annotations[name],
                                                                  slicer.vtkMRMLNode):
                return node.GetNodeReference(name)
            return float(node.GetParameter(name))

        def __setattr__(self, name, value):
            if name not in annotations:
                raise AttributeError(name)
            node = self.parameterNode
            if isinstance(annotations[name], type) and issubclass(annotations[name],
                                                                  slicer.vtkMRMLNode):
                node.SetNodeReferenceID(name, value.GetID() if value is not None else None)
            else:
                node.SetParameter(name, repr(float(value)))

        def connectGui(self, ui):
            """Widgets whose SlicerParameterName names a parameter follow it both ways."""
            bindings = []
            for widget in vars(ui).values():
                name = widget.unwrap().property("SlicerParameterName")
                if name not in annotations:
                    continue
                qwidget = widget.unwrap()
                if isinstance(qwidget, qMRMLNodeComboBox):
                    qwidget.setCurrentNode(getattr(self, name))
                    def slot(node, name=name):
                        setattr(self, name, node)
                    qwidget.currentNodeChanged.connect(slot)
                    bindings.append((qwidget.currentNodeChanged, slot))
                elif isinstance(qwidget, ctkSliderWidget):
                    qwidget.setProperty("value", getattr(self, name))
                    def slot(value, name=name):
                        setattr(self, name, value)
                    qwidget.valueChanged.connect(slot)
                    bindings.append((qwidget.valueChanged, slot))
            return bindings

        def disconnectGui(self, bindings):
            for signal, slot in bindings or []:
                signal.disconnect(slot)

    Wrapper.__name__ = cls.__name__
    return Wrapper


# -- slicer.ScriptedLoadableModule --------------------------------------------------------
class ScriptedLoadableModule:
    def __init__(self, parent):
        self.parent = parent


class ScriptedLoadableModuleWidget:
    def __init__(self, parent=None):
        self.parent = parent
        self.moduleName = type(self).__name__.removesuffix("Widget")

    def resourcePath(self, filename):
        return str(ROOT / "Resources" / filename)

    def setup(self):
        self.layout = PythonQtObject(self.parent.layout())


class ScriptedLoadableModuleLogic:
    def getParameterNode(self):
        scene = slicer.mrmlScene
        for index in range(scene.GetNumberOfNodesByClass("vtkMRMLScriptedModuleNode")):
            node = scene.GetNthNodeByClass(index, "vtkMRMLScriptedModuleNode")
            if node.GetAttribute("ModuleName") == "TumorClassifier":
                return node
        node = scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode")
        node.SetAttribute("ModuleName", "TumorClassifier")
        node.SetSingletonTag("TumorClassifier")
        return node


class ScriptedLoadableModuleTest(unittest.TestCase):
    def delayDisplay(self, message, msec=None):
        print(message)


# -- slicer.app ---------------------------------------------------------------------------
class Application:
    """What the module asks of slicer.app."""

    def __init__(self, qapplication, temporary: Path) -> None:
        self.qapplication = qapplication
        self.temporaryPath = str(temporary)
        self.cursor_overrides = 0

    def processEvents(self):
        self.qapplication.processEvents()

    def layoutManager(self):
        return None  # as in Slicer without a main window (--no-main-window)

    def startupEnvironment(self):
        return QtCore.QProcessEnvironment.systemEnvironment()

    def setOverrideCursor(self, cursor):
        self.cursor_overrides += 1

    def restoreOverrideCursor(self):
        self.cursor_overrides -= 1

    def connect(self, signature, slot):
        if signature == "aboutToQuit()":
            self.qapplication.aboutToQuit.connect(slot)


class PlotsModuleLogic:
    """slicer.modules.plots.logic(): records the chart it was asked to show."""

    def __init__(self) -> None:
        self.shown_charts = []

    def ShowChartInLayout(self, chart):
        self.shown_charts.append(chart)


class Harness:
    """The stood-in application; `messages` holds what dialogs would have shown."""

    def __init__(self, temporary: Path) -> None:
        self.qapplication = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
        self.app = Application(self.qapplication, temporary)
        self.messages: list[tuple[str, str]] = []
        self.confirm = True
        self.scene = None
        self.panels = []
        self._saved = {}

    def install(self) -> Harness:
        qt = types.ModuleType("qt")
        for module in (QtCore, QtGui, QtWidgets):
            for name in dir(module):
                if name.startswith("Q"):
                    setattr(qt, name, getattr(module, name))
        qt.Qt = QtCore.Qt
        ctk = types.ModuleType("ctk")
        i18n = types.ModuleType("slicer.i18n")
        i18n.tr = lambda text: text
        i18n.translate = lambda context, text: text
        wrapper = types.ModuleType("slicer.parameterNodeWrapper")
        wrapper.parameterNodeWrapper = parameterNodeWrapper
        scripted = types.ModuleType("slicer.ScriptedLoadableModule")
        for cls in (ScriptedLoadableModule, ScriptedLoadableModuleWidget,
                    ScriptedLoadableModuleLogic, ScriptedLoadableModuleTest):
            setattr(scripted, cls.__name__, cls)
        modules = {"qt": qt, "ctk": ctk, "slicer.i18n": i18n,
                   "slicer.parameterNodeWrapper": wrapper,
                   "slicer.ScriptedLoadableModule": scripted}
        self._saved["modules"] = {name: sys.modules.get(name) for name in modules}
        sys.modules.update(modules)
        util = slicer.util
        patches = {"loadUI": load_ui, "childWidgetVariables": child_widget_variables,
                   "errorDisplay": lambda text, **kw: self.messages.append(("error", text)),
                   "warningDisplay": lambda text, **kw: self.messages.append(("warning", text)),
                   "confirmOkCancelDisplay": self._confirm,
                   "mainWindow": lambda: None,
                   "loadVolume": self._load_volume,
                   "pip_install": self._refuse_pip}
        self._saved["util"] = {name: getattr(util, name, None) for name in patches}
        for name, function in patches.items():
            setattr(util, name, function)
        self._saved["app"] = getattr(slicer, "app", None)
        self._saved["modules_attribute"] = getattr(slicer, "modules", None)
        slicer.app = self.app
        self.plots = PlotsModuleLogic()
        slicer.modules = types.SimpleNamespace(
            plots=types.SimpleNamespace(logic=lambda: self.plots))
        self.new_scene()
        sys.modules.pop("TumorClassifier", None)
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        return self

    def _confirm(self, text, **kwargs):
        self.messages.append(("confirm", text))
        return self.confirm

    def _load_volume(self, path, properties=None, returnNode=False):
        """slicer.util.loadVolume through MRML's volumes logic (the IO manager is the app's)."""
        logic = slicer.vtkSlicerVolumesLogic()
        logic.SetMRMLScene(slicer.mrmlScene)
        node = logic.AddArchetypeVolume(str(path), Path(path).name.split(".")[0])
        if node is None:
            raise RuntimeError(f"Failed to load volume: {path}")
        return node

    def _refuse_pip(self, *args, **kwargs):
        raise AssertionError(f"the harness installs nothing: pip_install{args}")

    def new_scene(self):
        """A real MRML scene, with the three slice views' composite nodes that Slicer has."""
        scene = slicer.vtkMRMLScene()
        self.colors = slicer.vtkMRMLColorLogic()
        self.colors.SetMRMLScene(scene)
        for view in ("Red", "Yellow", "Green"):
            composite = slicer.vtkMRMLSliceCompositeNode()
            composite.SetLayoutName(view)
            composite.SetSingletonTag(view)
            scene.AddNode(composite)
        slicer.mrmlScene = self.scene = scene
        return scene

    def uninstall(self) -> None:
        for name, module in self._saved["modules"].items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
        for name, function in self._saved["util"].items():
            setattr(slicer.util, name, function)
        slicer.app = self._saved["app"]
        slicer.modules = self._saved["modules_attribute"]
        sys.modules.pop("TumorClassifier", None)

    def module(self):
        return importlib.import_module("TumorClassifier")

    def widget(self):
        """The module's panel, set up as Slicer sets it up when the module is first shown."""
        module = self.module()
        parent = QtWidgets.QWidget()
        QtWidgets.QVBoxLayout(parent)
        parent.isEntered = True
        widget = module.TumorClassifierWidget(parent)
        widget.setup()
        parent.show()  # the panel is on screen (offscreen platform)
        widget.enter()
        self.panels.append(parent)  # kept alive as long as the harness
        return widget

    def idle(self, seconds: float = 0.01) -> None:
        """One round of Slicer's idle loop: events, then a wait that holds the GIL."""
        self.qapplication.processEvents()
        _LIBC.usleep(ctypes.c_uint(int(seconds * 1e6)))

    def run_until(self, condition, timeout: float, step: float = 0.01) -> float:
        """Idle (holding the GIL) until condition() is true; returns the seconds it took."""
        start = time.monotonic()
        while not condition():
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"not done within {timeout} s")
            self.idle(step)
        return time.monotonic() - start


@contextlib.contextmanager
def slicer_application(temporary: Path):
    harness = Harness(temporary).install()
    try:
        yield harness
    finally:
        harness.uninstall()
