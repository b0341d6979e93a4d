"""Online scoring: a FastAPI app factory with its own feature state and a prediction log.

:func:`create_app` builds the service around a :class:`ModelBundle`, a
:class:`FeatureState` and a :class:`PredictionLog`; :func:`open_service`
assembles the three from a project and a workspace. :mod:`fullcycle.serving.process`
starts and stops a real uvicorn process, :mod:`fullcycle.serving.replay` sends
recorded traffic through one.
"""

from fullcycle.serving.app import ServiceConfig, Transaction, create_app
from fullcycle.serving.bundle import ModelBundle
from fullcycle.serving.factory import make_app, open_service, service_paths, warm_start_history
from fullcycle.serving.fastpath import Scorer
from fullcycle.serving.predlog import PredictionLog, read_log
from fullcycle.serving.state import FeatureState

__all__ = [
    "FeatureState",
    "ModelBundle",
    "PredictionLog",
    "Scorer",
    "ServiceConfig",
    "Transaction",
    "create_app",
    "make_app",
    "open_service",
    "read_log",
    "service_paths",
    "warm_start_history",
]
