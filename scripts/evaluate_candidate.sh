#!/bin/bash
# The evidence a candidate model needs before it replaces the bundled default (issue 21):
# fresh synthetic heads of the held-out drawing family and of the training families (30 a
# class each, seeds no training run used), generator 1's seed-2 cohort (30 a class, the cohort
# the default was evaluated on), and the real scans (reported, never used to choose).
#
#   bash scripts/evaluate_candidate.sh MODEL OUT [G1_COHORT_DIR]
#
# G1_COHORT_DIR: an existing `tumorclassifier phantoms --per-class 30 --seed 2` folder (drawn
# here when absent: about 35 minutes on two cores). Prints one line per test set.
set -eu
MODEL=${1:?model bundle}
OUT=${2:?output folder}
G1=${3:-$OUT/g1_seed2}
BIN=${BIN:-.venv/bin}
mkdir -p "$OUT"
HELD_OUT=$("$BIN/python" -c "import json,sys; print(json.load(open(sys.argv[1]))['training']['synthetic']['held_out_family'])" "$MODEL/metadata.json")
TRAINED=$("$BIN/python" -c "import json,sys; print(' '.join(json.load(open(sys.argv[1]))['training']['training_families']))" "$MODEL/metadata.json")
"$BIN/tumorclassifier" evaluate --synthetic --model "$MODEL" --families "$HELD_OUT" \
    --per-class 30 --seed 1001 --out "$OUT/heldout_family" | tail -1
"$BIN/tumorclassifier" evaluate --synthetic --model "$MODEL" --families $TRAINED \
    --per-class 30 --seed 1002 --out "$OUT/training_families" | tail -1
[ -f "$G1/manifest.csv" ] || "$BIN/tumorclassifier" phantoms --out "$G1" --per-class 30 --seed 2 \
    --workers 2
"$BIN/tumorclassifier" evaluate --model "$MODEL" --manifest "$G1/manifest.csv" \
    --out "$OUT/generator1_seed2" | tail -1
if [ -f ../shared/realdata/MANIFEST.tsv ]; then
    "$BIN/python" scripts/run_realdata.py --model "$MODEL" --out "$OUT/realdata" | tail -3
else
    echo "real scans: ../shared/realdata is absent here; not run"
fi
