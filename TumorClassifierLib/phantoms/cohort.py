"""Synthetic T1c brain MRI phantoms of the seven classes, reproducible from a seed.

    tumorclassifier phantoms --out DIR --per-class N --seed S

Each case is painted on the bundled atlas head (normal enhancing structures, the class's
lesion with oedema and mass effect), then "acquired" with random pose, anatomy deformation,
storage orientation, slice thickness, field of view, skull stripping, bias, noise, contrast and
storage type. Written as NIfTI with its lesion mask, plus a manifest CSV that `train`,
`evaluate` and `classify --manifest` read.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..classes import CLASS_CODES
from ..files import atomic_output
from ..geometry import same_box_new_spacing
from ..volume import write_volume
from .acquisition import Acquisition, acquire, draw_acquisition
from .anatomy import Canvas, add_normal_enhancement, atlas_tissues
from .generator1_lesions import PAINTERS
from .generator2_lesions import PAINTERS_2
from .lesion_forms import FAMILIES


@dataclass(frozen=True, eq=False)
class Phantom:
    label: str
    seed: tuple[int, ...]
    scan: sitk.Image
    lesion: sitk.Image  # uint8, 1 = tumour, on the scan's grid
    acquisition: Acquisition
    family: str = ""  # generator 2's lesion drawing family (lesion_forms.py)


def case_seed(seed: int, label: str, number: int) -> tuple[int, int, int]:
    """Each case's own seed: independent of how many cases or workers a run has."""
    return (int(seed), CLASS_CODES.index(label), int(number))


def paint_case(label: str, seed: tuple[int, ...], generator: int = 1,
               family: str | None = None):
    """(canvas, acquisition, rng, family) of one case before it is scanned: the painted head,
    the drawn acquisition, the random stream that scanning it goes on with, and the lesion
    drawing family (generator 2: `family`, or drawn per case when None; generator 1: "")."""
    if label not in PAINTERS:
        raise ValueError(f"unknown class {label!r}; choose one of {', '.join(PAINTERS)}")
    if generator == 1 and family:
        raise ValueError("drawing families belong to generator 2")
    if family is not None and family and family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")
    rng = np.random.default_rng(np.random.SeedSequence(list(seed)))
    canvas = Canvas(atlas_tissues())
    add_normal_enhancement(canvas, rng, pituitary=label != "PITADE")
    if generator == 1:
        family = ""
        if PAINTERS[label] is not None:
            PAINTERS[label](canvas, rng)
    else:
        family = family or str(rng.choice(FAMILIES))
        if PAINTERS_2[label] is not None:
            PAINTERS_2[label](canvas, rng, family)
    return canvas, draw_acquisition(rng, generator), rng, family


def generate_phantom(label: str, seed: tuple[int, ...], generator: int = 1,
                     family: str | None = None) -> Phantom:
    canvas, acquisition, rng, family = paint_case(label, seed, generator, family)
    scan, lesion = acquire(canvas, acquisition, rng)
    return Phantom(label, tuple(seed), scan, lesion, acquisition, family)


MANIFEST_FIELDS = ["path", "case", "label", "patient_id", "lesion_mask"]


def write_cohort(out: str | os.PathLike, per_class: int, seed: int,
                 classes: tuple[str, ...] = CLASS_CODES, workers: int = 1,
                 progress=None, spacing_mm: float | None = None, generator: int = 1,
                 family: str | None = None) -> Path:
    """Write `per_class` phantoms of each class under `out` and return the manifest path.
    Cases already on disk (from an interrupted run) are kept, not redrawn. `spacing_mm`
    resamples each scan to that isotropic voxel size (small sample files). `generator`: 1 (the
    first default models' phantoms) or 2 (wider acquisition ranges, acquisition.py);
    generator 2's files are named phantom_g2_... `family`: generator 2's lesion drawing family
    for every case (files phantom_g2_<family>_...), or None to draw it per case."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(label, number, seed, str(out), spacing_mm, generator, family)
            for number in range(per_class) for label in classes]
    rows = []
    if workers > 1:
        with phantom_pool(workers) as pool:
            for row in pool.map(_write_case, jobs):
                rows.append(row)
                progress and progress(row)
    else:
        for job in jobs:
            rows.append(_write_case(job))
            progress and progress(rows[-1])
    manifest = out / "manifest.csv"
    with atomic_output(manifest, ".csv") as temporary:
        with open(temporary, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=MANIFEST_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
    return manifest


def _write_case(job) -> dict:
    label, number, seed, out, spacing_mm, generator, family = job
    out = Path(out)
    prefix = "phantom" if generator == 1 else f"phantom_g{generator}"  # generator 1: as before
    prefix += f"_{family}" if family else ""
    name = f"{prefix}_s{seed}_{label.lower()}_{number:04d}"
    scan_path, lesion_path = out / f"{name}.nii.gz", out / f"{name}_lesion.nii.gz"
    record_path = out / f"{name}.json"
    if not record_path.is_file():  # the record is written last: its presence means done
        phantom = generate_phantom(label, case_seed(seed, label, number), generator, family)
        scan, lesion = phantom.scan, phantom.lesion
        if spacing_mm:
            scan, lesion = (_isotropic(image, spacing_mm, interpolator) for image, interpolator
                            in ((scan, sitk.sitkLinear), (lesion, sitk.sitkNearestNeighbor)))
        write_volume(scan, scan_path)
        write_volume(lesion, lesion_path)
        with atomic_output(record_path, ".json") as temporary:
            record = {"label": label, "seed": list(phantom.seed)}
            record |= {"family": phantom.family} if phantom.family else {}
            record["acquisition"] = phantom.acquisition.to_dict()
            temporary.write_text(json.dumps(record, indent=1), encoding="utf-8")
    return {"path": scan_path.name, "case": name, "label": label, "patient_id": name,
            "lesion_mask": lesion_path.name}


def _isotropic(image: sitk.Image, spacing_mm: float, interpolator) -> sitk.Image:
    return sitk.Resample(image, same_box_new_spacing(image, spacing_mm), sitk.Transform(),
                         interpolator, 0)


def phantom_pool(workers: int) -> ProcessPoolExecutor:
    """Processes for drawing phantoms in parallel, each single-threaded. Spawned, not forked: a
    fork of a process that has already run ITK filters (a Slicer session, a benchmark) can hang
    in the child on ITK's inherited thread pool."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_single_threaded)


def _single_threaded() -> None:
    import torch
    torch.set_num_threads(1)
