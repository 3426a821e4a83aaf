"""Classify many cases: outputs per case, one results-table row per case as it finishes, a bad
case recorded while the others go on, finished cases skipped on a re-run."""

from __future__ import annotations

import collections
import functools
import itertools
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .atlas import load_atlas
from .classes import canonical_code
from .errors import InputError
from .manifest import Case
from .results_table import BatchRun, BatchSummary, columns, error_row, result_row


def classify_cases(classifier, cases: list[Case], out: str | Path, cam_class=None,
                   force: bool = False, overlay: bool = True, results_csv: str | Path | None = None,
                   debug: bool = False, show_progress: bool = True, echo=True,
                   prefetch: int = 1, tta: bool = False,
                   on_case_done=None, extra_columns: tuple[str, ...] = (),
                   row_extras=None, dicom: bool = False) -> BatchSummary:
    """Classify `cases` into `out`; the results table is `results_csv` (default
    out/results.csv). `debug` re-raises the first error instead of recording it. `prefetch`:
    how many of the next scans are read and registered at once, each in its own background
    thread, while the network works on the current one (0: one after the other). `tta`:
    test-time flips (8 passes). `on_case_done(done, total, case_name)`: called after each
    case's row is written. `extra_columns` and `row_extras(case, result) -> dict`: more columns
    for each classified case's row (evaluation's label and heatmap-versus-lesion columns).
    `dicom`: also each DICOM series input's DICOM report and heatmap map (docs/dicom.md)."""
    from tqdm import tqdm
    run = BatchRun(cases, out, results_csv)
    out = Path(out)
    # The first scans are read and registered before the model's metadata is touched: a
    # classifier still loading in the background (background_loading.py) overlaps with them.
    with _Prefetcher(classifier, run.todo, force, prefetch) as prepared_cases:
        if cam_class:  # an option error: report it once, before any case is classified
            canonical_code(cam_class, classifier.metadata.class_codes)
        run.open(columns(classifier.metadata.class_codes, tuple(extra_columns)))
        bar = tqdm(total=len(run.todo), unit="scan",
                   disable=not show_progress or len(run.todo) < 2, file=sys.stderr)
        for done, (case, prepare) in enumerate(prepared_cases, start=1):
            bar.set_postfix_str(case.name)
            start = time.perf_counter()
            try:
                prepared, prepare_seconds = prepare()
                row, result = finish_case(classifier, case, prepared, out,
                                          cam_class=cam_class, tta=tta, overlay=overlay,
                                          row_extras=row_extras, dicom=dicom)
                row["seconds"] = round(prepare_seconds + time.perf_counter() - start, 3)
                if echo:
                    tqdm.write(result.table())
            except Exception as error:  # one bad case must not stop the batch
                if debug or (not isinstance(error, InputError) and len(cases) == 1):
                    raise
                row = error_row(case, error, time.perf_counter() - start)
                tqdm.write(f"error: {row['error']}", file=sys.stderr)
            run.record(row)
            bar.update()
            if on_case_done is not None:
                on_case_done(done, len(run.todo), case.name)
        bar.close()
    return run.summary()


def finish_case(classifier, case: Case, prepared, out: Path, cam_class=None, tta: bool = False,
                overlay: bool = True, row_extras=None, dicom: bool = False):
    """Classify one prepared case, write its files, and return (its results-table row, the
    result): what every runner does with a case once it is read and registered (the local
    batch here, the Ray workers of cluster/ray_batch.py). The row's seconds cover this step."""
    from .outputs import write_case_outputs
    start = time.perf_counter()
    result = classifier.classify_prepared(prepared, cam_class=cam_class, tta=tta)
    files = write_case_outputs(result, case, Path(out), overlay=overlay,
                               scan=prepared.scan_volume() if overlay else None, dicom=dicom)
    row = result_row(case, result, files, time.perf_counter() - start)
    if row_extras is not None:
        row |= row_extras(case, result)
    return row, result


class _Prefetcher:
    """Yields (case, prepare) in order, where prepare() returns (PreparedInput, seconds) or
    raises that case's error. With prefetch > 0, `prefetch` background threads prepare the scans
    ahead (SimpleITK and numpy release the GIL, so registrations overlap each other and the
    network; each registration is single-threaded for reproducibility, so threads are how a
    many-core machine keeps a GPU fed)."""

    def __init__(self, classifier, cases: list[Case], force: bool, prefetch: int) -> None:
        self.classifier, self.cases, self.force = classifier, cases, force
        self.prefetch = max(0, int(prefetch))
        self.pool = None

    def _prepare(self, case: Case):
        start = time.perf_counter()
        prepared = self.classifier.prepare(case.path, mask=case.brain_mask,
                                           allow_poor_registration=self.force)
        return prepared, time.perf_counter() - start

    def __enter__(self):
        if self.prefetch == 0:
            return ((case, functools.partial(self._prepare, case)) for case in self.cases)
        # SimpleITK sets up its file-format factories on a process's first reads, which must
        # not happen in two threads at once: reading the atlas here does that first.
        load_atlas()
        self.pool = ThreadPoolExecutor(max_workers=self.prefetch, thread_name_prefix="prepare")
        # Submitted now, not at the first iteration: the first scans are already being read
        # and registered while the caller waits for anything else (a model still loading).
        upcoming = iter(self.cases)
        pending = collections.deque(
            (case, self.pool.submit(self._prepare, case))
            for case in itertools.islice(upcoming, self.prefetch + 1))
        return self._ahead(pending, upcoming)

    def _ahead(self, pending, upcoming):
        while pending:
            case, future = pending.popleft()
            yield case, future.result
            following = next(upcoming, None)  # keep `prefetch` scans queued behind the next
            if following is not None:
                pending.append((following, self.pool.submit(self._prepare, following)))

    def __exit__(self, *exc_info) -> None:
        if self.pool is not None:  # an interrupted batch does not wait for scans it will drop
            self.pool.shutdown(wait=False, cancel_futures=True)
