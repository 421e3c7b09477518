#!/usr/bin/env bash
# Command 1 of the README: install, then run the tiny-world workflow end to end.
# Extra arguments go to snakemake (e.g. `bash scripts/run.sh --configfile config/micro.yaml`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} HF_DATASETS_OFFLINE=${HF_DATASETS_OFFLINE:-1}
# A run killed earlier leaves Snakemake's lock behind; nothing else may be running here, so drop it.
snakemake --unlock "$@" >/dev/null 2>&1 || true
snakemake --cores all "$@"
