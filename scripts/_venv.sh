# Sourced by the other scripts: make sure .venv exists and matches requirements.txt.
# Needs only python3 (3.11) on the machine; installs from package registries alone.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
VENV="$ROOT/.venv"
STAMP="$VENV/.requirements.sha256"
want="$(sha256sum requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PY" -m venv "$VENV"
fi
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing requirements into $VENV (first run takes a few minutes)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.txt
  # Make the repository's packages (course, solutions, grader) importable from the venv. Not `pip install -e .`:
  # pyproject.toml packages the public `course` only (what students install), never solutions/ or grader/.
  "$VENV/bin/python" - "$ROOT" <<'PY'
import sys, sysconfig, pathlib
pathlib.Path(sysconfig.get_paths()["purelib"], "attention_course.pth").write_text(sys.argv[1] + "\n")
PY
  echo "$want" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
