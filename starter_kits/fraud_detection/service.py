"""The fraud service of this kit, for uvicorn.

    FULLCYCLE_WORKSPACE=workspace uvicorn --factory service:create_app \
        --app-dir starter_kits/fraud_detection --port 8000

serves the project's ``champion`` from the workspace's MLflow store, with the
feature state and prediction log under ``<workspace>/serving/fraud_detection/``.
``fullcycle serve`` does the same and also warm-starts an empty state.
"""

from fullcycle.serving import make_app


def create_app():
    """Build the app (uvicorn calls this once, with ``--factory``)."""
    return make_app()
