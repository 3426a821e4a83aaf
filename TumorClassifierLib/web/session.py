"""One browser session of the viewer, without the page: its private folder (uploads and
outputs, deleted when the session ends), the checks on an upload, and the classification,
which runs in the same worker process as the Slicer module's so that the page never waits."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..settings import UPLOAD_LIMIT_MB
from ..volume import READABLE_SUFFIXES, read_sitk_image
from ..worker.jobs import Job, JobRunner, JobStatus
from ..worker.process import WorkerProcess
from ..worker.protocol import ClassifyRequest, Progress, Result


@dataclass
class Outcome:
    """The end of a classification: the worker's `reply` (its `files` and `result`), or a
    one-line `error`."""
    reply: Result | None = None
    error: str = ""

    @property
    def files(self) -> dict:
        return self.reply.files if self.reply else {}

    @property
    def result(self) -> dict:
        return self.reply.result if self.reply else {}


class ViewerSession:
    def __init__(self, model=None, device: str = "auto",
                 upload_limit_mb: float = UPLOAD_LIMIT_MB) -> None:
        self.model = str(Path(model).resolve()) if model else None
        self.device = device
        self.upload_limit_bytes = int(upload_limit_mb * 1024 * 1024)
        self.folder = Path(tempfile.mkdtemp(prefix="TumorClassifier-web-"))
        self._numbers = itertools.count(1)
        self.jobs = JobRunner(lambda: WorkerProcess(log_path=self.folder / "worker.log"))
        self.job: Job | None = None

    # -- uploads --------------------------------------------------------------------------
    def add_upload(self, files: list[tuple[str, bytes]]) -> Path:
        """Write uploaded files into this session's folder and check them as an input scan:
        one file (NIfTI, NRRD, MHA) or the files of one DICOM series. Returns the path to
        classify; InputError (naming the upload) when it is not a readable scan."""
        if not files:
            raise InputError("nothing was uploaded")
        total = sum(len(content) for _, content in files)
        label = files[0][0] if len(files) == 1 else f"{len(files)} files"
        if total > self.upload_limit_bytes:
            raise InputError(f"{label}: {total / 2**20:.0f} MB is more than the "
                             f"{self.upload_limit_bytes / 2**20:.0f} MB this viewer accepts")
        folder = self.folder / "uploads" / str(next(self._numbers))
        folder.mkdir(parents=True)
        names = [_safe_name(name) for name, _ in files]
        for name, (_, content) in zip(names, files):
            (folder / name).write_bytes(content)
        if len(files) == 1:
            path = folder / names[0]
            if not path.name.lower().endswith(READABLE_SUFFIXES + (".dcm",)):
                raise InputError(f"{names[0]}: not a NIfTI, NRRD or MHA file or a DICOM "
                                 "series")
            path = folder if path.name.lower().endswith(".dcm") else path
        else:
            path = folder  # the files of a DICOM series
        try:
            read_sitk_image(path)
        except InputError as error:
            raise InputError(str(error).replace(str(folder) + "/", "").replace(
                str(folder), label)) from None
        return path

    # -- classification -------------------------------------------------------------------
    def start_classification(self, scan: Path, case: str) -> None:
        if self.job is not None:
            raise InputError("a classification is already running")
        out = self.folder / "out" / str(next(self._numbers))
        self.job = self.jobs.submit(ClassifyRequest(
            input=str(scan), out=str(out), case=case, model=self.model, device=self.device,
            overlay=True))

    def poll(self) -> Progress | Outcome | None:
        """What the running classification says now: its progress, its end, or nothing."""
        if self.job is None:
            return None
        self.jobs.pump()
        job = self.job
        if not job.finished:
            return job.progress  # the worker's own Progress: stage, fraction, message
        self.job = None
        if job.status is JobStatus.DONE:
            return Outcome(job.reply)
        return Outcome(error=job.message)

    def close(self) -> None:
        self.jobs.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def _safe_name(name: str) -> str:
    """The file's own name, never a path (an upload names where it goes inside the folder)."""
    name = Path(str(name).replace("\\", "/")).name
    if name in ("", ".", ".."):
        raise InputError(f"{name!r}: not a file name")
    return name
