"""What a Slicer user waits for: the first Classify (worker start, imports, model load), the
first one when the worker was started as the panel was shown (as the module does), and the
next ones, through the module's own path, against the same classification in-process.

    python benchmarks/bench_slicer_worker.py [--repeats 5] [--model M] [--device cpu]

The module's path without Qt: the scan as an MRML node (slicer-core) is written as a temporary
NRRD with its transforms hardened, the worker process classifies it and writes the CLI's files,
and the result is read back and shown in the scene (heatmap, table, chart). In-process: the
same scan file through Classifier.classify and write_case_outputs in this process. Prints a
table and the ratios; the worker's extra cost is the NRRD, the pipes and reading back.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import HERE, brats_sized_scan, cpu_vector_extensions, machine_description  # noqa


# Each run starts after the other process's compute threads have stopped spinning: in Slicer
# no other process computes while the worker does.
SETTLE_S = 0.5
SHOWN_BEFORE_CLICK_S = 5.0  # from showing the panel to the first click


def module_path(worker, scene, node, folder: Path, model, device) -> dict:
    """One Classify as TumorClassifier.py does it; seconds per step."""
    from TumorClassifierLib.mrml_bridge import node_to_world_volume, show_result
    from TumorClassifierLib.volume import write_volume
    from TumorClassifierLib.worker.protocol import ClassifyRequest, Result
    times = {}
    start = time.perf_counter()
    path = folder / "input.nrrd"
    write_volume(node_to_world_volume(node), path, compress=False)
    times["write_input"] = time.perf_counter() - start
    request = worker.send(ClassifyRequest(
        input=str(path), out=str(folder / "out"), case=node.GetName(), model=model,
        device=device, heatmap_format="nrrd"))  # as the module asks
    answer = worker.wait(request)
    if not isinstance(answer, Result):
        raise SystemExit(f"worker: {answer.message}")
    times["worker"] = time.perf_counter() - start - times["write_input"]
    times["stages"] = answer.result["timings_s"]
    mark = time.perf_counter()
    result = answer.classification()
    show_result(scene, node, result)
    times["load_and_show"] = time.perf_counter() - mark
    times["total"] = time.perf_counter() - start
    return times


def in_process_path(classifier, scene, node) -> float:
    """The same Classify with the network in this process (what a module thread would do)."""
    from TumorClassifierLib.mrml_bridge import node_to_world_volume, show_result
    start = time.perf_counter()
    result = classifier.classify(node_to_world_volume(node))
    show_result(scene, node, result)
    return {"total": time.perf_counter() - start, "stages": result.timings}


def load_scan(scan: Path):
    import slicer
    scene = slicer.vtkMRMLScene()
    volumes = slicer.vtkSlicerVolumesLogic()
    volumes.SetMRMLScene(scene)
    return scene, volumes.AddArchetypeVolume(str(scan), "scan")


def serve_in_process(scan: Path, model, device, untuned: bool) -> None:
    """The comparison runs in a process of its own, as the worker does, so that neither
    competes with the other's idle compute threads; one line in, seconds out."""
    from TumorClassifierLib.allocator import retain_freed_memory
    from TumorClassifierLib.inference import Classifier
    if not untuned:
        retain_freed_memory()  # as the worker does, so that only the process boundary differs
    scene, node = load_scan(scan)
    classifier = Classifier.from_bundle(model, device=device)
    in_process_path(classifier, scene, node)  # warms this process's kernels
    print("ready", flush=True)
    for _ in sys.stdin:
        print(json.dumps(in_process_path(classifier, scene, node)), flush=True)


def start_comparison(args, untuned: bool):
    import subprocess
    command = [sys.executable, __file__, "--serve-in-process", "--device", args.device]
    command += (["--untuned"] if untuned else []) + (["--model", args.model] if args.model else [])
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True)
    assert process.stdout.readline().strip() == "ready"
    return process


def ask(process) -> dict:
    process.stdin.write("\n")
    process.stdin.flush()
    return json.loads(process.stdout.readline())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--model", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--serve-in-process", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--untuned", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    scan = brats_sized_scan(HERE / ".work" / "brats_hgg.nii.gz")
    if args.serve_in_process:
        return serve_in_process(scan, args.model, args.device, args.untuned)

    from TumorClassifierLib.worker.process import WorkerProcess
    scene, node = load_scan(scan)  # this process, like Slicer, never imports torch
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        worker = WorkerProcess(log_path=work / "worker.log")
        start = time.perf_counter()
        worker.start()
        first = module_path(worker, scene, node, work / "first", args.model, args.device)
        first["total"] = time.perf_counter() - start
        # What the panel does now: the worker starts when the panel is shown, and the user
        # picks a volume and clicks a few seconds later.
        ahead = WorkerProcess(log_path=work / "ahead.log")
        ahead.start()
        ahead.wait_ready()
        time.sleep(SHOWN_BEFORE_CLICK_S)
        shown = module_path(ahead, scene, node, work / "shown", args.model, args.device)
        ahead.close()
        comparisons = {"default": start_comparison(args, untuned=True),
                       "retained": start_comparison(args, untuned=False)}
        warm, in_process = [], {name: [] for name in comparisons}
        for repeat in range(args.repeats):  # interleaved, so that drift hits all alike
            time.sleep(SETTLE_S)
            warm.append(module_path(worker, scene, node, work / f"warm{repeat}", args.model,
                                    args.device))
            for name, process in comparisons.items():
                time.sleep(SETTLE_S)
                in_process[name].append(ask(process))
        for process in comparisons.values():
            process.stdin.close()
            process.wait()
        worker.close()
    next_run = {k: statistics.median(t[k] for t in warm) for k in warm[0] if k != "stages"}
    machine = machine_description(args.device)
    print(f"CPU: {machine['cpu']} ({cpu_vector_extensions()}), torch threads "
          f"{machine['cpu_threads']}; scan 240x240x155 int16; {args.repeats} repeats, "
          "interleaved; seconds")
    print(f"{'':<58} {'total':>6} {'NRRD':>6} {'worker':>7} {'show':>6}")
    ahead_name = f"first Classify, worker started {SHOWN_BEFORE_CLICK_S:.0f} s before"
    for name, times in (("first Classify (worker start, imports, model load)", first),
                        (ahead_name, shown), ("next Classify (median)", next_run)):
        print(f"{name:<58} {times['total']:6.2f} {times['write_input']:6.2f} "
              f"{times['worker']:7.2f} {times['load_and_show']:6.2f}")
    medians = {name: statistics.median(t["total"] for t in runs)
               for name, runs in in_process.items()}
    print(f"{'in-process, default allocator (a thread in Slicer)':<58} {medians['default']:6.2f}")
    print(f"{'in-process, freed memory retained as in the worker':<58} "
          f"{medians['retained']:6.2f}")
    print("stages, median seconds (worker | in-process default | retained): " + ", ".join(
        f"{stage} {statistics.median(t['stages'][stage] for t in warm):.3f} | "
        + " | ".join(f"{statistics.median(t['stages'][stage] for t in runs):.3f}"
                     for runs in in_process.values())
        for stage in warm[0]["stages"]))
    print(f"ratios: next Classify / in-process {next_run['total'] / medians['default']:.3f} "
          f"(default allocator), {next_run['total'] / medians['retained']:.3f} (same "
          f"allocator setting: the process boundary alone); first / next "
          f"{first['total'] / next_run['total']:.2f}, with the worker started when the panel "
          f"was shown {shown['total'] / next_run['total']:.2f}")


if __name__ == "__main__":
    main()
