#!/bin/bash
# One GPU session, start to finish: train the paper's network at 128^3 on a fresh phantom cohort
# (starting from the 64^3 default's weights), or with DATA=synthetic on heads drawn at training
# time (synthesis/; one drawing family held out, HELD_OUT), then run the benchmarks on the GPU
# with the model it trained. Written for a lent machine that keeps nothing and has a fixed time budget, so every
# stage has a deadline (seconds since the script started) and the results are packed into OUT
# however far it got. This is the run that made the 128^3 default; see docs/training_default.
#
#   OUT=results bash scripts/gpu_session.sh
#
# It expects in .device/ (made by scripts/prepare_gpu_session.sh): SimpleITK unpacked and
# xz-compressed, the MONAI and nibabel wheels, and the starting weights. The machine's own
# python3 provides PyTorch, numpy, safetensors, tqdm and matplotlib.
set -u
OUT=${OUT:?set OUT to the folder that receives the results}
DEVICE=${DEVICE:-cuda}
PER_CLASS=${PER_CLASS:-48}          # 48 a class, seed 1: the cohort the 64^3 default used
SEED=${SEED:-1}
GENERATOR=${GENERATOR:-1}           # phantom generator (1: as the default was trained; 2: wider)
FAMILY=${FAMILY:-}                  # generator 2: one lesion family only (held-out validation)
AUGMENTATION=${AUGMENTATION:-paper} # or extended (training/data.py, augmentation_transforms)
INPUT=${INPUT:-128}
DATA=${DATA:-phantoms}              # phantoms (a cohort on disk) or synthetic (drawn in training)
HELD_OUT=${HELD_OUT:-cluster}       # DATA=synthetic: the drawing family never trained on
EVALUATE_EVERY=${EVALUATE_EVERY:-2048}
WORKERS=${WORKERS:-$(nproc)}
TRAIN_END=${TRAIN_END:-400}         # training stops by then (plus one epoch); <= 540 in a 600 s call
BENCH_END=${BENCH_END:-560}         # benchmarks are cut off then (0: no benchmarks)
BENCH_ARGS=${BENCH_ARGS:-}
WORK=${WORK:-/tmp/tc}
NAME=tumorclassifier-phantom-${INPUT}
mkdir -p "$OUT" "$WORK"
export PYTHONPATH=$WORK/site:$PWD PYTHONUNBUFFERED=1
log() { echo "[$(date +%T) +${SECONDS}s] $*" | tee -a "$WORK/session.log"; }

pack() {  # small files in one archive; the weights in parts under 16 MB each
    log "packing"
    local files=()
    for f in "$WORK"/session.log "$WORK"/*.txt "$WORK"/model/metadata.json \
             "$WORK"/model/training/history.csv "$WORK"/model/training/history.png \
             "$WORK"/model/training/progress.jsonl \
             "$WORK"/bench.json; do
        [ -f "$f" ] && files+=("$f")
    done
    tar -czf "$OUT/results.tgz" --transform 's|.*/||' "${files[@]}"
    local weights=$WORK/model/model.safetensors
    [ -f "$weights" ] || weights=$WORK/model/training/best.safetensors
    [ -f "$weights" ] && split -b 12m "$weights" "$OUT/weights.part-"
    ls -la "$OUT"
}
trap pack EXIT

log "install"
mkdir -p "$WORK/site"
tar -xJf .device/simpleitk.tar.xz -C "$WORK/site" || exit 3
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$WORK/site" .device/*.whl >"$WORK/pip.txt" 2>&1 || { cat "$WORK/pip.txt"; exit 3; }

log "preflight"
python3 - "$WORK" "$DEVICE" "$INPUT" <<'PY' 2>&1 | tee "$WORK/preflight.txt"
import json, sys, time
from pathlib import Path
import torch
from safetensors.torch import load_file
work, device, size = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
import monai, SimpleITK
from TumorClassifierLib.bundle import save_bundle, load_bundle
from TumorClassifierLib.model_metadata import parse_metadata
from TumorClassifierLib.network import TumorClassifierNet
print("torch", torch.__version__, "monai", monai.__version__, "SimpleITK",
      SimpleITK.Version.VersionString(), "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
# The starting weights travelled as float16 (the transfer limit); widen them into a bundle
# named for what it is.
raw = json.loads(Path(".device/init/metadata.json").read_text())
raw["name"] += "-float16-copy"
metadata = parse_metadata(json.dumps(raw), Path(".device/init"))
network = TumorClassifierNet(metadata.network)
network.load_state_dict({k: v.float() for k, v in load_file(".device/init/weights.safetensors").items()})
save_bundle(network, metadata, work / "init")  # records the widened weights' own sha256
bundle = load_bundle(work / "init")
# One training step and one classification on the device, before the long stages.
from TumorClassifierLib.device import autocast, resolve_precision
target = torch.device(device)
dtype = resolve_precision("auto", target)
net = bundle.network.to(target).train()
x = torch.randn(2, 1, size, size, size, device=target)
with autocast(target, dtype):
    loss = net(x).float().logsumexp(1).mean()
loss.backward()
print("training step ok, loss", float(loss.detach()), "dtype", dtype)
from TumorClassifierLib.inference import Classifier
from TumorClassifierLib.phantoms.cohort import generate_phantom
from TumorClassifierLib.volume import write_volume
path = write_volume(generate_phantom("HGG", (5, 0, 0)).scan, work / "preflight_hgg.nii.gz")
classifier = Classifier(bundle, device=device)
start = time.perf_counter()
result = classifier.classify(path)
print("classify ok:", result.predicted_class, f"{time.perf_counter() - start:.2f} s",
      "on", result.device, result.precision, "timings", result.timings)
PY
[ "${PIPESTATUS[0]}" = 0 ] || exit 4

HOURS=$(python3 -c "print(max(0.001, ($TRAIN_END - $SECONDS) / 3600))")
if [ "$DATA" = synthetic ]; then
    log "train at ${INPUT}^3 on synthetic heads (held out: $HELD_OUT) for at most $HOURS h"
    timeout $((TRAIN_END + 90 - SECONDS)) python3 -m TumorClassifierLib.cli train --synthetic \
        --out "$WORK/model" --init-from "$WORK/init" --held-out-family "$HELD_OUT" \
        --input-shape "$INPUT" "$INPUT" "$INPUT" --batch-size 8 --seed "$SEED" \
        --device "$DEVICE" --loader-workers "$WORKERS" --evaluate-every "$EVALUATE_EVERY" \
        --max-hours "$HOURS" --name "tumorclassifier-synthetic-${INPUT}" \
        --description "Trained at ${INPUT}^3 on synthetic heads on a GPU; not for clinical use" \
        >"$WORK/train.txt" 2>&1
else
    log "phantoms: $PER_CLASS a class, seed $SEED, generator $GENERATOR ${FAMILY:+family $FAMILY }$WORKERS processes"
    python3 -m TumorClassifierLib.cli phantoms --out "$WORK/phantoms" --per-class "$PER_CLASS" \
        --seed "$SEED" --workers "$WORKERS" --generator "$GENERATOR" ${FAMILY:+--family "$FAMILY"} \
        >"$WORK/phantoms.txt" 2>&1 || { tail -5 "$WORK/phantoms.txt"; exit 5; }
    HOURS=$(python3 -c "print(max(0.001, ($TRAIN_END - $SECONDS) / 3600))")
    log "train at ${INPUT}^3 for at most $HOURS h (preprocessing included)"
    timeout $((TRAIN_END + 90 - SECONDS)) python3 -m TumorClassifierLib.cli train \
        --manifest "$WORK/phantoms/manifest.csv" --out "$WORK/model" --init-from "$WORK/init" \
        --input-shape "$INPUT" "$INPUT" "$INPUT" --fold 0 --folds 8 --seed 0 --device "$DEVICE" \
        --cache "$WORK/cache" --loader-workers "$WORKERS" --max-hours "$HOURS" --name "$NAME" \
        --augmentation "$AUGMENTATION" \
        --description "Phantom-trained at ${INPUT}^3 on a GPU; not for clinical use" \
        >"$WORK/train.txt" 2>&1
fi
log "train exit $?"
grep -a "^epoch\|heads:\|warning\|rror" "$WORK/train.txt" | tail -60

MODEL=$WORK/model
[ -f "$MODEL/metadata.json" ] || MODEL=$WORK/init
if [ "$BENCH_END" -le $((SECONDS + 30)) ]; then
    log "no time left for the benchmarks (BENCH_END=$BENCH_END)"
    exit 0
fi
log "benchmarks with $MODEL"
HISTORY=()
[ -f "$WORK/model/metadata.json" ] && HISTORY=(--training-history "$WORK/model/training/history.csv")
timeout $((BENCH_END - SECONDS)) python3 benchmarks/run.py --device "$DEVICE" --model "$MODEL" \
    --input-size "$INPUT" --work "$WORK/bench" --json "$WORK/bench.json" "${HISTORY[@]}" \
    --skip training $BENCH_ARGS 2>&1 | tee "$WORK/bench.txt"
log "done"
