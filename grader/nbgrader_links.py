"""Stock ``nbgrader autograde`` without following a submission's links (installed by ``nbgrader_config.py``).

nbgrader copies ``submitted/<student>/<assignment>/`` to ``autograded/`` with ``shutil.copy`` (which
follows symbolic links: a link to the course's secret, the gradebook or a reference solution had its
*contents* copied, then shown in the student's own feedback), opens the notebook with ``open`` and
reads ``timestamp.txt`` the same way (a link to ``/dev/zero`` there never ends). :func:`install`
replaces these three reads for ``Autograde`` only, with :mod:`grader.sandbox.files`:

- the submission's other files are copied by :func:`~grader.sandbox.files.copy_tree` (links, hard links
  and special files refused, nothing read through them), with nbgrader's own ignore globs;
- the notebook is read from a descriptor opened with ``O_NOFOLLOW`` and checked: a notebook that is a
  link or a special file is not graded (the error names it, and the submission scores 0);
- ``timestamp.txt`` is read the same way (at most 1 KiB), for every nbgrader command.

What was refused reaches :class:`grader.execute.TrustedExecute` in the notebook's resources
(``resources["nbgrader"]["refused_files"]``), which logs it and says it in the feedback and the grades
CSV. ``python -m grader grade`` stages each submission in its shard with the same copy and hands what it
refused over in :data:`STAGED`. Everything else of nbgrader is unchanged; :func:`install` is idempotent.
"""

from __future__ import annotations

import datetime
import os

from grader.sandbox.files import Refused, RefusedFileError, copy_tree, open_regular, read_regular

#: ``(assignment, student) -> refused`` of the submissions the CLI staged in this process (grader/parallel.py).
STAGED: dict[tuple[str, str], list[Refused]] = {}
TIMESTAMP_LIMIT = 1024


def install() -> None:
    from nbgrader.converters import Autograde
    from nbgrader.converters.base import BaseConverter
    from nbgrader.coursedir import CourseDirectory

    if getattr(BaseConverter, "_links_refused", False):
        return
    original_init = BaseConverter.init_assignment
    original_convert = BaseConverter.convert_single_notebook
    original_resources = BaseConverter.init_single_notebook_resources

    def submission(self) -> bool:  # Autograde, reading submitted/ (not its second pass over autograded/)
        return isinstance(self, Autograde) and self._sanitizing

    def init_assignment(self, assignment_id: str, student_id: str) -> None:
        if not submission(self):
            return original_init(self, assignment_id, student_id)
        source = self._format_source(assignment_id, student_id)
        dest = self._format_dest(assignment_id, student_id)
        refused = STAGED.pop((assignment_id, student_id), [])
        refused += copy_tree(source, dest, ignore=[*self.coursedir.ignore, "*.ipynb"])
        for r in refused:
            self.log.warning("Refused %s of %s/%s: %s (graded without it)", r.path, student_id, assignment_id,
                             r.words())
        self._refused_files = [r.words() for r in refused]

    def convert_single_notebook(self, notebook_filename: str) -> None:
        if not submission(self):
            return original_convert(self, notebook_filename)
        resources = self.init_single_notebook_resources(notebook_filename)
        output, resources = _export_from_descriptor(self.exporter, notebook_filename, resources)
        self.write_single_notebook(output, resources)

    def init_single_notebook_resources(self, notebook_filename: str):  # noqa: ANN202
        resources = original_resources(self, notebook_filename)
        if isinstance(self, Autograde):
            resources["nbgrader"]["refused_files"] = list(getattr(self, "_refused_files", []))
        return resources

    def get_existing_timestamp(self, dest_path: str):  # noqa: ANN202
        from nbgrader.utils import parse_utc

        path = os.path.join(dest_path, "timestamp.txt")
        if not os.path.lexists(path):
            return None
        try:
            text = read_regular(path, TIMESTAMP_LIMIT).decode("utf-8", "replace").strip()
        except RefusedFileError as err:
            self.fail(f"Refused timestamp file {path}: {err.message}")
        if not text:
            self.log.warning("Empty timestamp file: %s", path)
            return None
        try:
            return parse_utc(text)
        except ValueError:
            self.fail(f"Invalid timestamp string: {path}")

    BaseConverter.init_assignment = init_assignment
    BaseConverter.convert_single_notebook = convert_single_notebook
    BaseConverter.init_single_notebook_resources = init_single_notebook_resources
    CourseDirectory.get_existing_timestamp = get_existing_timestamp
    BaseConverter._links_refused = True


def _export_from_descriptor(exporter, filename: str, resources: dict):  # noqa: ANN202
    """``exporter.from_filename`` reading the notebook through a checked descriptor (no link followed)."""
    from nbconvert.exporters.exporter import ResourcesDict

    try:
        fd = open_regular(filename, shown=os.path.basename(filename))
    except RefusedFileError as err:
        raise RefusedFileError(err.refused, "the notebook") from None
    with open(fd, encoding="utf-8", closefd=True) as f:
        if not resources.get("metadata"):
            resources["metadata"] = ResourcesDict()
        meta = resources["metadata"]
        path, basename = os.path.split(filename)
        meta["name"], meta["path"] = os.path.splitext(basename)[0], path
        mtime = datetime.datetime.fromtimestamp(os.fstat(f.fileno()).st_mtime, tz=datetime.UTC)
        meta["modified_date"] = mtime.strftime("%B %-d, %Y")
        return exporter.from_file(f, resources=resources)
