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
