#!/usr/bin/env bash
# Build the course website into _build/html (offline: MathJax is served from the site itself).
# Extra arguments go to jupyter-book, e.g. `bash scripts/build.sh --path-output /tmp/mybuild`.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
# 1. MathJax from the venv into book/_static/mathjax; 2. the reading pages' Colab-ready .ipynb twins
#    regenerated from their .md sources (commit them with the .md: a test fails when they drift).
python -m course.site prepare
jupyter-book build . -W -n --keep-going "$@"
echo "Built: $ROOT/_build/html/index.html"
