"""A classifier whose model loads in a background thread - torch and MONAI imported, weights
read and checked - while the first scans are read and registered, which need only
the bundle's preprocessing settings. For one-scan runs, where loading is most of the wait.

Imports no torch itself. Registration runs in SimpleITK's C++ with the interpreter lock
released, so the two overlap even on two cores (benchmarks/bench_first_scan.py).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from .atlas import load_atlas
from .model_metadata import read_model_metadata
from .prepared_input import PreparedInput, classify_in_stages, prepare_input


class BackgroundLoadingClassifier:
    """Stands in for `inference.Classifier` in `batch.classify_cases`: `prepare` works at once,
    `metadata` and `classify_prepared` wait for the model. A bundle that fails to load raises
    its InputError there, as `Classifier.from_bundle` would."""

    def __init__(self, model=None, device: str = "auto", precision: str = "auto") -> None:
        # A missing bundle or unreadable metadata: its InputError now; damaged weights when
        # the model is needed.
        self._preprocessing = read_model_metadata(model).preprocessing
        loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="load-model")
        atlas_loaded = threading.Event()
        self._classifier = loader.submit(_load, model, device, precision, atlas_loaded)
        loader.shutdown(wait=False)
        # The atlas is read here while the loader imports torch: the first reads of a process
        # set up SimpleITK's file-format factories, which must not run in two threads at once
        # (the loader checks the atlas, the first scan's preparation reads the scan).
        try:
            load_atlas()
        finally:
            atlas_loaded.set()

    @property
    def loaded(self):
        """The `inference.Classifier`, once loaded (waits for it)."""
        return self._classifier.result()

    @property
    def metadata(self):
        return self.loaded.metadata

    def prepare(self, scan, mask=None, allow_poor_registration: bool = False,
                stage=None) -> PreparedInput:
        return prepare_input(scan, self._preprocessing, mask, allow_poor_registration, stage)

    def classify_prepared(self, *args, **kwargs):
        return self.loaded.classify_prepared(*args, **kwargs)

    def classify(self, scan, **options):
        """As `inference.Classifier.classify`: the scan is read and registered while the model
        loads."""
        return classify_in_stages(self, scan, **options)

    @property
    def failed(self) -> bool:
        """The model could not be loaded (`loaded` raises why): not worth keeping."""
        return self._classifier.done() and self._classifier.exception() is not None


def _load(model, device: str, precision: str, atlas_loaded: threading.Event):
    from .inference import Classifier  # torch and MONAI: most of the wait
    atlas_loaded.wait()
    return Classifier.from_bundle(model, device, precision)
