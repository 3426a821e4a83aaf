"""Only for the one package that automatic discovery cannot see: Resources/, packaged inside
the library as TumorClassifierLib.Resources (pyproject.toml maps its folder). Everything else is
in pyproject.toml."""
from setuptools import find_packages, setup

setup(packages=find_packages(include=["TumorClassifierLib*"]) + ["TumorClassifierLib.Resources"])
