#!/usr/bin/env bash
# Grade one assignment as a Slurm job array, one task per shard, then merge (merge.sh).
#
#   cd /path/to/attention-course          # the repository, with .venv (bash scripts/test.sh or build.sh made it)
#   jid=$(sbatch --parsable deploy/slurm/grade-array.sh)
#   sbatch --dependency=afterok:$jid deploy/slurm/merge.sh
#
# Task k grades every N-th submission starting at k (`grade --shard k/N`, N = the array's size) into its
# own folder $RESULTS_DIR/shard-k. Change the number of shards in --array only (0-(N-1)).
#
# What each node needs (the grading sandbox, see book/instructors.md "Trust"): Linux with bubblewrap and
# util-linux (Debian: bash scripts/install-sandbox.sh), the repository's .venv on a shared filesystem,
# and a course directory every node can read (COURSE_DIR: nbgrader_config.py, source/, release/,
# exercises/, submitted/, .grading-secret). Run as root (e.g. a root-owned grading partition) to get one
# uid and PID namespace per kernel; as an ordinary user the sandbox uses unprivileged user namespaces
# (kernel.unprivileged_userns_clone=1), and `grade` stops with the reason if neither works.
#SBATCH --job-name=attention-grade
#SBATCH --array=0-3
#SBATCH --cpus-per-task=2
#SBATCH --mem=12G
#SBATCH --time=02:00:00
#SBATCH --output=grade-%A_%a.log
set -euo pipefail
: "${ASSIGNMENT:=ch2-sdpa}"
: "${COURSE_DIR:=$PWD/grader}"
: "${RESULTS_DIR:=$PWD/grading-results}"
source .venv/bin/activate
exec python -m grader --course-dir "$COURSE_DIR" grade "$ASSIGNMENT" \
  --shard "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT" --out "$RESULTS_DIR/shard-$SLURM_ARRAY_TASK_ID" \
  --jobs "${SLURM_CPUS_PER_TASK:-1}"
