"""The wheel carries every module: each folder of the library is a package that setup.py finds."""

from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parents[2]


def test_every_library_folder_is_a_package_the_wheel_finds():
    folders_with_code = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "TumorClassifierLib").rglob("*.py")}
    found = set(find_packages(str(ROOT), include=["TumorClassifierLib*"]))
    assert folders_with_code == found


def test_setup_py_adds_the_resources_package_that_pyproject_maps():
    setup_text = (ROOT / "setup.py").read_text(encoding="utf-8")
    pyproject_text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"TumorClassifierLib.Resources"' in setup_text
    assert '"TumorClassifierLib.Resources" = "Resources"' in pyproject_text


def test_the_library_map_names_every_module_and_sub_package():
    """TumorClassifierLib/README.md is the newcomer's map: a module missing from it is a gap."""
    text = (ROOT / "TumorClassifierLib" / "README.md").read_text(encoding="utf-8")
    library = ROOT / "TumorClassifierLib"
    missing = [str(path.relative_to(library)) for path in library.rglob("*.py")
               if path.stem != "__init__" and f"`{path.stem}`" not in text]
    missing += [package.name for package in library.iterdir()
                if (package / "__init__.py").is_file() and f"`{package.name}/`" not in text]
    assert missing == []
