"""The Ray runner's place in the package, without starting Ray (integration/test_ray_faults.py
runs it): Ray is an optional extra that only cluster/ray_batch.py imports, and `--ray` without
it says how to install it."""

import re
import socket
import sys
from pathlib import Path

import pytest
from conftest import modules_loaded_by

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


@pytest.mark.slow
def test_classifying_and_the_slicer_worker_do_not_load_ray():
    code = ("import TumorClassifierLib.cli as c, TumorClassifierLib.batch, "
            "TumorClassifierLib.inference, TumorClassifierLib.worker.server, "
            "TumorClassifierLib.cluster.shards; c.build_parser()")
    assert modules_loaded_by(code, ("ray",)) == []


def test_ray_option_without_ray_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    monkeypatch.delitem(sys.modules, "TumorClassifierLib.cluster.ray_batch", raising=False)
    assert main(["classify", "x.nii.gz", "--out", str(tmp_path), "--ray"]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install 'tumorclassifier[ray]'" in err and "\n" not in err


def test_a_ray_address_that_nothing_answers_on_is_one_line_at_once(tmp_path, capsys):
    pytest.importorskip("ray", reason="Ray is not installed (the [ray] extra)")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main(["classify", "x.nii.gz", "--out", str(tmp_path), "--ray",
                 f"127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"--ray 127.0.0.1:{port}: no Ray cluster answers there" in err and "\n" not in err


def test_ray_auto_without_a_cluster_on_this_machine_is_one_line(tmp_path, capsys, monkeypatch):
    pytest.importorskip("ray", reason="Ray is not installed (the [ray] extra)")
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))  # where Ray looks for a running cluster
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert main(["classify", "x.nii.gz", "--out", str(tmp_path / "out"), "--ray", "auto"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --ray auto: Could not find any running Ray instance")
    assert "\n" not in err
