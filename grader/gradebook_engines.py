"""One database engine per gradebook for the life of a grading worker.

nbgrader opens a new :class:`nbgrader.api.Gradebook` about ten times per graded notebook (the autograde
app, each preprocessor that reads or writes grades, the feedback step), and each one creates a SQLAlchemy
engine, inspects the database and runs ``create_all`` on its schema: 3.5 ms each, 35 ms per notebook.
In a worker of ``python -m grader grade``, which grades one submission after another into the same shard
gradebook, :func:`share_engines` makes every ``Gradebook`` of one database URL use one engine, and
creates the schema once. The rows written are the same (``tests/grading/test_cli.py`` compares the
CLI's gradebook with stock nbgrader's); only the connection set-up is not repeated.
"""

from __future__ import annotations

from typing import Any

_shared: dict[tuple, Any] = {}
_created: set[str] = set()


def share_engines() -> None:
    """Patch ``nbgrader.api`` in this process (idempotent): engines are shared, the schema created once."""
    from nbgrader import api

    if getattr(api, "_grader_shares_engines", False):
        return
    create_engine, create_all = api.create_engine, api.Base.metadata.create_all

    def shared_engine(url: Any, **kwargs: Any) -> Any:
        key = (str(url), tuple(sorted(kwargs.items())))
        if key not in _shared:
            _shared[key] = create_engine(url, **kwargs)
        return _shared[key]

    def create_schema_once(bind: Any = None, **kwargs: Any) -> None:
        url = str(bind.url)
        if url not in _created:
            create_all(bind=bind, **kwargs)
            _created.add(url)

    api.create_engine = shared_engine
    api.Base.metadata.create_all = create_schema_once
    api._grader_shares_engines = True
