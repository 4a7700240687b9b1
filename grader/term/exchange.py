"""nbgrader's exchange ``collect`` without following the links a student leaves in the inbound folder.

A student's submission in the exchange (``<exchange>/<course>/inbound/<student>+<assignment>+<time>/``)
is a folder the student made: stock ``collect`` copies it with ``shutil.copytree``, which follows
symbolic links, so a link there to a file the instructor can read (the course's secret, the gradebook,
a reference solution, another student's work) would be copied, as its contents, into ``submitted/``.
:class:`SafeExchangeCollect` (set in ``grader/nbgrader_config.py`` with ``c.ExchangeFactory.collect``)
copies with :func:`grader.sandbox.files.copy_tree` instead: links, hard links and special files are
refused and logged ("refused ... (graded without it)"), and so is a submission whose folder itself is a
link; nbgrader's ignore, include and size rules still apply.
"""

from __future__ import annotations

import fnmatch
import os

from nbgrader.exchange.default.collect import ExchangeCollect

from grader.sandbox.files import RefusedFileError, copy_tree


class SafeExchangeCollect(ExchangeCollect):
    """``nbgrader collect`` that never follows a link of the inbound folder (nbgrader's own otherwise)."""

    def do_copy(self, src: str, dest: str, log=None) -> None:  # noqa: ANN001
        coursedir = self.coursedir
        include, max_kb = coursedir.include, coursedir.max_file_size
        try:
            refused = copy_tree(src, dest, ignore=coursedir.ignore,
                                max_file_bytes=int(1000 * max_kb) if max_kb else None)
        except RefusedFileError as err:
            self.log.error("Refused the submission %s: %s", os.path.basename(src), err.message)
            return
        for dirpath, _dirs, files in os.walk(dest):  # nbgrader's include globs: drop what they do not name
            for name in files:
                if include and not any(fnmatch.fnmatch(name, g) for g in include):
                    os.unlink(os.path.join(dirpath, name))
        total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(dest) for f in fs)
        if total > 1000 * coursedir.max_dir_size:
            self.log.error("Directory size is too big: %s", os.path.basename(src))
            import shutil

            shutil.rmtree(dest)
            raise RuntimeError(f"Directory size is too big. Size is {total}, maximum size is "
                               f"{1000 * coursedir.max_dir_size}")
        for r in refused:
            self.log.warning("Refused %s in %s: %s (collected without it)", r.path, os.path.basename(src), r.words())
