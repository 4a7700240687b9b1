"""nbgrader configuration for the course. Run stock commands from this folder, e.g.
``cd grader && nbgrader autograde ch2-sdpa``."""

c = get_config()  # noqa: F821  (provided by nbgrader)

c.CourseDirectory.root = "."
c.CourseDirectory.course_id = "attention"
c.CourseDirectory.db_assignments = [
    {"name": "ch1-lookup"},
    {"name": "ch2-sdpa"},
    {"name": "ch3-self-cross"},
    {"name": "ch4-multihead"},
    {"name": "ch5-gqa"},
    {"name": "ch6-tiled"},
]

# --- Autograding limits (grader/sandbox.py). Stock `nbgrader autograde` and `python -m grader grade`
# both read this file, so they run every submission under the same limits and give the same grades.
# A cell running longer than this many seconds is interrupted; its grade cells then fail (0 points).
c.Execute.timeout = 30
# Seconds to wait for a cell's last outputs after it finished (nbclient's default, 4 s, is too short for
# a cell that printed a lot on a busy machine: the notebook would fail to grade).
c.Execute.iopub_timeout = 30
# Kernels run under a memory limit: a cell that allocates too much gets a MemoryError, the grading of
# the other cells and of the other students goes on.
c.LimitedKernelManager.memory_limit_mb = 4096
# Output kept per cell while it runs (a cell printing 100 MB leaves a small notebook and feedback page).
c.LimitedExecute.max_output_chars = 100_000
c.Autograde.autograde_preprocessors = [
    "grader.sandbox.LimitedExecute",  # nbgrader's Execute + the two limits above
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
# A submission whose test cells were deleted gets them back from the source version (and is graded
# on them) instead of silently scoring 0 on the missing cells; edited test cells are always overwritten.
c.OverwriteCells.add_missing_cells = True
