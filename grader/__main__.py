"""``python -m grader``: see grader/cli.py."""

import sys

# nbgrader imports jupyter_server -> jupyter_events -> jsonschema, whose optional "iri" format checker
# imports rfc3987_syntax, which compiles 39 Lark grammars at import: about 2.5 s of every start-up (and
# of every forked grading worker's parent). Nothing the grader does validates IRIs, so the CLI skips that
# optional checker; jsonschema treats the module as absent (its import is wrapped in suppress(ImportError)).
sys.modules.setdefault("rfc3987_syntax", None)

from grader.cli import main  # noqa: E402

sys.exit(main())
