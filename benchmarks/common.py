"""Shared pieces of the benchmarks: the test scans, timing statistics, peak memory, and running
each measurement in its own process (so that its peak memory is its own)."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

from TumorClassifierLib.device import cpu_name, cpu_vector_extensions  # noqa: F401 (re-exported)

HERE = Path(__file__).resolve().parent
BRATS_SIZE = (240, 240, 155)  # the BraTS/SRI24 grid: a typical 1 mm research scan


def brats_sized_scan(path: Path, label: str = "HGG", seed: int = 2026) -> Path:
    """A phantom of `label` resampled onto a 240x240x155 1 mm grid, stored as int16 like a
    scanner's export. Made once; later runs reuse the file."""
    import SimpleITK as sitk

    from TumorClassifierLib.classes import CLASS_CODES
    from TumorClassifierLib.geometry import centre_of, grid_around
    from TumorClassifierLib.phantoms.cohort import generate_phantom
    from TumorClassifierLib.volume import write_volume
    if path.is_file():
        return path
    phantom = generate_phantom(label, (seed, CLASS_CODES.index(label), 0))
    source = phantom.scan
    reference = grid_around(centre_of(source), BRATS_SIZE, (1.0, 1.0, 1.0),
                            pixel_type=sitk.sitkInt16)
    scan = sitk.Resample(source, reference, sitk.Transform(), sitk.sitkLinear, 0.0)
    array = sitk.GetArrayFromImage(scan)
    scale = 3000.0 / max(float(np.percentile(array, 99.5)), 1e-6)
    stored = sitk.GetImageFromArray(np.clip(array * scale, 0, 32767).astype(np.int16))
    stored.CopyInformation(reference)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_volume(stored, path)


def phantom_folder(folder: Path, count: int, seed: int = 7) -> list[Path]:
    """`count` phantoms of all classes in turn, each in its own drawn acquisition geometry;
    made in parallel processes (a phantom takes seconds)."""
    import os

    from TumorClassifierLib.classes import CLASS_CODES
    from TumorClassifierLib.phantoms.cohort import phantom_pool
    folder.mkdir(parents=True, exist_ok=True)
    jobs = []
    for number in range(count):
        label = CLASS_CODES[number % len(CLASS_CODES)]
        jobs.append((folder / f"bench_{number:03d}_{label.lower()}.nii.gz", label, seed, number))
    missing = [job for job in jobs if not job[0].is_file()]
    if missing:
        with phantom_pool(max(1, min(len(missing), os.cpu_count() or 1))) as pool:
            list(pool.map(_write_phantom, missing))
    return [job[0] for job in jobs]


def _write_phantom(job: tuple) -> None:
    from TumorClassifierLib.phantoms.cohort import case_seed, generate_phantom
    from TumorClassifierLib.volume import write_volume
    path, label, seed, number = job
    write_volume(generate_phantom(label, case_seed(seed, label, number)).scan, path)


def training_pace(history: Path) -> dict:
    """The pace a finished training run logged in its `training/history.csv`: medians over its
    epochs after the first (which also fills the cache and starts the loader workers), with the
    size of its training set and its loader workers (from the bundle beside it)."""
    import csv
    with open(history, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))[1:]
    if not rows:
        raise SystemExit(f"{history}: needs at least two epochs")
    bundle = json.loads((history.parent.parent / "metadata.json").read_text(encoding="utf-8"))
    training = bundle["training"]
    return {"volumes_per_second": statistics.median(float(r["volumes_per_second"]) for r in rows),
            "data_wait_share": statistics.median(float(r["data_wait_share"]) for r in rows),
            "epochs_measured": len(rows),
            "training_volumes": sum(training["training_cases"].values()),
            "loader_workers": training["protocol"]["loader_workers"],
            "source": str(history)}


def add_model_arguments(parser) -> None:
    """--model, --input-size and --device, as every classify-side worker takes them."""
    parser.add_argument("--model", type=Path, default=None, help="bundle (default: bundled)")
    parser.add_argument("--input-size", type=int, default=128, help="network grid edge")
    parser.add_argument("--device", default="cpu")


def clock(device: str = "cpu") -> float:
    """perf_counter after the GPU (if any) has finished its queued work."""
    import torch

    from TumorClassifierLib.device import synchronized_clock
    return synchronized_clock(torch.device(device))


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not getrusage: Linux keeps ru_maxrss across
    exec, so a worker would report its parent's peak when that was higher."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    scale = 2**20 if sys.platform == "darwin" else 1024  # bytes there, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def peak_gpu_mb(device: str) -> float | None:
    if not device.startswith("cuda"):
        return None
    import torch
    return torch.cuda.max_memory_allocated() / 2**20


def summary(samples: list[float]) -> dict:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples),
            "runs": len(samples)}


def emit(result: dict) -> None:
    """A worker's answer: one JSON line, the last on stdout."""
    print(json.dumps(result), flush=True)


def run_worker(script: str, *args: str) -> dict:
    """Run benchmarks/<script> in a fresh Python and return the JSON it emitted."""
    command = [sys.executable, str(HERE / script), *map(str, args)]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"{script} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def machine_description(device: str) -> dict:
    import torch
    info = {"python": platform.python_version(), "torch": torch.__version__,
            "cpu": cpu_name(), "cpu_threads": torch.get_num_threads(), "device": device}
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name()
    # Kernels restricted below what the CPU has (to measure an AVX2-only machine's code paths
    # on a newer CPU): the record says so.
    restricted = {name: os.environ[name] for name in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")
                  if os.environ.get(name)}
    if restricted:
        info["kernels_restricted"] = restricted
    return info
