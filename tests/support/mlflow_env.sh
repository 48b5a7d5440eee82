#!/usr/bin/env bash
# Create the MLflow virtualenv that tests/test_mlflow_import.py (and bench/registry.py) use,
# unless it is already there. MLflow lives in its own virtualenv because it does not import
# beside our pandas 3; the product never depends on it.
#
#   bash tests/support/mlflow_env.sh        # prints the virtualenv's python on the last line
#
# MODELBOT_MLFLOW_VENV overrides the location (default bench/.venv-mlflow, git-ignored).
# The marker file is the one bench/_common.py:ensure_venv writes, so both reuse one venv.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv="${MODELBOT_MLFLOW_VENV:-bench/.venv-mlflow}"
requirement="mlflow==3.17.2"  # 3.18.0 is listed but its mlflow-skinny is not on the index here
python="${PYTHON:-python3}"

ready() {
  [ -x "$venv/bin/python" ] && [ -x "$venv/bin/mlflow" ] \
    && [ "$(cat "$venv/.bench-requirements" 2>/dev/null)" = "$requirement" ]
}

if ! ready; then
  echo "creating $venv with $requirement (once; a minute or two) …" >&2
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$requirement"
  printf '%s' "$requirement" > "$venv/.bench-requirements"
fi
"$venv/bin/python" -c "import mlflow" >/dev/null
echo "$venv/bin/python"
