"""A PACS over DICOMweb (dicomweb-client): the series of a study (QIDO-RS), the post-contrast
T1 series among them, that series into a folder (WADO-RS), and results stored back (STOW-RS)
and then looked up again, so that nothing is called stored that the archive does not hold.

Credentials never come from the command line's visible arguments: a bearer token from
TUMORCLASSIFIER_DICOMWEB_TOKEN, or "user:password" from TUMORCLASSIFIER_DICOMWEB_BASIC, or
either from a file (its first line: "Bearer TOKEN" or "user:password")."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pydicom
import requests
from dicomweb_client.api import DICOMwebClient

from ..errors import InputError

TOKEN_VARIABLE = "TUMORCLASSIFIER_DICOMWEB_TOKEN"
BASIC_VARIABLE = "TUMORCLASSIFIER_DICOMWEB_BASIC"
TIMEOUT_S = 60
# A series description that names a T1 after contrast: "T1 post", "t1_mpr_tra_gd", "T1+C",
# "T1 CE", "MPRAGE post gad", ... (word-ish boundaries, any case).
T1 = re.compile(r"(?<![a-z0-9])(t1|mprage|mp-rage|spgr|bravo|vibe)", re.I)
CONTRAST = re.compile(r"(\+c|(?<![a-z])(gd|gad|gado|post|contrast|ce|c\+)(?![a-z]))", re.I)


@dataclass(frozen=True)
class Series:
    uid: str
    description: str
    modality: str
    instances: int

    def line(self) -> str:
        return (f"{self.uid} ({self.modality}, {self.instances} images, "
                f"{self.description or 'no description'!r})")


def session_from(credentials_file: str | Path | None = None) -> requests.Session:
    """A requests session carrying the credentials, from a file or the environment."""
    session = requests.Session()
    text = ""
    if credentials_file:
        path = Path(credentials_file)
        try:
            text = path.read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError) as error:
            raise InputError(f"{path}: cannot read DICOMweb credentials "
                             f"({getattr(error, 'strerror', None) or 'empty file'})") from None
    elif os.environ.get(TOKEN_VARIABLE):
        text = "Bearer " + os.environ[TOKEN_VARIABLE].strip()
    elif os.environ.get(BASIC_VARIABLE):
        text = os.environ[BASIC_VARIABLE].strip()
    if text.lower().startswith("bearer "):
        session.headers["Authorization"] = "Bearer " + text[7:].strip()
    elif text:
        user, colon, password = text.partition(":")
        if not colon:
            raise InputError("DICOMweb credentials must be 'Bearer TOKEN' or 'user:password'")
        session.auth = (user, password)
    return session


class Archive:
    def __init__(self, url: str, session: requests.Session | None = None) -> None:
        if not url.startswith(("https://", "http://")):
            raise InputError(f"{url}: a DICOMweb address starts with https:// (or http://)")
        self.url = url.rstrip("/")
        self.client = DICOMwebClient(self.url, session=session or requests.Session(),
                                     timeout=TIMEOUT_S)

    def series_of(self, study_uid: str) -> list[Series]:
        found = self._call(study_uid, self.client.search_for_series, study_instance_uid=study_uid,
                           fields=["SeriesDescription", "Modality",
                                   "NumberOfSeriesRelatedInstances"])
        return [Series(_value(item, "0020000E"), _value(item, "0008103E"),
                       _value(item, "00080060"), int(_value(item, "00201209") or 0))
                for item in found]

    def choose_series(self, study_uid: str, series_uid: str | None = None) -> Series:
        """The post-contrast T1 series of a study, or the one named; InputError listing what
        there is when none or several fit."""
        every = self.series_of(study_uid)
        if not every:
            raise InputError(f"study {study_uid}: the archive holds no series of it")
        if series_uid:
            named = [s for s in every if s.uid == series_uid]
            if not named:
                raise InputError(f"study {study_uid}: has no series {series_uid}; it has "
                                 + "; ".join(s.line() for s in every))
            return named[0]
        fitting = [s for s in every if s.modality == "MR" and T1.search(s.description)
                   and CONTRAST.search(s.description)]
        if len(fitting) != 1:
            what = "no series looks like" if not fitting else f"{len(fitting)} series look like"
            raise InputError(f"study {study_uid}: {what} a post-contrast T1; name one with "
                             "--series UID; its series: " + "; ".join(s.line() for s in every))
        return fitting[0]

    def retrieve(self, study_uid: str, series: Series, folder: Path) -> Path:
        """The series' images as files in `folder` (created)."""
        datasets = self._call(study_uid, self.client.retrieve_series, study_uid, series.uid)
        folder.mkdir(parents=True, exist_ok=True)
        for index, dataset in enumerate(datasets):
            dataset.save_as(folder / f"{index:05d}.dcm", enforce_file_format=True)
        if not datasets:
            raise InputError(f"study {study_uid}: series {series.uid} has no images to retrieve")
        return folder

    def store(self, study_uid: str, paths: list[Path]) -> None:
        """Store `paths` and check that the archive then holds every one of them."""
        datasets = [pydicom.dcmread(path) for path in paths]
        self._call(study_uid, self.client.store_instances, datasets,
                   study_instance_uid=study_uid)
        for dataset in datasets:
            held = self._call(study_uid, self.client.search_for_instances,
                              study_instance_uid=study_uid,
                              series_instance_uid=str(dataset.SeriesInstanceUID),
                              search_filters={"SOPInstanceUID": str(dataset.SOPInstanceUID)})
            if not held:
                raise InputError(f"study {study_uid}: the archive did not keep "
                                 f"{Path(dataset.filename).name}")

    def _call(self, study_uid: str, function, *args, **kwargs):
        try:
            return function(*args, **kwargs)
        except requests.HTTPError as error:
            status = error.response.status_code if error.response is not None else "?"
            hint = " (check the credentials)" if status in (401, 403) else ""
            raise InputError(f"study {study_uid}: {self.url} answered {status}{hint}") from None
        except requests.RequestException as error:
            raise InputError(f"study {study_uid}: {self.url} cannot be reached "
                             f"({type(error).__name__})") from None


def _value(item: dict, tag: str) -> str:
    values = item.get(tag, {}).get("Value") or [""]
    return str(values[0])
