#!/usr/bin/env bash
# Run the whole test suite: lint, unit and property tests, grading end-to-end, site build + browser tests.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
bash scripts/install-browser.sh
ruff check .
python -m pytest "$@"
