"""Write the Slicer ExtensionsIndex catalog entry (TumorClassifier.json) for a release.

    python scripts/write_catalog_entry.py --repository https://github.com/OWNER/TumorClassifier \
        [--revision main] [--out .]

Category and build dependencies are read from CMakeLists.txt, so the entry cannot drift from
the extension's own description. The entry follows catalog-entry schema v1.0.1, which allows
no other keys (description, icon and screenshots live in CMakeLists.txt). Submit it as a pull
request to github.com/Slicer/ExtensionsIndex.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ("https://raw.githubusercontent.com/Slicer/Slicer/main/Schemas/"
          "slicer-extension-catalog-entry-schema-v1.0.1.json#")


def cmake_setting(name: str, cmake: Path = ROOT / "CMakeLists.txt") -> str:
    match = re.search(rf'^set\({name} "([^"]*)"', cmake.read_text(encoding="utf-8"), re.M)
    if match is None:
        raise SystemExit(f"{cmake}: no {name} setting")
    return match.group(1)


def catalog_entry(repository: str, revision: str = "main",
                  cmake: Path = ROOT / "CMakeLists.txt") -> dict:
    if not re.match(r"^https://\S+$", repository):
        raise SystemExit(f"--repository must be the repository's https address, not "
                         f"{repository!r}")
    return {"$schema": SCHEMA,
            "build_dependencies": cmake_setting("EXTENSION_DEPENDS", cmake).split(),
            "build_subdirectory": ".",
            "category": cmake_setting("EXTENSION_CATEGORY", cmake),
            "scm_revision": revision,
            "scm_type": "git",
            "scm_url": repository if repository.endswith(".git") else repository + ".git",
            "tier": 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repository", required=True, help="https address of the repository")
    parser.add_argument("--revision", default="main")
    parser.add_argument("--out", type=Path, default=Path("."))
    args = parser.parse_args()
    path = args.out / "TumorClassifier.json"  # the index names entries after the extension
    path.write_text(json.dumps(catalog_entry(args.repository, args.revision), indent=2) + "\n",
                    encoding="utf-8")
    print(path)


if __name__ == "__main__":
    main()
