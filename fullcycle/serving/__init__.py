"""Building blocks for services: model loading, a keyed window store, a prediction log, limits.

The service itself (routes, request models, online features) is the kit's;
see ``starter_kits/<project>/service.py``. :mod:`fullcycle.serving.process`
starts and stops a real uvicorn process running a kit's app.
"""

from fullcycle.serving.bundle import ModelBundle
from fullcycle.serving.factory import service_env, service_paths, warm_start_history
from fullcycle.serving.fastpath import Scorer
from fullcycle.serving.limits import limit_body_size
from fullcycle.serving.predlog import PredictionLog, read_log
from fullcycle.serving.store import Event, WindowStore, epoch_seconds

__all__ = [
    "Event",
    "ModelBundle",
    "PredictionLog",
    "Scorer",
    "WindowStore",
    "epoch_seconds",
    "limit_body_size",
    "read_log",
    "service_env",
    "service_paths",
    "warm_start_history",
]
