"""The DICOM results of one classified case, on disk: `<case>_report_sr.dcm` and
`<case>_heatmap_pm.dcm`, each written under a temporary name and renamed."""

from __future__ import annotations

from pathlib import Path

from ..files import atomic_output
from .objects import build_objects
from .source import read_source_series

FILE_NAMES = {"report": "{case}_report_sr.dcm", "parametric_map": "{case}_heatmap_pm.dcm"}


def write_dicom_results(result, source_folder: str | Path, out: str | Path,
                        case: str) -> dict[str, Path]:
    """Build both objects first (any error: nothing written), then write them."""
    objects = build_objects(result, read_source_series(source_folder))
    files = {}
    for role, dataset in objects.items():
        path = Path(out) / FILE_NAMES[role].format(case=case)
        with atomic_output(path, ".dcm") as temporary:
            dataset.save_as(temporary, enforce_file_format=True)
        files[role] = path
    return files
