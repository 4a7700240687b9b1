"""The CLI workers' changes to nbgrader (``grader/nbgrader_speedups.py``) keep nbgrader's answers.

That the CLI's grades equal stock nbgrader's is ``test_cli.py``'s job (its workers apply them); here,
the metadata check still refuses what nbgrader refuses, with the same message, and shared engines
still see every write.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.grading

CHECK = r"""
import copy, json, sys
import nbformat
from nbgrader.nbgraderformat import MetadataValidator, ValidationError
nb = nbformat.read(sys.argv[1], as_version=4)
cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade"))
bad = [("points", "three"), ("grade_id", 7), ("locked", "yes")]
def verdicts():
    out = ["ok" if MetadataValidator().validate_nb(nb) is None else "?"]
    for key, value in bad:
        broken = copy.deepcopy(nb)
        next(c for c in broken.cells if c.metadata.get("nbgrader", {}).get("grade")).metadata.nbgrader[key] = value
        try:
            MetadataValidator().validate_nb(broken)
            out.append("accepted")
        except ValidationError as err:
            out.append(f"{type(err).__name__}: {err.message}")
    return out
stock = verdicts()
from grader.nbgrader_speedups import speed_up_nbgrader
speed_up_nbgrader(); speed_up_nbgrader()
print(json.dumps([stock, verdicts()]))
"""


def test_the_metadata_check_refuses_the_same_cells_with_the_same_message() -> None:
    from grader.coursedir import COURSE_DIR

    release = COURSE_DIR / "release" / "ch2-sdpa" / "ch2-sdpa.ipynb"
    out = subprocess.run([sys.executable, "-c", CHECK, str(release)], capture_output=True, text=True, check=True)
    stock, patched = json.loads(out.stdout)
    assert stock == patched
    assert stock[0] == "ok" and all(v.startswith("ValidationError: ") for v in stock[1:])


ENGINES = r"""
import sys, warnings
warnings.filterwarnings("ignore")
from nbgrader.api import Gradebook
from grader.nbgrader_speedups import speed_up_nbgrader
speed_up_nbgrader()
url = "sqlite:///" + sys.argv[1]
with Gradebook(url) as gb:
    gb.add_student("12345")
with Gradebook(url) as gb:
    gb.add_student("67890")
with Gradebook(url) as gb:
    print(sorted(s.id for s in gb.students), gb.engine is Gradebook(url).engine)
"""


def test_gradebooks_of_one_database_share_an_engine_and_see_every_write(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    out = subprocess.run([sys.executable, "-c", ENGINES, str(tmp_path / "gradebook.db")], capture_output=True,
                         text=True, check=True, env=env)  # a new gradebook runs nbgrader's `alembic`
    assert out.stdout.strip() == "['12345', '67890'] True"
