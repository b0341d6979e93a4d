"""The exceptions of fullcycle.

Every error the library raises on purpose derives from one root::

    FullcycleError
    ├── DataError          bad or inconsistent data, simulator or loader input
    │   └── ValidationError   a frame failed its schema and could not be repaired
    ├── SpecError          a project.yaml that is wrong (names the field and the fix)
    ├── TrackingError      MLflow store or registry problems
    └── ConfigError        a setting or argument with no valid meaning

Messages say what was wrong, where, and how to fix it; the CLI prints them as
one readable line and exits non-zero.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DataError",
    "FullcycleError",
    "SpecError",
    "TrackingError",
    "ValidationError",
]


class FullcycleError(Exception):
    """Root of every error fullcycle raises on purpose."""


class DataError(FullcycleError):
    """Input data (or a simulator/loader parameter) is wrong."""


class ValidationError(DataError):
    """A frame failed validation in a way quarantine cannot absorb."""


class SpecError(FullcycleError):
    """A project spec is wrong; the message names the field and the fix."""


class TrackingError(FullcycleError):
    """The MLflow store or registry could not do what was asked."""


class ConfigError(FullcycleError):
    """A setting or argument has no valid meaning."""
