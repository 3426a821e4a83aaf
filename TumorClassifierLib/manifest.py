"""Case lists and the results table of a batch run.

A manifest is a CSV with a `path` column and optionally `case`, `label`, `patient_id`,
`brain_mask` (used for preprocessing), `lesion_mask` (used by evaluation) and `fold` (the same
file `train` and `evaluate` read). Relative paths are taken from the
manifest's folder. The results CSV is appended one row per case and flushed at once, so a run
that is stopped keeps every finished row and a re-run skips the cases already done.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .volume import READABLE_SUFFIXES

MANIFEST_COLUMNS = ("path", "case", "label", "patient_id", "brain_mask", "lesion_mask", "fold")


@dataclass(frozen=True)
class Case:
    name: str
    path: Path
    label: str = ""
    patient_id: str = ""
    brain_mask: Path | None = None
    lesion_mask: Path | None = None
    fold: str = ""


def cases_from_paths(paths: list[str | os.PathLike]) -> list[Case]:
    return _unique_names([Case(case_name(p), Path(p)) for p in paths])


def read_manifest(manifest: str | os.PathLike) -> list[Case]:
    manifest = Path(manifest)
    if not manifest.is_file():
        raise InputError(f"{manifest}: no such manifest file")
    with open(manifest, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle, dialect=_sniff(handle))
        columns = [c.strip() for c in reader.fieldnames or []]
        if "path" not in columns:
            raise InputError(f"{manifest}: needs a 'path' column (found: "
                             f"{', '.join(columns) or 'nothing'})")
        unknown = sorted(set(columns) - set(MANIFEST_COLUMNS))
        if unknown:
            raise InputError(f"{manifest}: unknown column(s) {', '.join(unknown)}; "
                             f"known: {', '.join(MANIFEST_COLUMNS)}")
        cases = []
        for line, row in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            if not row.get("path"):
                raise InputError(f"{manifest}:{line}: empty path")
            path = _resolve(manifest, row["path"])
            masks = {key: _resolve(manifest, row[key]) if row.get(key) else None
                     for key in ("brain_mask", "lesion_mask")}
            cases.append(Case(row.get("case") or case_name(path), path, row.get("label", ""),
                              row.get("patient_id", ""), fold=row.get("fold", ""), **masks))
    if not cases:
        raise InputError(f"{manifest}: lists no cases")
    return _unique_names(cases)


def _sniff(handle) -> str:
    """Tab-separated when the header line has a tab (the realdata MANIFEST.tsv), else CSV."""
    first_line = handle.readline()
    handle.seek(0)
    return "excel-tab" if "\t" in first_line else "excel"


def _resolve(manifest: Path, text: str) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else manifest.parent / path


def _unique_names(cases: list[Case]) -> list[Case]:
    """Give cases that share a file name (e.g. */t1c.nii.gz) their folder's name as prefix."""
    counts: dict[str, int] = {}
    for case in cases:
        counts[case.name] = counts.get(case.name, 0) + 1
    renamed = [dataclasses.replace(c, name=f"{c.path.parent.name}_{c.name}")
               if counts[c.name] > 1 else c for c in cases]
    seen = set()
    for case in renamed:
        if case.name in seen:
            raise InputError(f"two cases are both called {case.name!r}; give them distinct "
                             "names in a manifest's 'case' column")
        seen.add(case.name)
    return renamed


def case_name(path: str | os.PathLike) -> str:
    """A case's name from its file or folder: `sub-01_T1c.nii.gz` -> `sub-01_T1c`."""
    name = Path(path).name
    for suffix in sorted(READABLE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name
