"""The course's nbgrader configuration: ``curriculum/`` is the source directory.

Run nbgrader from this folder (the course root). Everything nbgrader writes
(release, submissions, autograded notebooks, feedback and the gradebook) goes
under ``workspace/course/``, which git ignores. For a real course, set the
exchange and the course id on the command line or in a config next to this one,
for example ``--Exchange.root=/srv/nbgrader/exchange --CourseDirectory.course_id=ml-2027``.
"""

import os

c = get_config()  # noqa: F821 (nbgrader's config loader defines it)
here = os.path.dirname(os.path.abspath(__file__))
os.makedirs(os.path.join(here, "workspace", "course"), exist_ok=True)

c.CourseDirectory.root = here

c.CourseDirectory.source_directory = "curriculum"
c.CourseDirectory.release_directory = "workspace/course/release"
c.CourseDirectory.submitted_directory = "workspace/course/submitted"
c.CourseDirectory.autograded_directory = "workspace/course/autograded"
c.CourseDirectory.feedback_directory = "workspace/course/feedback"
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(here, "workspace", "course", "gradebook.db")
# Folders that are never part of an assignment.
c.CourseDirectory.ignore = [
    ".ipynb_checkpoints",
    "*.pyc",
    "__pycache__",
    "feedback",
    "workspace",
    "mlruns",
]

# Each cell of a weekly notebook finishes in seconds; a minute is a hung learner cell.
c.Execute.timeout = 60
c.Execute.interrupt_on_timeout = True
c.ClearSolutions.code_stub = {
    "python": '# YOUR CODE HERE\nraise NotImplementedError("not implemented yet")'
}

# Autograde as nbgrader does, with a check that every test cell ran to its end
# (grading/course.py: a blanked or short-circuited test cell earns no points).
from nbconvert.preprocessors import ClearMetadataPreprocessor  # noqa: E402
from nbgrader.preprocessors import (  # noqa: E402
    AssignLatePenalties,
    CheckCellMetadata,
    Execute,
    IgnorePattern,
    LimitOutput,
    SaveAutoGrades,
)

from grading.course import CheckCanaries, PlantCanaries  # noqa: E402

c.Autograde.autograde_preprocessors = [
    PlantCanaries,
    Execute,
    CheckCanaries,
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
]
