"""What one classified case leaves on disk (its row in the results table: results_table.py)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from .errors import InputError
from .files import atomic_output
from .manifest import Case
from .overlay import write_overlay_png
from .result import ClassificationResult
from .volume import Volume, read_volume, write_volume

HEATMAP_FORMATS = {"nii.gz": (".nii.gz", True), "nrrd": (".nrrd", False)}


def write_case_outputs(result: ClassificationResult, case: Case, out: Path,
                       overlay: bool = True, scan: Volume | None = None,
                       heatmap_format: str = "nii.gz", dicom: bool = False) -> dict[str, Path]:
    """`<case>_probabilities.json`, `<case>_heatmap.nii.gz` (the input's geometry) and
    `<case>_overlay.png`; each written under a temporary name and renamed. `scan`: the scan as
    already read, for the overlay (else it is read again from case.path). `heatmap_format`
    "nrrd": an uncompressed heatmap, for a reader on the same machine that deletes it after
    reading (the Slicer module; writing and reading it back is ~0.1 s faster). `dicom`: also
    the DICOM report and heatmap map of a scan read from a DICOM series folder (dicom/). The
    probabilities JSON comes last: a case with it is complete."""
    out = Path(out)
    suffix, compress = HEATMAP_FORMATS[heatmap_format]
    files = {"heatmap": out / f"{case.name}_heatmap{suffix}",
             "probabilities": out / f"{case.name}_probabilities.json"}
    write_volume(result.heatmap, files["heatmap"], compress=compress)
    if overlay:
        files["overlay"] = out / f"{case.name}_overlay.png"
        title = (f"{case.name}: {result.display_names[result.predicted_class]} "
                 f"{result.confidence:.0%} - heatmap for {result.cam_class}")
        write_overlay_png(scan if scan is not None else read_volume(case.path), result.heatmap,
                          files["overlay"], title)
    if dicom:
        files |= _dicom_outputs(result, case, out)
    record = result.to_dict() | {"case": case.name, "path": str(case.path),
                                 "files": {k: v.name for k, v in files.items()}}
    with atomic_output(files["probabilities"], ".json") as temporary:
        temporary.write_text(json.dumps(record, indent=2), encoding="utf-8")
    return files


def _dicom_outputs(result: ClassificationResult, case: Case, out: Path) -> dict[str, Path]:
    try:
        from .dicom.write import write_dicom_results
    except ImportError as error:
        raise InputError(f"DICOM results need the [dicom] extra ({error}); install it with "
                         "pip install 'tumorclassifier[dicom]'") from None
    written = write_dicom_results(result, case.path, out, case.name)
    return {f"dicom_{role}": path for role, path in written.items()}


def write_probabilities_csv(result: ClassificationResult, path: Path) -> Path:
    """Every class's probability, most likely first, for a spreadsheet (the panel's Export)."""
    with atomic_output(Path(path), ".csv") as temporary:
        with open(temporary, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["class", "name", "probability"])
            for code, probability in sorted(result.probabilities.items(), key=lambda i: -i[1]):
                writer.writerow([code, result.display_names[code], f"{probability:.6f}"])
    return Path(path)
