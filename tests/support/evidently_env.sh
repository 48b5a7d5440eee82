#!/usr/bin/env bash
# Create the Evidently virtualenv that tests/domain/monitoring/test_evidently_agreement.py (and
# bench/monitoring.py) use, unless it is already there. Evidently 0.7.23 does not import beside
# our pandas 3, so it lives in its own virtualenv with pandas < 3; the product never depends on it.
#
#   bash tests/support/evidently_env.sh     # prints the virtualenv's python on the last line
#
# MODELBOT_EVIDENTLY_VENV overrides the location (default bench/.venv-evidently, git-ignored).
# The marker file is the one bench/_common.py:ensure_venv writes, so both reuse one venv.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv="${MODELBOT_EVIDENTLY_VENV:-bench/.venv-evidently}"
# keep in step with EVIDENTLY_REQUIREMENTS in bench/monitoring.py (one marker, one venv)
requirements=("evidently==0.7.23" "pandas<3" "pyarrow")
python="${PYTHON:-python3}"
wanted="$(printf "%s\n" "${requirements[@]}")"

ready() {
  [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.bench-requirements" 2>/dev/null)" = "$wanted" ]
}

if ! ready; then
  echo "creating $venv with ${requirements[*]} (once; a few minutes) …" >&2
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${requirements[@]}"
  printf '%s' "$wanted" > "$venv/.bench-requirements"
fi
"$venv/bin/python" -c "import evidently" >/dev/null
echo "$venv/bin/python"
