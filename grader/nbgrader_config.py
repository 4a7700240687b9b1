"""nbgrader configuration for the course. Run stock commands from this folder, e.g.
``cd grader && nbgrader autograde ch2-sdpa``."""

c = get_config()  # noqa: F821  (provided by nbgrader)

c.CourseDirectory.root = "."
c.CourseDirectory.course_id = "attention"
# The assignments are the folders of exercises/ (one per exercise, exercises/<id>/exercise.md); nothing
# here lists them. `nbgrader generate_assignment <id>` records one in the gradebook.

# --- Trusted grading (grader/execute.py). Stock `nbgrader autograde` and `python -m grader grade` both
# read this file, so every submission is graded the same way: its notebook runs in a fresh bubblewrap
# sandbox (grader/sandbox/), and each grade cell's verdict comes from hidden checks run outside it.
# A cell running longer than this many seconds is interrupted (killed with its sandbox if it does not
# stop); so are the hidden checks of one function (TrustedExecute.check_timeout, 0 = the same).
c.Execute.timeout = 30
# Seconds to wait for a cell's last outputs after it finished (a cell that printed a lot on a busy machine).
c.Execute.iopub_timeout = 30
# Seconds for a whole notebook: its cells, the replays after a kernel restart and its hidden checks (a
# quarter is kept for the checks, TrustedExecute.checks_share). When they are spent, the remaining cells are
# not run, the functions are checked with what was defined, and the feedback says so.
c.TrustedExecute.notebook_timeout = 600
# Limits of each sandboxed kernel, which it cannot lift: memory (MiB) and processes and threads for its whole
# sandbox (one cgroup each, where the machine has cgroup v1 or v2 and grading runs as root; elsewhere
# rlimits per process, said once in the log), file size (MiB), CPU seconds, size of its working directory
# and /tmp (MiB).
c.SandboxedKernelManager.memory_limit_mb = 4096
c.SandboxedKernelManager.max_processes = 64
c.SandboxedKernelManager.max_file_mb = 64
c.SandboxedKernelManager.cpu_seconds = 600
c.SandboxedKernelManager.scratch_mb = 256
# Where bubblewrap cannot run, grading refuses. To grade without a sandbox anyway (a submission then runs
# as you, with your files), set this to False or pass `python -m grader grade --no-sandbox`.
c.SandboxedKernelManager.sandbox = True
# Output kept per cell while it runs, every kind counted (streams, results, displays and their updates, errors
# with their tracebacks): a cell printing 100 MB leaves a small notebook and feedback page. Comm (widget)
# messages are discarded.
c.TrustedExecute.max_output_chars = 100_000
# Submitted notebooks are read by grader/normalize.py: a byte-order mark, CRLF, any JSON layout, older nbformat
# versions, list or string sources, missing or repeated cell ids, and duplicated, edited or removed nbgrader
# cells are repaired (a note at the top of the notebook and its feedback page says what was), and a file that
# cannot be graded is logged in words ("the file is not valid JSON (line 12, column 5) ..."). The submitted
# file itself is never changed.
c.Autograde.exporter_class = "grader.normalize.SubmissionExporter"
c.Autograde.autograde_preprocessors = [
    "grader.execute.TrustedExecute",  # sandboxed execution + verdicts from outside the kernel
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "grader.sanitize.SanitizeNotebook",  # what the student controls, made safe for the formgrader (no script)
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
# Links and special files in a submission are refused, never followed or read (grader/nbgrader_links.py:
# nbgrader's copy of submitted/ to autograded/, its read of the notebook and of timestamp.txt).
__import__("grader.nbgrader_links", fromlist=["install"]).install()
# ... and by `nbgrader collect` from the exchange's inbound folder (grader/term/exchange.py).
c.ExchangeFactory.collect = "grader.term.exchange.SafeExchangeCollect"
# A submission whose test cells were deleted gets them back from the source version (and is graded
# on them) instead of silently scoring 0 on the missing cells; edited test cells are always overwritten.
c.OverwriteCells.add_missing_cells = True

# --- The term (grader/term/deadlines.py): due dates and the late penalty. `python -m grader import` and `grade`
# write them where nbgrader reads them (the gradebook's due date and extensions,
# submitted/<student>/<id>/timestamp.txt), so stock `nbgrader autograde` and `nbgrader export` agree with
# the CLI's CSV. Times without a zone are UTC. Extensions for single students are decisions, recorded with
# `python -m grader extend ch2-sdpa <LMS id> --days 2 --reason "..."` in decisions.toml (grader/term/decisions.py).
c.Term.due_dates = {}  # e.g. {"ch2-sdpa": "2026-10-05 23:59:00 Europe/Berlin"}
# Late work loses this percentage of its score per started day late (after the grace period), at most all.
c.AssignLatePenalties.plugin_class = "grader.term.deadlines.LatePenalty"
c.LatePenalty.percent_per_day = 10
c.LatePenalty.grace_minutes = 0
# `nbgrader export` writes grades.csv as CSV (quoted) with no cell that can start a spreadsheet formula
# (grader/term/export.py; the CLI's CSVs go through grader/csvsafe.py).
c.ExportApp.plugin_class = "grader.term.export.CsvExport"

# --- Pages that render offline and run nothing: nbgrader's formgrader and the feedback pages. Every HTML
# page nbgrader makes of a notebook (the formgrader's view of a submission, generate_feedback's page) first
# sanitises it again (grader/sanitize.py: also notebooks autograded before, and the LMS display names the
# formgrader prints) and renders its formulas to MathML (grader/feedback.py), so neither needs MathJax from a
# CDN; the feedback page also carries a Content-Security-Policy that forbids every script and remote load.
c.HTMLExporter.preprocessors = ["grader.sanitize.SanitizeNotebook", "grader.feedback.OfflineMath"]
c.HTMLExporter.extra_template_basedirs = [
    str(__import__("grader.feedback", fromlist=["TEMPLATES"]).TEMPLATES),
    str(__import__("pathlib").Path(__import__("nbgrader").__file__).parent / "server_extensions" / "formgrader"
        / "templates"),
]
c.GenerateFeedback.exporter_class = "grader.feedback.FeedbackExporter"  # compiled templates reused, the CSP
c.GenerateFeedback.preprocessors = [  # after the exporter's own (above): the instructor's comments are not sanitised
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
