"""The fullcycle autograder (instructor side). Learner code never needs it.

``grade(submission, spec, config, out_dir)`` runs the steps of
:mod:`grading.pipeline` and writes ``result.json``, ``feedback.md``,
``feedback.html`` and the executed notebook. ``release`` writes the learner
release. ``load_config``/``new_config`` read and create the instructor's
grading config with its secret seed.
"""

from grading.config import GradingConfig, load_config, new_config
from grading.errors import GradingConfigError, SubmissionError
from grading.pipeline import RESULT_SCHEMA, STEPS, grade
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
    "format_scorecard",
    "grade",
    "load_config",
    "new_config",
    "release",
    "strip_solutions",
]
