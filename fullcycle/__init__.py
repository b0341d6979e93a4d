"""fullcycle: a project-based workbench for building whole ML systems.

Subpackages: :mod:`fullcycle.data` (simulators, loaders, validation, splits),
:mod:`fullcycle.metrics` (technical and business metrics); modules
:mod:`fullcycle.features`, :mod:`fullcycle.evaluate`, :mod:`fullcycle.spec`,
:mod:`fullcycle.tracking` and :mod:`fullcycle.run`. Importing this package
does no work: no folders, no tracking URI, no logging set-up.
"""

from importlib.metadata import PackageNotFoundError, version

from fullcycle.exceptions import (
    ConfigError,
    DataError,
    FullcycleError,
    SpecError,
    TrackingError,
    ValidationError,
)

try:
    __version__ = version("fullcycle")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"

__all__ = [
    "ConfigError",
    "DataError",
    "FullcycleError",
    "SpecError",
    "TrackingError",
    "ValidationError",
    "__version__",
]
