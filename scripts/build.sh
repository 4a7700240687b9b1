#!/usr/bin/env bash
# Build the course website into _build/html (offline: MathJax is served from the site itself).
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
python -m course.site prepare          # copy MathJax from the venv into book/_static/mathjax
jupyter-book build . -W -n --keep-going "$@"
echo "Built: $ROOT/_build/html/index.html"
