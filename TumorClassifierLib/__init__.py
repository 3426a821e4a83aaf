"""TumorClassifier: which of six intracranial tumour types (or none) a 3D T1c brain MRI shows,
with a Grad-CAM map of where the network looked (after Chakrabarty et al., Radiology: AI 2021).

The package imports no Qt or Slicer; heavy submodules load on first use.
"""

__version__ = "0.1.0"

_LAZY = {
    "Volume": "volume", "read_volume": "volume", "write_volume": "volume",
    "Classifier": "inference", "ClassificationResult": "result",
    "load_bundle": "bundle", "save_bundle": "bundle", "ModelMetadata": "bundle",
    "TumorClassifierNet": "network", "NetworkConfig": "network",
    "PreprocessingConfig": "preprocessing", "GradCAM": "gradcam",
    "CLASS_CODES": "classes", "DISPLAY_NAMES": "classes",
    "InputError": "errors", "RegistrationFailed": "errors",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
