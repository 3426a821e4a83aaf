"""Where the shipped files live: the module's Resources folder (atlas, models, sample data).

In the repository and in an installed Slicer extension, `Resources/` sits beside the package;
in a wheel it is packaged inside it as `TumorClassifierLib/Resources`.
`TUMORCLASSIFIER_RESOURCES` overrides both.
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def resources_dir() -> Path:
    override = os.environ.get("TUMORCLASSIFIER_RESOURCES")
    if override:
        return Path(override)
    for candidate in (_PACKAGE_DIR / "Resources", _PACKAGE_DIR.parent / "Resources"):
        if (candidate / "Atlas").is_dir():
            return candidate
    return _PACKAGE_DIR.parent / "Resources"


def atlas_dir() -> Path:
    return resources_dir() / "Atlas"


def default_model_dir() -> Path:
    return resources_dir() / "Models" / "default"


def sample_data_dir() -> Path:
    return resources_dir() / "SampleData"
