"""Worker: TumorClassifier's own end-to-end classify + Grad-CAM of one scan, by stage.

    python benchmarks/bench_classify.py --scan S --out DIR [--device cpu] [--repeats 5]

Stages as the library reports them (read, registration, resampling, forward, gradcam,
heatmap_to_input) plus writing the case's outputs (heatmap NIfTI, JSON, overlay PNG) as the
CLI does. Prints one JSON line."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import add_model_arguments, clock, emit, peak_gpu_mb, peak_rss_mb  # noqa: E402

STAGES = ("read", "registration", "resampling", "forward", "gradcam", "heatmap_to_input",
          "write")


def classifier_at(model, input_size: int | None, device: str, precision: str):
    """The bundle's classifier, its network grid set to `input_size`^3 when given (the network
    is fully convolutional, so the same weights run at the paper's 128^3)."""
    from TumorClassifierLib.bundle import load_bundle
    from TumorClassifierLib.inference import Classifier
    bundle = load_bundle(model)
    if input_size:
        preprocessing = dataclasses.replace(bundle.metadata.preprocessing,
                                            input_shape=(input_size,) * 3)
        metadata = dataclasses.replace(bundle.metadata, preprocessing=preprocessing)
        bundle = dataclasses.replace(bundle, metadata=metadata)
    return Classifier(bundle, device=device, precision=precision)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scan", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=None)
    add_model_arguments(parser)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args()

    from TumorClassifierLib.manifest import Case
    from TumorClassifierLib.outputs import write_case_outputs
    start = time.perf_counter()
    classifier = classifier_at(args.model, args.input_size, args.device, args.precision)
    load_seconds = time.perf_counter() - start
    out = args.out or Path(tempfile.mkdtemp(prefix="bench_ours_"))
    case = Case("bench", args.scan)
    runs, totals = [], []
    for index in range(args.warmup + args.repeats):
        start = clock(args.device)  # the path `tumorclassifier classify` takes
        prepared = classifier.prepare(args.scan)
        result = classifier.classify_prepared(prepared)
        before_write = time.perf_counter()
        write_case_outputs(result, case, out, scan=prepared.scan_volume())
        timings = dict(result.timings, write=time.perf_counter() - before_write)
        total = clock(args.device) - start
        if index >= args.warmup:
            runs.append({stage: timings.get(stage, 0.0) for stage in STAGES})
            totals.append(total)
    emit({"stages": {stage: [run[stage] for run in runs] for stage in STAGES},
          "end_to_end": totals, "model_load": load_seconds, "peak_rss_mb": peak_rss_mb(),
          "peak_gpu_mb": peak_gpu_mb(args.device), "precision": result.precision,
          "predicted_class": result.predicted_class, "device": result.device})


if __name__ == "__main__":
    main()
