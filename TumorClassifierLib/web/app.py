"""The viewer's page (`tumorclassifier view`): trame-slicer's scene and three slice views, an
upload, Classify with a progress bar, the heatmap as an Inferno foreground with opacity and
threshold sliders, the probabilities, entropy and warnings, the model card and the outputs to
download. The work is done by `session.ViewerSession`; this module only draws and relays."""

from __future__ import annotations

import asyncio
import hmac
import json
import sys
from pathlib import Path

from trame.app import TrameApp
from trame.app.file_upload import ClientFile
from trame.widgets import html
from trame_server.utils.asynchronous import create_task
from trame_slicer.core import LayoutManager, SlicerApp
from trame_slicer.rca_view import register_rca_factories
from trame_slicer.views import Layout, LayoutDirection, ViewLayoutDefinition
from trame_vuetify.ui.vuetify3 import SinglePageWithDrawerLayout
from trame_vuetify.widgets import vuetify3 as v3
from wslink.websocket import LinkProtocol

from ..errors import InputError
from ..heatmap_peak import peak_world
from ..manifest import case_name
from ..mrml_bridge import HEATMAP_THRESHOLD, show_result
from ..result import ClassificationResult
from ..worker.protocol import Progress
from .access import Access
from .session import Outcome, ViewerSession

POLL_SECONDS = 0.1
DOWNLOADS = (("heatmap", "Heatmap (NIfTI)", "application/gzip"),
             ("probabilities", "Probabilities (JSON)", "application/json"),
             ("overlay", "Overlay (PNG)", "image/png"))


def serve(app: ViewerApp, access: Access) -> None:
    """Serve the page until the server is stopped: to browsers that present the token, one
    browser at a time."""
    app.server.add_protocol_to_configure(
        lambda protocol: protocol.registerLinkProtocol(OneSession(access.token)))
    app.server.cli.set_defaults(authKey=access.token)
    argv, sys.argv = sys.argv, sys.argv[:1]  # trame reads its own options from sys.argv
    try:
        app.server.start(host=access.host, port=access.port, open_browser=False,
                         show_connection_info=False, timeout=0)
    finally:
        sys.argv = argv


class OneSession(LinkProtocol):
    """Admits a browser that presents the token while no other is connected: a viewer's page
    state (its scan, results and files) is one per process, so a second browser would see the
    first one's. Closing the tab, or reloading it, frees the viewer."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token, self.holder = token, None

    async def validateToken(self, token, client_id) -> bool:  # noqa: N802 (wslink's name)
        if not hmac.compare_digest(str(token).encode(), self.token.encode()):
            return False
        if self.holder not in (None, client_id):
            return False
        self.holder = client_id
        return True

    def onClose(self, client_id) -> None:  # noqa: N802 (wslink's name)
        if client_id == self.holder:
            self.holder = None


class ViewerApp(TrameApp):
    def __init__(self, session: ViewerSession, model_card: dict, scans=(), server=None) -> None:
        super().__init__(server=server)
        self.session = session
        self.slicer = SlicerApp()
        register_rca_factories(self.slicer.view_manager, self.server)
        self.layouts = LayoutManager(self.slicer.scene, self.slicer.view_manager, self.server)
        self.layouts.register_layout("three", Layout(LayoutDirection.Horizontal, [
            ViewLayoutDefinition.axial_view(), ViewLayoutDefinition.coronal_view(),
            ViewLayoutDefinition.sagittal_view()]))
        self.layouts.set_layout("three")
        self.scan_node = None
        self.scan_path: Path | None = None
        self.heatmap_node = None
        self.files: dict[str, str] = {}
        self.state.update({
            "scan_name": "", "busy": False, "fraction": 0.0, "stage": "", "message": "",
            "probabilities": [], "entropy": None, "warnings": [], "opacity": 0.5,
            "threshold": HEATMAP_THRESHOLD, "has_result": False,
            "model_card": json.dumps(model_card, indent=2), "model_name": model_card.get(
                "name", ""), "download_names": {}})
        self.state.change("opacity")(self._on_opacity)
        self.state.change("threshold")(self._on_threshold)
        self._build_ui()
        for scan in scans:
            self._load_scan(Path(scan).resolve())  # the worker runs in another folder

    # -- loading ------------------------------------------------------------------------
    def _load_scan(self, path: Path) -> None:
        files = sorted(str(f) for f in path.iterdir() if f.is_file()) if path.is_dir() \
            else [str(path)]  # a DICOM series' folder: its files
        nodes = self.slicer.io_manager.load_volumes(files)
        if not nodes:
            raise InputError(f"{path.name}: could not be shown")
        for node in (self.scan_node, self.heatmap_node):
            if node is not None:
                self.slicer.scene.RemoveNode(node)
        self.scan_node, self.scan_path, self.heatmap_node, self.files = nodes[0], path, None, {}
        display = self.slicer.display_manager
        display.show_volume_in_slice_background(self.scan_node)
        display.show_volume_in_slice_foreground(None)
        display.reset_views()
        self.state.update({"scan_name": case_name(path), "has_result": False,
                           "probabilities": [], "entropy": None, "warnings": [],
                           "message": ""})

    def upload(self, files: list[dict]) -> None:
        """The file input's files: checked and written by the session, then shown."""
        if self.state.busy:  # its result would land on the new scan
            self.state.message = "a classification is running; open another scan when it ends"
            return
        try:
            received = [(upload.name, upload.content)
                        for upload in map(ClientFile, files or [])]
            self._load_scan(self.session.add_upload(received))
        except InputError as error:
            self.state.message = str(error)
        except Exception as error:  # the page stays up whatever an upload holds
            self.state.message = f"the upload could not be read ({error})"

    # -- classification -----------------------------------------------------------------
    def classify(self) -> None:
        if self.scan_path is None or self.state.busy:
            return
        try:
            self.session.start_classification(self.scan_path, case_name(self.scan_path))
        except InputError as error:
            self.state.message = str(error)
            return
        self.state.update({"busy": True, "fraction": 0.0, "stage": "starting",
                           "message": ""})
        create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            answer = self.session.poll()
            with self.state:
                if isinstance(answer, Progress):
                    self.state.fraction, self.state.stage = answer.fraction, answer.stage
                elif isinstance(answer, Outcome):
                    self.state.busy = False
                    if answer.error:
                        self.state.message = answer.error
                    else:
                        self._show(answer)
                    return
            await asyncio.sleep(POLL_SECONDS)

    def _show(self, outcome: Outcome) -> None:
        self.files = dict(outcome.files)
        result = outcome.reply.classification()
        nodes = show_result(self.slicer.scene, self.scan_node, result, self.state.opacity)
        self.heatmap_node = nodes["heatmap"]
        self.slicer.display_manager.show_volume_in_slice_foreground(self.heatmap_node)
        self._on_opacity(self.state.opacity)
        self._on_threshold(self.state.threshold)
        self._centre_on_peak(result)
        self.state.update({
            "has_result": True, "entropy": round(result.entropy, 3),
            "download_names": {role: Path(path).name for role, path in self.files.items()},
            "warnings": list(result.warnings),
            "probabilities": [
                {"code": code, "name": result.display_names.get(code, code),
                 "percent": round(100 * p, 1)}
                for code, p in sorted(result.probabilities.items(), key=lambda i: -i[1])]})

    def _centre_on_peak(self, result: ClassificationResult) -> None:
        """Every view through the heatmap's peak (heatmap_peak.py)."""
        left, posterior, superior = peak_world(result.heatmap)
        for view in self.slicer.view_manager.get_slice_views():
            node = self.slicer.scene.GetNodeByID(view.get_view_node_id())
            node.JumpSliceByCentering(-left, -posterior, superior)  # LPS -> RAS

    # -- display ------------------------------------------------------------------------
    def _on_opacity(self, opacity, **_) -> None:
        for view in self.slicer.view_manager.get_slice_views():
            view.set_foreground_opacity(float(opacity))

    def _on_threshold(self, threshold, **_) -> None:
        if self.heatmap_node is not None and self.heatmap_node.GetDisplayNode() is not None:
            self.heatmap_node.GetDisplayNode().SetLowerThreshold(float(threshold))

    async def download(self, role: str):
        path = self.files.get(role)
        if not path:
            return None
        return self.server.protocol.addAttachment(Path(path).read_bytes())

    # -- page ---------------------------------------------------------------------------
    def _build_ui(self) -> None:
        trigger = self.server.controller.trigger_name
        with SinglePageWithDrawerLayout(self.server, full_height=True) as self.ui:
            self.ui.title.set_text("TumorClassifier")
            with self.ui.toolbar:
                v3.VSpacer()
                v3.VFileInput(
                    label="Open a scan (NIfTI, NRRD, MHA, or a DICOM series' files)",
                    multiple=True, density="compact", hide_details=True,
                    prepend_icon="mdi-file-upload", id="upload", style="max-width: 420px",
                    disabled=("busy",),
                    change=f"trigger('{trigger(self.upload)}', [$event.target.files])")
                v3.VBtn("Classify", id="classify", color="primary", classes="mx-2",
                        disabled=("busy || !scan_name",), click=self.classify)
            with self.ui.drawer as drawer:
                drawer.width = 360
                with html.Div(classes="pa-3"):
                    html.Div("{{ scan_name || 'No scan open' }}", id="scan-name",
                             classes="text-subtitle-1 mb-2")
                    v3.VAlert(v_if="message", text=("message",), type="error",
                              density="compact", id="message", classes="mb-2")
                    with html.Div(v_if="busy", id="progress"):
                        html.Div("{{ stage }}", classes="text-caption")
                        v3.VProgressLinear(model_value=("fraction * 100",), height=8)
                    with html.Div(v_if="has_result", id="result"):
                        with html.Div(v_for="item in probabilities", key="item.code",
                                      classes="mb-1 probability"):
                            html.Div("{{ item.name }}: {{ item.percent }}%",
                                     classes="text-body-2")
                            v3.VProgressLinear(model_value=("item.percent",), height=6,
                                               color="orange")
                        html.Div("entropy {{ entropy }} (0 certain .. 1 uniform)",
                                 classes="text-caption mt-2", id="entropy")
                        html.Div("{{ w }}", v_for="w in warnings", key="w",
                                 classes="text-caption text-warning")
                        v3.VSlider(v_model=("opacity",), min=0, max=1, step=0.05,
                                   label="Opacity", hide_details=True, classes="mt-3")
                        v3.VSlider(v_model=("threshold",), min=0, max=1, step=0.05,
                                   label="Threshold", hide_details=True)
                        for role, label, mime in DOWNLOADS:
                            v3.VBtn(label, block=True, variant="tonal", classes="mt-2",
                                    prepend_icon="mdi-download", id=f"download-{role}",
                                    v_if=f"download_names.{role}",
                                    click=(f"utils.download(download_names.{role}, "
                                           f"trigger('{trigger(self.download)}', ['{role}']),"
                                           f" '{mime}')"))
                    with v3.VExpansionPanels(classes="mt-4"):
                        with v3.VExpansionPanel(title=("'Model: ' + model_name",)):
                            with v3.VExpansionPanelText():
                                html.Pre("{{ model_card }}", style="font-size: 11px; "
                                         "white-space: pre-wrap")
            with self.ui.content:
                self.layouts.initialize_layout_grid(self.ui)
