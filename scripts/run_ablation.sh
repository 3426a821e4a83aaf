#!/bin/bash
# Issue 12's ablation at 64^3 on a CPU: which randomisation makes a model carry over to a way
# of drawing it never saw. Resumable: cohorts already drawn are kept, an interrupted training
# goes on from its checkpoint, finished evaluations are skipped; run it again after a stop.
#
#   WORK=/tmp/ablation HOURS=0.75 bash scripts/run_ablation.sh
#
# Variants, each trained from scratch on PER_CLASS phantoms a class:
#   g1            generator 1 (what the default model was trained on), the paper's flips
#   g2-lumpy      generator 2, lesions drawn in the "lumpy" family only, the paper's flips
#   g2-lumpy-ext  the same, with --augmentation extended
# Test sets, TEST_PER_CLASS a class (never trained on):
#   g2-cluster    generator 2, the held-out "cluster" family
#   g2-lumpy-new  generator 2, "lumpy", a fresh seed
#   g1-seed2      generator 1, seed 2 (the default model's test cohort)
# Prints one accuracy table at the end (also WORK/summary.md).
set -eu
WORK=${WORK:-/tmp/ablation}
HOURS=${HOURS:-0.75}
PER_CLASS=${PER_CLASS:-32}
TEST_PER_CLASS=${TEST_PER_CLASS:-10}
WORKERS=${WORKERS:-2}
TC=${TC:-.venv/bin/tumorclassifier}
mkdir -p "$WORK"

cohort() {  # name per_class seed generator [family]
    local out=$WORK/cohorts/$1
    [ -f "$out/manifest.csv" ] && return
    "$TC" phantoms --out "$out" --per-class "$2" --seed "$3" --workers "$WORKERS" \
        --generator "$4" ${5:+--family "$5"} >/dev/null
}

cohort g1 "$PER_CLASS" 41 1
cohort g2-lumpy "$PER_CLASS" 42 2 lumpy
cohort g2-cluster "$TEST_PER_CLASS" 51 2 cluster
cohort g2-lumpy-new "$TEST_PER_CLASS" 52 2 lumpy
cohort g1-seed2 "$TEST_PER_CLASS" 2 1

train() {  # variant cohort augmentation
    local out=$WORK/models/$1
    [ -f "$out/metadata.json" ] && return
    local resume=""
    [ -f "$out/training/last.pt" ] && resume=--resume
    "$TC" train --manifest "$WORK/cohorts/$2/manifest.csv" --out "$out" $resume \
        --input-shape 64 64 64 --fold 0 --folds 8 --seed 0 --device cpu \
        --loader-workers "$WORKERS" --max-hours "$HOURS" --augmentation "$3" \
        --cache "$WORK/cache" --name "ablation-$1" \
        --description "issue 12 ablation at 64^3: $1; not for clinical use"
}

train g1 g1 paper
train g2-lumpy g2-lumpy paper
train g2-lumpy-ext g2-lumpy extended

{
    echo "| trained on | g2-cluster (held-out family) | g2-lumpy-new (fresh seed) | g1-seed2 |"
    echo "|---|---|---|---|"
    for variant in g1 g2-lumpy g2-lumpy-ext; do
        row="| $variant |"
        for test in g2-cluster g2-lumpy-new g1-seed2; do
            report=$WORK/reports/$variant/$test
            [ -f "$report/metrics.json" ] || "$TC" evaluate --model "$WORK/models/$variant" \
                --manifest "$WORK/cohorts/$test/manifest.csv" --out "$report" --device cpu \
                >/dev/null
            row="$row $(python3 -c "import json; print(f\"{json.load(open('$report/metrics.json'))['accuracy']:.1%}\")") |"
        done
        echo "$row"
    done
} | tee "$WORK/summary.md"
