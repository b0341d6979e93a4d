"""Errors of the grader. A submission's own faults are results, not exceptions."""

from fullcycle.exceptions import FullcycleError

__all__ = ["GradingConfigError", "SubmissionError"]


class GradingConfigError(FullcycleError):
    """The instructor's grading configuration is wrong or missing."""


class SubmissionError(FullcycleError):
    """A submission cannot be read (bad archive, unsafe paths, malformed notebook)."""
