"""The fullcycle autograder. Instructors grade with it; learners self-check with it on public data.

It holds no secret: the secret seed lives in the instructor's grading config.
Learner code never imports it.

``grade(submission, spec, config, out_dir)`` runs the steps of
:mod:`grading.pipeline` and writes ``result.json``, ``feedback.md``,
``feedback.html`` and the executed notebook. ``release`` writes the learner
release. ``load_config``/``new_config`` read and create the instructor's
grading config with its secret seed.
"""

from grading.config import GradingConfig, load_config, new_config
from grading.errors import GradingConfigError, SubmissionError
from grading.pipeline import RESULT_SCHEMA, STEPS, check_isolation, grade
from grading.release import release, strip_solutions
from grading.report import format_scorecard
from grading.sandbox import Limits, Sandbox

__all__ = [
    "RESULT_SCHEMA",
    "STEPS",
    "GradingConfig",
    "GradingConfigError",
    "Limits",
    "Sandbox",
    "SubmissionError",
    "check_isolation",
    "format_scorecard",
    "grade",
    "load_config",
    "new_config",
    "release",
    "strip_solutions",
]
