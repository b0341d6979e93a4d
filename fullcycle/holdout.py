"""Hidden holdouts for grading: what a submission is given, and what the grader keeps.

A holdout has three parts. ``history`` is labelled data before the scoring
window (the submission's ``train_path``). ``features`` are the scoring rows
without the spec's hidden columns, shuffled so that row order says nothing
(the submission's ``score_path``). ``labels`` are the same rows with
everything the grader needs to score them; they never enter a submission's
sandbox. ``batches`` are unlabelled inputs for the monitoring probe, under
neutral names, with the name of the drifted one kept apart.

Builders are registered by ``data.source``: the fraud simulator (driven by a
seed the grader keeps secret) and plain files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fullcycle.exceptions import ConfigError, DataError
from fullcycle.spec import ProjectSpec

__all__ = ["Holdout", "build_holdout", "register_holdout_builder", "frame_fingerprint"]


def frame_fingerprint(*frames: pd.DataFrame) -> str:
    """SHA-256 of the frames' values and column names (row order matters)."""
    h = hashlib.sha256()
    for f in frames:
        h.update(",".join(map(str, f.columns)).encode())
        h.update(pd.util.hash_pandas_object(f, index=False).to_numpy().tobytes())
    return h.hexdigest()


@dataclass
class Holdout:
    history: pd.DataFrame
    features: pd.DataFrame
    labels: pd.DataFrame
    batches: dict[str, pd.DataFrame] = field(default_factory=dict)
    drifted_batch: str | None = None
    reference_batch: str | None = None
    info: dict = field(default_factory=dict)

    def fingerprint(self) -> str:
        return frame_fingerprint(self.history, self.features, self.labels)


_BUILDERS: dict[str, Callable[..., Holdout]] = {}


def register_holdout_builder(source: str, fn: Callable[..., Holdout]) -> None:
    """Make ``fn(spec, seed, scale, path)`` build holdouts for specs with ``data.source == source``."""
    _BUILDERS[source] = fn


def build_holdout(
    spec: ProjectSpec, seed: int, scale: str = "full", path: str | Path | None = None
) -> Holdout:
    """The holdout of ``spec`` for the grader's ``seed`` (or from files under ``path``)."""
    source = "files" if path is not None else spec.data.source
    if source not in _BUILDERS:
        raise ConfigError(
            f"no holdout builder for data.source {source!r}; known: {sorted(_BUILDERS)}"
        )
    holdout = _BUILDERS[source](spec, seed, scale, path)
    _check_hidden(spec, holdout)
    return holdout


def _hide(spec: ProjectSpec, scoring: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    p = spec.prediction
    hidden = {p.label_column, *p.hidden_columns}
    keep = [c for c in scoring.columns if c not in hidden]
    order = rng.permutation(len(scoring))
    return scoring[keep].iloc[order].reset_index(drop=True)


def _check_hidden(spec: ProjectSpec, h: Holdout) -> None:
    p = spec.prediction
    leaked = {p.label_column, *p.hidden_columns} & set(h.features.columns)
    if leaked:
        raise DataError(f"holdout features still hold hidden columns {sorted(leaked)}")
    for name, b in h.batches.items():
        if {p.label_column, *p.hidden_columns} & set(b.columns):
            raise DataError(f"monitoring batch {name} holds hidden columns")


def _fraud_simulator(spec: ProjectSpec, seed: int, scale: str, path=None) -> Holdout:
    """Simulate the project's world with the secret seed; the spec's split decides the window."""
    from fullcycle.run import at_scale, load_data, prepare

    data = spec.data.model_copy(update={"seed": int(seed)})
    secret = spec.model_copy(update={"data": data})
    raw = load_data(secret, scale=scale)
    prep = prepare(at_scale(secret, scale), raw)
    split = prep.split
    rng = np.random.default_rng(np.random.SeedSequence(int(seed)).spawn(1)[0])
    history = split.history.reset_index(drop=True)
    labels = split.test.reset_index(drop=True)
    features = _hide(spec, labels, rng)
    batches, drifted, reference = _fraud_batches(spec, history, labels, rng)
    return Holdout(
        history,
        features,
        labels,
        batches,
        drifted,
        reference,
        info={"source": "fraud_simulator", "scale": scale, "rows": len(labels)},
    )


def _fraud_batches(spec, history, scoring, rng):
    """Reference (last training-era week), a clean batch and a batch with a pipeline fault.

    The fault: after an upstream release, half of the amounts arrive in cents
    and the terminal ids of a third of the rows are new. Names are random.
    """
    p = spec.prediction
    hidden = [c for c in (p.label_column, *p.hidden_columns) if c in scoring.columns]
    inputs = ["TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT"]
    last = history["TX_TIME_DAYS"].max()
    reference = history[history["TX_TIME_DAYS"] > last - 7][inputs]
    cur = scoring.drop(columns=hidden)[inputs]
    half = len(cur) // 2
    clean = cur.iloc[:half].copy()
    drifted = cur.iloc[half:].copy()
    cents = rng.random(len(drifted)) < 0.5
    drifted.loc[cents, "TX_AMOUNT"] = (drifted.loc[cents, "TX_AMOUNT"] * 100).round(2)
    new_terms = rng.random(len(drifted)) < 1 / 3
    base = int(max(history["TERMINAL_ID"].max(), scoring["TERMINAL_ID"].max())) + 1
    drifted.loc[new_terms, "TERMINAL_ID"] = base + rng.integers(0, 1000, int(new_terms.sum()))
    names = ["batch_a", "batch_b"]
    rng.shuffle(names)
    batches = {
        "reference": reference.reset_index(drop=True),
        names[0]: clean.reset_index(drop=True),
        names[1]: drifted.reset_index(drop=True),
    }
    return batches, names[1], "reference"


def _files(spec: ProjectSpec, seed: int, scale: str, path) -> Holdout:
    """``history``, ``score`` (with labels) and optional monitoring batches as CSV or Parquet files.

    The scoring file holds the labels: the grader hides them. Batches are
    ``reference``, ``clean`` and ``drifted`` files (renamed at random).
    """
    if path is None:
        raise ConfigError("a files holdout needs holdout_dir in the grading config")
    folder = Path(path)

    def read(stem: str, required: bool = True) -> pd.DataFrame | None:
        for suffix in (".parquet", ".csv"):
            f = folder / f"{stem}{suffix}"
            if f.is_file():
                return pd.read_parquet(f) if suffix == ".parquet" else pd.read_csv(f)
        if required:
            raise DataError(f"{folder}: no {stem}.csv or {stem}.parquet for the holdout")
        return None

    history = read("history")
    labels = read("score")
    if spec.prediction.label_column not in labels:
        raise DataError(f"{folder}/score: no label column {spec.prediction.label_column!r}")
    rng = np.random.default_rng(np.random.SeedSequence(int(seed)).spawn(1)[0])
    features = _hide(spec, labels, rng)
    batches: dict[str, pd.DataFrame] = {}
    drifted = reference = None
    parts = {s: read(s, required=False) for s in ("reference", "clean", "drifted")}
    if all(v is not None for v in parts.values()):
        names = ["batch_a", "batch_b"]
        rng.shuffle(names)
        batches = {"reference": parts["reference"], names[0]: parts["clean"]}
        batches[names[1]] = parts["drifted"]
        drifted, reference = names[1], "reference"
    return Holdout(history, features, labels, batches, drifted, reference, info={"source": "files"})


register_holdout_builder("fraud_simulator", _fraud_simulator)
register_holdout_builder("files", _files)
