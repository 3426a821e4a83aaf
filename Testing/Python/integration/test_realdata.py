"""The real scans in ../shared/realdata: never copied here, never trained on; read at test time."""

import csv

import pytest
from conftest import REALDATA, needs_realdata

from TumorClassifierLib.atlas import load_atlas
from TumorClassifierLib.preprocessing import (
    PreprocessingConfig,
    register_to_best_atlas,
    skull_evidence,
)
from TumorClassifierLib.volume import read_sitk_image


def manifest_rows():
    if not (REALDATA / "MANIFEST.tsv").is_file():
        return []
    with open(REALDATA / "MANIFEST.tsv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


@needs_realdata
@pytest.mark.parametrize("row", manifest_rows(), ids=lambda row: row["case"])
def test_real_scan_reads_and_registers(row):
    image = read_sitk_image(REALDATA / row["case"] / row["image"])
    assert image.GetDimension() == 3
    stripped = row["skull"].startswith("skull-stripped")
    evidence = skull_evidence(image, PreprocessingConfig())
    assert evidence.decision in (stripped, None)  # never the wrong atlas outright
    result = register_to_best_atlas(image, load_atlas(), evidence, PreprocessingConfig())
    assert result.skull_stripped_atlas == stripped
    assert result.ok, result.problem
    assert result.brain_in_view > 0.9


@needs_realdata
def test_manifest_lists_sixteen_cases():
    assert len(manifest_rows()) == 16
