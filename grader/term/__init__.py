"""The instructor's term: everything between the LMS and the grading core.

- :mod:`grader.term.lms`: the LMS's own formats (Canvas and Moodle downloads, rosters, grade files);
- :mod:`grader.term.collect`: ``python -m grader import`` (a download -> ``submitted/<LMS id>/``);
- :mod:`grader.term.deadlines`: due dates, extensions and the late penalty;
- :mod:`grader.term.report`: ``course-grades.csv`` and the summary, read from the gradebook;
- :mod:`grader.term.lmsreturn`: ``python -m grader return`` (grades and feedback back to the LMS).

The grading core (``grader.execute``, ``grader.engine``, ``grader.sandbox``, ``grader.feedback``,
``grader.parallel``, ``grader.merge``) never imports this package; only the command line joins the two.
"""
