"""fullcycle: a project-based workbench for building whole ML systems.

The workbench, not the learner's system: subpackages :mod:`fullcycle.data`
(simulator, messiness, loaders, parsers, quarantine mechanics, splits),
:mod:`fullcycle.metrics` (technical metrics, business value models, the figure
registry), :mod:`fullcycle.serving` (building blocks for a kit's service) and
:mod:`fullcycle.monitoring` (drift statistics, report); modules
:mod:`fullcycle.kit` (loads a kit's stages), :mod:`fullcycle.windows`,
:mod:`fullcycle.evaluate`, :mod:`fullcycle.spec`, :mod:`fullcycle.tracking`,
:mod:`fullcycle.run`, :mod:`fullcycle.retrain` and :mod:`fullcycle.live`. Importing this package
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
