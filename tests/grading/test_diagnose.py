"""Fast, in-process checks of the hidden checks (``grader.engine``), without kernels or sandboxes.

The notebooks' answer cells are executed in a plain namespace, as the kernel would, and
:func:`grader.engine.checker.check` is called with :func:`grader.engine.local.local_answer`, which runs
the kernel-side probe here through the same job files and the same defensive reader: every known
mistake is named, the reference passes, library attention gets no credit, and the messages carry no
data. (The same checks in real sandboxed kernels: ``test_exercise_proofs.py``, ``test_hostile.py``.)
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from test_visible_tests import ALTERNATIVES

from grader import generate
from grader.engine import checker, registry
from grader.engine.local import local_answer, namespace_from
from grader.engine.mistakes import Mistake

pytestmark = pytest.mark.grading
SECRET = b"a fixed test secret, 32 bytes.."
ALL_MISTAKES = [m for ex in registry.exercises() for m in ex.mistakes]


def namespace(assignment: str, replace: dict[str, str] | None = None) -> dict:
    """The notebook's definitions (answers from the instructor notebook), optionally with cells replaced."""
    sources = []
    for cell in nbformat.read(generate.source_path(assignment), as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or meta.get("grade"):
            continue
        if not meta and "self_check()" in cell.source or "numerical_gradient(hard" in cell.source:
            continue
        sources.append((replace or {}).get(meta.get("grade_id"), cell.source))
    return namespace_from(*sources)


def check(assignment: str, name: str, ns: dict, secret: bytes = SECRET) -> checker.Report:
    ex = registry.exercise(assignment)
    order = ex.check_order
    return checker.check(ex, name, local_answer(ns), secret, order[: order.index(name)])


def _no_data(text: str) -> None:
    assert "array(" not in text and "[[" not in text and "tensor(" not in text


@pytest.mark.parametrize("assignment", registry.assignment_ids())
def test_reference_answers_pass(assignment: str) -> None:
    ns = namespace(assignment)
    for name in registry.exercise(assignment).check_order:
        assert check(assignment, name, ns).problem is None, name


@pytest.mark.parametrize("mistake", [pytest.param(m, id=m.id) for m in ALL_MISTAKES])
def test_each_known_mistake_is_named(mistake: Mistake) -> None:
    release = generate.filled_release(mistake.assignment, [mistake])
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in release.cells if "nbgrader" in c.metadata}
    ns = namespace(mistake.assignment, {k: v for k, v in answers.items() if k.startswith("answer-")})
    report = check(mistake.assignment, mistake.function, ns)
    assert report.mistake == mistake.id, report.problem
    assert " ".join(mistake.message.split()) in " ".join(report.problem.split())
    _no_data(report.problem)


def test_unimplemented_function_is_reported() -> None:
    ns = namespace("ch2-sdpa")

    def softmax(x, axis=-1):
        raise NotImplementedError()

    ns["softmax"] = softmax
    assert "not implemented yet" in check("ch2-sdpa", "softmax", ns).problem


def test_a_missing_function_is_reported() -> None:
    ns = namespace("ch2-sdpa")
    del ns["padding_mask"]
    assert "padding_mask is not defined" in check("ch2-sdpa", "padding_mask", ns).problem


def test_unknown_mistake_gets_a_description_without_data() -> None:
    ns = namespace("ch2-sdpa")
    ns_softmax = namespace("ch2-sdpa")["softmax"]
    ns["softmax"] = lambda x, axis=-1: ns_softmax(x, axis) * 1.01
    report = check("ch2-sdpa", "softmax", ns)
    assert report.mistake is None and "wrong values" in report.problem
    _no_data(report.problem)


def test_messages_never_echo_what_the_kernel_chose() -> None:
    """An exception text, a string result or a wrong shape chosen by the kernel is not shown."""
    ns = namespace("ch2-sdpa")

    def softmax(x, axis=-1):
        raise ValueError(f"SECRET-INPUT {x.ravel()[:3]}")

    ns["softmax"] = softmax
    problem = check("ch2-sdpa", "softmax", ns).problem
    assert "SECRET" not in problem and "ValueError" in problem
    ns["causal_mask"] = lambda n_q, n_k: "SECRET-STRING"
    problem = check("ch2-sdpa", "causal_mask", ns).problem
    assert "SECRET" not in problem and "should be an array" in problem
    import numpy as np

    ns["padding_mask"] = lambda lengths, n_k: np.zeros((1234, 5678), dtype=bool)
    problem = check("ch2-sdpa", "padding_mask", ns).problem
    assert "1234" not in problem and "wrong shape" in problem


def test_calling_pytorch_sdpa_earns_no_credit() -> None:
    ns = namespace("ch6-tiled")

    def tiled_attention(Q, K, V, block_size=128, causal=False):
        import torch.nn.functional as F

        return F.scaled_dot_product_attention(Q, K, V, is_causal=causal)

    ns["tiled_attention"] = tiled_attention
    report = check("ch6-tiled", "tiled_attention", ns)
    assert report.mistake == "library-attention"
    assert "torch.nn.functional.scaled_dot_product_attention" in report.problem


def test_calling_the_aten_operator_by_a_built_name_earns_no_credit() -> None:
    """A name the static scan cannot see: the kernel-side dispatch watch reports the operator."""
    ns = namespace("ch6-tiled")

    def tiled_attention(Q, K, V, block_size=128, causal=False):
        import torch

        op = getattr(torch.ops.aten, "_scaled_dot_product_" + "attention_math")
        return op(Q, K, V, is_causal=causal)[0]

    ns["tiled_attention"] = tiled_attention
    assert check("ch6-tiled", "tiled_attention", ns).mistake == "library-attention"


def test_wrapping_torch_multihead_attention_earns_no_credit() -> None:
    ns = namespace("ch4-multihead")
    exec(
        "class MultiHeadAttention(nn.Module):\n"
        "    def __init__(self, d_model, n_heads, bias=True):\n"
        "        super().__init__()\n"
        "        self.n_heads = n_heads\n"
        "        self.inner = nn.MultiheadAttention(d_model, n_heads, bias=bias, batch_first=True)\n"
        "        for name in ('q_proj', 'k_proj', 'v_proj', 'out_proj'):\n"
        "            setattr(self, name, nn.Linear(d_model, d_model, bias=bias))\n"
        "    def forward(self, query, key, value, mask=None):\n"
        "        return self.inner(query, key, value, average_attn_weights=False)\n",
        ns,
    )
    report = check("ch4-multihead", "MultiHeadAttention", ns)
    assert report.mistake == "library-attention"
    assert "torch.nn.MultiheadAttention" in report.problem


def test_static_scan_follows_helpers_and_ignores_the_course_names() -> None:
    from grader.engine.refusals import library_attention_in

    sources = [
        "import torch.nn.functional as F\n\n"
        "def _attend(q, k, v):\n    return F.scaled_dot_product_attention(q, k, v)\n",
        "def tiled_attention(Q, K, V, block_size=128, causal=False):\n    return _attend(Q, K, V)\n",
        "def scaled_dot_product_attention(Q, K, V, mask=None):\n    '''like scaled_dot_product_attention'''\n",
        "def self_attention(X, W_q, W_k, W_v, causal=False):\n    return scaled_dot_product_attention(X, X, X)\n",
        "F.scaled_dot_product_attention(1, 2, 3)  # a check of their own, at top level: fine\n",
    ]
    found = library_attention_in(sources, ["tiled_attention", "self_attention", "scaled_dot_product_attention"])
    assert found == {"tiled_attention": "torch.nn.functional.scaled_dot_product_attention"}


AUTOGRAD_BACKWARDS = {  # sdpa_backward by autograd, each way a student could reach it
    "torch.autograd.grad": """
        def sdpa_backward(Q, K, V, dO, mask=None):
            q, k, v = (t.detach().clone().requires_grad_(True) for t in (Q, K, V))
            s = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
            if mask is not None:
                s = s.masked_fill(~mask, -math.inf)
            out = torch.softmax(s, dim=-1).nan_to_num(0.0) @ v
            return torch.autograd.grad(out, (q, k, v), dO)
        """,
    ".backward() after setting requires_grad": """
        def _forward(q, k, v, mask):
            s = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
            if mask is not None:
                s = s.masked_fill(~mask, -math.inf)
            return torch.softmax(s, dim=-1).nan_to_num(0.0) @ v

        def sdpa_backward(Q, K, V, dO, mask=None):
            q, k, v = Q.clone(), K.clone(), V.clone()
            for t in (q, k, v):
                setattr(t, "requires_" + "grad", True)  # no name the static scan knows
            (_forward(q, k, v, mask) * dO).sum().backward()
            return q.grad, k.grad, v.grad
        """,
    "torch.func.vjp": """
        def sdpa_backward(Q, K, V, dO, mask=None):
            def forward(q, k, v):
                s = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
                if mask is not None:
                    s = s.masked_fill(~mask, -math.inf)
                return torch.softmax(s, dim=-1).nan_to_num(0.0) @ v

            return getattr(torch, "fu" + "nc").vjp(forward, Q, K, V)[1](dO)
        """,
}


@pytest.mark.parametrize("way", list(AUTOGRAD_BACKWARDS))
def test_a_backward_pass_by_autograd_earns_no_credit(way: str) -> None:
    """The kernel's watch sees autograd however it is reached (the static scan is tested below)."""
    import textwrap

    ns = namespace("ch6-tiled")
    exec(textwrap.dedent(AUTOGRAD_BACKWARDS[way]), ns)  # defined in the notebook, as a student would
    report = check("ch6-tiled", "sdpa_backward", ns)
    assert report.mistake == "autograd", report.problem
    assert "must not use autograd" in report.problem
    assert check("ch6-tiled", "tiled_attention", ns).problem is None  # only the gradient is refused


def test_static_scan_refuses_autograd_in_a_gradient_only() -> None:
    from grader.engine.refusals import AUTOGRAD, static_refusals

    sources = [
        "import torch\nimport torch.autograd\n",
        "def _grads(out, inputs, g):\n    return torch.autograd.grad(out, inputs, g)\n",
        "def sdpa_backward(Q, K, V, dO, mask=None):\n    return _grads(Q, (Q, K, V), dO)\n",
        "q = Q.clone().requires_grad_(True)  # a scratch check at top level: fine\n",
        "def tiled_attention(Q, K, V, block_size=128, causal=False):\n    q = Q * 2\n    return q.backward()\n",
    ]
    found = static_refusals(sources, ["sdpa_backward", "tiled_attention"], no_autograd=["sdpa_backward"])
    assert found == {"sdpa_backward": AUTOGRAD}
    own = "def sdpa_backward(Q, K, V, dO, mask=None):\n    q = Q * 2  # a local, not the scratch q\n    return q\n"
    assert static_refusals([sources[3], own], ["sdpa_backward"], ["sdpa_backward"]) == {}
    for line in ("t.requires_grad = True", "from torch.func import vjp", "import functorch",
                 "getattr(t, 'backward')()", "torch.func.grad(f)(t)"):
        body = f"def sdpa_backward(Q, K, V, dO, mask=None):\n    {line}\n"
        assert static_refusals([body], ["sdpa_backward"], ["sdpa_backward"]) == {"sdpa_backward": AUTOGRAD}, line
    ex = registry.exercise("ch6-tiled")
    pending = checker.prepare(ex, "sdpa_backward", SECRET, ex.check_order[:1], found)
    assert pending.decided is not None and pending.decided.mistake == "autograd"  # no kernel run needed
    assert "must not use autograd" in pending.decided.problem


CORRECT_BACKWARDS = [  # sdpa_backward written otherwise than the reference: it keeps its points (any secret)
    """
    def sdpa_backward(Q, K, V, dO, mask=None):
        scale = 1.0 / math.sqrt(Q.shape[-1])
        S = Q @ K.transpose(-2, -1) * scale
        if mask is not None:
            S = S.masked_fill(~mask, float("-inf"))
        A = torch.softmax(S, dim=-1).nan_to_num(0.0)
        dS = A * (dO @ V.transpose(-2, -1) - (dO * (A @ V)).sum(dim=-1, keepdim=True))
        return dS @ K * scale, dS.transpose(-2, -1) @ Q * scale, A.transpose(-2, -1) @ dO
    """,
    ALTERNATIVES["ch6-tiled", "sdpa_backward"],  # its own softmax, einsum, D = rowsum(dO * O)
]


@pytest.mark.parametrize("index", range(len(CORRECT_BACKWARDS)))
def test_a_correct_backward_written_otherwise_keeps_its_points(index: int) -> None:
    import textwrap

    ns = namespace("ch6-tiled")
    exec(textwrap.dedent(CORRECT_BACKWARDS[index]), ns)
    for i in range(4):
        assert check("ch6-tiled", "sdpa_backward", ns, f"another secret {i}".encode()).problem is None


def test_functions_checked_earlier_are_replaced_by_the_reference_while_checking() -> None:
    ns = namespace("ch2-sdpa")
    ns["softmax"] = lambda x, axis=-1: x  # broken softmax ...
    assert check("ch2-sdpa", "scaled_dot_product_attention", ns).problem is None  # ... costs nothing here
    assert check("ch2-sdpa", "softmax", ns).problem is not None
    assert ns["softmax"](1.5) == 1.5, "the student's function is restored afterwards"


def test_no_reference_reaches_the_kernel_before_its_own_check() -> None:
    """Jobs carry references only of functions checked before (check order puts callees first)."""
    for ex in registry.exercises():
        order = ex.check_order
        for i, name in enumerate(order):
            job = checker.kernel_job(ex, name, order[:i])
            assert set(job["helpers"]) == set(ex.helpers) | set(order[:i])
            assert name not in job["helpers"]


def test_hidden_inputs_depend_on_the_course_secret() -> None:
    ex = registry.exercise("ch2-sdpa")
    a = checker.hidden_cases(ex, "softmax", SECRET)[0].run.args[0]
    b = checker.hidden_cases(ex, "softmax", b"another secret, 32 bytes long..")[0].run.args[0]
    again = checker.hidden_cases(ex, "softmax", SECRET)[0].run.args[0]
    assert (a == again).all()
    assert a.shape != b.shape or not (a == b).all()


def test_grading_is_reproducible() -> None:
    ns = namespace("ch5-gqa")
    m = registry.exercise("ch5-gqa").mistakes_of("repeat_kv")[0]
    ns["repeat_kv"] = m.build(checker.reference_namespace(registry.exercise("ch5-gqa")))
    first = check("ch5-gqa", "repeat_kv", ns)
    assert first == check("ch5-gqa", "repeat_kv", ns)
    assert first.mistake == m.id


def _secret_of(folder: str) -> str:
    from grader.engine.secret import course_secret

    return course_secret(Path(folder)).hex()


def test_processes_creating_the_secret_at_once_all_read_the_same_whole_secret(tmp_path: Path) -> None:
    """The grading workers of one run once created the secret together, and one read it half-written."""
    from concurrent.futures import ProcessPoolExecutor

    folders = [tmp_path / f"course-{i}" for i in range(10)]
    with ProcessPoolExecutor(8) as pool:
        for folder in folders:
            folder.mkdir()
            secrets = list(pool.map(_secret_of, [str(folder)] * 8))
            assert len(set(secrets)) == 1 and len(secrets[0]) == 64
            assert sorted(p.name for p in folder.iterdir()) == [".grading-secret"]  # no draft left behind


def test_a_name_error_names_the_missing_name_and_nothing_else_the_kernel_wrote() -> None:
    ns = namespace("ch2-sdpa")
    exec("def softmax(x, axis=-1):\n    return sofmax(x, axis)\n", ns)
    problem = check("ch2-sdpa", "softmax", ns).problem
    assert "uses the name `sofmax`, which is not defined" in problem
    # A forged NameError: a "name" that is not an identifier, or one the submitted code never spells, is not shown.
    exec("def softmax(x, axis=-1):\n    raise NameError('x', name=f'{x.ravel()[0]:.6f}')\n", ns)
    problem = check("ch2-sdpa", "softmax", ns).problem
    assert "raised NameError" in problem and "`" not in problem
    exec("def softmax(x, axis=-1):\n    raise NameError('x', name='v' + str(x.size))\n", ns)
    ex = registry.exercise("ch2-sdpa")
    pending = checker.prepare(ex, "softmax", SECRET, source_names=frozenset({"softmax", "NameError"}))
    report = checker.judge(ex, pending, local_answer(ns)(pending.job, pending.runs))
    assert "raised NameError" in report.problem and "`v" not in report.problem
    assert checker.identifiers(["def f(x):\n    return sofmax(x)\n", "not python ("]) >= {"f", "x", "sofmax"}


def test_an_input_changed_in_place_is_named() -> None:
    ns = namespace("ch2-sdpa")
    exec(
        "def scaled_dot_product_attention(Q, K, V, mask=None):\n"
        "    Q /= math.sqrt(Q.shape[-1])\n"
        "    scores = Q @ np.swapaxes(K, -1, -2)\n"
        "    if mask is not None:\n"
        "        scores = np.where(mask, scores, -np.inf)\n"
        "    weights = softmax(scores)\n"
        "    return weights @ V, weights\n",
        ns,
    )
    report = check("ch2-sdpa", "scaled_dot_product_attention", ns)
    assert report.mistake is None and "changes its input `Q` in place" in report.problem, report.problem


def test_a_result_of_another_dtype_is_named() -> None:
    import numpy as np

    ns = namespace("ch2-sdpa")
    reference = ns["softmax"]
    ns["softmax"] = lambda x, axis=-1: reference(np.asarray(x, dtype=np.float64), axis)
    problem = check("ch2-sdpa", "softmax", ns).problem
    assert "should keep the dtype float32" in problem and "float32 input" in problem


def test_integers_where_floats_are_expected_lose_the_points() -> None:
    """An int64 one-hot has the right numbers but not the dtype the contract asks for (and the other way)."""
    import numpy as np

    from grader.engine.cases import Spec
    from grader.engine.compare import difference

    spec = Spec(lambda rng: [])
    one_hot = np.array([[0, 1, 0]])
    assert "should have the dtype float32, got integers" in difference(one_hot, one_hot.astype(np.float32), spec)
    assert "got floating-point numbers" in difference(one_hot.astype(np.float64), one_hot, spec)
    assert difference(one_hot.astype(np.float32), one_hot.astype(np.float32), spec) is None


def test_a_module_with_other_parameters_is_told_which_ones() -> None:
    ns = namespace("ch5-gqa")
    exec(
        "class GroupedQueryAttention(nn.Module):\n"
        "    def __init__(self, d_model, n_heads, n_kv_heads, bias=False):\n"
        "        super().__init__()\n"
        "        self.wq = nn.Linear(d_model, d_model, bias=bias)\n"
        "        self.k_proj = nn.Linear(d_model, d_model, bias=bias)\n"
        "    def forward(self, x, mask=None, kv_cache=None):\n"
        "        return x, None\n",
        ns,
    )
    problem = " ".join(check("ch5-gqa", "GroupedQueryAttention", ns).problem.split())
    assert "do not match the contract" in problem and "it has no out_proj.weight, q_proj.weight" in problem
    assert "k_proj.weight has another shape" in problem
    assert "loading the expected parameters" not in problem


def test_what_the_kernel_says_it_changed_or_missed_is_read_as_names_only() -> None:
    """The kernel's extra fields are hostile too: only small positions and identifiers pass."""
    from grader.engine import transport

    ok = transport._outcome({"ok": 1, "modified": [0, "kv_cache"]}, [])
    assert ok.modified == (0, "kv_cache")
    for forged in (["x = 1"], [10**6], [True], "Q", [[0]], list(range(40))):
        with pytest.raises(transport.BadResult):
            transport._outcome({"ok": 1, "modified": forged}, [])
    err = transport._outcome({"error": {"type": "NameError", "message": "m", "name": "0.1234 secret"}}, [])
    assert err.error_name is None
    assert transport._outcome({"error": {"type": "NameError", "name": "sofmax"}}, []).error_name == "sofmax"


def test_shape_messages_name_the_item_and_axis_but_no_hidden_size() -> None:
    """The held-out class found a GQA whose cache had the wrong shape told "output has the wrong shape:
    expected (2, 2, 7, 4)": the cache's keys called the output, and the hidden sizes printed."""
    import numpy as np

    from grader.engine.cases import Spec
    from grader.engine.compare import difference

    spec = Spec(lambda rng: [], items=("output", "new_kv_cache"))
    out, k, v = np.zeros((2, 7, 16)), np.zeros((2, 2, 7, 4)), np.zeros((2, 2, 7, 4))
    wrong_cache = (out, (np.zeros((2, 8, 7, 4)), v))
    words = difference(wrong_cache, (out, (k, v)), spec)
    assert words == ("new_kv_cache, item 0 of 2 has the wrong shape: its length along axis -3 (counting from "
                     "the end) is wrong")
    assert difference((out[0], (k, v)), (out, (k, v)), spec) == (
        "output has the wrong shape: it should have 3 dimensions")
    assert not any(str(n) in words for n in (7, 16)), words
