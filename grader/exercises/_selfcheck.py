"""The self-check harness that ``grader.generate`` pastes, locked and collapsed, into every exercise notebook.

Students may work without this repository (e.g. in Colab with only the notebook), so the harness is
plain Python with no imports from ``grader`` or ``solutions`` (nor NumPy or PyTorch: it works on what
``.tolist()`` returns). Everything after the marker line is pasted; the generator fills ``POINTS``
(the graded functions and their points) and ``CALLS`` (the graded functions each one's reference
calls). The generator also runs ``draw``, ``set_weights`` and ``plain`` itself, so the inputs and the
expected values it embeds in the visible tests are the ones the notebook computes.

A visible test (see ``grader/visible_tests.py``) is a function ``test_<name>`` decorated with
``@visible_test``; it calls ``check(what, got, expected=...)``, whose ``expected`` the generator
computed with the reference.
"""

# --- harness ---
# @title The self-check harness: run this cell (you need not read it; it is restored before grading)
# `self_check()` runs the visible test of every graded function and prints one line per function.
# Each test compares your function, on small fixed inputs, with answers embedded when the notebook was
# made; the grader runs hidden tests on other inputs.
import linecache

POINTS: dict[str, float] = {}
CALLS: dict[str, list[str]] = {}
VISIBLE_TESTS: dict = {}
LIBRARY_PATHS = ("site-packages", "dist-packages", "/lib/python3")


class VisibleTestFailed(AssertionError):
    """A visible test found a wrong answer; the message says what was expected and what came back."""


def visible_test(test):
    """Register ``test_<name>`` as the visible test of the graded function ``<name>``."""
    name = test.__name__.removeprefix("test_")

    def run():
        try:
            test()
        except AssertionError as err:
            hint = _callee_hint(name)
            if not hint:
                raise
            raise VisibleTestFailed(f"{describe(err)} ({hint})") from None

    run.__name__, run.__doc__ = test.__name__, test.__doc__
    VISIBLE_TESTS[name] = run
    return run


def _callee_hint(name):
    """Which graded function that ``name`` calls (in the reference) fails its own visible test."""
    for callee in CALLS.get(name, []):
        try:
            VISIBLE_TESTS[callee]()
        except Exception:  # noqa: BLE001 - any failure of the callee's test
            return f"{name} calls {callee}, which fails its own visible test: fix {callee} first"
    return ""


def describe(err):
    """A one-line description of an error raised by a visible test, never empty."""
    text = " ".join(str(err).split())
    tb, last = err.__traceback__, None
    while tb is not None:  # the innermost frame of the notebook's code (not of a library it called)
        if last is None or not any(part in tb.tb_frame.f_code.co_filename for part in LIBRARY_PATHS):
            last = tb
        tb = tb.tb_next
    tb = last
    frame = tb.tb_frame if tb is not None else None
    where = frame.f_code.co_name if frame is not None else "?"
    if (isinstance(err, VisibleTestFailed) or isinstance(err, AssertionError) and where.startswith("test_")) and text:
        return text
    line = linecache.getline(frame.f_code.co_filename, tb.tb_lineno).strip() if frame is not None else ""
    at = (f" in {where}" if frame is not None else "") + (f" at `{line}`" if line else "")
    if isinstance(err, KeyError) and text:
        text = f"no key {text}"
    return f"raised {type(err).__name__}{at}: {text}" if text else f"raised {type(err).__name__}{at} (no message)"


def self_check():
    """Run every visible test and print PASS / FAIL / TODO per graded function."""
    passed, earned = 0, 0.0
    print("Self-check (visible tests only; grading also runs hidden tests):")
    for name, points in POINTS.items():
        label = f"{name} ({points:g} point{'s' if points != 1 else ''})"
        test = VISIBLE_TESTS.get(name)
        if test is None:
            print(f"  ----  {label}: its test has not run yet (run the cells above, down to the test after {name})")
            continue
        try:
            test()
        except NotImplementedError:
            print(f"  TODO  {label}: not implemented yet")
        except Exception as err:  # noqa: BLE001 - report any error of the student's code
            print(f"  FAIL  {label}: {describe(err)}")
        else:
            passed, earned = passed + 1, earned + points
            print(f"  PASS  {label}")
    total = sum(POINTS.values())
    print(f"Visible tests pass for {passed} of {len(POINTS)} functions ({earned:g} of {total:g} points).")


def check(what, got, expected, rtol=1e-4, atol=1e-5):
    """Fail, saying what was expected and what came back, unless ``got`` matches ``expected``.

    ``got`` is what your function returned (arrays and tensors are compared through ``.tolist()``);
    ``expected`` was computed by the reference when this notebook was made. Numbers match within
    ``atol + rtol * |expected|``; booleans and integers exactly.
    """
    problem = _mismatch(plain(got), expected, rtol, atol, "")
    if problem:
        raise VisibleTestFailed(f"{what}{problem}")


def plain(value):
    """Arrays and tensors as nested lists, tuples kept, everything else unchanged."""
    if hasattr(value, "detach"):
        value = value.detach()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (tuple, list)):
        return type(value)(plain(v) for v in value)
    return value


def _shape(value):
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return tuple(shape)


def _flat(value):
    if isinstance(value, list):
        return [x for v in value for x in _flat(v)]
    return [value]


def _show(value):
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(_show(v) for v in value) + ")"
    if isinstance(value, float):
        return f"{value:.4g}"
    return repr(value)


def _kind(value):
    if isinstance(value, list):
        shape = _shape(value)
        return f"an array of shape {shape}" if shape else "an empty list"
    if isinstance(value, tuple):
        return f"a tuple of {len(value)}"
    return f"{type(value).__name__} {_show(value)}"


def _differs(got, want, rtol, atol):
    if isinstance(want, bool) or isinstance(got, bool):
        return type(got) is not type(want) or got != want
    if not isinstance(got, (int, float)) or not isinstance(want, (int, float)):
        return got != want
    if isinstance(want, int) and isinstance(got, int):
        return got != want
    if want != want:  # nan expected
        return got == got
    if want in (float("inf"), float("-inf")):
        return got != want
    return not abs(got - want) <= atol + rtol * abs(want)  # False for nan, so nan always differs


def _mismatch(got, want, rtol, atol, path):
    if isinstance(want, tuple):
        if not isinstance(got, (tuple, list)) or len(got) != len(want):
            return f"{path} should return a tuple of {len(want)}; got {_kind(got)}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            problem = _mismatch(g, w, rtol, atol, f"{path}[{i}]")
            if problem:
                return problem
        return ""
    if not isinstance(want, list):
        if isinstance(got, (list, tuple)) or _differs(got, want, rtol, atol):
            return f"{path} should be {_show(want)}; got {_show(got) if not isinstance(got, list) else _kind(got)}"
        return ""
    if not isinstance(got, list) or _shape(got) != _shape(want) or len(_flat(got)) != len(_flat(want)):
        return f"{path} should be an array of shape {_shape(want)}; got {_kind(got)}"
    flat_got, flat_want = _flat(got), _flat(want)
    bad = [i for i, (g, w) in enumerate(zip(flat_got, flat_want, strict=True)) if _differs(g, w, rtol, atol)]
    if not bad:
        return ""
    if len(flat_want) <= 12:
        return f"{path} should be {_show(want)}; got {_show(got)}"
    index, shape = [], _shape(want)
    rest = bad[0]
    for n in reversed(shape):
        index.insert(0, rest % n)
        rest //= n
    at = "[" + ", ".join(map(str, index)) + "]"
    return (f"{path}{at} should be {_show(flat_want[bad[0]])}; got {_show(flat_got[bad[0]])} "
            f"({len(bad)} of {len(flat_want)} entries differ)")


def draw(*shape, seed=0):
    """Numbers in [-1, 1] (multiples of 1/64, exact in float32), as nested lists of ``shape``: the same
    on every computer. Wrap them as you need: ``np.array(draw(2, 3))``, ``torch.tensor(draw(2, 3))``."""
    size = 1
    for n in shape:
        size *= n
    state, flat = (seed + 1) * 0x9E3779B97F4A7C15 % 2**64, []
    for _ in range(size):
        state = (state * 6364136223846793005 + 1442695040888963407) % 2**64
        flat.append(((state >> 40) % 129 - 64) / 64)
    for n in reversed(shape[1:]):
        flat = [flat[i : i + n] for i in range(0, len(flat), n)]
    return flat


def set_weights(module, seed=0, scale=0.5):
    """Fill every parameter of a torch module (in name order) with ``scale * draw(...)``, so a module
    built by your class and by the reference hold the same numbers. Returns the module."""
    for i, (_, param) in enumerate(sorted(module.named_parameters(), key=lambda item: item[0])):
        values = param.data.new_tensor(draw(param.numel(), seed=seed + i)).reshape(param.shape)
        param.data.copy_(values * scale)
    return module
