import csv
import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import modules_loaded_by, plant_lesion

from TumorClassifierLib.cli import main
from TumorClassifierLib.volume import read_volume, write_volume


@pytest.fixture(scope="module")
def scans(head, tmp_path_factory):
    folder = tmp_path_factory.mktemp("scans")
    first = write_volume(plant_lesion(head, (150.0, -100.0, 90.0), 12.0, 3000.0),
                         folder / "first case.nii.gz")  # a space in the name
    second = write_volume(head, folder / "zweite_ü.nrrd")  # non-ASCII
    return first, second


def rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_batch_writes_outputs_reports_a_bad_case_and_resumes(scans, tiny_bundle, tmp_path,
                                                             capsys):
    out = tmp_path / "out"
    missing = tmp_path / "missing.nii.gz"
    code = main(["classify", str(scans[0]), str(missing), str(scans[1]),
                 "--model", str(tiny_bundle), "--out", str(out)])
    assert code == 2
    error_lines = [line for line in capsys.readouterr().err.splitlines()
                   if line.startswith("error:")]
    assert error_lines == [f"error: {missing}: no such file or folder"]
    table = rows(out / "results.csv")
    assert [(r["case"], r["status"]) for r in table] == [
        ("first case", "ok"), ("missing", "error"), ("zweite_ü", "ok")]
    record = json.loads((out / "first case_probabilities.json").read_text(encoding="utf-8"))
    assert abs(sum(record["probabilities"].values()) - 1) < 1e-9
    # A run report: which weights and which software produced it.
    from TumorClassifierLib.bundle import load_bundle
    assert record["model"]["weights_sha256"] == load_bundle(tiny_bundle).metadata.weights_sha256
    assert record["software"]["torch"] == torch.__version__ and record["software"]["monai"]
    heatmap = read_volume(out / "first case_heatmap.nii.gz")
    assert heatmap.same_geometry(read_volume(scans[0]), atol=1e-4)
    assert (out / "zweite_ü_overlay.png").stat().st_size > 10_000
    assert not [p for p in out.iterdir() if ".part" in p.name]  # no half-written files

    # A re-run skips finished cases and retries only the failed one.
    code = main(["classify", str(scans[0]), str(missing), str(scans[1]),
                 "--model", str(tiny_bundle), "--out", str(out)])
    assert code == 2
    assert "skipped 2 case(s)" in capsys.readouterr().err
    assert [r["case"] for r in rows(out / "results.csv")] == [
        "first case", "missing", "zweite_ü", "missing"]


def test_manifest_run(scans, tiny_bundle, tmp_path):
    manifest = tmp_path / "cases.csv"
    manifest.write_text(f"path,case\n{scans[1]},only\n", encoding="utf-8")
    assert main(["classify", "--manifest", str(manifest), "--model", str(tiny_bundle),
                 "--out", str(tmp_path / "o"), "--no-overlay", "--cam-class", "HGG"]) == 0
    record = json.loads((tmp_path / "o" / "only_probabilities.json").read_text(encoding="utf-8"))
    assert record["cam_class"] == "HGG"
    assert not (tmp_path / "o" / "only_overlay.png").exists()


@pytest.mark.slow
def test_tta_option_reaches_the_outputs(scans, tiny_bundle, tmp_path, capsys):
    assert main(["classify", str(scans[1]), "--model", str(tiny_bundle), "--out",
                 str(tmp_path / "o"), "--no-overlay", "--tta"]) == 0
    record = json.loads((tmp_path / "o" / "zweite_ü_probabilities.json").read_text(
        encoding="utf-8"))
    assert record["augmentations"] == 8 and 0 <= record["entropy"] <= 1
    assert "mean of 8 flipped passes" in capsys.readouterr().out
    assert float(rows(tmp_path / "o" / "results.csv")[0]["entropy"]) == pytest.approx(
        record["entropy"], abs=1e-6)


@pytest.mark.parametrize("args, message", [
    (["classify"], "give at least one scan"),
    (["classify", "x.nii.gz", "--model", "/no/such/model"], "/no/such/model: no such model"),
    (["classify", "x.nii.gz", "--model", "MODEL", "--device", "tpu"], "device must be"),
    (["classify", "--manifest", "/no/such.csv", "--model", "MODEL"], "no such manifest"),
    (["classify", "SCAN", "--model", "MODEL", "--cam-class", "banana"], "unknown class"),
    (["evaluate", "--synthetic", "--model", "MODEL", "--per-class", "0", "--out", "OUT"],
     "--per-class must be at least 1"),
])
def test_user_errors_exit_2_with_one_line(args, message, tiny_bundle, scans, tmp_path, capsys):
    args = [{"MODEL": str(tiny_bundle), "SCAN": str(scans[1]),
             "OUT": str(tmp_path / "report")}.get(a, a) for a in args]
    args += ["--out", str(tmp_path / "out")] if args[0] == "classify" else []
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err


def test_demo_without_a_default_model_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TUMORCLASSIFIER_RESOURCES", str(tmp_path))
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 2
    assert "no default model is installed" in capsys.readouterr().err


def test_info_prints_the_model_card(tiny_bundle, capsys):
    assert main(["info", "--model", str(tiny_bundle)]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["name"] == "tiny-test" and card["network"]["base_filters"] == 2


@pytest.mark.slow
def test_console_script_hides_tracebacks_unless_debug(tmp_path):
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    command = [sys.executable, "-m", "TumorClassifierLib.cli", "classify", "x.nii.gz",
               "--model", str(tmp_path / "absent")]
    quiet = subprocess.run(command, capture_output=True, text=True, env=env)
    assert quiet.returncode == 2 and "Traceback" not in quiet.stderr
    assert quiet.stderr.strip().count("\n") == 0
    loud = subprocess.run(command[:3] + ["--debug"] + command[3:], capture_output=True,
                          text=True, env=env)
    assert "Traceback" in loud.stderr


def test_every_sub_command_names_its_handler():
    from TumorClassifierLib.cli import build_parser
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    for name, sub in commands.choices.items():
        assert callable(sub.get_default("handler")), name


def test_config_flags_parse_booleans_tuples_and_choices():
    from TumorClassifierLib.cli import TRAIN_CONFIGS, build_parser, config_from_args
    from TumorClassifierLib.settings import PreprocessingConfig, TrainingConfig
    parser = build_parser()
    base = ["train", "--manifest", "m.csv", "--out", "o"]
    defaults = parser.parse_args(base)
    # Without flags every configuration is its dataclass's default.
    assert [config_from_args(c, defaults) for c in TRAIN_CONFIGS] == [c() for c in TRAIN_CONFIGS]
    on = parser.parse_args(base + ["--bias-correction", "--input-shape", "64", "64", "48",
                                   "--augmentation", "extended", "--max-hours", "0.5"])
    preprocessing = config_from_args(PreprocessingConfig, on)
    assert preprocessing.bias_correction is True and preprocessing.input_shape == (64, 64, 48)
    training = config_from_args(TrainingConfig, on)
    assert (training.augmentation, training.max_hours) == ("extended", 0.5)
    off = parser.parse_args(base + ["--no-bias-correction"])
    assert config_from_args(PreprocessingConfig, off).bias_correction is False
    with pytest.raises(SystemExit):  # "False" is not silently read as True
        parser.parse_args(base + ["--bias-correction", "False"])
    with pytest.raises(SystemExit):
        parser.parse_args(base + ["--augmentation", "everything"])


def test_the_parser_imports_nothing_heavy():
    """`tumorclassifier --help` must answer at once: building the parser imports neither torch,
    MONAI, SimpleITK nor numpy (each handler imports what it needs)."""
    code = "from TumorClassifierLib.cli import build_parser; build_parser()"
    assert modules_loaded_by(code, ("torch", "monai", "SimpleITK", "numpy")) == []
