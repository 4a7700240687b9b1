#!/usr/bin/env bash
# Merge the shard folders of grade-array.sh into the course's gradebook (one process: one SQLite writer).
#   sbatch --dependency=afterok:<grade-array job id> deploy/slurm/merge.sh
#SBATCH --job-name=attention-merge
#SBATCH --cpus-per-task=1
#SBATCH --mem=2G
#SBATCH --time=00:30:00
#SBATCH --output=merge-%j.log
set -euo pipefail
: "${COURSE_DIR:=$PWD/grader}"
: "${RESULTS_DIR:=$PWD/grading-results}"
source .venv/bin/activate
exec python -m grader merge "$RESULTS_DIR"/shard-* --into "$COURSE_DIR"
