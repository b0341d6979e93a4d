"""The fraud scoring service: raw transactions in, scores out, every score logged.

    FULLCYCLE_WORKSPACE=workspace uvicorn --factory service:create_app \
        --app-dir starter_kits/fraud_detection --port 8000

Endpoints (JSON; the project's ``service.contract`` is what the grader calls):

- ``POST /v1/score`` - one raw transaction; its features come from the online state;
- ``POST /v1/score/batch`` - up to ``max_batch`` transactions, scored in arrival order,
  answered in request order;
- ``POST /v1/labels`` - investigation results; terminal risk uses them after the delay;
- ``GET /v1/model`` - which model is served and what is known about it;
- ``GET /health`` - liveness, state size and prediction-log health.

The library gives the building blocks (:class:`~fullcycle.serving.ModelBundle`
loads the model once and scores fast, :class:`~fullcycle.serving.PredictionLog`
keeps every score, :class:`~fullcycle.serving.store.WindowStore` keeps recent
history); this module is the service: what a request must look like, how a
transaction becomes features, what is stored, and what a client gets back.
"""

from __future__ import annotations

import math
import time
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fullcycle.data import load_transactions
from fullcycle.exceptions import FullcycleError
from fullcycle.serving import ModelBundle, PredictionLog, limit_body_size

from contract import MAX_AMOUNT, validate_export
from features import FEATURES, OnlineFeatures

__all__ = ["Settings", "Transaction", "create_app"]

_INT64 = 2**63 - 1

EXAMPLE = {
    "transaction_id": 1754155,
    "tx_datetime": "2018-08-08T10:15:00",
    "customer_id": 1234,
    "terminal_id": 5678,
    "tx_amount": 57.16,
}


class Settings(BaseSettings):
    """Where the model and the state come from, and the service's limits (``FULLCYCLE_*``).

    With ``model_dir`` set (as the grader does) the service serves the model a
    notebook handed over and warm-starts its state from ``train_path``;
    otherwise it serves the ``champion`` of ``project`` from the workspace's
    MLflow store.
    """

    model_config = SettingsConfigDict(env_prefix="FULLCYCLE_", extra="ignore")

    project: str = "fraud_detection"
    workspace: Path = Path("workspace")
    model_dir: Path | None = None
    train_path: Path | None = None
    state_dir: Path | None = None
    delay_days: int = Field(7, ge=1)
    max_batch: int = Field(1000, ge=1)
    max_labels: int = Field(10_000, ge=1)
    max_body_bytes: int = Field(4_000_000, ge=1024)
    max_future: timedelta = timedelta(days=1)
    prune_every: int = Field(20_000, ge=1)


# ---- the request and response bodies ---------------------------------------------------


class Transaction(BaseModel):
    """A raw card transaction as an upstream payment system sends it."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [EXAMPLE]})

    transaction_id: int = Field(ge=0, le=_INT64, description="Unique id of the transaction")
    tx_datetime: datetime = Field(
        description="When it happened: ISO 8601; no offset means UTC; not before 1970"
    )
    customer_id: int = Field(ge=0, le=_INT64, description="The card (customer) id")
    terminal_id: int = Field(ge=0, le=_INT64, description="The terminal id")
    tx_amount: float = Field(
        ge=0, le=MAX_AMOUNT, allow_inf_nan=False, description="Amount, >= 0 and finite"
    )

    @field_validator("tx_datetime")
    @classmethod
    def _naive_utc_after_1970(cls, v: datetime) -> datetime:
        ### BEGIN SOLUTION
        # The features count seconds since 1970 in UTC: convert offsets, refuse older dates.
        if v.tzinfo is not None:
            try:
                v = v.astimezone(UTC).replace(tzinfo=None)
            except (OverflowError, ValueError):
                raise ValueError("tx_datetime is out of range once converted to UTC") from None
        if v.year < 1970:
            raise ValueError("tx_datetime must not be before 1970-01-01")
        return v
        ### END SOLUTION

    def row(self) -> dict:
        """The transaction with the column names the features use."""
        return {
            "TRANSACTION_ID": self.transaction_id,
            "TX_DATETIME": self.tx_datetime,
            "CUSTOMER_ID": self.customer_id,
            "TERMINAL_ID": self.terminal_id,
            "TX_AMOUNT": float(self.tx_amount),
        }


class BatchRequest(BaseModel):
    transactions: list[Transaction] = Field(
        min_length=1, description="Transactions to score (at most the service's max_batch)"
    )


class Label(BaseModel):
    transaction_id: int = Field(ge=0, le=_INT64)
    fraud: Literal[0, 1] = Field(description="1 if the investigation found fraud, else 0")


class LabelsRequest(BaseModel):
    labels: list[Label] = Field(min_length=1)


class ScoreOut(BaseModel):
    transaction_id: int
    score: float
    model_version: str
    cold_card: bool = Field(description="The card had no history in the last 30 days")
    cold_terminal: bool = Field(description="The terminal had no history old enough to be labelled")
    duplicate: bool = Field(False, description="True if this id was scored before: same score")
    latency_ms: float
    features: dict[str, float] | None = None


class BatchOut(BaseModel):
    model_version: str
    scores: list[ScoreOut]


class LabelsOut(BaseModel):
    updated: int
    unknown: int
    unknown_examples: list[int]


# ---- the service -----------------------------------------------------------------------


class FraudService:
    """The loaded model, the online features and the prediction log of one running service."""

    def __init__(self, settings: Settings, bundle: ModelBundle, online: OnlineFeatures, log):
        self.settings, self.bundle, self.online, self.log = settings, bundle, online, log
        self.columns = bundle.columns_for(FEATURES)
        self.started = time.time()
        self.since_prune = 0

    def score(self, items: list[Transaction], include_features: bool) -> list[ScoreOut]:
        """Score transactions in arrival order (time, then id), as the offline features do."""
        ### BEGIN SOLUTION
        t0 = time.perf_counter()
        rows = [tx.row() for tx in items]
        order = sorted(
            range(len(rows)), key=lambda i: (rows[i]["TX_DATETIME"], rows[i]["TRANSACTION_ID"])
        )
        feats: list[dict | None] = [None] * len(rows)
        previous: dict[int, float] = {}
        with self.online.store.transaction():
            for i in order:
                stored = self.online.store.get(rows[i]["TRANSACTION_ID"])
                if stored is not None:
                    previous[i] = self._replayed(rows[i], stored)
                    continue
                feats[i] = self.online.features(rows[i])
                self.online.update(rows[i])
            fresh = [i for i in range(len(rows)) if i not in previous]
            scores = np.full(len(rows), np.nan)
            if fresh:
                X = np.array([[feats[i][n] for n in FEATURES] for i in fresh], dtype=np.float64)
                scores[fresh] = self.bundle.scorer.predict(X[:, self.columns])
                self.online.store.set_scores(
                    (rows[i]["TRANSACTION_ID"], float(scores[i])) for i in fresh
                )
        latency = (time.perf_counter() - t0) * 1e3 / len(rows)
        out, logged = [], []
        for i, row in enumerate(rows):
            dup = i in previous
            f = feats[i]
            cold_card = bool(f and f["CUSTOMER_ID_NB_TX_30DAY_WINDOW"] <= 1)
            cold_terminal = bool(f and f["TERMINAL_ID_NB_TX_30DAY_WINDOW"] == 0)
            score = previous[i] if dup else float(scores[i])
            out.append(
                ScoreOut(
                    transaction_id=row["TRANSACTION_ID"],
                    score=score,
                    model_version=self.bundle.version,
                    cold_card=cold_card,
                    cold_terminal=cold_terminal,
                    duplicate=dup,
                    latency_ms=latency,
                    features=f if include_features and not dup else None,
                )
            )
            if not dup:
                t = int((row["TX_DATETIME"] - datetime(1970, 1, 1)) // timedelta(seconds=1))
                values = [f[n] for n in FEATURES]
                logged.append(
                    (
                        self.bundle.version,
                        row["TRANSACTION_ID"],
                        t,
                        row["CUSTOMER_ID"],
                        row["TERMINAL_ID"],
                        row["TX_AMOUNT"],
                        values,
                        score,
                        latency,
                        int(cold_card),
                        int(cold_terminal),
                    )
                )
        if logged:
            self.log.append(logged)  # a log failure shows on /health, never fails a response
        self.since_prune += len(logged)
        if self.since_prune >= self.settings.prune_every:
            self.since_prune = 0
            self.online.prune()
        return out
        ### END SOLUTION

    @staticmethod
    def _replayed(row: dict, stored) -> float:
        """A transaction sent again gets its first score; the same id with other fields is a 409."""
        t = int((row["TX_DATETIME"] - datetime(1970, 1, 1)) // timedelta(seconds=1))
        same = (stored.t, stored.keys["card"], stored.keys["terminal"], stored.value) == (
            t,
            row["CUSTOMER_ID"],
            row["TERMINAL_ID"],
            row["TX_AMOUNT"],
        )
        if not same or stored.score is None:
            why = "other fields" if not same else "no score (it came with the warm-start history)"
            raise _error(
                409,
                "transaction_id",
                f"transaction {row['TRANSACTION_ID']} is already in the state with {why}; "
                "transaction ids must be unique",
            )
        return float(stored.score)

    def check_time(self, tx: Transaction, where: str) -> None:
        """A transaction from the future is an upstream clock fault: refuse it (422)."""
        limit = datetime.now(UTC).replace(tzinfo=None) + self.settings.max_future
        if tx.tx_datetime > limit:
            raise _error(
                422,
                f"{where}tx_datetime",
                f"tx_datetime {tx.tx_datetime.isoformat()} is more than "
                f"{self.settings.max_future} after the server's clock ({limit.isoformat()} UTC)",
            )

    def close(self) -> None:
        self.online.store.close()
        self.log.close()


def _error(status: int, field: str, msg: str) -> HTTPException:
    loc = ["body", *(int(p) if p.isdigit() else p for p in field.split("."))]
    return HTTPException(status, detail=[{"loc": loc, "msg": msg}])


def get_service(request: Request) -> FraudService:
    return request.app.state.service


Service = Annotated[FraudService, Depends(get_service)]
WithFeatures = Annotated[bool, Query(description="Return the computed features with the score")]

router = APIRouter()


@router.post("/v1/score", response_model=ScoreOut, response_model_exclude_none=True)
async def score(tx: Transaction, service: Service, include_features: WithFeatures = False):
    """Score one raw transaction."""
    ### BEGIN SOLUTION
    service.check_time(tx, "")
    return service.score([tx], include_features)[0]
    ### END SOLUTION


@router.post("/v1/score/batch", response_model=BatchOut, response_model_exclude_none=True)
async def score_batch(
    batch: BatchRequest, service: Service, include_features: WithFeatures = False
):
    """Score up to ``max_batch`` transactions; results come back in request order."""
    ### BEGIN SOLUTION
    n = len(batch.transactions)
    if n > service.settings.max_batch:
        raise HTTPException(
            413,
            detail=f"batch of {n} transactions is above the limit of "
            f"{service.settings.max_batch}; split it",
        )
    ids = [tx.transaction_id for tx in batch.transactions]
    if len(set(ids)) != n:
        seen: set[int] = set()
        dups = [i for i in ids if i in seen or seen.add(i)]
        raise _error(422, "transactions", f"repeated transaction_id(s) {dups[:5]} in one batch")
    for j, tx in enumerate(batch.transactions):
        service.check_time(tx, f"transactions.{j}.")
    return BatchOut(
        model_version=service.bundle.version,
        scores=service.score(batch.transactions, include_features),
    )
    ### END SOLUTION


@router.post("/v1/labels", response_model=LabelsOut)
async def labels(body: LabelsRequest, service: Service):
    """Report investigation results; terminal risk uses them once they are ``delay`` days old."""
    ### BEGIN SOLUTION
    n = len(body.labels)
    if n > service.settings.max_labels:
        raise HTTPException(
            413,
            detail=f"{n} labels is above the limit of {service.settings.max_labels}; split them",
        )
    pairs = [(lab.transaction_id, int(lab.fraud)) for lab in body.labels]
    updated, unknown = service.online.label(pairs)
    missing = set(unknown)
    service.log.append_labels([p for p in pairs if p[0] not in missing])
    if updated == 0:
        raise HTTPException(
            404,
            detail=f"none of the {n} transaction ids is in the state (e.g. {unknown[:5]}); "
            "labels are only kept for recent transactions",
        )
    return LabelsOut(updated=updated, unknown=len(unknown), unknown_examples=unknown[:10])
    ### END SOLUTION


@router.get("/v1/model")
async def model_info(service: Service) -> dict:
    """The served model: name, version, run, training-data fingerprint, metrics at registration."""
    return jsonable_encoder(_finite({**service.bundle.describe(), "features": FEATURES}))


@router.get("/health")
async def health(service: Service) -> dict:
    """Liveness, state size and prediction-log health."""
    log = service.log
    return {
        "status": "ok" if log.errors == 0 else "degraded",
        "model": f"{service.bundle.name} v{service.bundle.version}",
        "state_rows": service.online.store.count(),
        "logged": log.written,
        "log_errors": log.errors,
        "last_log_error": log.last_error,
        "uptime_s": round(time.time() - service.started, 1),
    }


def _finite(obj):
    """JSON has no NaN: metrics that are NaN (e.g. a ratio to a losing baseline) become null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


# ---- assembly --------------------------------------------------------------------------


def open_service(settings: Settings, bundle: ModelBundle | None = None) -> FraudService:
    """Load the model once and open the state and the log (uvicorn has not started yet)."""
    if bundle is None and settings.model_dir is not None:
        bundle = ModelBundle.from_model_dir(settings.model_dir)
    elif bundle is None:
        from fullcycle import tracking

        tracking.setup_tracking(settings.workspace, settings.project)
        bundle = ModelBundle.from_registry(settings.project)
    base = settings.state_dir or (
        settings.model_dir / "service"
        if settings.model_dir is not None
        else settings.workspace / "serving" / settings.project
    )
    online = OnlineFeatures.open(Path(base) / "state.sqlite", settings.delay_days)
    if settings.train_path is not None and online.store.count() == 0:
        online.warm_start(validate_export(load_transactions(settings.train_path)).valid)
    log = PredictionLog(Path(base) / "predictions.sqlite", FEATURES)
    return FraudService(settings, bundle, online, log)


def create_app(settings: Settings | None = None, bundle: ModelBundle | None = None) -> FastAPI:
    """Build the app (uvicorn calls this once, with ``--factory``)."""
    settings = settings or Settings()
    service = open_service(settings, bundle)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        service.close()

    app = FastAPI(
        title="fullcycle fraud scoring",
        version=service.bundle.version,
        lifespan=lifespan,
        description="Scores raw card transactions. Features come from the service's own "
        "recent-history state; every score is logged for monitoring.",
    )
    app.state.service = service
    limit_body_size(app, settings.max_body_bytes)

    @app.exception_handler(FullcycleError)
    async def _fullcycle_error(request: Request, exc: FullcycleError):
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        # FastAPI's 422 shape, without echoing raw input it cannot encode.
        errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
        return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)

    app.include_router(router)
    return app
