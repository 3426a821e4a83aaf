"""Minimum versions in one place, equal to pyproject.toml's, checked without importing them."""

import re
from pathlib import Path

import pytest

from TumorClassifierLib import requirements
from TumorClassifierLib.requirements import (
    MINIMUM_VERSIONS,
    describe_problems,
    missing_or_old,
    pinned_constraints,
    version_tuple,
)

ROOT = Path(__file__).resolve().parents[2]


def test_minimum_versions_are_pyprojects():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    block = re.search(r"^dependencies = \[(.*?)^\]", text, re.S | re.M).group(1)
    listed = dict(re.findall(r'"([A-Za-z0-9_.-]+)>=([0-9.]+)"', block))
    assert listed == MINIMUM_VERSIONS


def test_the_slicer_module_installs_or_keeps_every_dependency_pyproject_lists():
    """Inside Slicer each dependency is either pip-installed by the module or one it holds at
    Slicer's own version (torch from the PyTorch extension): none is forgotten."""
    from TumorClassifierLib.requirements import SLICER_PINNED_PACKAGES, SLICER_PIP_PACKAGES
    assert set(SLICER_PIP_PACKAGES) | set(SLICER_PINNED_PACKAGES) >= set(MINIMUM_VERSIONS)
    module = (ROOT / "TumorClassifier.py").read_text(encoding="utf-8")
    assert "SLICER_PIP_PACKAGES" in module and "pinned_constraints" in module


@pytest.mark.parametrize("text, expected", [("2.13.0+cpu", (2, 13, 0)), ("1.6.1", (1, 6, 1)),
                                            ("2.1.0a0", (2, 1, 0)), ("5.10rc1", (5, 10)),
                                            ("0.4", (0, 4))])
def test_version_tuple(text, expected):
    assert version_tuple(text) == expected


def test_this_environment_meets_every_minimum():
    assert missing_or_old() == {}


def test_missing_and_old_packages_are_named_with_what_is_needed(monkeypatch):
    monkeypatch.setitem(MINIMUM_VERSIONS, "numpy", "999.0")
    monkeypatch.setitem(MINIMUM_VERSIONS, "no-such-distribution-x", "1.0")
    problems = missing_or_old(("numpy", "no-such-distribution-x", "torch"))
    assert set(problems) == {"numpy", "no-such-distribution-x"}
    assert problems["no-such-distribution-x"] is None
    text = describe_problems(problems)
    assert "numpy" in text and "too old (needs numpy>=999.0)" in text
    assert "no-such-distribution-x is not installed (needs no-such-distribution-x>=1.0)" in text


def test_constraints_pin_the_installed_torch_and_numpy():
    pins = pinned_constraints()
    assert f"torch=={requirements.installed_version('torch')}" in pins
    assert f"numpy=={requirements.installed_version('numpy')}" in pins
    assert not any(pin.startswith("vtk==") for pin in pinned_constraints(("no-such-dist",)))
