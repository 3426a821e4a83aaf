"""What the library needs installed, in one place, and a check that imports none of it.

pyproject.toml lists the same minimums (a test keeps the two equal). Inside 3D Slicer, torch
comes only from the PyTorch extension (the user's choice of CUDA or CPU build); numpy,
SimpleITK and vtk are Slicer's own and are never replaced.
"""

from __future__ import annotations

import importlib.metadata
import re

# distribution name -> minimum version
MINIMUM_VERSIONS = {
    "torch": "2.1",
    "monai": "1.3",
    "SimpleITK": "2.3",
    "numpy": "1.24",
    "safetensors": "0.4",
    "matplotlib": "3.7",
    "tqdm": "4.60",
}
# Installed by pip inside Slicer (everything else is Slicer's own, or torch from PyTorchUtils).
SLICER_PIP_PACKAGES = ("monai", "safetensors", "matplotlib", "tqdm")
# Held at the installed version by every pip install inside Slicer.
SLICER_PINNED_PACKAGES = ("torch", "numpy", "SimpleITK", "vtk")


def version_tuple(text: str) -> tuple[int, ...]:
    """'2.13.0+cpu' -> (2, 13, 0); stops at the first part that is not a number."""
    parts = []
    for part in re.split(r"[.+-]", text):
        match = re.match(r"\d+", part)
        if match is None:
            break
        parts.append(int(match.group()))
        if match.group() != part:
            break
    return tuple(parts)


def installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def requirement(distribution: str) -> str:
    """A pip requirement string such as 'monai>=1.3'."""
    return f"{distribution}>={MINIMUM_VERSIONS[distribution]}"


def missing_or_old(distributions=tuple(MINIMUM_VERSIONS)) -> dict[str, str | None]:
    """{distribution: installed version, or None when absent} for each one that does not meet
    its minimum."""
    problems = {}
    for distribution in distributions:
        version = installed_version(distribution)
        if version is None or version_tuple(version) < version_tuple(
                MINIMUM_VERSIONS[distribution]):
            problems[distribution] = version
    return problems


def describe_problems(problems: dict[str, str | None]) -> str:
    """One sentence per problem that says what is wrong."""
    return "; ".join(f"{name} is not installed (needs {requirement(name)})" if version is None
                     else f"{name} {version} is too old (needs {requirement(name)})"
                     for name, version in problems.items())


def pinned_constraints(distributions=SLICER_PINNED_PACKAGES) -> list[str]:
    """'name==version' for each installed one: pip constraints that keep them as they are."""
    return [f"{name}=={version}" for name in distributions
            if (version := installed_version(name)) is not None]
