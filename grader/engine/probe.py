"""The hidden checks' runner, and the plain-data format it speaks.

This one file runs in two places:

- **inside the student's sandboxed kernel**: the grader sends its source as the code of an
  ``execute_request`` (the kernel has no ``grader`` package and no ``solutions``), then calls
  :func:`run` with a job folder. It calls the student's function on the hidden inputs and writes
  what came back as plain data: JSON plus ``.npy`` arrays.
- **in the grader** (``import grader.engine.probe``): the same runners compute the reference's and
  the known mistakes' answers, so both sides run a case in exactly the same way.

Nothing the kernel writes is trusted: :mod:`grader.engine.transport` reads it back with size limits
and ``allow_pickle=False``, and the comparison happens in the grader. Only NumPy, the standard
library and (for the PyTorch chapters) torch are used here.

The format (``FORMAT``): a value is encoded as a JSON tree whose arrays live in files of the same
folder. Nodes: JSON ``null``/booleans/numbers/strings as themselves; ``{"t": "tuple" | "list",
"v": [...]}``; ``{"t": "dict", "v": [[key, value], ...]}``; ``{"t": "ndarray", "i": k}`` (file
``a<k>.npy``); ``{"t": "npscalar", "i": k}``; ``{"t": "tensor", "i": k, "dtype": "float32"}``;
``{"t": "module", "class": name, "init": [...], "state": {...}}`` (inputs only: a module to build in
the kernel); ``{"t": "other", "type": name}`` (a value that is not plain data); per case, a result is
``{"ok": value}`` or ``{"error": {"type": name, "message": text}}`` (plus ``"name"``, the missing name of a
``NameError``), with ``"modified": [argument, ...]`` when the call changed some of its array or tensor
arguments in place (a position, or a keyword's name).
"""

from __future__ import annotations

import json
import os
import sys
import traceback

import numpy as np

FORMAT = 1
JOB_FILE = "job.json"
RESULT_FILE = "result.json"
MAX_TEXT = 300  # characters kept of an error message or a string result
#: Aten operators that mean "library attention" (substrings of the operator name).
FORBIDDEN_OPS = ("scaled_dot_product", "_native_multi_head_attention", "flash_attention", "efficient_attention")
#: Torch functions that mean "autograd" (exact names), refused in a function whose job says ``no_autograd``:
#: ``torch.autograd.grad`` (``torch.func`` and ``torch.autograd.functional`` call it), ``Tensor.backward``,
#: ``torch.autograd.backward``, ``Tensor.requires_grad_``.
AUTOGRAD_OPS = ("grad", "backward", "requires_grad_")
#: Module classes that mean "library attention" when found inside a student's module.
FORBIDDEN_MODULES = ("MultiheadAttention",)

# --------------------------------------------------------------------------------------------------
# Encoding: values <-> JSON trees + arrays
# --------------------------------------------------------------------------------------------------


def _torch():
    return sys.modules.get("torch")


def encode(value, arrays: list) -> object:
    """The JSON tree of ``value``; NumPy arrays it holds are appended to ``arrays`` (file ``a<index>``)."""
    torch = _torch()
    if value is None or isinstance(value, (bool, str)):
        return value[:MAX_TEXT] if isinstance(value, str) else value
    if isinstance(value, int):
        return value if abs(value) < 2**62 else float(value)
    if isinstance(value, float):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject or value.dtype.kind not in "biufc":
            return {"t": "other", "type": f"ndarray of dtype {value.dtype}"}
        arrays.append(np.ascontiguousarray(value))
        return {"t": "ndarray", "i": len(arrays) - 1}
    if isinstance(value, np.generic):
        if value.dtype.kind not in "biufc":
            return {"t": "other", "type": type(value).__name__}
        arrays.append(np.asarray(value))
        return {"t": "npscalar", "i": len(arrays) - 1}
    if torch is not None and isinstance(value, torch.Tensor):
        dtype = str(value.dtype).replace("torch.", "")
        data = value.detach().cpu()
        if data.dtype in (torch.bfloat16, torch.float16):
            data = data.float()
        try:
            array = data.numpy()
        except Exception:  # noqa: BLE001 - e.g. a quantized or sparse tensor
            return {"t": "other", "type": f"tensor of dtype {dtype}"}
        arrays.append(np.ascontiguousarray(array))
        return {"t": "tensor", "i": len(arrays) - 1, "dtype": dtype}
    if isinstance(value, (tuple, list)):
        return {"t": type(value).__name__ if type(value) in (tuple, list) else "tuple",
                "v": [encode(v, arrays) for v in value]}
    if isinstance(value, dict):
        items = []
        for k, v in value.items():
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                return {"t": "other", "type": "dict with keys that are not strings"}
            items.append([k, encode(v, arrays)])
        return {"t": "dict", "v": items}
    if isinstance(value, ModuleSpec):
        return {"t": "module", "class": value.cls, "init": encode(list(value.init), arrays),
                "state": encode(dict(value.state), arrays)}
    return {"t": "other", "type": type(value).__name__}


class ModuleSpec:
    """An input module: ``namespace[cls](*init)`` with ``state`` loaded (built where it is used)."""

    def __init__(self, cls: str, init: tuple, state: dict) -> None:
        self.cls, self.init, self.state = cls, tuple(init), dict(state)

    def build(self, namespace: dict):
        return load_state(namespace[self.cls](*self.init), self.state, self.cls)


def decode(tree, arrays: list):
    """The value of a JSON tree whose arrays are ``arrays`` (NumPy); tensors are rebuilt as tensors."""
    if not isinstance(tree, dict):
        return tree
    kind = tree.get("t")
    if kind in ("tuple", "list"):
        items = [decode(v, arrays) for v in tree["v"]]
        return tuple(items) if kind == "tuple" else items
    if kind == "dict":
        return {k: decode(v, arrays) for k, v in tree["v"]}
    if kind == "ndarray":
        return arrays[tree["i"]].copy()
    if kind == "npscalar":
        return arrays[tree["i"]][()]
    if kind == "tensor":
        import torch

        return torch.from_numpy(arrays[tree["i"]].copy()).to(getattr(torch, tree["dtype"]))
    if kind == "module":
        return ModuleSpec(tree["class"], decode(tree["init"], arrays), decode(tree["state"], arrays))
    return OtherValue(tree.get("type", "?"))


class OtherValue:
    """A result that was not plain data (only its type name crossed over)."""

    def __init__(self, type_name: str) -> None:
        self.type_name = str(type_name)[:MAX_TEXT]

    def __repr__(self) -> str:
        return f"<{self.type_name}>"


def error_entry(err: BaseException) -> dict:
    lines = str(err).strip().splitlines()
    entry = {"type": type(err).__name__, "message": (lines[0] if lines else "")[:MAX_TEXT]}
    if isinstance(err, NameError) and isinstance(getattr(err, "name", None), str):
        entry["name"] = err.name[:MAX_TEXT]
    return {"error": entry}


# --------------------------------------------------------------------------------------------------
# Inputs changed in place: a snapshot of every array or tensor argument before the call
# --------------------------------------------------------------------------------------------------


def _array_leaves(value, depth: int = 0):
    torch = _torch()
    if isinstance(value, np.ndarray) or (torch is not None and isinstance(value, torch.Tensor)):
        yield value
    elif isinstance(value, (tuple, list)) and depth < 4:
        for item in value:
            yield from _array_leaves(item, depth + 1)


def _as_numpy(leaf):
    if isinstance(leaf, np.ndarray):
        return leaf.copy()
    data = leaf.detach().cpu()
    return (data.float() if data.is_floating_point() and data.element_size() < 4 else data).numpy().copy()


def snapshot(args: tuple, kwargs: dict) -> list:
    """``(argument, array or tensor, copy of its values)`` for every array or tensor among the arguments."""
    taken = []
    for label, value in [*enumerate(args), *kwargs.items()]:
        for leaf in _array_leaves(value):
            try:
                taken.append((label, leaf, _as_numpy(leaf)))
            except Exception:  # noqa: BLE001 - a tensor NumPy cannot hold: not watched
                pass
    return taken


def changed(taken: list) -> list:
    """The arguments (positions, keyword names) whose arrays or tensors no longer hold their values."""
    found = []
    for label, leaf, before in taken:
        try:
            now = _as_numpy(leaf)
            same = now.shape == before.shape and (
                np.array_equal(now, before, equal_nan=True) if now.dtype.kind in "fc" else np.array_equal(now, before)
            )
        except Exception:  # noqa: BLE001 - something that cannot be read back changed
            same = False
        if not same and label not in found:
            found.append(label)
    return found


# --------------------------------------------------------------------------------------------------
# Runners: how one hidden case calls the function under test (``impl``) in ``namespace``
# --------------------------------------------------------------------------------------------------

RUNNERS: dict = {}


def runner(fn):
    RUNNERS[fn.__name__] = fn
    return fn


class ParameterMismatch(Exception):
    """The student's module has other parameters than the reference's."""


def load_state(module, state: dict, cls: str):
    """``module`` with the parameters ``state`` loaded; its own extra parameters are allowed.

    A state of float64 tensors makes a float64 module (converted before loading, so nothing is rounded).
    Missing or misshapen parameters raise :class:`ParameterMismatch` whose message lists their names
    (``missing: a, b; shape: c``), which the grader reads back and keeps only where they are names of
    the expected parameters.
    """
    import torch

    try:
        floating = {v.dtype for v in state.values() if torch.is_tensor(v) and v.is_floating_point()}
        if floating == {torch.float64}:
            module = module.double()
        own = module.state_dict()
    except Exception:  # noqa: BLE001 - not a module at all
        raise ParameterMismatch("missing: " + ", ".join(state)) from None
    missing = [k for k in state if k not in own]
    misshapen = [k for k in state if k in own and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or misshapen:
        raise ParameterMismatch(f"missing: {', '.join(missing)}; shape: {', '.join(misshapen)}")
    try:
        module.load_state_dict({k: torch.as_tensor(v).clone() for k, v in state.items()}, strict=False)
    except Exception:  # noqa: BLE001 - e.g. a parameter of another dtype that cannot take the values
        raise ParameterMismatch("shape: " + ", ".join(state)) from None
    return module


@runner
def call(impl, namespace, *args, **kwargs):
    """``impl(*args, **kwargs)``."""
    return impl(*args, **kwargs)


@runner
def sample(impl, namespace, logits, seed, draws, **kwargs):
    """``draws`` calls of ``impl(logits, generator=g, **kwargs)`` sharing one ``torch.Generator`` seeded
    ``seed``. The global generator is seeded too (with ``seed + 1``, restored afterwards), so code that
    ignores ``generator`` draws the same tokens here and in the grader, and its mistake can be named."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        return tuple(impl(logits.clone(), generator=generator, **kwargs) for _ in range(draws))


def _build(impl, module: ModuleSpec):
    return load_state(impl(*module.init), module.state, module.cls)


@runner
def forward(impl, namespace, module, *args, **kwargs):
    """Build the class ``impl`` with the case's parameters, then call it (no gradients)."""
    import torch

    m = _build(impl, module)
    _refuse_library_modules(m)
    with torch.no_grad():
        return m(*args, **kwargs)


@runner
def decode_steps(impl, namespace, module, x):
    """``(full causal forward, the same tokens decoded one at a time with the cache)``."""
    import torch

    m = _build(impl, module)
    _refuse_library_modules(m)
    with torch.no_grad():
        full, _ = m(x.clone())
        steps, cache = [], None
        for t in range(x.shape[1]):
            out, cache = m(x[:, t : t + 1].clone(), kv_cache=cache)
            steps.append(out)
        return full, torch.cat(steps, dim=1)


@runner
def convert(impl, namespace, source, *args):
    """``impl(built source module, *args)`` -> the returned module's parameters, by name.

    A change of the source module's own parameters (converting it in place) counts as changing
    argument 0 in place.
    """
    import torch

    mha = source.build(namespace)
    before = snapshot(tuple(mha.state_dict().values()), {})
    with torch.no_grad():
        out = impl(mha, *args)
    if changed(before):
        MODIFIED.append(0)
    state = getattr(out, "state_dict", None)
    if state is None:
        return out
    return {k: v.detach().clone() for k, v in sorted(state().items())}


@runner
def traced(impl, namespace, source, *args):
    """``(impl(model, *args), tokens per call)``: the model built from ``source``, with every call of its
    ``decode`` noted by the number of token positions it was given (how a decoding loop uses a cache)."""
    import torch

    model = source.build(namespace)
    calls = []
    decode = model.decode

    def watched(tokens, *rest, **kwargs):
        calls.append(int(tokens.shape[-1]))
        return decode(tokens, *rest, **kwargs)

    model.decode = watched
    with torch.no_grad():
        out = impl(model, *args)
    return out, tuple(calls)


@runner
def tiles(impl, namespace, Q, K, V, block_size):
    """Whether ``impl(Q, K, V, block_size=...)`` never makes a square block of scores larger than a tile.

    Every torch call the student's code makes passes through a torch-function mode that notes the
    largest ``min(rows, columns)`` of any tensor it returns.
    """
    from torch.overrides import TorchFunctionMode

    largest = [0]

    class Watch(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else (out,):
                shape = getattr(t, "shape", ())
                if len(shape) >= 2:
                    largest[0] = max(largest[0], min(shape[-2], shape[-1]))
            return out

    with Watch():
        impl(Q, K, V, block_size=block_size)
    return largest[0] <= block_size


def _recipe(name, params):
    """A function of ``q`` described by data (the functions chapter 1 differentiates)."""
    if name == "linear":
        A, b = params
        return lambda q: A @ q + b
    if name == "soft":
        keys, values, t = params

        def soft(q):
            s = keys @ q / t
            w = np.exp(s - s.max())
            return (w / w.sum()) @ values

        return soft
    if name == "sum_of_squares":
        return lambda q: np.array([np.sum(q**2)])
    if name == "sum_of_cubes":
        return lambda q: np.array([np.sum(q**3)])
    raise ValueError(f"unknown recipe {name!r}")


@runner
def gradient(impl, namespace, recipe, params, query, **kwargs):
    """``impl(f, query, **kwargs)`` for the function ``f`` named by ``recipe``."""
    return impl(_recipe(recipe, params), query, **kwargs)


def _refuse_library_modules(module) -> None:
    for sub in getattr(module, "modules", lambda: [])():
        if type(sub).__name__ in FORBIDDEN_MODULES:
            raise LibraryAttention(f"torch.nn.{type(sub).__name__}")


class LibraryAttention(Exception):
    """The function under test used a library's attention (reported, never credited)."""


# --------------------------------------------------------------------------------------------------
# The job: run every case of one function in the kernel, write the results
# --------------------------------------------------------------------------------------------------


def _load_arrays(folder: str, count: int) -> list:
    return [np.load(os.path.join(folder, f"a{i}.npy"), allow_pickle=False) for i in range(count)]


class _OpWatch:
    """Records library attention (and, with ``no_autograd``, autograd) while the student's code runs.

    A torch-function mode sees every torch call made from Python by name:
    ``F.scaled_dot_product_attention``, ``multi_head_attention_forward``, and ``torch.ops.aten`` or
    ``torch._C._nn`` attention operators called directly. (A dispatch mode would also see kernels
    reached from C++, but its first use costs seconds of imports in every kernel.) Autograd is
    recorded as ``autograd: <name>``; setting ``tensor.requires_grad = True`` arrives as the
    descriptor's ``__set__``.
    """

    def __init__(self, no_autograd: bool = False):
        self.seen: set = set()
        self.mode = None
        torch = _torch()
        if torch is None:
            return
        from torch.overrides import TorchFunctionMode

        seen = self.seen

        class Functions(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                name = str(getattr(func, "__name__", "") or func)
                if any(f in name for f in FORBIDDEN_OPS):
                    seen.add(name)
                if no_autograd and (name in AUTOGRAD_OPS or name == "__set__" and _sets_requires_grad(func)):
                    seen.add(f"autograd: {name}")
                return func(*args, **(kwargs or {}))

        self.mode = Functions()

    def __enter__(self):
        if self.mode is not None:
            self.mode.__enter__()
        return self

    def __exit__(self, *exc):
        if self.mode is not None:
            self.mode.__exit__(*exc)


def _sets_requires_grad(func) -> bool:
    return getattr(getattr(func, "__self__", None), "__name__", "") == "requires_grad"


#: Arguments a runner saw changed in place that a snapshot of the call's arguments cannot see.
MODIFIED: list = []


def run_cases(impl, namespace: dict, cases: list, watch_library: bool = True,
              no_autograd: bool = False) -> tuple[list, list]:
    """``(results, library attention seen)``: each case is ``(runner name, args, kwargs)`` of decoded
    values, each result ``(status, value, arguments changed in place)``. ``watch_library=False`` for
    trusted code (the grader's own reference and mistakes); ``no_autograd`` also records autograd."""
    results, seen = [], set()
    for runner_name, args, kwargs in cases:
        watch = _OpWatch(no_autograd) if watch_library else _NoWatch()
        taken = snapshot(args, kwargs)
        del MODIFIED[:]
        try:
            with np.errstate(all="ignore"), watch:
                value = RUNNERS[runner_name](impl, namespace, *args, **kwargs)
            modified = [*MODIFIED, *(a for a in changed(taken) if a not in MODIFIED)]
            results.append(("ok", value, modified))
        except LibraryAttention as err:
            seen.add(str(err))
            results.append(("error", err, []))
        except Exception as err:  # noqa: BLE001 - any error of the student's code is a result
            results.append(("error", err, []))
        seen |= watch.seen
    return results, sorted(seen)


class _NoWatch:
    seen: set = set()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def _install_helpers(namespace: dict, prelude: str, sources: dict) -> dict:
    """Put reference versions of the already-checked functions into the notebook's namespace.

    Returns what they replaced, to restore afterwards.
    """
    if not sources:
        return {}
    helpers: dict = {"__name__": "_grader_helpers"}
    exec(compile(prelude + "\n" + "\n\n".join(sources.values()), "<reference helpers>", "exec"), helpers)
    saved = {name: namespace.get(name, _MISSING) for name in sources}
    for name in sources:
        namespace[name] = helpers[name]
    return saved


_MISSING = object()


def _restore(namespace: dict, saved: dict) -> None:
    for name, value in saved.items():
        if value is _MISSING:
            namespace.pop(name, None)
        else:
            namespace[name] = value


def run(job_dir: str, out_dir: str, namespace: dict) -> None:
    """Kernel side: run the job in ``job_dir`` against ``namespace`` (the notebook's globals)."""
    with open(os.path.join(job_dir, JOB_FILE)) as f:
        job = json.load(f)
    arrays = _load_arrays(job_dir, job["arrays"])
    result: dict = {"format": FORMAT, "function": job["function"]}
    impl = namespace.get(job["function"])
    if impl is None:
        result["missing"] = True
    else:
        saved = _install_helpers(namespace, job.get("prelude", ""), job.get("helpers", {}))
        try:
            cases = [(c["runner"], decode(c["args"], arrays), decode(c["kwargs"], arrays)) for c in job["cases"]]
            results, seen = run_cases(impl, namespace, cases, no_autograd=job.get("no_autograd") is True)
        finally:
            _restore(namespace, saved)
        out_arrays: list = []
        entries = []
        for status, value, modified in results:
            entry = {"ok": encode(value, out_arrays)} if status == "ok" else error_entry(value)
            if modified:
                entry["modified"] = modified
            entries.append(entry)
        result.update(cases=entries, forbidden=seen, arrays=len(out_arrays))
        for i, array in enumerate(out_arrays):
            np.save(os.path.join(out_dir, f"a{i}.npy"), array, allow_pickle=False)
    tmp = os.path.join(out_dir, RESULT_FILE + ".tmp")
    with open(tmp, "w") as f:
        json.dump(result, f, allow_nan=True)
    os.replace(tmp, os.path.join(out_dir, RESULT_FILE))


def kernel_code(source: str, job_dir: str, out_dir: str) -> str:
    """The code the grader sends to the kernel: this module's source, then :func:`run` on a job."""
    return (
        f"(lambda _g: (exec(compile({source!r}, '<grader probe>', 'exec'), _g), "
        f"_g['run']({job_dir!r}, {out_dir!r}, globals())))({{'__name__': '_grader_probe'}})"
    )


def describe_error(err: BaseException) -> str:
    """One line: the exception's type and first line (used on the grader side)."""
    lines = traceback.format_exception_only(type(err), err)
    return lines[-1].strip()[:MAX_TEXT] if lines else type(err).__name__


__all__ = ["FORMAT", "RUNNERS", "ModuleSpec", "OtherValue", "decode", "encode", "run", "run_cases"]
