"""What a worker of ``python -m grader grade`` changes in nbgrader, in its own process, to grade one
submission after another faster; every result stays the same. :func:`speed_up_nbgrader` applies both.

**One database engine per gradebook.** nbgrader opens a new :class:`nbgrader.api.Gradebook` about ten
times per graded notebook (the autograde app, each preprocessor that reads or writes grades, the
feedback step), and each one creates a SQLAlchemy engine, inspects the database and runs ``create_all``
on its schema: 3.5 ms each, 35 ms per notebook. A worker grades one submission after another into the
same shard gradebook: :func:`share_engines` makes every ``Gradebook`` of one database URL use one
engine, and creates the schema once. The rows written are the same (``tests/grading/test_cli.py``
compares the CLI's gradebook with stock nbgrader's); only the connection set-up is not repeated.

**Cell metadata checked with one validator.** nbgrader's ``CheckCellMetadata`` runs twice per notebook
and calls ``jsonschema.validate`` for every nbgrader cell, which first checks nbgrader's own schema
again (40 ms per notebook). :func:`check_metadata_with_one_validator` builds the validator once per
schema and raises the same error ``jsonschema.validate`` would (its best match), without re-checking
the schema, which is nbgrader's own file.
"""

from __future__ import annotations

from typing import Any

_shared: dict[tuple, Any] = {}
_created: set[str] = set()
_validators: dict[str, Any] = {}


def speed_up_nbgrader() -> None:
    """Both changes, in this process (idempotent)."""
    share_engines()
    check_metadata_with_one_validator()


def validate_like_jsonschema(instance: Any, schema: dict) -> None:
    """``jsonschema.validate(instance, schema)`` without checking ``schema`` itself at each call."""
    import json

    import jsonschema
    from jsonschema.exceptions import best_match

    key = json.dumps(schema, sort_keys=True)
    if key not in _validators:
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        _validators[key] = cls(schema)
    error = best_match(_validators[key].iter_errors(instance))
    if error is not None:
        raise error


def check_metadata_with_one_validator() -> None:
    """Patch nbgrader's metadata validators (idempotent) to use :func:`validate_like_jsonschema`."""
    import types

    from nbgrader.nbgraderformat import common

    if isinstance(common.jsonschema, types.SimpleNamespace):
        return
    common.jsonschema = types.SimpleNamespace(validate=validate_like_jsonschema)


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
