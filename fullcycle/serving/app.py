"""The FastAPI app factory: raw transactions in, fraud scores out, every score logged.

Endpoints (all JSON):

- ``POST /v1/score`` - one raw transaction; the features come from the state;
- ``POST /v1/score/batch`` - up to ``max_batch`` transactions, scored in arrival order;
- ``POST /v1/labels`` - investigation results; terminal risk uses them after the delay;
- ``GET /v1/model`` - version, training-data fingerprint, metrics at registration;
- ``GET /health`` - liveness plus state size and prediction-log failures.

Bad input gets a 4xx whose body names the field and the problem; 413 for a
batch above the limit or a body above ``max_body_bytes``. The handlers are
``async`` and do their short, CPU-bound work inline: one worker serves requests
one at a time, which is what a single SQLite connection wants anyway.
"""

from __future__ import annotations

import math
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from fullcycle.data.validation import MAX_AMOUNT
from fullcycle.exceptions import FullcycleError
from fullcycle.serving.bundle import ModelBundle
from fullcycle.serving.predlog import PredictionLog
from fullcycle.serving.state import ColdStart, FeatureState, OnlineTransaction, epoch_seconds

__all__ = [
    "BatchOut",
    "BatchRequest",
    "ColdStartOut",
    "Label",
    "LabelsOut",
    "LabelsRequest",
    "ScoreOut",
    "ServiceConfig",
    "Transaction",
    "create_app",
]

_INT64 = 2**63 - 1
_NOT_COLD = ColdStart(card=False, terminal=False)

EXAMPLE = {
    "transaction_id": 1754155,
    "tx_datetime": "2018-08-08T10:15:00",
    "customer_id": 1234,
    "terminal_id": 5678,
    "tx_amount": 57.16,
}


Features = Annotated[bool, Query(description="Return the computed features with the score")]


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
    def _after_1970(cls, v: datetime) -> datetime:
        if v.tzinfo is not None:
            try:
                v = v.astimezone(UTC).replace(tzinfo=None)
            except (OverflowError, ValueError):
                raise ValueError("tx_datetime is out of range once converted to UTC") from None
        if v.year < 1970:
            raise ValueError("tx_datetime must not be before 1970-01-01")
        return v


class BatchRequest(BaseModel):
    transactions: list[Transaction] = Field(
        min_length=1, description="Transactions to score (at most the service's max_batch)"
    )


class Label(BaseModel):
    transaction_id: int = Field(ge=0, le=_INT64)
    fraud: Literal[0, 1] = Field(description="1 if the investigation found fraud, else 0")


class LabelsRequest(BaseModel):
    labels: list[Label] = Field(min_length=1)


class ColdStartOut(BaseModel):
    card: bool
    terminal: bool
    defaults: list[str]


class ScoreOut(BaseModel):
    transaction_id: int
    score: float
    model_version: str
    cold_start: ColdStartOut
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


@dataclass
class ServiceConfig:
    """Limits and behaviour of one service instance.

    Parameters
    ----------
    max_batch : int
        Largest batch (413 above).
    max_labels : int
        Largest label post (413 above).
    max_body_bytes : int
        Largest request body (413 above).
    max_future : timedelta
        How far after the server's clock a transaction time may be (422 beyond).
    prune_every : int
        Drop state rows no window needs after this many scored transactions.
    """

    max_batch: int = 1000
    max_labels: int = 10_000
    max_body_bytes: int = 4_000_000
    max_future: timedelta = timedelta(days=1)
    prune_every: int = 20_000


def _error(status: int, field: str, msg: str) -> HTTPException:
    return HTTPException(status, detail=[{"loc": ["body", *field.split(".")], "msg": msg}])


def create_app(
    bundle: ModelBundle,
    state: FeatureState,
    log: PredictionLog,
    config: ServiceConfig | None = None,
    title: str = "fullcycle fraud scoring",
) -> FastAPI:
    """Build the scoring service around a loaded model, a feature state and a log.

    The caller owns loading: the model is loaded once, before the app exists.
    """
    config = config or ServiceConfig()
    started = time.time()
    counters = {"scored": 0}

    @asynccontextmanager
    async def lifespan(app):
        yield
        state.close()
        log.close()

    app = FastAPI(
        title=title,
        version=bundle.version,
        lifespan=lifespan,
        description="Scores raw card transactions with the registered champion model. "
        "Features come from the service's own recent-history state.",
    )
    app.state.bundle, app.state.state, app.state.log = bundle, state, log

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return JSONResponse(
                    {"detail": [{"loc": ["header", "content-length"], "msg": "not a number"}]},
                    status_code=400,
                )
            if int(length) > config.max_body_bytes:
                return JSONResponse(
                    {
                        "detail": f"request body of {length} bytes is above the limit of "
                        f"{config.max_body_bytes}; split it into smaller batches"
                    },
                    status_code=413,
                )
        return await call_next(request)

    @app.exception_handler(FullcycleError)
    async def _fullcycle_error(request: Request, exc: FullcycleError):
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        # FastAPI's own 422 shape, but never echo raw bytes it cannot encode.
        errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
        return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)

    def _check_time(tx: Transaction, where: str):
        limit = datetime.now(UTC).replace(tzinfo=None) + config.max_future
        if tx.tx_datetime > limit:
            raise _error(
                422,
                f"{where}tx_datetime",
                f"tx_datetime {tx.tx_datetime.isoformat()} is more than "
                f"{config.max_future} after the server's clock ({limit.isoformat()} UTC)",
            )

    def _score_many(items: list[Transaction], include_features: bool) -> list[ScoreOut]:
        t0 = time.perf_counter()
        online = [
            OnlineTransaction(
                tx.transaction_id,
                epoch_seconds(tx.tx_datetime),
                tx.customer_id,
                tx.terminal_id,
                float(tx.tx_amount),
            )
            for tx in items
        ]
        # Arrival order, as the offline features assume: time, then id.
        order = sorted(range(len(items)), key=lambda i: (online[i].t, online[i].transaction_id))
        rows: list[list[float] | None] = [None] * len(items)
        colds = [None] * len(items)
        previous: dict[int, float] = {}
        state.begin()
        try:
            for i in order:
                tx = online[i]
                stored = state.lookup(tx.transaction_id)
                if stored is not None:
                    same = stored[:4] == (tx.t, tx.card, tx.terminal, tx.amount)
                    if not same or stored[4] is None:
                        raise _error(
                            409,
                            "transaction_id",
                            f"transaction {tx.transaction_id} is already in the state with "
                            + ("other fields" if not same else "no score (warm-start history)")
                            + "; transaction ids must be unique",
                        )
                    previous[i] = stored[4]
                    continue
                rows[i], colds[i] = state.features(tx, items[i].tx_datetime)
                state.add(tx, None)
            fresh = [i for i in range(len(items)) if i not in previous]
            scores = np.full(len(items), np.nan)
            if fresh:
                X = np.asarray([rows[i] for i in fresh], dtype=np.float64)[:, bundle.columns]
                scores[fresh] = bundle.scorer.predict(X)
                state.set_scores([(float(scores[i]), online[i].transaction_id) for i in fresh])
            state.commit()
        except BaseException:
            state.rollback()
            raise
        latency = (time.perf_counter() - t0) * 1e3 / len(items)
        out, logged = [], []
        for i, tx in enumerate(online):
            dup = i in previous
            score = float(previous[i]) if dup else float(scores[i])
            cold = colds[i] or _NOT_COLD
            out.append(
                ScoreOut(
                    transaction_id=tx.transaction_id,
                    score=score,
                    model_version=bundle.version,
                    cold_start=ColdStartOut(
                        card=cold.card, terminal=cold.terminal, defaults=cold.defaults(state.delay)
                    ),
                    duplicate=dup,
                    latency_ms=latency,
                    features=dict(zip(state.feature_names, rows[i], strict=True))
                    if include_features and not dup
                    else None,
                )
            )
            if not dup:
                logged.append(
                    (
                        bundle.version,
                        tx.transaction_id,
                        tx.t,
                        tx.card,
                        tx.terminal,
                        tx.amount,
                        rows[i],
                        score,
                        latency,
                        int(cold.card),
                        int(cold.terminal),
                    )
                )
        if logged:
            log.append(logged)
        counters["scored"] += len(logged)
        if counters["scored"] >= config.prune_every:
            counters["scored"] = 0
            state.prune()
        return out

    @app.post("/v1/score", response_model=ScoreOut, response_model_exclude_none=True)
    async def score(tx: Transaction, include_features: Features = False):
        """Score one raw transaction."""
        _check_time(tx, "")
        return _score_many([tx], include_features)[0]

    @app.post("/v1/score/batch", response_model=BatchOut, response_model_exclude_none=True)
    async def score_batch(batch: BatchRequest, include_features: Features = False):
        """Score up to ``max_batch`` transactions; results come back in request order."""
        n = len(batch.transactions)
        if n > config.max_batch:
            raise HTTPException(
                413,
                detail=f"batch of {n} transactions is above the limit of {config.max_batch}; "
                "split it",
            )
        ids = [tx.transaction_id for tx in batch.transactions]
        if len(set(ids)) != n:
            seen, dups = set(), []
            for i in ids:
                if i in seen:
                    dups.append(i)
                seen.add(i)
            raise _error(422, "transactions", f"repeated transaction_id(s) {dups[:5]} in one batch")
        for j, tx in enumerate(batch.transactions):
            _check_time(tx, f"transactions.{j}.")
        return BatchOut(
            model_version=bundle.version, scores=_score_many(batch.transactions, include_features)
        )

    @app.post("/v1/labels", response_model=LabelsOut)
    async def labels(body: LabelsRequest):
        """Report investigation results; terminal risk uses them once they are ``delay`` days old."""
        n = len(body.labels)
        if n > config.max_labels:
            raise HTTPException(
                413, detail=f"{n} labels is above the limit of {config.max_labels}; split them"
            )
        pairs = [(lab.transaction_id, int(lab.fraud)) for lab in body.labels]
        updated, unknown = state.post_labels(pairs)
        known = set(unknown)
        log.append_labels([p for p in pairs if p[0] not in known])
        if updated == 0:
            raise HTTPException(
                404,
                detail=f"none of the {n} transaction ids is in the state "
                f"(e.g. {unknown[:5]}); labels are only kept for recent transactions",
            )
        return LabelsOut(updated=updated, unknown=len(unknown), unknown_examples=unknown[:10])

    @app.get("/v1/model")
    async def model_info() -> dict:
        """The served model: name, version, run, training-data fingerprint, metrics at registration."""
        return jsonable_encoder(_finite(bundle.describe()))

    @app.get("/health")
    async def health() -> dict:
        """Liveness, state size and prediction-log health."""
        return {
            "status": "ok" if log.errors == 0 else "degraded",
            "model": f"{bundle.name} v{bundle.version}",
            "state_rows": state.count(),
            "logged": log.written,
            "log_errors": log.errors,
            "last_log_error": log.last_error,
            "uptime_s": round(time.time() - started, 1),
        }

    return app


def _finite(obj):
    """JSON has no NaN: metrics that are NaN (e.g. a ratio to a losing baseline) become null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj
