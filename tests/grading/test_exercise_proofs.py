"""Proofs that every exercise notebook grades as intended, with stock nbgrader.

For every chapter, in a temporary copy of the course directory, one ``nbgrader autograde`` run grades
these students together:

- ``reference``: the generated instructor notebook (full marks expected);
- ``untouched``: the student release as handed out (0 points, and the grader finishes);
- ``mistakes-<k>``: the release filled in correctly except for known mistakes (the exercise folder's
  ``checks.py``), the k-th mistake of every graded function at once (the functions are graded
  independently): each mistaken function's grade cell gets 0, the others full marks, and
  ``nbgrader generate_feedback`` shows each mistake's message.

Grading is the real thing: every notebook runs in a bubblewrap sandbox and the verdicts come from the
hidden checks outside it (``grader/execute.py``).

The six chapters are graded concurrently (one nbgrader process each) to keep the suite fast.
"""

from __future__ import annotations

import html
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from grader import generate
from grader.engine import registry
from grader.engine.mistakes import Mistake

pytestmark = [pytest.mark.grading, pytest.mark.slow]

ASSIGNMENTS = generate.ASSIGNMENTS
# With pytest-xdist, `--dist loadgroup` keeps each chapter's tests on one worker (one grading run each).
CHAPTERS = [pytest.param(a, marks=pytest.mark.xdist_group(a)) for a in ASSIGNMENTS]


def _mistake_students(assignment: str) -> dict[str, list[Mistake]]:
    """``{student: mistakes}``: student k makes the k-th known mistake of every function."""
    by_function: dict[str, list[Mistake]] = {}
    for m in registry.exercise(assignment).mistakes:
        by_function.setdefault(m.function, []).append(m)
    students: dict[str, list[Mistake]] = {}
    for ms in by_function.values():
        for k, m in enumerate(ms):
            students.setdefault(f"mistakes-{k + 1}", []).append(m)
    return students


#: Students who use what the exercise asks them to write (autograd inside a hand-written gradient): the
#: static scan in ``grader/execute.py`` refuses the function, with a message in words.
REFUSED = {
    "ch6-tiled": {
        "autograd-backward": Mistake("uses-autograd", "sdpa_backward", "", rewrite="""
            def sdpa_backward(Q, K, V, dO, mask=None):
                q, k, v = (t.detach().clone().requires_grad_(True) for t in (Q, K, V))
                scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
                if mask is not None:
                    scores = scores.masked_fill(~mask, -math.inf)
                out = torch.softmax(scores, dim=-1).nan_to_num(0.0) @ v
                return torch.autograd.grad(out, (q, k, v), dO)
            """),
    },
}


def _student_of(m: Mistake) -> str:
    return next(s for s, ms in _mistake_students(m.assignment).items() if m in ms)


def _nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=course,
        capture_output=True,
        text=True,
        env=generate.venv_env(),
        timeout=900,
    )


def _grade_course(root: Path, assignment: str) -> dict:
    """Build a course with all students of ``assignment``, autograde and generate feedback."""
    course = root / assignment
    (course / "source").mkdir(parents=True)
    shutil.copy(generate.GRADER_DIR / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(generate.source_path(assignment).parent, course / "source" / assignment)
    shutil.copytree(registry.exercise(assignment).folder, course / "exercises" / assignment)
    generated = _nbgrader(course, "generate_assignment", assignment, "--force")
    assert generated.returncode == 0, generated.stderr
    fresh_release = generate.dumps(
        generate.normalize_release(nbformat.read(course / "release" / assignment / f"{assignment}.ipynb", 4))
    )

    nb_name = f"{assignment}.ipynb"
    students = {
        "reference": nbformat.read(generate.source_path(assignment), as_version=4),
        "untouched": nbformat.read(generate.release_path(assignment), as_version=4),
    }
    for student, ms in _mistake_students(assignment).items():
        students[student] = generate.filled_release(assignment, ms)
    for student, refused in REFUSED.get(assignment, {}).items():
        exercise = registry.exercise(assignment)
        students[student] = generate.filled_release(
            assignment, [Mistake(refused.id, refused.target, "", rewrite=refused.rewrite, assignment=assignment,
                                 reference_of=exercise.reference)])
    for student, nb in students.items():
        folder = course / "submitted" / student / assignment
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / nb_name)

    autograde = _nbgrader(course, "autograde", assignment, "--force")
    feedback = _nbgrader(course, "generate_feedback", assignment, "--force")

    from nbgrader.api import Gradebook

    scores: dict[str, dict[str, float]] = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in students:
            try:
                sub = gb.find_submission_notebook(assignment, assignment, student)
            except Exception:  # noqa: BLE001 - missing means the grader did not grade it
                continue
            scores[student] = {g.name: g.score for g in sub.grades}
        max_points = {g.name: g.max_score for g in gb.find_notebook(assignment, assignment).grade_cells}
    html_text = {}
    for student in students:
        path = course / "feedback" / student / assignment / f"{assignment}.html"
        html_text[student] = path.read_text() if path.exists() else ""
    return {
        "release_is_fresh": fresh_release == generate.release_path(assignment).read_text(),
        "course": course,
        "autograde": autograde,
        "feedback": feedback,
        "scores": scores,
        "max": max_points,
        "html": html_text,
    }


def _wanted(session: pytest.Session) -> list[str]:
    """The assignments the selected tests of this module need (all six in a full run)."""
    wanted = set()
    for item in session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "assignment" in params:
            wanted.add(params["assignment"])
        elif "mistake" in params:
            wanted.add(params["mistake"].assignment)
    return [a for a in ASSIGNMENTS if a in wanted]


@pytest.fixture(scope="session")
def graded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("proofs")
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {a: pool.submit(_grade_course, root, a) for a in _wanted(request.session)}
        return {a: f.result() for a, f in futures.items()}


@pytest.mark.parametrize("assignment", CHAPTERS)
def test_committed_release_is_what_nbgrader_generates(graded: dict, assignment: str) -> None:
    assert graded[assignment]["release_is_fresh"], f"stale release: run `python -m grader.generate {assignment}`"


@pytest.mark.parametrize("assignment", CHAPTERS)
def test_instructor_notebook_gets_full_marks(graded: dict, assignment: str) -> None:
    result = graded[assignment]
    assert result["autograde"].returncode == 0, result["autograde"].stderr[-3000:]
    assert result["scores"]["reference"] == result["max"], result["html"]["reference"][-3000:]
    assert sum(result["max"].values()) > 0


@pytest.mark.parametrize("assignment", CHAPTERS)
def test_untouched_release_scores_zero_and_grader_finishes(graded: dict, assignment: str) -> None:
    result = graded[assignment]
    scores = result["scores"]["untouched"]
    assert set(scores) == set(result["max"])
    assert all(score == 0 for score in scores.values()), scores
    assert "not implemented yet" in result["html"]["untouched"]
    # every student got graded and got feedback: the untouched notebook stops nobody
    assert set(result["scores"]) == set(result["html"]), "some students were not graded"


def _mistake_params() -> list:
    return [
        pytest.param(m, id=f"{a}:{m.id}", marks=pytest.mark.xdist_group(a))
        for a in ASSIGNMENTS
        for m in registry.exercise(a).mistakes
    ]


@pytest.mark.parametrize("mistake", _mistake_params())
def test_known_mistake_loses_points_with_its_message(graded: dict, mistake: Mistake) -> None:
    result = graded[mistake.assignment]
    student = _student_of(mistake)
    scores = result["scores"][student]
    grade_id = f"test-{mistake.function}"
    assert scores[grade_id] == 0, f"{mistake.id} kept its points: {scores}"
    mistaken = {f"test-{m.function}" for m in _mistake_students(mistake.assignment)[student]}
    others = {k: v for k, v in scores.items() if k not in mistaken}
    assert others == {k: result["max"][k] for k in others}, f"functions without a mistake lost points: {scores}"
    page = " ".join(html.unescape(result["html"][student]).split())
    assert "[mistake:" not in page  # no grader internals (the mistake's id) on the student's page
    assert " ".join(mistake.message.split()) in page


@pytest.mark.parametrize(("assignment", "student"), [
    pytest.param(a, student, marks=pytest.mark.xdist_group(a)) for a, refused in REFUSED.items() for student in refused
])
def test_autograd_in_a_hand_written_gradient_earns_no_credit(graded: dict, assignment: str, student: str) -> None:
    result = graded[assignment]
    function = REFUSED[assignment][student].function
    scores = result["scores"][student]
    assert scores[f"test-{function}"] == 0, scores
    assert {k: v for k, v in scores.items() if k != f"test-{function}"} == {
        k: m for k, m in result["max"].items() if k != f"test-{function}"}, "only the refused function loses points"
    page = " ".join(html.unescape(result["html"][student]).split())
    assert f"No credit: {function} is the exercise, so it must not use autograd" in page
