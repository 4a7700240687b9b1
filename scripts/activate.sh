# Put the course's .venv on PATH in YOUR shell: `source scripts/activate.sh` (bash or zsh, from any folder).
#
# It creates or updates .venv (scripts/_venv.sh, run in a child process: its `set -euo pipefail` and its
# `cd` stay there), then only sources .venv/bin/activate. Your shell's options and working directory are
# left as they were, and a failing command afterwards does not close your terminal. If the setup fails,
# it says so and returns 1 (it never exits your shell). `deactivate` undoes it.
_attention_root="$(cd "$(dirname "${BASH_SOURCE[0]:-${(%):-%x}}")/.." && pwd)"
if bash -c 'source "$1/scripts/_venv.sh"' _ "$_attention_root" >&2; then
  # shellcheck disable=SC1091
  . "$_attention_root/.venv/bin/activate"
  echo "[activate] $_attention_root/.venv is active (python: $(command -v python)); 'deactivate' undoes it" >&2
  unset _attention_root
else
  echo "[activate] could not set up $_attention_root/.venv (see above); your shell is unchanged" >&2
  unset _attention_root
  return 1 2>/dev/null || true
fi
