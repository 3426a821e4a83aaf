"""Studies in a PACS classified as a resumable batch: for each study its post-contrast T1
series is retrieved into the output folder, classified with the CLI's files and the DICOM
results, and those results stored back in one request; the results-table row is written only
once the archive holds every object, so a re-run does what is left and nothing else.

    tumorclassifier classify --dicomweb URL --study UID [--series UID] --out DIR
    tumorclassifier classify --dicomweb URL --studies studies.csv --out DIR
"""

from __future__ import annotations

import csv
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..manifest import Case
from ..results_table import BatchRun, BatchSummary, columns, error_row
from .archive import Archive
from .write import FILE_NAMES

SERIES_FOLDER = "series"  # out/series/<case>/: each study's retrieved images


@dataclass(frozen=True)
class Study:
    name: str  # the case's name in the table and its files: the study UID unless given
    uid: str
    series_uid: str | None = None


def read_studies(path: str | Path) -> list[Study]:
    """A CSV with a `study` column (Study Instance UIDs) and optionally `series` and `case`."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as error:
        raise InputError(f"{path}: cannot read the study list ({error.strerror})") from None
    if not rows or "study" not in rows[0]:
        raise InputError(f"{path}: needs a 'study' column of Study Instance UIDs")
    studies = [Study(row.get("case") or row["study"].strip(), row["study"].strip(),
                     (row.get("series") or "").strip() or None)
               for row in rows if (row.get("study") or "").strip()]
    names = [study.name for study in studies]
    if len(set(names)) != len(names):
        raise InputError(f"{path}: a study is listed twice")
    return studies


def classify_studies(classifier, archive: Archive, studies: list[Study], out: str | Path,
                     cam_class=None, force: bool = False, overlay: bool = True,
                     tta: bool = False, results_csv: str | Path | None = None,
                     echo=True) -> BatchSummary:
    from ..batch import finish_case
    out = Path(out)
    cases = [Case(study.name, out / SERIES_FOLDER / study.name) for study in studies]
    by_name = {study.name: study for study in studies}
    run = BatchRun(cases, out, results_csv)
    if run.todo:
        run.open(columns(classifier.metadata.class_codes))
    for case in run.todo:
        study, start = by_name[case.name], time.perf_counter()
        source = f"{archive.url} study {study.uid}"
        try:
            series = archive.choose_series(study.uid, study.series_uid)
            archive.retrieve(study.uid, series, case.path)
            prepared = classifier.prepare(case.path, allow_poor_registration=force)
            row, result = finish_case(classifier, case, prepared, out, cam_class=cam_class,
                                      tta=tta, overlay=overlay, dicom=True)
            archive.store(study.uid, [out / name.format(case=case.name)
                                      for name in FILE_NAMES.values()])
            row |= {"source": source, "seconds": round(time.perf_counter() - start, 3)}
            if echo:
                print(result.table(), file=sys.stderr)
        except Exception as error:  # one study must not stop the others; a bug is marked so
            row = error_row(Case(case.name, Path(source)), error, time.perf_counter() - start)
            if echo:
                print(f"error: {row['error']}", file=sys.stderr)
        run.record(row)
    return run.summary()
