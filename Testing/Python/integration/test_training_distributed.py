"""Training across processes: two ranks under torchrun (gloo), one bundle written by rank 0."""

import os
import subprocess
import sys

from TumorClassifierLib.bundle import load_bundle


def test_two_process_gloo_run_trains_and_saves_one_bundle(phantom_cohort, preprocessing_cache,
                                                          tmp_path):
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node=2", "-m", "TumorClassifierLib.cli", "train",
               "--manifest", str(phantom_cohort), "--out", str(out), "--cache",
               str(preprocessing_cache), "--folds", "2", "--max-epochs", "2", "--batch-size",
               "1", "--loader-workers", "0", "--input-shape", "32", "32", "32",
               "--base-filters", "2", "--depth", "3", "--device", "cpu"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("model bundle:") == 1  # rank 0 alone reports and writes
    bundle = load_bundle(out)
    assert bundle.metadata.training["epochs_run"] == 2
