#!/usr/bin/env bash
# Install spin-repro and everything it needs into ./.venv (created if missing). Idempotent.
# torch goes in first, pinned: a bare `torch` requirement would pull the CUDA build (gigabytes).
# On a GPU machine set TORCH_SPEC (e.g. TORCH_SPEC="torch==2.13.0") and EXTRAS="test,analysis,gpu".
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
EXTRAS=${EXTRAS:-test,analysis}

if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv with $($PYTHON --version)"
    "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    echo "[setup] installing $TORCH_SPEC"
    .venv/bin/python -m pip install -q "$TORCH_SPEC"
fi
echo "[setup] installing spin-repro[$EXTRAS]"
.venv/bin/python -m pip install -q -e ".[$EXTRAS]"
echo "[setup] ok: $(.venv/bin/python -c 'import torch, transformers, snakemake; print("torch", torch.__version__, "| transformers", transformers.__version__, "| snakemake", snakemake.__version__)')"
