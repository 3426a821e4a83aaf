"""Worker: the same job done the way a user would do it with stock MONAI, by stage.

    python benchmarks/bench_monai.py --scan S --out DIR [--device cpu] [--repeats 5]

LoadImage -> Orientation(RAS) -> Resize(128^3) -> NormalizeIntensity(nonzero) -> the same
network in float32 for the probabilities -> monai.visualize.GradCAM on the same layer -> the
heatmap taken back through the inverse of the spatial transforms -> SaveImage (NIfTI). There is
no registration (the stock path has none). Prints one JSON line."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import add_model_arguments, clock, emit, peak_gpu_mb, peak_rss_mb  # noqa: E402

STAGES = ("read", "resampling", "forward", "gradcam", "heatmap_to_input", "write")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scan", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=None)
    add_model_arguments(parser)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args()

    import torch
    from monai.data import MetaTensor
    from monai.transforms import (
        Compose,
        LoadImage,
        NormalizeIntensity,
        Orientation,
        Resize,
        SaveImage,
    )
    from monai.visualize import GradCAM

    from TumorClassifierLib.bundle import load_bundle
    start = time.perf_counter()
    network = load_bundle(args.model).network.to(args.device).eval()
    layer = next(name for name, module in network.named_modules()
                 if module is network.gradcam_layer)
    load_seconds = time.perf_counter() - start
    out = args.out or Path(tempfile.mkdtemp(prefix="bench_monai_"))
    load = LoadImage(image_only=True, ensure_channel_first=True)
    spatial = Compose([Orientation(axcodes="RAS"), Resize((args.input_size,) * 3)])
    normalise = NormalizeIntensity(nonzero=True)
    save = SaveImage(output_dir=out, output_postfix="heatmap", separate_folder=False,
                     print_log=False)
    cam = GradCAM(nn_module=network, target_layers=layer)
    runs, totals = [], []
    for index in range(args.warmup + args.repeats):
        times = {}
        begin = mark = clock(args.device)
        image = load(args.scan)
        times["read"], mark = _lap(mark, args.device)
        prepared = normalise(spatial(image))
        batch = prepared.unsqueeze(0).to(args.device)
        times["resampling"], mark = _lap(mark, args.device)
        with torch.no_grad():
            probabilities = torch.softmax(network(batch), dim=1)
        times["forward"], mark = _lap(mark, args.device)
        heat = cam(batch, class_idx=int(probabilities.argmax()))
        times["gradcam"], mark = _lap(mark, args.device)
        heat = MetaTensor(heat[0].cpu(), meta=prepared.meta,
                          applied_operations=prepared.applied_operations)
        back = spatial.inverse(heat)
        times["heatmap_to_input"], mark = _lap(mark, args.device)
        save(back)
        times["write"], mark = _lap(mark, args.device)
        if index >= args.warmup:
            runs.append(times)
            totals.append(mark - begin)
    emit({"stages": {stage: [run[stage] for run in runs] for stage in STAGES},
          "end_to_end": totals, "model_load": load_seconds, "peak_rss_mb": peak_rss_mb(),
          "peak_gpu_mb": peak_gpu_mb(args.device), "precision": "float32",
          "heatmap_shape": list(back.shape), "device": args.device})


def _lap(mark: float, device: str) -> tuple[float, float]:
    now = clock(device)
    return now - mark, now


if __name__ == "__main__":
    main()
