"""TumorClassifier benchmarks: one command, a table on stdout and a JSON record.

    python benchmarks/run.py                      # this machine's CPU
    python benchmarks/run.py --device cuda        # a GPU
    python benchmarks/run.py --quick              # 2 repeats, 8 batch scans, no training

Each measurement runs in a fresh process so that its peak memory is its own. See
benchmarks/README.md for what is measured and the latest results.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    HERE,
    brats_sized_scan,
    machine_description,
    phantom_folder,
    run_worker,
    summary,
    training_pace,
)

TARGETS = {"cpu": {"end_to_end_s": 4.0, "peak_rss_mb": 2560, "network_gradcam_speedup": 2.0},
           "cuda": {"network_gradcam_s": 0.025, "end_to_end_s": 1.0,
                    "batch_scans_per_minute": 120, "training_data_wait_share": 0.10}}
STAGE_ROWS = [("read", "read"), ("registration", "registration to the atlas"),
              ("resampling", "resampling + normalisation"), ("forward", "forward"),
              ("gradcam", "heatmap (backward + map)"),
              ("network_gradcam", "= network + heatmap"),
              ("heatmap_to_input", "heatmap back to the scan"),
              ("write", "writing (heatmap, JSON, overlay)")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--model", help="bundle (default: the bundled default model)")
    parser.add_argument("--input-size", type=int, default=128,
                        help="network grid edge (the paper's 128)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-scans", type=int, default=20)
    parser.add_argument("--training-epochs", type=int, default=2)
    parser.add_argument("--skip", nargs="*", default=[], choices=["monai", "batch", "training"])
    parser.add_argument("--training-history", type=Path,
                        help="take the training figures from this training run's "
                        "training/history.csv (e.g. a real cohort's run) instead of training "
                        "on the batch scans")
    parser.add_argument("--precision", default="auto", choices=("auto", "float32", "bfloat16"),
                        help="our network's precision (auto: bfloat16 where the CPU has fast "
                        "bf16; float32 to compare like with like, or under "
                        "ATEN_CPU_CAPABILITY=avx2 on a bf16 CPU)")
    parser.add_argument("--compile", action="store_true",
                        help="also measure torch.compile (about a minute, mostly compiling)")
    parser.add_argument("--quick", action="store_true",
                        help="a fast check: 2 repeats, 8 batch scans, no training")
    parser.add_argument("--work", type=Path, default=HERE / ".work",
                        help="where test scans and outputs go (reused between runs)")
    parser.add_argument("--json", type=Path, help="write the record here (default: "
                        "benchmarks/results/<device>-<date>.json)")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.batch_scans = 2, 8
        args.skip = sorted(set(args.skip) | {"training"})

    common = ["--device", args.device, "--input-size", str(args.input_size)]
    if args.model:
        common += ["--model", args.model]
    scan = brats_sized_scan(args.work / "scan_240x240x155.nii.gz")
    record = {"date": datetime.date.today().isoformat(),
              "machine": machine_description(args.device), "input_size": args.input_size,
              "scan": "240x240x155 int16 phantom (HGG), 1 mm"}
    print(f"# TumorClassifier benchmarks, {record['date']}, {_device_words(record)}\n",
          flush=True)
    worker_args = ["--scan", scan, "--repeats", str(args.repeats)] + common
    record["ours"] = run_worker("bench_classify.py", *worker_args,
                                "--out", args.work / "out_ours", "--precision", args.precision)
    if "monai" not in args.skip:
        record["monai"] = run_worker("bench_monai.py", *worker_args,
                                     "--out", args.work / "out_monai")
    print(classify_table(record, args.repeats), flush=True)
    if "batch" not in args.skip or "training" not in args.skip:
        scans_dir = args.work / f"phantoms_{args.batch_scans}"
        phantom_folder(scans_dir, args.batch_scans)
    if "batch" not in args.skip:
        record["batch"] = run_worker("bench_batch.py", "--scans-dir", scans_dir, "--out",
                                     args.work / "out_batch", *common)
        print(batch_table(record), flush=True)
    if args.training_history:
        record["training"] = training_pace(args.training_history)
        print(training_table(record), flush=True)
    elif "training" not in args.skip:
        record["training"] = run_worker(
            "bench_training.py", "--scans-dir", scans_dir, "--out", args.work / "out_training",
            "--cache", args.work / f"cache_{args.input_size}", "--epochs",
            str(args.training_epochs), "--device", args.device, "--input-size",
            str(args.input_size))
        print(training_table(record), flush=True)
    if args.compile:
        record["compile"] = run_worker("bench_compile.py", "--device", args.device,
                                       "--input-size", str(args.input_size))
        print(compile_table(record), flush=True)
    record["targets"] = check_targets(record, args.device)
    print(targets_table(record["targets"]))
    path = args.json or HERE / "results" / f"{_device_slug(record)}-{record['date']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"\nrecord: {path}")


def per_stage(result: dict) -> dict[str, list[float]]:
    stages = dict(result["stages"])
    stages["network_gradcam"] = [f + g for f, g in zip(stages["forward"], stages["gradcam"])]
    return stages


def classify_table(record: dict, repeats: int) -> str:
    ours, theirs = record["ours"], record.get("monai")
    ours_stages = per_stage(ours)
    theirs_stages = per_stage(theirs) if theirs else {}
    lines = [f"## classify + heatmap of one 240x240x155 scan, network at "
             f"{record['input_size']}^3: median (min-max) of {repeats} runs after a warm-up, "
             f"seconds",
             "",
             f"| stage | ours ({ours['precision']}) | stock MONAI ({theirs['precision']}) | "
             "ours / MONAI |" if theirs else "| stage | ours | | |",
             "|---|---|---|---|"]
    rows = STAGE_ROWS + [("end_to_end", "**end to end**")]
    for key, title in rows:
        mine = ours["end_to_end"] if key == "end_to_end" else ours_stages[key]
        other = theirs["end_to_end"] if (theirs and key == "end_to_end") else \
            theirs_stages.get(key)
        ratio = (f"{statistics.median(mine) / statistics.median(other):.2f}"
                 if other and statistics.median(other) > 0 else "-")
        lines.append(f"| {title} | {_spread(mine)} | {_spread(other) if other else '-'} | "
                     f"{ratio} |")
    lines.append(f"| peak resident memory, MB | {ours['peak_rss_mb']:.0f} | "
                 f"{theirs['peak_rss_mb']:.0f} | |" if theirs else
                 f"| peak resident memory, MB | {ours['peak_rss_mb']:.0f} | | |")
    other_gpu = f"{theirs['peak_gpu_mb']:.0f}" if theirs and theirs.get("peak_gpu_mb") else ""
    if ours.get("peak_gpu_mb"):
        lines.append(f"| peak GPU memory, MB | {ours['peak_gpu_mb']:.0f} | {other_gpu} | |")
    other_load = f"{theirs['model_load']:.2f}" if theirs else ""
    lines.append(f"| model load (once), s | {ours['model_load']:.2f} | {other_load} | |")
    return "\n".join(lines) + "\n"


def batch_table(record: dict) -> str:
    runs = record["batch"]["runs"]
    lines = [f"## batch: {next(iter(runs.values()))['scans']} phantom scans (mixed geometry), "
             "outputs and overlays written", "", "| mode | seconds | scans per minute |",
             "|---|---|---|"]
    names = {"0": "one after the other", "1": "next scan prepared during the network"}
    for prefetch, run in runs.items():
        name = names.get(prefetch, f"{prefetch} scans prepared at once during the network")
        lines.append(f"| {name} | {run['seconds']:.1f} "
                     f"| {run['scans_per_minute']:.1f} |")
    return "\n".join(lines) + "\n"


def training_table(record: dict) -> str:
    run = record["training"]
    return "\n".join([
        f"## training on cached data ({run['training_volumes']} volumes, batch 5, "
        f"{record['input_size']}^3), median of {run['epochs_measured']} epoch(s) after the "
        "first", "", "| volumes per second | share of time waiting for data |", "|---|---|",
        f"| {run['volumes_per_second']:.2f} | {run['data_wait_share']:.1%} |"]) + "\n"


def compile_table(record: dict) -> str:
    run = record["compile"]
    return "\n".join([
        f"## torch.compile ({run['torch']}, {run['precision']}, {record['input_size']}^3)", "",
        f"whole network with the Grad-CAM hook: {run['whole_network_with_gradcam']}", "",
        "| trunk before the Grad-CAM level | seconds |", "|---|---|",
        f"| eager forward | {run['trunk_eager_s']:.3f} |",
        f"| compiled forward | {run['trunk_compiled_s']:.3f} |",
        f"| compiling (once) | {run['trunk_compile_s']:.1f} |",
        f"| largest output difference | {run['trunk_max_difference']:.4f} |"]) + "\n"


def check_targets(record: dict, device: str) -> list[dict]:
    kind = "cuda" if device.startswith("cuda") else "cpu"
    ours = record["ours"]
    checks = []

    def check(name, measured, target, smaller_is_better=True):
        if measured is None:
            return
        met = measured <= target if smaller_is_better else measured >= target
        checks.append({"target": name, "measured": round(measured, 4), "goal": target,
                       "met": bool(met)})
    goals = TARGETS[kind]
    check("end to end, s", statistics.median(ours["end_to_end"]), goals["end_to_end_s"])
    stages = per_stage(ours)
    if kind == "cpu":
        check("peak resident memory, MB", ours["peak_rss_mb"], goals["peak_rss_mb"])
        if "monai" in record:
            speedup = (statistics.median(per_stage(record["monai"])["network_gradcam"])
                       / statistics.median(stages["network_gradcam"]))
            check("network + Grad-CAM speed-up over stock MONAI", speedup,
                  goals["network_gradcam_speedup"], smaller_is_better=False)
    else:
        check("network + Grad-CAM, s", statistics.median(stages["network_gradcam"]),
              goals["network_gradcam_s"])
        if "batch" in record:
            best = max(r["scans_per_minute"] for r in record["batch"]["runs"].values())
            check("batch, scans per minute", best, goals["batch_scans_per_minute"],
                  smaller_is_better=False)
        if "training" in record:
            check("training, share of time waiting for data",
                  record["training"]["data_wait_share"], goals["training_data_wait_share"])
    return checks


def targets_table(checks: list[dict]) -> str:
    lines = ["## targets", "", "| target | goal | measured | met |", "|---|---|---|---|"]
    for c in checks:
        lines.append(f"| {c['target']} | {c['goal']} | {c['measured']} | "
                     f"{'yes' if c['met'] else '**no**'} |")
    return "\n".join(lines)


def _spread(samples) -> str:
    s = summary(samples)
    return f"{s['median']:.3f} ({s['min']:.3f}-{s['max']:.3f})"


def _device_words(record: dict) -> str:
    machine = record["machine"]
    if "gpu" in machine:
        return f"GPU {machine['gpu']}"
    restricted = ", ".join(f"{k}={v}" for k, v in machine.get("kernels_restricted", {}).items())
    return (f"CPU {machine['cpu']} ({machine['cpu_threads']} threads)"
            + (f", kernels restricted: {restricted}" if restricted else ""))


def _device_slug(record: dict) -> str:
    machine = record["machine"]
    name = machine.get("gpu") or ("cpu-restricted" if machine.get("kernels_restricted")
                                   else "cpu")
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


if __name__ == "__main__":
    main()
