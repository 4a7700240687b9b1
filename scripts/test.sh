#!/usr/bin/env bash
# Run the whole test suite: lint, unit and property tests, grading end-to-end (in the bubblewrap sandbox),
# site build + browser tests.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
bash scripts/install-browser.sh
bash scripts/install-sandbox.sh
ruff check .
python -m pytest "$@"
