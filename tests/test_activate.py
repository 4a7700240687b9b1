"""``source scripts/activate.sh`` in an instructor's interactive shell changes nothing but PATH (the venv).

The guide's commands are pasted into an interactive shell; ``scripts/_venv.sh`` (what the build and test
scripts source) sets ``set -euo pipefail`` and ``cd``s to the repository, so sourcing it there made the
next failing command close the terminal. Here an interactive bash (``-i``, no rc files) sources the
activation from another folder, with options of its own set, and must keep its options, flags and working
directory; a failing command afterwards must not end it; and an activation that cannot set up the venv
returns 1 and leaves the shell as it was.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHECK = """
set -o noclobber; shopt -s nullglob
before="$(set +o; shopt -p)"; flags="$-"; here="$PWD"
source "{root}/scripts/activate.sh"; echo "status=$?"
[ "$(set +o; shopt -p)" = "$before" ] && echo same-options || echo OPTIONS-CHANGED
[ "$-" = "$flags" ] && echo same-flags || echo "FLAGS-CHANGED $flags -> $-"
[ "$PWD" = "$here" ] && echo same-folder || echo "FOLDER-CHANGED $PWD"
echo "python=$(command -v python)"
false
ls /no/such/folder
echo still-open
"""


def run_interactive(root: Path, cwd: Path, env: dict | None = None) -> str:
    res = subprocess.run(["bash", "--norc", "--noprofile", "-i", "-c", CHECK.format(root=root)], cwd=cwd,
                         capture_output=True, text=True, timeout=300, env=env, stdin=subprocess.DEVNULL)
    return res.stdout + res.stderr


def test_activation_leaves_options_folder_and_shell_alone(tmp_path):
    out = run_interactive(ROOT, tmp_path)
    assert "status=0" in out
    assert "same-options" in out and "same-flags" in out and "same-folder" in out, out
    assert f"python={ROOT / '.venv' / 'bin' / 'python'}" in out
    assert "still-open" in out  # `false` and a failing `ls` did not end the shell


def test_a_failed_setup_returns_1_and_leaves_the_shell_alone(tmp_path):
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    for name in ("activate.sh", "_venv.sh"):
        shutil.copy(ROOT / "scripts" / name, repo / "scripts" / name)
    (repo / "requirements.txt").write_text("numpy\n")
    (repo / "pyproject.toml").write_text("")
    out = run_interactive(repo, tmp_path, env={"PATH": "/usr/bin:/bin", "PYTHON": "/no/such/python3",
                                               "HOME": str(tmp_path)})
    assert "status=1" in out and "could not set up" in out, out
    assert "same-options" in out and "same-flags" in out and "same-folder" in out, out
    assert "still-open" in out and not (repo / ".venv").exists()
