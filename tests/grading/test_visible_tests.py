"""The visible tests teach: each tests one function, catches its common mistakes, and says why.

The committed instructor notebook is run in-process, cell by cell as a kernel would (answers from the
reference, or with one known mistake pasted into its answer cell), and its visible tests are called:

- the reference passes every visible test, and ``self_check()`` says PASS for every function;
- for every graded function, at least half of its known mistakes (``checks.py`` MISTAKES, however many
  there are) fail its visible test;
- a visible test calls only its own function: with every other course name replaced by one that
  raises (except the ones the function's reference itself calls), the reference still passes;
- every FAIL line ``self_check()`` prints for a known mistake is one non-empty line that says what
  was expected and what came back (or what the function raised);
- the expected values are constants that the generator embeds (no test recomputes them), and the
  harness never prints an empty reason.
"""

from __future__ import annotations

import contextlib
import functools
import io
import re
from typing import Any

import nbformat
import pytest

from grader import generate, visible_tests
from grader.engine import registry
from grader.engine.mistakes import Mistake, inject
from grader.engine.reference import compile_student

pytestmark = pytest.mark.grading
GRADED = [(ex.id, name) for ex in registry.exercises() for name in ex.points]
ALL_MISTAKES = [m for ex in registry.exercises() for m in ex.mistakes]


def notebook(assignment: str, mistake: Mistake | None = None) -> dict[str, Any]:
    """The kernel's namespace after running the instructor notebook down to its last test (grade cells
    and the cells after the last one left out), with ``mistake`` pasted into its answer cell."""
    cells = nbformat.read(generate.source_path(assignment), as_version=4).cells
    grade = [i for i, c in enumerate(cells) if c.metadata.get("nbgrader", {}).get("grade")]
    namespace: dict[str, Any] = {"__name__": "__main__"}
    for cell in cells[: grade[-1]]:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or meta.get("grade"):
            continue
        source = cell.source
        if mistake is not None and meta.get("grade_id", "").startswith("answer-") and (
            mistake.function in meta["grade_id"].removeprefix("answer-").split("-")
        ):
            source = inject(source, mistake)
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile_student(source, f"<{assignment} {meta.get('grade_id', 'cell')}>"), namespace)
    return namespace


def failure(namespace: dict[str, Any], name: str) -> str | None:
    """What ``self_check()`` says about ``name``'s visible test: None when it passes."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            namespace["VISIBLE_TESTS"][name]()
    except NotImplementedError:
        return "not implemented yet"
    except Exception as err:  # noqa: BLE001 - any failure of the test
        return namespace["describe"](err)
    return None


def self_check_lines(namespace: dict[str, Any]) -> dict[str, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        namespace["self_check"]()
    lines = out.getvalue().splitlines()
    found = {}
    for line in lines[1:-1]:
        match = re.fullmatch(r"  (PASS|FAIL|TODO|----)  (\w+) \([\d.]+ points?\)(?:: (.*))?", line)
        assert match, f"unexpected self_check line: {line!r}"
        found[match.group(2)] = f"{match.group(1)} {match.group(3) or ''}".strip()
    return found


@functools.cache
def lines_with(mistake: Mistake) -> dict[str, str]:
    """``self_check()``'s verdict per function for the notebook with ``mistake`` (computed once)."""
    return self_check_lines(notebook(mistake.assignment, mistake))


@pytest.mark.parametrize("assignment", registry.assignment_ids())
def test_the_reference_passes_every_visible_test(assignment: str) -> None:
    namespace = notebook(assignment)
    lines = self_check_lines(namespace)
    assert lines == {name: "PASS" for name in registry.exercise(assignment).points}


@pytest.mark.parametrize(("assignment", "name"), GRADED)
def test_half_of_the_known_mistakes_fail_the_visible_test(assignment: str, name: str) -> None:
    mistakes = registry.exercise(assignment).mistakes_of(name)
    caught = [m.id for m in mistakes if lines_with(m)[name] != "PASS"]
    missed = sorted({m.id for m in mistakes} - set(caught))
    assert 2 * len(caught) >= len(mistakes), f"the visible test of {name} misses {missed}"


@pytest.mark.parametrize(("assignment", "name"), GRADED)
def test_a_visible_test_calls_only_its_own_function(assignment: str, name: str) -> None:
    exercise = registry.exercise(assignment)
    namespace = notebook(assignment)
    allowed = {name} | visible_tests.callees(exercise, name)
    called: list[str] = []

    def forbidden(other: str):
        def stub(*args, **kwargs):
            called.append(other)
            raise RuntimeError(f"the visible test of {name} called {other}")

        return stub

    for other in set(exercise.course_names) - allowed:
        namespace[other] = forbidden(other)
    assert failure(namespace, name) is None and not called, f"test_{name} calls {called}"


@pytest.mark.parametrize("mistake", [pytest.param(m, id=m.id) for m in ALL_MISTAKES])
def test_every_fail_line_says_what_was_expected_and_what_came_back(mistake: Mistake) -> None:
    line = lines_with(mistake)[mistake.function]
    if line == "PASS":
        return  # a mistake this visible test does not catch (the hidden checks do)
    assert line.startswith("FAIL ") and "\n" not in line
    reason = line.removeprefix("FAIL ").strip()
    assert reason, f"an empty FAIL line for {mistake.id}"
    assert ("should" in reason and "; got " in reason) or reason.startswith("raised "), reason
    assert len(reason) < 600, reason


def test_the_expected_values_are_embedded_constants() -> None:
    """No visible test computes its expected values: every check in the committed notebooks carries an
    ``expected=`` literal (the generator writes it; --check fails when it drifts from the reference)."""
    import ast

    for assignment in registry.assignment_ids():
        for cell in nbformat.read(generate.release_path(assignment), as_version=4).cells:
            if not cell.metadata.get("nbgrader", {}).get("grade_id", "").startswith("visible-test-"):
                continue
            calls = [n for n in ast.walk(ast.parse(cell.source)) if isinstance(n, ast.Call)
                     and isinstance(n.func, ast.Name) and n.func.id == "check"]
            assert calls, cell.id
            for call in calls:
                expected = next(k.value for k in call.keywords if k.arg == "expected")
                names = {n.id for n in ast.walk(expected) if isinstance(n, ast.Name)}
                assert names <= {"float"}, f"{cell.id}: expected= computes with {names - {'float'}}"


def _harness() -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(generate.selfcheck_source({"f": 1}), namespace)
    return namespace


@pytest.mark.parametrize(
    ("got", "expected", "says"),
    [
        ([float("nan"), float("nan")], [0.75, 0.25], "f(x) should be [0.75, 0.25]; got [nan, nan]"),
        ([[1.0, 2.0]], [1.0, 2.0], "f(x) should be an array of shape (2,); got an array of shape (1, 2)"),
        ([1, 0], [True, False], "f(x) should be [True, False]; got [1, 0]"),
        (None, (1.0, 2.0), "f(x) should return a tuple of 2; got NoneType None"),
        ((1.0, [0.5, 0.0]), (1.0, [0.5, 0.5]), "f(x)[1] should be [0.5, 0.5]; got [0.5, 0]"),
        ([0.0] * 20, [0.0] * 19 + [1.0], "f(x)[19] should be 1; got 0 (1 of 20 entries differ)"),
        (5, 4, "f(x) should be 4; got 5"),
    ],
)
def test_check_says_what_was_expected_and_what_came_back(got: Any, expected: Any, says: str) -> None:
    namespace = _harness()
    with pytest.raises(AssertionError) as err:
        namespace["check"]("f(x)", got, expected)
    assert str(err.value) == says
    namespace["check"]("f(x)", [0.75 + 1e-6, 0.25], [0.75, 0.25])  # within the tolerance: passes


def test_an_error_without_a_message_is_still_described() -> None:
    namespace = _harness()
    describe = namespace["describe"]

    def kv_cache_bytes():
        assert False  # noqa: B011 - a student's assert without a message

    def bare():
        raise ValueError()

    for function, says in ((kv_cache_bytes, "raised AssertionError in kv_cache_bytes"), (bare, "raised ValueError")):
        try:
            function()
        except Exception as err:  # noqa: BLE001
            text = describe(err)
        assert text.startswith(says) and text.strip(), text
    assert describe(AssertionError()).startswith("raised AssertionError"), "never an empty reason"


def test_ch5_visible_test_teaches_that_an_explicit_mask_replaces_the_causal_default() -> None:
    """A GroupedQueryAttention that ANDs an explicit mask with the causal one (the contract says the mask
    replaces it) fails its visible test, and the FAIL line names the explicit-mask case."""
    exercise = registry.exercise("ch5-gqa")
    anded = Mistake(
        "gqa-mask-and-causal", "GroupedQueryAttention.forward", "an explicit mask replaces the causal default.",
        replace=(("        if mask is None:  # causal", "        if True:  # causal"),
                 ("mask = torch.ones(n_new, n_total, dtype=torch.bool, device=x.device).tril(n_total - n_new)",
                  "causal = torch.ones(n_new, n_total, dtype=torch.bool, device=x.device).tril(n_total - n_new)\n"
                  "            mask = causal if mask is None else mask & causal")),
        assignment=exercise.id, reference_of=exercise.reference,
    )
    line = self_check_lines(notebook("ch5-gqa", anded))["GroupedQueryAttention"]
    assert line.startswith("FAIL an explicit mask replaces the causal default"), line


def _builder(assignment: str) -> visible_tests.Builder:
    builder = visible_tests.Builder(registry.exercise(assignment))
    builder.namespace = notebook(assignment)
    return builder


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ('check("split_heads(merge_heads(h), 2)", split_heads(merge_heads(torch.zeros(1, 2, 3, 4)), 2))',
         "it uses merge_heads"),
        ('check("x", globals()["merge_heads"](torch.zeros(1, 2, 3, 4)))', "it calls merge_heads"),
        ("assert split_heads(torch.zeros(1, 2, 4), 2).shape[1] == 2", "has no message"),
        ('for n in (1, 2):\n    check("split_heads(x, n)", split_heads(torch.zeros(1, 2, 4), n))', "more than once"),
        ('if False:\n    check("split_heads(x, 2)", split_heads(torch.zeros(1, 2, 4), 2))', "never ran"),
        ('check("split_heads(x, 2)", split_heads(torch.ones(1, 1, 2), 2), expected=[[[[1.0], [1.0]]]])',
         "the reference fails it"),
        ('check(split_heads(torch.zeros(1, 2, 4), 2))', 'must be check("what was called", value)'),
        ('check("large scores", torch.softmax(split_heads(torch.tensor([[[1e6, 1e6 - 1.0986]]]), 1)[0, 0, 0], 0))',
         "different values in float32 and float64"),
        ("", "it is empty"),
    ],
)
def test_the_generator_refuses_a_visible_test_that_breaks_a_rule(body: str, says: str) -> None:
    with pytest.raises(visible_tests.VisibleTestError, match="ch4-multihead: the visible test of split_heads") as err:
        _builder("ch4-multihead").finished_test("split_heads", body)
    assert says in str(err.value)


def test_the_generator_embeds_what_the_reference_returns() -> None:
    builder = _builder("ch2-sdpa")
    source = builder.finished_test("causal_mask", 'check("causal_mask(2, 3)", causal_mask(2, 3))')
    assert 'check("causal_mask(2, 3)", causal_mask(2, 3), expected=[[True, True, False], [True, True, True]])' in source
    assert builder.namespace["VISIBLE_TESTS"]["causal_mask"].__name__ == "test_causal_mask"


@pytest.mark.parametrize("x", [0.25, -0.0, 1.0, 1e-9, -123456.789, 2.0**-7, float("inf"), -float("inf")])
def test_numbers_read_back_within_the_tolerance(x: float) -> None:
    text = visible_tests.number(x)
    back = eval(text)  # noqa: S307 - our own literal
    assert isinstance(back, float) and (back == x or abs(back - x) <= 5e-6 * abs(x)), text  # 6 digits
    assert visible_tests.number(float("nan")) == 'float("nan")'


ALTERNATIVES = {  # correct code written differently from the reference: it must pass (right code never fails)
    ("ch1-lookup", "hard_lookup"): '''
        def hard_lookup(query, keys, values):
            for key, value in zip(keys, values):
                if np.array_equal(key, query):
                    return value
            raise KeyError(tuple(query))
        ''',
    ("ch2-sdpa", "softmax"): '''
        def softmax(x, axis=-1):
            top = np.max(x, axis=axis, keepdims=True)
            e = np.exp(x - np.where(np.isfinite(top), top, 0.0))
            total = e.sum(axis=axis, keepdims=True)
            return np.divide(e, total, out=np.zeros_like(e), where=total > 0)
        ''',
    ("ch2-sdpa", "scaled_dot_product_attention"): '''
        def scaled_dot_product_attention(Q, K, V, mask=None):
            scores = np.einsum("...qd,...kd->...qk", Q, K) / np.sqrt(Q.shape[-1])
            if mask is not None:
                scores = np.where(mask, scores, -np.inf)
            weights = softmax(scores, axis=-1)
            return np.einsum("...qk,...kv->...qv", weights, V), weights
        ''',
    ("ch4-multihead", "split_heads"): '''
        def split_heads(x, n_heads):
            batch, seq, d_model = x.shape
            return x.view(batch, seq, n_heads, d_model // n_heads).permute(0, 2, 1, 3)
        ''',
    ("ch5-gqa", "GroupedQueryAttention.forward"): '''
        def forward(self, x, mask=None, kv_cache=None):
            q = split_heads(self.q_proj(x), self.n_heads)
            k, v = split_heads(self.k_proj(x), self.n_kv_heads), split_heads(self.v_proj(x), self.n_kv_heads)
            if kv_cache is not None:
                k, v = torch.cat([kv_cache[0], k], dim=2), torch.cat([kv_cache[1], v], dim=2)
            n_new, n_total = q.shape[2], k.shape[2]
            if mask is None:
                mask = torch.ones(n_new, n_total, dtype=torch.bool).tril(diagonal=n_total - n_new)
            mask = mask.unsqueeze(1) if mask.ndim == 3 else mask
            scores = q @ repeat_kv(k, self.n_rep).transpose(-2, -1) / math.sqrt(self.head_dim)
            weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1).nan_to_num(0.0)
            return self.out_proj(merge_heads(weights @ repeat_kv(v, self.n_rep))), (k, v)
        ''',
    ("ch6-tiled", "sdpa_backward"): '''
        def sdpa_backward(Q, K, V, dO, mask=None):
            q = Q / math.sqrt(Q.shape[-1])
            S = torch.einsum("...qd,...kd->...qk", q, K)
            if mask is not None:
                S = torch.where(mask, S, torch.tensor(float("-inf"), dtype=S.dtype))
            m = S.amax(dim=-1, keepdim=True)
            e = torch.exp(S - torch.where(torch.isfinite(m), m, torch.zeros_like(m)))
            total = e.sum(dim=-1, keepdim=True)
            A = torch.where(total > 0, e / total.clamp_min(1e-30), torch.zeros_like(e))
            D = (dO * (A @ V)).sum(dim=-1, keepdim=True)  # rowsum(dO * O)
            dS = A * (dO @ V.transpose(-2, -1) - D)
            dQ = dS @ K / math.sqrt(Q.shape[-1])
            return dQ, dS.transpose(-2, -1) @ q, A.transpose(-2, -1) @ dO
        ''',
    ("ch7-transformer", "greedy_decode"): '''
        def greedy_decode(model, src, bos_id, max_len, use_cache=True):
            memory, memory_mask = model.encode(src)
            out = [torch.full((src.shape[0],), bos_id, dtype=torch.long)]
            caches = None
            for _ in range(max_len):
                if use_cache:
                    logits, caches = model.decode(out[-1][:, None], memory, memory_mask, kv_caches=caches or None)
                else:
                    logits, _ = model.decode(torch.stack(out, dim=1), memory, memory_mask)
                out.append(torch.argmax(logits[:, -1, :], dim=-1))
            return torch.stack(out[1:], dim=1)
        ''',
}


@pytest.mark.parametrize(("assignment", "target"), list(ALTERNATIVES))
def test_correct_code_written_differently_passes_its_visible_test(assignment: str, target: str) -> None:
    exercise = registry.exercise(assignment)
    other = Mistake(f"alternative-{target}", target, "a correct alternative", rewrite=ALTERNATIVES[assignment, target],
                    assignment=assignment, reference_of=exercise.reference)
    assert self_check_lines(notebook(assignment, other))[other.function] == "PASS"
