"""The instructor's term: everything between the LMS and the grading core.

- :mod:`grader.term.lms`, :mod:`grader.term.lmsdates`: the LMS's own formats (Canvas and Moodle downloads,
  rosters and worksheets in their languages, grade files);
- :mod:`grader.term.collect`: ``python -m grader import`` (a download -> ``submitted/<LMS id>/``), with
  :mod:`grader.term.choose` and :mod:`grader.term.source` (which of a student's files is graded, and why);
- :mod:`grader.term.exchange`: nbgrader's exchange ``collect`` without links;
- :mod:`grader.term.deadlines`: due dates, extensions and the late penalty;
- :mod:`grader.term.decisions`, :mod:`grader.term.decide`, :mod:`grader.term.apply`: the instructor's
  decisions (``decisions.toml``), the commands that write them and their application to the gradebook;
- :mod:`grader.term.report`, :mod:`grader.term.classreport`: ``course-grades.csv``, the summary and the
  class report pages;
- :mod:`grader.term.similarity`: pairs of similar solutions (it flags, never decides);
- :mod:`grader.term.lmsreturn`: ``python -m grader return`` (grades and feedback back to the LMS).

The grading core (``grader.execute``, ``grader.engine``, ``grader.sandbox``, ``grader.feedback``,
``grader.parallel``, ``grader.merge``, ``grader.normalize``) never imports this package; only the
command line joins the two.
"""
