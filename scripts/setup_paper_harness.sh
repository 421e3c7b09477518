#!/usr/bin/env bash
# The paper's harness, lm-eval v0.4.0, in its own virtualenv (default ./.venv-paper-harness, or the
# folder given). lm-eval 0.4.0 needs transformers 4.x and the suite's trainer 5.x, so the two cannot
# share an environment. The evaluation rules run this venv's python for a family with
# `harness: v0.4.0` when Snakemake runs without --use-conda (with it: envs/eval-lm-v0.4.0.yaml).
# Idempotent: rebuilt only when envs/paper-harness.txt changed (its sha256 is kept in .complete);
# built in a temporary folder and renamed into place, so an interrupted build leaves nothing half-made. torch goes in first, pinned (a bare requirement would pull the CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-.venv-paper-harness}
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

PINS=$(sha256sum envs/paper-harness.txt | cut -d' ' -f1)
if [ -x "$DEST/bin/python" ] && [ "$(cat "$DEST/.complete" 2>/dev/null)" = "$PINS" ]; then
    echo "[paper-harness] $DEST is ready: lm-eval $("$DEST/bin/python" -c "import importlib.metadata as m; print(m.version('lm_eval'))")"
    exit 0
fi
TMP="$DEST.tmp$$"
trap 'rm -rf "$TMP"' EXIT
echo "[paper-harness] creating $DEST with $($PYTHON --version)"
"$PYTHON" -m venv "$TMP"
echo "[paper-harness] installing $TORCH_SPEC"
"$TMP/bin/python" -m pip install -q "$TORCH_SPEC"
echo "[paper-harness] installing envs/paper-harness.txt"
"$TMP/bin/python" -m pip install -q -r envs/paper-harness.txt
# The suite's code comes from this checkout (jobs import spin_core; nothing else of it is installed).
echo "$PWD" > "$("$TMP/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/spin-repro-checkout.pth"
echo "$PINS" > "$TMP/.complete"
rm -rf "$DEST"
mv "$TMP" "$DEST"
trap - EXIT
echo "[paper-harness] ok: $DEST, lm-eval $("$DEST/bin/python" -c "import importlib.metadata as m; print(m.version('lm_eval'))")"
