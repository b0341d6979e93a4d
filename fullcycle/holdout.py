"""Hidden holdouts for grading: what a submission is given, and what the grader keeps.

A holdout has three parts. ``history`` is labelled data before the scoring
window (the submission's ``train_path``). ``features`` are the scoring rows
without the spec's hidden columns, shuffled so that row order says nothing
(the submission's ``score_path``). ``labels`` are the same rows with
everything the grader needs to score them; they never enter a submission's
sandbox. ``batches`` are unlabelled inputs for the monitoring probe, under
neutral names, with the name of the drifted one kept apart.

``stages`` holds the hidden inputs of the stage probes, each with the answer
the grader keeps: a messy export with its faulty rows (:class:`ContractCase`),
a history cut for the leakage check (:class:`LeakageCase`), a day to replay
online (:class:`ParityCase`), served traffic whose ranking held or decayed
(:class:`DecayCase`) and candidates with model scores for the decision, with
the rows its rules must rank last (:class:`DecisionCase`). They are drawn from the history only (labels a learner
already has) or from the unlabelled scoring rows: no scoring-window label is
ever written where learner code runs. A contract case says its own id column,
the values a kept row must have and the extra inputs of the contract (the
fraud track's transactions, or the recommender's events with their catalogue).

Builders are registered by ``data.source``: the fraud simulator and the
interaction simulator (both driven by a seed the grader keeps secret) and plain
files.
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

__all__ = [
    "CONTRACT_VALUE_KINDS",
    "AsOfCase",
    "ContractCase",
    "DecayCase",
    "DecisionCase",
    "Holdout",
    "LeakageCase",
    "ParityCase",
    "build_holdout",
    "frame_fingerprint",
    "register_holdout_builder",
]


def frame_fingerprint(*frames: pd.DataFrame) -> str:
    """SHA-256 of the frames' values and column names (row order matters)."""
    h = hashlib.sha256()
    for f in frames:
        h.update(",".join(map(str, f.columns)).encode())
        h.update(pd.util.hash_pandas_object(f, index=False).to_numpy().tobytes())
    return h.hexdigest()


#: How a kept row's value is compared with its true value, by kind: ``time`` to the
#: second (naive UTC), ``amount`` within half a cent, ``number`` exactly, ``text`` ignoring
#: case and surrounding spaces, ``exact_text`` exactly (a canonical spelling). Missing on
#: both sides is equal.
CONTRACT_VALUE_KINDS = ("time", "amount", "number", "text", "exact_text")
#: The true values of a kept transaction, and how each is compared.
_FRAUD_VALUES = {
    "TX_DATETIME": "time",
    "TX_AMOUNT": "amount",
    "CUSTOMER_ID": "number",
    "TERMINAL_ID": "number",
    "TX_CHANNEL": "text",
}


@dataclass
class ContractCase:
    """A hidden messy export and what a data contract should make of it.

    The defaults describe a transaction export (the fraud track); another
    project's builder names its own id column, values and extra inputs.

    Attributes
    ----------
    raw : DataFrame
        The export as it arrives (text amounts, mixed time zones, duplicates...).
    expected : DataFrame
        One row per ``id_column`` value of ``raw``: ``copies`` (rows with that id in
        ``raw``), ``keep`` (1 if one copy must be kept as valid, 0 if every copy must
        be quarantined), ``kind`` (the fault; ``""`` for a good row, or the repairable
        fault a kept row had; ``"unjudged:..."`` for a row the probe does not judge)
        and the true values of a kept row (the columns of ``values``).
    kwargs : dict
        The keyword arguments the contract is called with besides ``raw``: JSON
        values, or DataFrames (such as a catalogue), which reach it as frames.
    id_column : str
        The column that names a row of the export.
    values : dict
        Column -> how a kept row's value is compared with its true one (one of
        :data:`CONTRACT_VALUE_KINDS`); columns absent from ``raw`` are not judged.
    """

    raw: pd.DataFrame
    expected: pd.DataFrame
    kwargs: dict = field(default_factory=lambda: {"labelled": True})
    id_column: str = "TRANSACTION_ID"
    values: dict[str, str] = field(default_factory=lambda: dict(_FRAUD_VALUES))

    def __post_init__(self) -> None:
        unknown = {c: k for c, k in self.values.items() if k not in CONTRACT_VALUE_KINDS}
        if unknown:
            raise DataError(
                f"ContractCase: unknown value kind(s) {unknown}; "
                f"choose from {list(CONTRACT_VALUE_KINDS)}"
            )
        for name in (self.id_column, "copies", "keep", "kind"):
            if name not in self.expected.columns:
                raise DataError(f"ContractCase: expected has no {name!r} column")


@dataclass
class LeakageCase:
    """A labelled history, its last rows, and later labelled rows, for the leakage check.

    ``rows`` are the last days of ``history``; their features must not change
    when the labels at or after ``flip_from`` are flipped (they are younger
    than the delay for every row) or when ``future`` rows are appended.
    """

    history: pd.DataFrame
    rows: pd.DataFrame
    future: pd.DataFrame
    flip_from: pd.Timestamp
    delay_days: int
    label: str = "TX_FRAUD"


@dataclass
class AsOfCase:
    """Events before a day and events from that day on, for a feature computed "as of" the day.

    The feature is called as ``feature(events, **{day_arg: day, keys_arg: keys})``
    and returns one value per key (a Series on the keys, or values in their
    order). Called again with ``later`` added to ``events`` (rows shuffled), it
    must return the same values: a feature as of a day uses nothing of that
    day or after it. ``what`` names the feature in the feedback.
    """

    events: pd.DataFrame
    later: pd.DataFrame
    day: int
    keys: np.ndarray
    day_arg: str = "day"
    keys_arg: str = "items"
    what: str = "feature"


@dataclass
class ParityCase:
    """A labelled history and one later day of unlabelled rows in arrival order."""

    history: pd.DataFrame
    day: pd.DataFrame
    delay_days: int
    label: str = "TX_FRAUD"


@dataclass
class DecayCase:
    """Served traffic with scores: a reference window and current windows under neutral names.

    Every window has ``TRANSACTION_ID, TX_DATETIME, CUSTOMER_ID, TERMINAL_ID,
    TX_AMOUNT, score, TX_FRAUD`` (NaN where the label has not arrived yet).
    In ``decayed`` the served model's ranking fell apart; the others held.
    """

    reference: pd.DataFrame
    windows: dict[str, pd.DataFrame]
    decayed: str


@dataclass
class DecisionCase:
    """Candidates with model scores, handed to a decision, and the rows its rules exclude.

    The decision is called as ``decide(candidates, scores, **kwargs)`` and
    returns a frame whose ``output`` column holds each row's final score. The
    grader keeps ``eligible``: an ineligible row must end below every eligible
    row of its group (the spec's ``prediction.group_column``), and eligible rows
    must keep the order of ``scores``.

    Attributes
    ----------
    candidates : DataFrame
        The rows handed to the decision (no label, nothing of the scoring window).
    scores : ndarray
        The model's score of each row, in the same order.
    eligible : ndarray of bool
        Per row, whether the project's rules allow it (kept by the grader).
    kwargs : dict
        The keyword arguments the decision is called with besides the
        candidates and scores: JSON values, DataFrames (which reach it as
        frames) or mappings (which reach it as dicts, their keys' types kept).
    output : str
        The column of the returned frame holding the final scores.
    reasons : ndarray of str, optional
        Why each ineligible row is ruled out (``""`` where eligible), named in
        the feedback; ``None``: "ruled out".
    """

    candidates: pd.DataFrame
    scores: np.ndarray
    eligible: np.ndarray
    kwargs: dict = field(default_factory=dict)
    output: str = "score"
    reasons: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.scores = np.asarray(self.scores, dtype=float).ravel()
        self.eligible = np.asarray(self.eligible, dtype=bool).ravel()
        n = len(self.candidates)
        if self.scores.size != n or self.eligible.size != n:
            raise DataError(
                f"DecisionCase: {self.scores.size} scores and {self.eligible.size} eligibility "
                f"flags for {n} candidates; give one of each per row"
            )
        if not np.isfinite(self.scores).all():
            raise DataError("DecisionCase: every score must be a finite number")
        if self.reasons is not None:
            self.reasons = np.asarray(self.reasons, dtype=object).ravel()
            if self.reasons.size != n:
                raise DataError(f"DecisionCase: {self.reasons.size} reasons for {n} candidates")


@dataclass
class Holdout:
    history: pd.DataFrame
    features: pd.DataFrame
    labels: pd.DataFrame
    batches: dict[str, pd.DataFrame] = field(default_factory=dict)
    drifted_batch: str | None = None
    reference_batch: str | None = None
    info: dict = field(default_factory=dict)
    stages: dict = field(default_factory=dict)

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
    import inspect

    from fullcycle.data.splits import time_split
    from fullcycle.run import at_scale, load_data

    data = spec.data.model_copy(update={"seed": int(seed)})
    secret = at_scale(spec.model_copy(update={"data": data}), scale)
    raw = load_data(secret, scale=scale)
    raw = raw.sort_values(["TX_DATETIME", "TRANSACTION_ID"], kind="stable").reset_index(drop=True)
    s = secret.data.split
    accepted = inspect.signature(time_split).parameters
    split = time_split(raw, **{k: v for k, v in s.model_dump().items() if k in accepted})
    streams = np.random.SeedSequence(int(seed)).spawn(2)
    rng = np.random.default_rng(streams[0])
    history = split.history.reset_index(drop=True)
    labels = split.test.reset_index(drop=True)
    features = _hide(spec, labels, rng)
    batches, drifted, reference = _fraud_batches(spec, history, labels, rng)
    stages = _fraud_stages(spec, history, labels, s.delay_days, np.random.default_rng(streams[1]))
    return Holdout(
        history,
        features,
        labels,
        batches,
        drifted,
        reference,
        info={"source": "fraud_simulator", "scale": scale, "rows": len(labels)},
        stages=stages,
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


#: Raw columns of a transaction as a service sees it.
_RAW = ["TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT"]
#: Faults of :func:`fullcycle.data.make_messy` that a contract must repair (the row stays valid,
#: with its true values); the others (``MessReport.FAULTY``) make a row faulty.
_REPAIRABLE = {"amount_strings", "mixed_timezones", "category_spellings", "late_labels"}


def _last_days(
    frame: pd.DataFrame, min_rows: int, max_days: int, day: str = "TX_TIME_DAYS"
) -> pd.DataFrame:
    """The last whole days of ``frame`` holding at least ``min_rows`` rows (at most ``max_days``)."""
    days = frame[day].to_numpy()
    last = int(days.max())
    per_day = frame.groupby(day).size()
    n = 1
    while n < max_days and per_day.loc[last - n + 1 : last].sum() < min_rows:
        n += 1
    return frame[days > last - n].reset_index(drop=True)


def _fraud_stages(spec, history, scoring, delay, rng) -> dict:
    """The hidden inputs of the stage probes (see :class:`Holdout`)."""
    return {
        "contract": _contract_case(history, rng),
        "leakage": _leakage_case(history, delay),
        "parity": _parity_case(history, scoring, delay),
        "decay": _decay_case(history, rng),
    }


def _contract_case(history, rng) -> ContractCase:
    """A messy export of the last days of the history, with every fault of the messiness layer."""
    from fullcycle.data.messiness import MESS_KINDS, MessReport, make_messy

    faulty = set(getattr(MessReport, "FAULTY", ("missing", "exact_duplicates", "near_duplicates")))
    clean = _last_days(history, 5_000, 30).head(20_000)
    raw, report = make_messy(clean, rate=0.01, seed=int(rng.integers(2**31)))
    raw = _as_export(raw)
    ids = raw["TRANSACTION_ID"].to_numpy()
    copies = pd.Series(ids).value_counts()
    expected = pd.DataFrame({"TRANSACTION_ID": copies.index.to_numpy(np.int64)})
    expected["copies"] = copies.to_numpy()
    expected["keep"] = 1
    expected["kind"] = ""
    index = pd.Index(expected["TRANSACTION_ID"])
    for kind in MESS_KINDS:
        hit = np.asarray(report.rows.get(kind, []), dtype=np.int64)
        at = index.get_indexer(hit)
        at = at[at >= 0]
        if kind in faulty:
            expected.loc[at, "kind"] = kind
            if kind != "exact_duplicates":  # an exact copy: one of the two is the good row
                expected.loc[at, "keep"] = 0
        elif kind not in _REPAIRABLE:
            expected.loc[at, "kind"] = f"unjudged:{kind}"
    truth = clean.set_index("TRANSACTION_ID")
    values = truth.reindex(expected["TRANSACTION_ID"])[[c for c in _FRAUD_VALUES if c in truth]]
    expected = pd.concat([expected, values.reset_index(drop=True)], axis=1)
    if "TX_CHANNEL" in expected:
        expected["TX_CHANNEL"] = expected["TX_CHANNEL"].astype("string")
    return ContractCase(raw.reset_index(drop=True), expected, kwargs={"labelled": True})


def _as_export(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns holding values of several types (numbers and text) as text, as a CSV export has them.

    A table file cannot hold a column of mixed types; text is what such a
    column is when the bank's export is read without guessing.
    """
    out = frame.copy()
    for name in out.columns:
        col = out[name]
        if col.dtype != object:
            continue
        kinds = {type(v) for v in col.dropna().tolist()}
        if len(kinds) > 1:
            out[name] = col.map(lambda v: v if v is None or v is pd.NA or v != v else str(v))
    return out


def _leakage_case(history, delay: int) -> LeakageCase:
    """History up to ``delay + 1`` days before its end; its last days; the days after as future."""
    days = history["TX_TIME_DAYS"].to_numpy()
    end = int(days.max()) - delay - 1
    span = 30 + delay + 8  # the longest window of the handbook's features, with room
    past = history[(days > end - span) & (days <= end)].reset_index(drop=True)
    future = history[days > end].reset_index(drop=True)
    rows = _last_days(past, 2_000, 3).head(5_000)
    flip_from = pd.Timestamp(past["TX_DATETIME"].max()).normalize() - pd.Timedelta(days=delay - 1)
    return LeakageCase(past, rows, future, flip_from, int(delay))


def _parity_case(history, scoring, delay: int) -> ParityCase:
    """The first scoring day, unlabelled, after the history's last 45 days."""
    days = history["TX_TIME_DAYS"].to_numpy()
    past = history[days > int(days.max()) - 45].reset_index(drop=True)
    first = int(scoring["TX_TIME_DAYS"].min())
    day = scoring[scoring["TX_TIME_DAYS"] == first][_RAW + ["TX_TIME_SECONDS", "TX_TIME_DAYS"]]
    day = day.sort_values(["TX_DATETIME", "TRANSACTION_ID"], kind="stable")
    return ParityCase(past, day.head(3_000).reset_index(drop=True), int(delay))


def _served_scores(y: np.ndarray, separation: float, rng) -> np.ndarray:
    """Scores of a served model: a fraud's log-odds are ``separation`` higher (AUC ~ Phi(sep/sqrt 2))."""
    z = rng.normal(size=y.size) + separation * y
    return 1.0 / (1.0 + np.exp(-(z - 4.0)))


def _decay_case(history, rng) -> DecayCase:
    """Two weeks of served traffic as the reference; the same traffic replayed two weeks later.

    The current windows replay the reference's transactions 14 days later
    (new ids), so that the only thing that differs is the served model: in the
    held window it ranks exactly as before (the same scores), in the decayed
    one it separates frauds far worse (AUC about 0.6 instead of 0.9). A week's
    money is noisy (which frauds a team of k happens to catch); replaying the
    same transactions keeps that noise out of the verdict. Each current window
    ends with one more day whose labels have not arrived yet (NaN).
    """
    days = history["TX_TIME_DAYS"].to_numpy()
    last = int(days.max())
    ref = history[(days > last - 14) & (days <= last)].reset_index(drop=True)
    y = ref["TX_FRAUD"].to_numpy(dtype=float)
    reference = ref[_RAW].copy()
    reference["score"] = _served_scores(y, 1.8, rng)
    reference["TX_FRAUD"] = y
    shift = int(history["TRANSACTION_ID"].max()) + 1
    replay = reference.copy()
    replay["TRANSACTION_ID"] = replay["TRANSACTION_ID"] + shift
    replay["TX_DATETIME"] = replay["TX_DATETIME"] + pd.Timedelta(days=14)
    # One more day whose labels have not arrived yet (the first day again, 28 days on).
    fresh = reference[(ref["TX_TIME_DAYS"] == last - 13).to_numpy()].copy()
    fresh["TRANSACTION_ID"] = fresh["TRANSACTION_ID"] + 2 * shift
    fresh["TX_DATETIME"] = fresh["TX_DATETIME"] + pd.Timedelta(days=28)
    fresh["TX_FRAUD"] = np.nan
    decayed = replay.copy()
    decayed["score"] = _served_scores(y, 0.35, rng)
    held = pd.concat([replay, fresh], ignore_index=True)
    decayed = pd.concat([decayed, fresh], ignore_index=True)
    names = ["window_a", "window_b"]
    rng.shuffle(names)
    return DecayCase(reference, {names[0]: held, names[1]: decayed}, names[1])


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


def _interaction_simulator(spec: ProjectSpec, seed: int, scale: str, path=None) -> Holdout:
    """A recommender's hidden window: history events, candidate rows, and monitoring weeks.

    The world is simulated with the secret seed
    (:func:`fullcycle.data.candidates.project_window`). The monitoring batches
    come from a second world the submission never scores (another stream of
    the seed), so that no event of the scoring window, and so no purchase the
    grader scores against, is ever written where learner code runs: its last
    history week is the reference, its scoring week the ordinary batch, and the
    same week with the project's drift (a trending category or a catalogue
    change, from ``data.drift``) the drifted one. Batch events carry the item's
    ``CATEGORY`` from the catalogue, as a shop's event export joins it. The
    stage cases: the data contract's messy export, cut from the history (a
    third stream of the seed, :func:`_interaction_contract_case`), and the
    decision's candidates with model-like scores, from the history's users and
    purchases (a fourth stream, :func:`_interaction_decision_case`), and the
    features' "as of a day" case (:func:`_interaction_as_of_case`).
    """
    from fullcycle.data.candidates import interaction_config, project_window
    from fullcycle.data.interactions import simulate_interactions

    # Five streams; the first four draw as they did before the fifth was added.
    streams = np.random.SeedSequence(int(seed)).spawn(5)
    rng = np.random.default_rng(streams[0])
    window = project_window(spec, scale, seed=int(seed))
    labels = window.candidates
    features = _hide(spec, labels, rng)
    batches: dict[str, pd.DataFrame] = {}
    drifted = reference = None
    d, s = spec.data.drift, spec.data.split
    if d is not None:
        other = int(streams[1].generate_state(1)[0])
        start, end = s.score_start_day, s.score_start_day + s.score_days

        def days(events: pd.DataFrame, first: int, stop: int) -> pd.DataFrame:
            day = events["EVENT_DAY"].to_numpy()
            return events[(day >= first) & (day < stop)].reset_index(drop=True)

        def with_category(sim) -> pd.DataFrame:  # what a trend shows in: the catalogue's own
            category = sim.items.set_index("ITEM_ID")["CATEGORY"]
            return sim.events.assign(CATEGORY=category.reindex(sim.events["ITEM_ID"]).to_numpy())

        ordinary = with_category(simulate_interactions(interaction_config(spec, scale, other)))
        changed = interaction_config(spec, scale, other, drift=d.scenario, drift_day=start)
        names = ["batch_a", "batch_b"]
        rng.shuffle(names)
        batches = {
            "reference": days(ordinary, start - s.score_days, start),
            names[0]: days(ordinary, start, end),
            names[1]: days(with_category(simulate_interactions(changed)), start, end),
        }
        drifted, reference = names[1], "reference"
    contract = _interaction_contract_case(
        window.history, window.items, s.score_start_day, np.random.default_rng(streams[2])
    )
    decision = _interaction_decision_case(
        window.history, window.items, np.random.default_rng(streams[3])
    )
    as_of = _interaction_as_of_case(
        window.history, s.score_start_day, np.random.default_rng(streams[4])
    )
    return Holdout(
        window.history,
        features,
        labels,
        batches,
        drifted,
        reference,
        info={"source": "interaction_simulator", "scale": scale, **window.detail},
        stages={"contract": contract, "decision": decision, "as_of": as_of},
    )


#: The true values of a kept interaction event, and how each is compared.
_INTERACTION_VALUES = {
    "EVENT_TIME": "time",
    "EVENT_DAY": "number",
    "USER_ID": "number",
    "ITEM_ID": "number",
    "EVENT_TYPE": "exact_text",
    "PRICE": "amount",
    "CATEGORY": "exact_text",
}


def _interaction_contract_case(history, items, score_start_day: int, rng) -> ContractCase:
    """A messy event export of the last days of the history, and the catalogue it comes with.

    Every fault of :func:`fullcycle.data.make_messy_interactions` is in it: the
    tracker firing twice and a bot-like user (whose events must be
    quarantined), missing prices (repaired from the catalogue the contract is
    given as ``items``) and misspelled categories in that catalogue, which
    reach the events through their ``CATEGORY`` column (joined from the
    catalogue, as a shop's export has it; repaired to the canonical name). A
    copy the tracker fired past midnight into the scoring window is left out:
    nothing of the window's days is in the case.
    """
    from fullcycle.data.interactions import InteractionMessReport, make_messy_interactions

    clean = _last_days(history, 5_000, 14, day="EVENT_DAY").head(20_000)
    seed = int(rng.integers(2**31))
    messy, report = make_messy_interactions(clean, rate=0.01, seed=seed, items=items)
    messy = messy[messy["EVENT_DAY"].to_numpy() < score_start_day]
    spelled = report.items.set_index("ITEM_ID")["CATEGORY"]
    raw = messy.assign(CATEGORY=spelled.reindex(messy["ITEM_ID"]).to_numpy(dtype=object))
    raw = raw.reset_index(drop=True)
    if (raw["EVENT_TIME"] >= _day_start(history, score_start_day)).any():
        raise DataError("the contract case holds events of the scoring window")

    ids = raw["EVENT_ID"]
    copies = ids.value_counts()
    expected = pd.DataFrame({"EVENT_ID": copies.index.to_numpy(np.int64)})
    expected["copies"] = copies.to_numpy()
    expected["keep"] = 1
    expected["kind"] = ""
    index = pd.Index(expected["EVENT_ID"])
    # Repairable faults first (the row stays), then the faulty kinds, which win.
    respelled = raw.loc[raw["ITEM_ID"].isin(report.rows.get("category_spellings", [])), "EVENT_ID"]
    expected.loc[index.get_indexer(respelled), "kind"] = "category_spellings"
    at = index.get_indexer(np.asarray(report.rows.get("missing_prices", []), np.int64))
    expected.loc[at[at >= 0], "kind"] = "missing_prices"
    for kind in InteractionMessReport.FAULTY:
        at = index.get_indexer(np.asarray(report.rows.get(kind, []), np.int64))
        at = at[at >= 0]
        expected.loc[at, "kind"] = kind
        expected.loc[at, "keep"] = 0
    truth = clean.set_index("EVENT_ID").reindex(expected["EVENT_ID"])
    truth = truth.assign(
        CATEGORY=items.set_index("ITEM_ID")["CATEGORY"].reindex(truth["ITEM_ID"]).to_numpy(object)
    )
    values = truth[[c for c in _INTERACTION_VALUES if c in truth]].reset_index(drop=True)
    for name in ("EVENT_TYPE", "CATEGORY"):
        values[name] = values[name].astype("string")
    expected = pd.concat([expected, values], axis=1)
    return ContractCase(
        raw,
        expected,
        kwargs={"items": report.items.reset_index(drop=True)},
        id_column="EVENT_ID",
        values=dict(_INTERACTION_VALUES),
    )


def _interaction_as_of_case(history: pd.DataFrame, score_start_day: int, rng) -> AsOfCase:
    """Item popularity as of a history day drawn from the seed, with the events of later days.

    The day is one of the history's last three weeks before its final week;
    ``events`` are the six weeks before it and ``later`` every history event
    from it on (new items included). Keys are every item of either.
    """
    day = int(rng.integers(score_start_day - 21, score_start_day - 7 + 1))
    d = history["EVENT_DAY"].to_numpy()
    events = history[(d < day) & (d >= day - 42)].reset_index(drop=True)
    later = history[d >= day].reset_index(drop=True)
    keys = np.union1d(events["ITEM_ID"].to_numpy(), later["ITEM_ID"].to_numpy())
    return AsOfCase(events, later, day, keys, "day", "items", "item popularity")


def _interaction_decision_case(
    history: pd.DataFrame, items: pd.DataFrame, rng, n_users: int = 200
) -> DecisionCase:
    """Candidates of recent history users with model-like scores, for a recommender's decision.

    ``n_users`` users active in the history's last days (most of them buyers)
    against the catalogue: each (user, item) row gets a score drawn from the
    seed (an item effect plus noise, rounded to three decimals, so that some
    scores tie), ``bought`` maps each user to the items they bought in the
    history, and a tenth of the in-stock items are also marked out of stock. A
    row is eligible when its user did not buy the item and it is in stock.
    Nothing of the scoring window is used; the stock states are the catalogue's
    the learner already has.
    """
    recent = _last_days(history, 5_000, 14, day="EVENT_DAY")
    active = np.unique(recent["USER_ID"].to_numpy())
    purchases = history[history["EVENT_TYPE"].to_numpy() == "purchase"]
    buyers = np.intersect1d(active, purchases["USER_ID"].to_numpy())
    others = np.setdiff1d(active, buyers)
    n_buyers = min(buyers.size, n_users - min(others.size, n_users // 10))
    users = np.sort(
        np.concatenate(
            [
                rng.choice(buyers, n_buyers, replace=False),
                rng.choice(others, min(others.size, n_users - n_buyers), replace=False),
            ]
        )
    )
    catalogue = items.sort_values("ITEM_ID", kind="stable").reset_index(drop=True)
    stocked = catalogue["IN_STOCK"].fillna(False).to_numpy(dtype=bool)
    stocked = stocked & (rng.random(stocked.size) >= 0.1)
    n_items = len(catalogue)
    item_ids = catalogue["ITEM_ID"].to_numpy()
    candidates = pd.DataFrame(
        {
            "CANDIDATE_ID": np.arange(users.size * n_items, dtype=np.int64),
            "USER_ID": np.repeat(users, n_items),
            "ITEM_ID": np.tile(item_ids, users.size),
            "CATEGORY": np.tile(catalogue["CATEGORY"].to_numpy(object), users.size),
            "PRICE": np.tile(catalogue["PRICE"].to_numpy(float), users.size),
            "IN_STOCK": np.tile(stocked, users.size),
        }
    )
    # Model-like scores: popular items score higher for everyone, each user has their taste.
    counts = history["ITEM_ID"].value_counts().reindex(item_ids, fill_value=0).to_numpy(float)
    effect = np.log1p(counts) / max(np.log1p(counts).max(), 1.0)
    noise = rng.normal(0.0, 0.4, candidates.shape[0])
    scores = np.round(np.tile(effect, users.size) + noise, 3)
    mine = purchases[purchases["USER_ID"].isin(users)]
    bought = {int(u): sorted({int(i) for i in g}) for u, g in mine.groupby("USER_ID")["ITEM_ID"]}
    key = pd.MultiIndex.from_frame(candidates[["USER_ID", "ITEM_ID"]])
    owned = key.isin(pd.MultiIndex.from_frame(mine[["USER_ID", "ITEM_ID"]]))
    stock = candidates["IN_STOCK"].to_numpy(bool)
    return DecisionCase(
        candidates,
        scores,
        eligible=~owned & stock,
        kwargs={"bought": bought},
        output="score",
        reasons=np.where(owned, "bought by the user", np.where(stock, "", "out of stock")),
    )


def _day_start(history: pd.DataFrame, day: int) -> pd.Timestamp:
    """When ``EVENT_DAY`` ``day`` starts, from the history's own days and times."""
    first = history.iloc[0]
    origin = pd.Timestamp(first["EVENT_TIME"]).normalize() - pd.Timedelta(
        days=int(first["EVENT_DAY"])
    )
    return origin + pd.Timedelta(days=day)


register_holdout_builder("fraud_simulator", _fraud_simulator)
register_holdout_builder("interaction_simulator", _interaction_simulator)
register_holdout_builder("files", _files)
