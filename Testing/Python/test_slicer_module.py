"""Static checks of the Slicer module (Slicer itself is not needed to run them)."""

import ast
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "TumorClassifier.py"
UI = ROOT / "Resources" / "UI" / "TumorClassifier.ui"
CMAKE = ROOT / "CMakeLists.txt"
# What a Slicer module may import at file scope: the standard library and Slicer's own.
ALLOWED_TOP_LEVEL = {"logging", "os", "shutil", "sys", "tempfile", "time", "qt", "ctk", "vtk",
                     "slicer"}


def cmake_list(name: str) -> list[str]:
    text = CMAKE.read_text(encoding="utf-8")
    block = re.search(rf"set\({name}\n(.*?)\n\s*\)", text, re.S).group(1)
    return [line.strip() for line in block.splitlines() if line.strip()]


def test_every_library_file_is_in_the_cmake_scripts_list():
    listed = {entry.replace("${MODULE_NAME}", "TumorClassifier")
              for entry in cmake_list("MODULE_PYTHON_SCRIPTS")}
    on_disk = {str(p.relative_to(ROOT)) for p in (ROOT / "TumorClassifierLib").rglob("*.py")}
    assert on_disk | {"TumorClassifier.py"} == listed


def test_listed_resources_exist():
    for entry in cmake_list("MODULE_PYTHON_RESOURCES"):
        if entry.startswith("${MODULE_SAMPLE") or entry.startswith("${MODULE_DEFAULT"):
            continue
        assert (ROOT / entry.replace("${MODULE_NAME}", "TumorClassifier")).is_file(), entry


def test_module_compiles_and_imports_nothing_heavy_at_file_scope():
    tree = ast.parse(MODULE.read_text(encoding="utf-8"))
    compile(tree, str(MODULE), "exec")
    for node in tree.body:
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module]
        else:
            continue
        for name in names:
            assert name.split(".")[0] in ALLOWED_TOP_LEVEL, f"file-scope import of {name}"


def widget_names() -> set[str]:
    return {w.get("name") for w in ElementTree.parse(UI).iter("widget")}


def test_every_widget_the_module_uses_exists_in_the_ui():
    used = set(re.findall(r"self\.ui\.(\w+)", MODULE.read_text(encoding="utf-8")))
    assert used and used <= widget_names(), used - widget_names()


def test_ui_parameter_bindings_name_fields_of_the_parameter_node():
    tree = ast.parse(MODULE.read_text(encoding="utf-8"))
    wrapper = next(n for n in tree.body if isinstance(n, ast.ClassDef)
                   and n.name == "TumorClassifierParameterNode")
    fields = {n.target.id for n in wrapper.body if isinstance(n, ast.AnnAssign)}
    bound = {p.find("string").text for p in ElementTree.parse(UI).iter("property")
             if p.get("name") == "SlicerParameterName"}
    assert bound and bound <= fields


def test_module_classes_follow_the_scripted_module_template():
    tree = ast.parse(MODULE.read_text(encoding="utf-8"))
    classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    assert {"TumorClassifier", "TumorClassifierWidget", "TumorClassifierLogic",
            "TumorClassifierTest", "TumorClassifierParameterNode"} <= classes
    logic = next(n for n in tree.body if isinstance(n, ast.ClassDef)
                 and n.name == "TumorClassifierLogic")
    methods = {n.name for n in logic.body if isinstance(n, ast.FunctionDef)}
    assert {"classifyVolume", "classifyFiles"} <= methods


def test_catalog_entry_follows_the_schema_and_the_cmake_description(tmp_path):
    script = ROOT / "scripts" / "write_catalog_entry.py"
    done = subprocess.run([sys.executable, str(script), "--repository",
                           "https://github.com/example/TumorClassifier", "--out", str(tmp_path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    entry = json.loads((tmp_path / "TumorClassifier.json").read_text(encoding="utf-8"))
    allowed = {"$schema", "build_dependencies", "build_subdirectory", "category", "enabled",
               "scm_revision", "scm_type", "scm_url", "tier"}  # schema v1.0.1, no others
    assert set(entry) <= allowed and {"$schema", "category", "scm_url"} <= set(entry)
    cmake = CMAKE.read_text(encoding="utf-8")
    assert f'set(EXTENSION_CATEGORY "{entry["category"]}")' in cmake
    assert f'set(EXTENSION_DEPENDS "{" ".join(entry["build_dependencies"])}")' in cmake
    assert entry["scm_url"] == "https://github.com/example/TumorClassifier.git"
    refused = subprocess.run([sys.executable, str(script), "--repository", "TODO",
                              "--out", str(tmp_path)], capture_output=True, text=True)
    assert refused.returncode != 0 and "https address" in refused.stderr


def test_cmake_includes_of_this_repository_exist():
    included = re.findall(r"include\(\$\{CMAKE_CURRENT_SOURCE_DIR\}/([^)]+)\)",
                          CMAKE.read_text(encoding="utf-8"))
    assert included and all((ROOT / path).is_file() for path in included), included


def test_the_module_reads_minimum_versions_from_the_library_only():
    """One source of truth: no version pins written into the module file itself."""
    text = MODULE.read_text(encoding="utf-8")
    assert not re.search(r"[\"'](torch|monai|safetensors)\s*>=", text)
