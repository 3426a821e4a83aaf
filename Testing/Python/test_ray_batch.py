"""The Ray runner's place in the package, without starting Ray (integration/test_ray_faults.py
runs it): Ray is an optional extra that only cluster/ray_batch.py imports, and `--ray` without
it says how to install it."""

import re
import subprocess
import sys
from pathlib import Path

from TumorClassifierLib.cli import main

REPOSITORY = Path(__file__).resolve().parents[2]


def test_only_the_ray_runner_imports_ray():
    importing = sorted(
        str(path.relative_to(REPOSITORY))
        for path in [*(REPOSITORY / "TumorClassifierLib").rglob("*.py"),
                     REPOSITORY / "TumorClassifier.py"]
        if re.search(r"^\s*(import ray\b|from ray\b)", path.read_text(encoding="utf-8"),
                     re.MULTILINE))
    assert importing == ["TumorClassifierLib/cluster/ray_batch.py"]


def test_classifying_and_the_slicer_worker_do_not_load_ray():
    probe = ("import sys; import TumorClassifierLib.cli as c, TumorClassifierLib.batch, "
             "TumorClassifierLib.inference, TumorClassifierLib.worker, "
             "TumorClassifierLib.cluster.shards; c.build_parser(); print('ray' in sys.modules)")
    output = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert output == "False"


def test_ray_option_without_ray_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    monkeypatch.delitem(sys.modules, "TumorClassifierLib.cluster.ray_batch", raising=False)
    assert main(["classify", "x.nii.gz", "--out", str(tmp_path), "--ray"]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install 'tumorclassifier[ray]'" in err and "\n" not in err
