"""Worker: does torch.compile pay for the network on this device?

    python benchmarks/bench_compile.py [--device cpu] [--input-size 128] [--repeats 3]

1. Compiling the whole network with the Grad-CAM hook in place (what classify runs): does it
   compile at all? 2. The trunk before the Grad-CAM level (nearly all the work): eager and
   compiled forward times, the one-off compile time and the largest output difference.
Prints one JSON line."""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import clock, emit  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--input-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch
    from torch import nn

    from TumorClassifierLib.bundle import load_bundle
    from TumorClassifierLib.device import autocast, resolve_device, resolve_precision
    from TumorClassifierLib.gradcam import GradCAM
    device = resolve_device(args.device)
    dtype = resolve_precision("auto", device)
    network = load_bundle(None).network.to(device).eval()
    x = torch.randn(1, 1, *(args.input_size,) * 3, device=device)
    record = {"precision": str(dtype).replace("torch.", ""), "torch": torch.__version__}

    try:  # 1. the whole network under the Grad-CAM hook
        with autocast(device, dtype), GradCAM(torch.compile(network),
                                              network.gradcam_layer) as cam:
            cam(x)
        record["whole_network_with_gradcam"] = "compiles"
    except Exception as error:  # a compiler failure is a result too
        lines = [line for line in str(error).splitlines() if line.strip()]
        record["whole_network_with_gradcam"] = (f"fails: {type(error).__name__}: "
                                                f"{lines[0] if lines else ''}")
    torch._dynamo.reset()

    trunk = nn.Sequential(*network.levels[:-1])  # 2. everything before the Grad-CAM level
    compiled = torch.compile(trunk)

    def timed(model):
        samples = []
        for _ in range(args.repeats):
            start = clock(args.device)
            model(x)
            samples.append(clock(args.device) - start)
        return statistics.median(samples)

    with torch.no_grad(), autocast(device, dtype):
        reference = trunk(x)  # warm-up
        record["trunk_eager_s"] = timed(trunk)
        start = clock(args.device)
        output = compiled(x)  # the first call compiles
        record["trunk_compile_s"] = clock(args.device) - start
        record["trunk_compiled_s"] = timed(compiled)
        record["trunk_max_difference"] = float((output.float() - reference.float()).abs().max())
    emit(record)


if __name__ == "__main__":
    main()
