#!/bin/bash
# Fill .device/ (ignored by git) with what scripts/gpu_session.sh needs on a bare GPU machine
# that has PyTorch but cannot download: SimpleITK (its 53 MB wheel unpacked and xz-compressed to
# ~29 MB, to fit a 64 MiB transfer), the MONAI and nibabel wheels for Python 3.12, and the
# starting weights as float16 (half the size; the session widens them back to float32).
#   bash scripts/prepare_gpu_session.sh [BUNDLE]   (default: Resources/Models/default)
set -eu
BUNDLE=${1:-Resources/Models/default}
PY=${PY:-.venv/bin/python}
rm -rf .device && mkdir -p .device/init .device/wheels
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .device/wheels monai==1.6.1 SimpleITK==2.5.7 nibabel==5.4.2
mv .device/wheels/monai-*.whl .device/wheels/nibabel-*.whl .device/
unpacked=$(mktemp -d)
(cd "$unpacked" && unzip -q "$OLDPWD"/.device/wheels/simpleitk-*.whl)
tar -C "$unpacked" -cf - . | xz -T0 -6 > .device/simpleitk.tar.xz
rm -rf "$unpacked" .device/wheels
cp "$BUNDLE/metadata.json" .device/init/
"$PY" - "$BUNDLE" <<'PY'
import sys
from safetensors.torch import load_file, save_file
weights = load_file(f"{sys.argv[1]}/model.safetensors")
save_file({k: v.half() for k, v in weights.items()}, ".device/init/weights.safetensors")
PY
du -sh .device/*
