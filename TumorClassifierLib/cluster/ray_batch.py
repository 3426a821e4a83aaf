"""Classify a case list on a Ray cluster with Ray Data (`tumorclassifier classify --ray
[ADDRESS]`, the `[ray]` extra; docs/cluster.md).

Reading, checks and registration run as CPU tasks, one case each, streamed into a pool of
long-lived model workers (actors) that load the model once. A worker writes its case's files
into the output folder (shared storage on a cluster; each file under a temporary name, then
renamed) and hands back the case's row; this process (the driver) appends the rows to the same
results table as the local batch, each after its files, each case once. Ray restarts a dead
worker and retries its case, and retries the tasks of a lost node elsewhere; a bad case becomes
an error row and the rest go on; a re-run skips the cases already finished.
"""

from __future__ import annotations

import json
import os
import pickle
import socket
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import ray

from ..batch import finish_case
from ..classes import canonical_code
from ..errors import InputError
from ..manifest import Case
from ..results_table import INTERNAL_ERROR, BatchRun, BatchSummary, columns, error_row, succeeded
from ..settings import PreprocessingConfig

# A case whose preparation or classification kills its worker process this many more times
# (a crash in a reader, memory) is given up with an error row instead of retried forever, as
# Ray Data would. These explicit retry settings also keep Ray Data from fusing the preparation
# tasks into the model workers (it fuses maps with equal remote arguments), so that preparation
# runs on every free core, not in turn with the network. Ray 2.60-2.63 take them as remote
# arguments, which they announce will go in 2.64 (hence the extra's upper bound).
RETRIES = 3


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # None: a local Ray instance; "auto": the cluster this node is in
    workers: int = 1  # model workers (actors), each loading the model once
    cpus_per_worker: float = 1.0
    gpus_per_worker: float | None = None  # None: 1 when the cluster has GPUs, else 0


@dataclass(frozen=True)
class _Job:
    """What every model worker needs to know (sent to each once)."""
    out: Path
    model: Path | None
    device: str
    precision: str
    cam_class: str | None
    tta: bool
    overlay: bool
    dicom: bool = False


def classify_cases_on_ray(cases: list[Case], out: str | Path, model=None,
                          options: RayOptions = RayOptions(), device: str = "auto",
                          precision: str = "auto", cam_class=None, force: bool = False,
                          overlay: bool = True, tta: bool = False,
                          results_csv: str | Path | None = None, echo=True,
                          dicom: bool = False) -> BatchSummary:
    """What `batch.classify_cases` does, on Ray. `echo`: print one line per finished case."""
    from ..bundle import load_bundle

    out = Path(out).resolve()
    run = BatchRun(cases, out, results_csv)
    # A bad bundle or option is reported here, once, before any worker starts.
    model = Path(model).resolve() if model else None
    metadata = load_bundle(model).metadata
    if cam_class:
        canonical_code(cam_class, metadata.class_codes)
    run.open(columns(metadata.class_codes))
    if run.todo:
        started_here = not ray.is_initialized()
        if started_here:
            _start_ray(options)
        try:
            job = _Job(out, model, device, precision, cam_class, tta, overlay, dicom)
            for row in _rows(run.todo, job, metadata.preprocessing, force, options):
                run.record(row)
                if echo:
                    print(_one_line(row), file=sys.stderr, flush=True)
        finally:
            if started_here:
                ray.shutdown()
    return run.summary()


def _start_ray(options: RayOptions) -> None:
    if options.address:
        _check_reachable(options.address)
        try:
            ray.init(address=options.address, log_to_driver=False)
        except ConnectionError as error:  # "auto" with no cluster on this machine
            raise InputError(f"--ray {options.address}: {str(error).splitlines()[0]}") from None
        return
    # A local instance counts the model workers' CPUs on top of the machine's cores: the
    # workers never hold every core while preparation tasks wait for one.
    cores = os.cpu_count() or 1
    ray.init(num_cpus=cores + int(round(options.workers * options.cpus_per_worker)),
             include_dashboard=False, log_to_driver=False)


def _check_reachable(address: str) -> None:
    """A HOST:PORT that nothing answers on is reported at once: Ray itself waits minutes."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or "://" in address:
        return  # "auto", or a ray:// client address: Ray's own checks
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as error:
        raise InputError(f"--ray {address}: no Ray cluster answers there "
                         f"({error.strerror or error})") from None


def _rows(todo: list[Case], job: _Job, preprocessing: PreprocessingConfig, force: bool,
          options: RayOptions):
    """The rows of `todo` as they finish, each case once."""
    data_context = ray.data.DataContext.get_current()
    data_context.enable_progress_bars = False  # one line per case instead (echo)
    data_context.max_errored_blocks = -1  # a case given up on must not stop the others
    gpus = options.gpus_per_worker
    if gpus is None:
        gpus = 1.0 if ray.cluster_resources().get("GPU", 0) else 0.0
    items = [{"name": case.name, "source": str(case.path), "path": str(Path(case.path).resolve()),
              "brain_mask": str(Path(case.brain_mask).resolve()) if case.brain_mask else ""}
             for case in todo]
    with warnings.catch_warnings():  # the retry settings' deprecation, see RETRIES
        warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
        dataset = (
            ray.data.from_items(items, override_num_blocks=len(items))  # a task per case
            .map(_prepare, fn_kwargs={"preprocessing": preprocessing, "force": force},
                 num_cpus=1, max_retries=RETRIES)
            .map(_ModelWorker, fn_constructor_args=(job,),
                 compute=ray.data.ActorPoolStrategy(size=options.workers),
                 num_cpus=options.cpus_per_worker, num_gpus=gpus, max_task_retries=RETRIES))
    seen = set()
    for item in dataset.iter_rows():
        row = json.loads(item["row"])
        if row["case"] not in seen:  # a retried case answered twice: its first answer counts
            seen.add(row["case"])
            yield row
    for case in todo:
        if case.name not in seen:  # Ray gave up on it (the block errored)
            yield error_row(case, f"{INTERNAL_ERROR}no result after {RETRIES + 1} tries (its "
                            "worker process died each time: a crash, or out of memory); see "
                            "Ray's logs", 0.0)


def _case(item) -> Case:
    """The case as the results table names it (its path as given)."""
    return Case(item["name"], Path(item["source"]))


def _prepare(item: dict, preprocessing: PreprocessingConfig, force: bool) -> dict:
    """A CPU task: read, check and register one case (no torch)."""
    from ..prepared_input import prepare_input
    start = time.perf_counter()
    try:
        prepared = prepare_input(item["path"], preprocessing,
                                 mask=item["brain_mask"] or None,
                                 allow_poor_registration=force)
        prepared_bytes, failure = pickle.dumps(prepared, protocol=5), ""
    except Exception as error:  # one bad case must not stop the run
        prepared_bytes = b""
        failure = json.dumps(error_row(_case(item), error, time.perf_counter() - start))
    return item | {"prepared": prepared_bytes, "error_row": failure,
                   "prepare_seconds": time.perf_counter() - start}


class _ModelWorker:
    """An actor: loads the model once, then classifies prepared cases and writes their files."""

    def __init__(self, job: _Job) -> None:
        from ..inference import Classifier
        self.job = job
        self.classifier = Classifier.from_bundle(job.model, job.device, job.precision)

    def __call__(self, item: dict) -> dict:
        if item["error_row"]:
            return {"row": item["error_row"]}
        case, start = _case(item), time.perf_counter()
        try:
            row, _ = finish_case(self.classifier, case, pickle.loads(item["prepared"]),
                                 self.job.out, cam_class=self.job.cam_class, tta=self.job.tta,
                                 overlay=self.job.overlay, dicom=self.job.dicom)
            row["seconds"] = round(item["prepare_seconds"] + time.perf_counter() - start, 3)
        except Exception as error:
            row = error_row(case, error, item["prepare_seconds"] + time.perf_counter() - start)
        return {"row": json.dumps(row)}


def _one_line(row: dict) -> str:
    if succeeded(row):
        return f"{row['case']}: {row['predicted_class']} ({float(row['confidence']):.1%})"
    return f"{row['case']}: error: {row['error']}"
