"""Reference solutions for every graded exercise of the course (instructor-only: keep private).

NumPy for chapters 1–3, PyTorch for chapters 4 and later; names and shapes as in ``COURSE.md``. Every
public function or class defined at the top of a chapter module (``chN_*.py``) is exported; the list
is read from the modules' source, so nothing repeats it. Names are imported lazily (PEP 562), so
``from solutions import softmax`` does not import torch.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import Any


def _exports() -> dict[str, str]:
    where: dict[str, str] = {}
    for path in sorted(Path(__file__).parent.glob("ch[0-9]*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                where[node.name] = path.stem
    return where


_WHERE = _exports()
__all__ = list(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'solutions' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
