"""Fast, in-process checks of the hidden-test diagnosis (``grader.diagnose``).

The notebooks' answer cells are executed in a plain namespace, as the autograde kernel would, and the
grade cells' ``check`` is called directly: every known mistake is named, the reference passes, and
code that leans on the reference package or on PyTorch's own attention gets no credit.
"""

from __future__ import annotations
import __future__

import nbformat
import pytest

from grader import diagnose, generate
from solutions import mistakes

pytestmark = pytest.mark.grading
ANNOTATIONS = __future__.annotations.compiler_flag


@pytest.fixture(autouse=True)
def _fresh_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    # In this test process `solutions` is imported already; in a grading kernel it is not.
    monkeypatch.setattr(diagnose, "STUDENT_IMPORTED_SOLUTIONS", False)


def namespace(assignment: str, replace: dict[str, str] | None = None) -> dict:
    """The notebook's definitions (answers from the instructor notebook), optionally with cells replaced."""
    ns: dict = {"__name__": "__main__"}
    for cell in nbformat.read(generate.source_path(assignment), as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or meta.get("grade"):
            continue
        if not meta and "self_check()" in cell.source or "numerical_gradient(hard" in cell.source:
            continue
        source = (replace or {}).get(meta.get("grade_id"), cell.source)
        exec(compile(source, meta.get("grade_id", "cell"), "exec", flags=ANNOTATIONS, dont_inherit=True), ns)
    return ns


@pytest.mark.parametrize("assignment", generate.ASSIGNMENTS)
def test_reference_answers_pass(assignment: str) -> None:
    ns = namespace(assignment)
    for name in diagnose.SPECS[assignment]:
        assert diagnose.check(assignment, name, ns).problem is None, name


@pytest.mark.parametrize("mistake", [pytest.param(m, id=m.id) for m in mistakes.MISTAKES])
def test_each_known_mistake_is_named(mistake: mistakes.Mistake) -> None:
    release = generate.filled_release(mistake.assignment, [mistake])
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in release.cells if "nbgrader" in c.metadata}
    ns = namespace(mistake.assignment, {k: v for k, v in answers.items() if k.startswith("answer-")})
    report = diagnose.check(mistake.assignment, mistake.function, ns)
    assert report.mistake == mistake.id, report.problem
    assert " ".join(mistake.message.split()) in " ".join(report.problem.split())
    assert "array(" not in report.problem and "[[" not in report.problem


def test_unimplemented_function_is_reported() -> None:
    ns = namespace("ch2-sdpa")

    def softmax(x, axis=-1):
        raise NotImplementedError()

    ns["softmax"] = softmax
    assert "not implemented yet" in diagnose.check("ch2-sdpa", "softmax", ns).problem


def test_unknown_mistake_gets_a_description_without_data() -> None:
    ns = namespace("ch2-sdpa")
    ns["softmax"] = lambda x, axis=-1: ns_softmax(x, axis) * 1.01
    ns_softmax = namespace("ch2-sdpa")["softmax"]
    report = diagnose.check("ch2-sdpa", "softmax", ns)
    assert report.mistake is None and "wrong values" in report.problem
    assert "array(" not in report.problem and "[[" not in report.problem


def test_calling_pytorch_sdpa_earns_no_credit() -> None:
    ns = namespace("ch6-tiled")

    def tiled_attention(Q, K, V, block_size=128, causal=False):
        import torch.nn.functional as F

        return F.scaled_dot_product_attention(Q, K, V, is_causal=causal)

    ns["tiled_attention"] = tiled_attention
    report = diagnose.check("ch6-tiled", "tiled_attention", ns)
    assert report.mistake == "forbidden-call"
    assert "torch.nn.functional.scaled_dot_product_attention" in report.problem


def test_wrapping_torch_multihead_attention_earns_no_credit() -> None:
    ns = namespace("ch4-multihead")
    exec(
        "class MultiHeadAttention(nn.Module):\n"
        "    def __init__(self, d_model, n_heads, bias=True):\n"
        "        super().__init__()\n"
        "        self.n_heads = n_heads\n"
        "        for name in ('q_proj', 'k_proj', 'v_proj', 'out_proj'):\n"
        "            setattr(self, name, nn.Linear(d_model, d_model, bias=bias))\n"
        "    def forward(self, query, key, value, mask=None):\n"
        "        inner = nn.MultiheadAttention(query.shape[-1], self.n_heads, batch_first=True)\n"
        "        return inner(query, key, value, average_attn_weights=False)\n",
        ns,
    )
    report = diagnose.check("ch4-multihead", "MultiHeadAttention", ns)
    assert report.mistake == "forbidden-call"
    assert "torch.nn.MultiheadAttention" in report.problem


def test_calling_the_reference_package_earns_no_credit() -> None:
    ns = namespace("ch2-sdpa")

    def scaled_dot_product_attention(Q, K, V, mask=None):
        import solutions as hidden  # the import itself is not in the namespace

        return hidden.ch2_sdpa.scaled_dot_product_attention(Q, K, V, mask)

    ns["scaled_dot_product_attention"] = scaled_dot_product_attention
    report = diagnose.check("ch2-sdpa", "scaled_dot_product_attention", ns)
    assert report.problem == diagnose.REFUSE_SOLUTIONS


def test_importing_the_reference_package_earns_no_credit(monkeypatch: pytest.MonkeyPatch) -> None:
    ns = namespace("ch2-sdpa")
    exec("from solutions import softmax", ns)
    assert diagnose.check("ch2-sdpa", "causal_mask", ns).problem == diagnose.REFUSE_SOLUTIONS
    monkeypatch.setattr(diagnose, "STUDENT_IMPORTED_SOLUTIONS", True)
    assert diagnose.check("ch2-sdpa", "causal_mask", namespace("ch2-sdpa")).problem == diagnose.REFUSE_SOLUTIONS


def test_other_course_functions_are_swapped_for_the_reference_while_checking() -> None:
    ns = namespace("ch2-sdpa")
    ns["softmax"] = lambda x, axis=-1: x  # broken softmax ...
    assert diagnose.check("ch2-sdpa", "scaled_dot_product_attention", ns).problem is None  # ... costs nothing here
    assert diagnose.check("ch2-sdpa", "softmax", ns).problem is not None
    assert ns["softmax"](1.5) == 1.5, "the student's function is restored afterwards"


def test_a_students_own_helper_with_a_course_name_is_left_alone() -> None:
    ns = namespace("ch6-tiled")
    ns["_reference"] = ns["tiled_attention"]
    exec(
        "def softmax(s):\n"
        "    return torch.softmax(s, dim=-1)\n"
        "def tiled_attention(Q, K, V, block_size=128, causal=False):\n"
        "    assert softmax(torch.zeros(2)).dtype == torch.float32, 'the helper was replaced'\n"
        "    return _reference(Q, K, V, block_size, causal)\n",
        ns,
    )
    assert diagnose.check("ch6-tiled", "tiled_attention", ns).problem is None


def test_grading_is_reproducible() -> None:
    ns = namespace("ch5-gqa")
    ns["repeat_kv"] = mistakes.mistakes_for("ch5-gqa", "repeat_kv")[0].impl
    first = diagnose.check("ch5-gqa", "repeat_kv", ns)
    assert first == diagnose.check("ch5-gqa", "repeat_kv", ns)
