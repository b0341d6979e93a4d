"""Stage probes: each stage of a learner's system, run in the sandbox on hidden data, judged here.

Every probe takes a ``run`` callable (:func:`grading.harness.run_stage` bound
to the job: ``run(name, task, entries, inputs, params)``) and the hidden case
of :mod:`fullcycle.holdout`, and returns a :class:`StageResult`: the figures
it measured (named as in :mod:`fullcycle.metrics.registry`), the problems a
learner can act on, and, when nothing could be measured, why. A stage is
judged on its own: a kit whose service does not start still earns the points
of its features.

=============== ============================== ==========================================
probe           figures                        hidden input
=============== ============================== ==========================================
contract        ``contract.faulty_quarantined`` a messy export, faults at known rows
                ``contract.good_kept``
leakage         ``features.leakage_free``      a history, its last rows, later rows
as of a day     ``features.past_only``         events before a day, events from it on
parity          ``features.parity``            a history and one day replayed online
policy          ``policy.value_vs_top_k``      the learner's scores on the scoring window
                ``policy.share_of_oracle``
decision        ``decision.exclusions_respected`` candidates with model scores, rows ruled out
                ``decision.order_kept``
flags (drift,   ``monitoring.flags_*``         a reference batch and named batches
decay)          ``monitoring.quiet_on_*``
retraining      ``retraining.correct_decisions`` champion/challenger cases from the seed
=============== ============================== ==========================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from grading.harness import OutputError, StageRun

__all__ = [
    "StageResult",
    "probe_as_of",
    "probe_contract",
    "probe_decision",
    "probe_flags",
    "probe_leakage",
    "probe_parity",
    "probe_policy",
    "probe_retraining",
    "promotion_cases",
]

#: Features equal within this tolerance are "unchanged" (leakage) or "equal" (parity).
LEAKAGE_TOL = 1e-9
PARITY_RTOL = 1e-7
PARITY_ATOL = 1e-9
#: What the service (and so the online features) receives of a transaction.
RAW_COLUMNS = ["TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT"]


@dataclass
class StageResult:
    """What one stage probe measured.

    Attributes
    ----------
    metrics : dict
        Figures by registered name.
    problems : list of str
        What a learner should look at (shown in the feedback).
    unmeasured : dict
        Figure name -> why it has no value.
    details : dict
        Counts and examples for ``result.json``.
    """

    metrics: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)
    unmeasured: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)

    def none(self, names, reason: str) -> StageResult:
        for n in names:
            self.unmeasured[n] = reason
        return self

    def as_dict(self) -> dict:
        return {
            "metrics": dict(self.metrics),
            "problems": list(self.problems),
            "unmeasured": dict(self.unmeasured),
            **self.details,
        }


def _stopped(run: StageRun) -> str | None:
    """Why a run gave no usable answer at all (timeout, no result, the learner's own error)."""
    return run.reason() if (run.result is None or run.error) else None


def _unique_problems(items: list[str]) -> list[str]:
    return sorted(set(items), key=items.index)


def _said(value, n: int = 300) -> str | None:
    """A learner-made value (from ``result.json``) as a short text for a report, or None."""
    if value is None:
        return None
    text = value if isinstance(value, str) else _text(value, n)
    return text if len(text) <= n else text[: n - 3] + "..."


# ---- data contract ---------------------------------------------------------------------


def probe_contract(run, case, entry: str) -> StageResult:
    """The learner's data contract on a hidden messy export: faults quarantined, good rows kept.

    The contract is called as ``validate(case.raw, **case.kwargs)``; rows are
    named by ``case.id_column``. ``contract.good_kept`` is the share of good
    rows (repairable faults included) kept exactly once with their true values
    (the columns of ``case.values``, each compared by its kind).
    ``contract.faulty_quarantined`` is the share of faulty row copies
    quarantined with a reason, minus the share of good rows that did not make
    it to ``valid`` (so that quarantining everything earns nothing).
    """
    names = ("contract.faulty_quarantined", "contract.good_kept")
    key = case.id_column
    kinds = {key: "number"}
    kinds.update({c: k for c, k in case.values.items() if c in case.raw.columns and c != key})
    frames = {k: v for k, v in case.kwargs.items() if isinstance(v, pd.DataFrame)}
    plain = {k: v for k, v in case.kwargs.items() if k not in frames}
    r = run(
        "contract",
        "contract",
        {"validate": entry},
        {"raw": case.raw, **{f"kwarg_{k}": v for k, v in frames.items()}},
        {"kwargs": plain, "frame_kwargs": list(frames), "id_column": key, "columns": kinds},
    )
    out = StageResult()
    why = _stopped(r)
    if why:
        return out.none(names, f"the data contract gave no result: {why}")
    try:
        valid = r.table("valid")
        quarantine = r.table("quarantine")
    except OutputError as exc:
        return out.none(names, f"the data contract's output cannot be read: {exc}")
    untyped = (r.result or {}).get("untyped")
    times = " and ".join(c for c, k in kinds.items() if k == "time") or "times"
    for col, dtype in list(untyped.items() if isinstance(untyped, dict) else [])[:10]:
        out.problems.append(
            f"the valid frame's {_said(col, 60)} holds {_said(dtype, 60)} values, not parsed "
            f"ones: parse it (numbers for ids and amounts, naive UTC datetime64 for {times})"
        )
    e = case.expected.set_index(key)
    e = e[~e["kind"].astype(str).str.startswith("unjudged")]
    if key not in valid.columns:
        return out.none(names, f"the valid frame has no {key} column")
    if key not in quarantine.columns:
        return out.none(names, f"the quarantine frame has no {key} column")
    vid = pd.to_numeric(valid[key], errors="coerce")
    valid_n = vid.value_counts().reindex(e.index).fillna(0).astype(int)
    reasons = quarantine["QUARANTINE_REASON"].astype(str).str.strip()
    qid = pd.to_numeric(quarantine[key], errors="coerce")
    with_reason = qid[reasons.str.len() > 0].value_counts().reindex(e.index).fillna(0)
    without_reason = int((reasons.str.len() == 0).sum())

    # Good rows: kept exactly once, with the true values.
    good = e[e["keep"] == 1]
    once = valid.assign(_id=vid).drop_duplicates("_id", keep=False).set_index("_id")
    ok = valid_n.reindex(good.index) == 1
    wrong_value: dict[str, int] = {}
    examples: list[str] = []
    for col, kind in kinds.items():
        if col == key or col not in good.columns:
            continue
        if col not in once.columns:
            out.problems.append(f"the valid frame has no {col} column")
            ok &= False
            continue
        got = once[col].reindex(good.index)
        want = good[col]
        same = _same_values(got, want, kind)
        bad = ok & ~same
        if bad.any():
            wrong_value[col] = int(bad.sum())
            raw = case.raw.set_index(key)
            for tid in bad[bad].index[:2]:
                sent = raw.loc[[tid], col].iloc[0] if col in raw.columns else None
                examples.append(
                    f"{key} {tid}: {col} {_text(sent)} became {_text(got.loc[tid])}, "
                    f"expected {_text(want.loc[tid])}"
                )
        ok &= same
    lost = good.index[valid_n.reindex(good.index).to_numpy() == 0]
    out.metrics["contract.good_kept"] = float(ok.mean()) if len(ok) else float("nan")

    # Faulty copies: quarantined with a reason (and not leaked into valid).
    units = (e["copies"] - e["keep"]).clip(lower=0)
    faulty = e[units > 0]
    leaked = valid_n.reindex(faulty.index) > faulty["keep"]
    caught = np.minimum(with_reason.reindex(faulty.index), units.reindex(faulty.index))
    caught = caught.where(~leaked, 0)
    share = float(caught.sum() / units.sum()) if units.sum() else float("nan")
    lost_share = len(lost) / len(good) if len(good) else 0.0
    out.metrics["contract.faulty_quarantined"] = max(0.0, share - lost_share)

    by_kind = {}
    for kind, g in faulty.groupby("kind"):
        c = caught.reindex(g.index)
        by_kind[str(kind)] = f"{int(c.sum())}/{int(units.reindex(g.index).sum())}"
        missed = g.index[(c < units.reindex(g.index)).to_numpy()]
        if len(missed):
            out.problems.append(
                f"{len(missed)} row(s) with the fault {kind!r} were not quarantined with a "
                f"reason, e.g. {key} {', '.join(str(i) for i in missed[:3])}"
            )
    if len(lost):
        kinds_lost = good.loc[lost, "kind"].replace("", "no fault").value_counts().to_dict()
        out.problems.append(
            f"{len(lost)} good row(s) did not reach the valid frame ({kinds_lost}), e.g. "
            f"{key} {', '.join(str(i) for i in lost[:3])}"
        )
    for col, n in wrong_value.items():
        out.problems.append(f"{n} kept row(s) have a wrong {col} after repair")
    out.problems += examples[:4]
    if without_reason:
        out.problems.append(f"{without_reason} quarantined row(s) have no QUARANTINE_REASON")
    total = int(len(case.raw))
    seen = int(len(valid) + len(quarantine))
    if seen < total:
        out.problems.append(
            f"{total - seen} of {total} rows are neither valid nor quarantined: dropped silently"
        )
    out.details = {
        "rows": total,
        "valid_rows": int(len(valid)),
        "quarantined_rows": int(len(quarantine)),
        "faults_caught": by_kind,
        "good_rows": int(len(good)),
        "good_rows_kept": int(ok.sum()),
    }
    out.problems = _unique_problems(out.problems)
    return out


def _same_values(got: pd.Series, want: pd.Series, kind: str) -> pd.Series:
    """Per row, whether a kept value equals the true one (see ``CONTRACT_VALUE_KINDS``)."""
    if kind == "time":
        same = got.dt.floor("s") == pd.to_datetime(want).dt.floor("s")
    elif kind == "amount":
        same = (got - pd.to_numeric(want, errors="coerce").astype(float)).abs() <= 0.005
    elif kind == "number":
        same = got == pd.to_numeric(want, errors="coerce").astype(float)
    elif kind == "text":
        same = got.astype("string").str.strip().str.lower() == want.astype("string").str.lower()
    else:  # exact_text
        same = got.astype("string") == want.astype("string")
    both_missing = got.isna().to_numpy() & want.isna().to_numpy()
    return same.fillna(False).astype(bool) | both_missing


def _text(value, n: int = 60) -> str:
    try:
        t = repr(value.item() if hasattr(value, "item") else value)
    except Exception:
        t = f"<{type(value).__name__}>"
    return t if len(t) <= n else t[: n - 3] + "..."


# ---- features: leakage and parity ------------------------------------------------------


def _errors(run: StageRun) -> dict[str, str]:
    """The runner's per-variant errors, as short texts (``result.json`` is learner-writable)."""
    errors = (run.result or {}).get("errors")
    if not isinstance(errors, dict):
        return {}
    return {str(k)[:60]: _said(v) or "failed" for k, v in list(errors.items())[:20]}


def _equal_rows(a: pd.DataFrame, b: pd.DataFrame, rtol: float, atol: float) -> tuple:
    """Per row, whether every shared column is equal; and per column, how many rows differ."""
    cols = [c for c in a.columns if c in b.columns]
    x = a[cols].to_numpy(dtype=float)
    y = b[cols].to_numpy(dtype=float)
    same = np.isclose(x, y, rtol=rtol, atol=atol, equal_nan=True)
    return same.all(axis=1), dict(zip(cols, (~same).sum(axis=0).tolist(), strict=True))


_VARIANTS = {
    "flipped_labels": "with the labels younger than the delay flipped",
    "future_rows": "with later rows appended to the rows transformed",
    "future_history": "with later labelled rows appended to the history fitted on",
}


def probe_leakage(run, case, entry: str) -> StageResult:
    """Features of earlier rows under flipped young labels and appended future rows.

    ``features.leakage_free`` is the share of rows whose features are the same
    (within 1e-9) in every variant as in the base run.
    """
    name = "features.leakage_free"
    r = run(
        "leakage",
        "leakage",
        {"build": entry},
        {"history": case.history, "rows": case.rows, "future": case.future},
        {
            "delay_days": case.delay_days,
            "label": case.label,
            "flip_from": pd.Timestamp(case.flip_from).isoformat(),
        },
    )
    out = StageResult()
    why = _stopped(r)
    errors = _errors(r)
    if why or "base" in errors:
        return out.none([name], f"the features gave no result: {why or errors['base']}")
    try:
        base = r.table("base")
    except OutputError as exc:
        return out.none([name], f"the features' output cannot be read: {exc}")
    n = len(case.rows)
    if len(base) != n:
        return out.none([name], f"transform returned {len(base)} rows for {n}")
    unchanged = np.ones(n, dtype=bool)
    changed = {}
    for variant, words in _VARIANTS.items():
        if variant in errors:
            unchanged[:] = False
            out.problems.append(f"the features fail {words}: {errors[variant]}")
            continue
        try:
            other = r.table(variant)
        except OutputError as exc:
            unchanged[:] = False
            out.problems.append(f"no features {words}: {exc}")
            continue
        if list(other.columns) != list(base.columns) or len(other) != n:
            unchanged[:] = False
            out.problems.append(f"{words}, transform returned other columns or rows")
            continue
        same, per_col = _equal_rows(base, other, LEAKAGE_TOL, LEAKAGE_TOL)
        unchanged &= same
        if not same.all():
            worst = sorted((c for c in per_col if per_col[c]), key=lambda c: -per_col[c])[:3]
            changed[variant] = int((~same).sum())
            out.problems.append(
                f"{words}, the features of {int((~same).sum())} of {n} earlier rows changed "
                f"(most in {', '.join(worst)}): they use information not yet known at that time"
            )
    out.metrics[name] = float(unchanged.mean())
    out.details = {"rows": n, "changed_rows": changed}
    return out


def probe_as_of(run, case, entry: str) -> StageResult:
    """A feature as of a hidden day, computed again with the events of that day and later added.

    ``features.past_only`` is the share of keys whose value is the same (within
    1e-9) both times; a feature that is the same for every key says nothing,
    and earns 0.
    """
    name = "features.past_only"
    r = run(
        "as_of",
        "as_of",
        {"feature": entry},
        {
            "events": case.events,
            "later": case.later,
            "keys": pd.DataFrame({"key": np.asarray(case.keys)}),
        },
        {
            "day": int(case.day),
            "day_arg": case.day_arg,
            "keys_arg": case.keys_arg,
            "shuffle_seed": int(case.day),
        },
    )
    out = StageResult()
    why = _stopped(r)
    errors = _errors(r)
    what = case.what
    if why or "base" in errors:
        return out.none([name], f"the {what} gave no result: {why or errors['base']}")
    if "with_later" in errors:
        out.metrics[name] = 0.0
        out.problems.append(
            f"the {what} as of day {case.day} fails once the events of that day and later are "
            f"in the frame: {errors['with_later']}"
        )
        return out
    try:
        base = r.table("base")["value"].to_numpy(dtype=float)
        later = r.table("with_later")["value"].to_numpy(dtype=float)
    except (OutputError, KeyError) as exc:
        return out.none([name], f"the {what}'s output cannot be read: {exc}")
    n = len(case.keys)
    if len(base) != n or len(later) != n:
        return out.none([name], f"the {what} returned {len(base)} values for {n} keys")
    same = np.isclose(base, later, rtol=LEAKAGE_TOL, atol=LEAKAGE_TOL, equal_nan=True)
    out.details = {"keys": n, "day": int(case.day), "changed": int((~same).sum())}
    if not np.isfinite(base).any() or np.nanmax(base) == np.nanmin(base):
        out.metrics[name] = 0.0
        out.problems.append(
            f"the {what} as of day {case.day} is the same for every one of {n} keys: it tells "
            "them apart by nothing"
        )
        return out
    out.metrics[name] = float(same.mean())
    if not same.all():
        out.problems.append(
            f"the {what} of {int((~same).sum())} of {n} keys as of day {case.day} changed when "
            f"the events of day {case.day} and later were added: it counts events that had not "
            "happened yet on that day (keep only EVENT_DAY < day)"
        )
    return out


def probe_parity(run, case, build_entry: str, online_entry: str) -> StageResult:
    """Online features of a replayed day against the offline transformer's, row by row."""
    name = "features.parity"
    r = run(
        "parity",
        "parity",
        {"build": build_entry, "online": online_entry},
        {"history": case.history, "day": case.day},
        {"delay_days": case.delay_days, "label": case.label, "raw_columns": RAW_COLUMNS},
    )
    out = StageResult()
    why = _stopped(r)
    errors = _errors(r)
    if why:
        return out.none([name], f"the parity run gave no result: {why}")
    for side in ("offline", "online"):
        if side in errors:
            return out.none([name], f"the {side} features gave no result: {errors[side]}")
    try:
        offline, online = r.table("offline"), r.table("online")
    except OutputError as exc:
        return out.none([name], f"the parity run's output cannot be read: {exc}")
    n = len(case.day)
    if len(online) != n or len(offline) != n:
        return out.none([name], f"got {len(offline)} offline and {len(online)} online rows for {n}")
    missing = [c for c in offline.columns if c not in online.columns]
    same, per_col = _equal_rows(offline, online, PARITY_RTOL, PARITY_ATOL)
    if missing:
        same[:] = False
        out.problems.append(f"the online features lack {missing[:5]}")
    out.metrics[name] = float(same.mean())
    ids = case.day["TRANSACTION_ID"].to_numpy()
    for col in sorted((c for c in per_col if per_col[c]), key=lambda c: -per_col[c])[:3]:
        i = int(
            np.flatnonzero(~np.isclose(offline[col], online[col], PARITY_RTOL, PARITY_ATOL, True))[
                0
            ]
        )
        out.problems.append(
            f"{col} differs online on {per_col[col]} of {n} rows, e.g. TRANSACTION_ID {ids[i]}: "
            f"online {online[col].iloc[i]!r}, offline {offline[col].iloc[i]!r}"
        )
    out.details = {"rows": n, "differing_rows": int((~same).sum())}
    return out


# ---- decision policy -------------------------------------------------------------------


def probe_policy(run, frame: pd.DataFrame, scores, value: dict, entry: str, hidden) -> StageResult:
    """The learner's review priority on their own scores: net value against top-k and the oracle.

    ``policy.value_vs_top_k`` is (policy - fixed top-k) / |oracle|: 0 means as
    good as reviewing the top k every day. ``policy.share_of_oracle`` is the
    policy's net value over the oracle's.
    """
    from fullcycle.metrics.business import get_value_model, review_candidates

    names = ("policy.value_vs_top_k", "policy.share_of_oracle")
    out = StageResult()
    value_model = get_value_model(value["model"], **value["params"])
    candidates = review_candidates(frame, scores)
    leaked = set(hidden) & set(candidates.columns)
    if leaked:  # a library change must never hand labels to learner code
        return out.none(names, f"the candidates hold hidden columns {sorted(leaked)}")
    r = run(
        "policy", "priority", {"policy": entry}, {"candidates": candidates}, {"value_model": value}
    )
    why = _stopped(r)
    if why:
        return out.none(names, f"the review policy gave no result: {why}")
    try:
        priority = r.table("priority")["priority"].to_numpy(dtype=float)
    except (OutputError, KeyError) as exc:
        return out.none(names, f"the review policy's output cannot be read: {exc}")
    if priority.size != len(candidates):
        return out.none(names, f"{priority.size} priorities for {len(candidates)} candidates")
    mine = value_model.evaluate(frame, scores, priority=priority)
    top_k = value_model.evaluate(frame, scores)
    oracle = value_model.evaluate(frame, None)
    out.metrics["policy.value_vs_top_k"] = mine.gain_over(top_k, oracle)
    if oracle.net_value > 0:
        out.metrics["policy.share_of_oracle"] = mine.net_value / oracle.net_value
    else:
        out.unmeasured["policy.share_of_oracle"] = "the oracle earns nothing on this window"
    d = mine.detail
    out.details = {
        "net_value": mine.net_value,
        "top_k_net_value": top_k.net_value,
        "oracle_net_value": oracle.net_value,
        "reviews": d.get("reviews"),
        "top_k_reviews": top_k.detail.get("reviews"),
        "skipped": int(np.sum(~np.isfinite(priority))),
    }
    if mine.net_value < top_k.net_value:
        out.problems.append(
            f"your reviews earn {mine.net_value:,.0f}, reviewing the top k by score earns "
            f"{top_k.net_value:,.0f} ({d.get('reviews')} against {top_k.detail.get('reviews')} "
            "reviews)"
        )
    return out


# ---- the decision: final scores of candidates the model scored ---------------------------


def _plain(value):
    """A value of a mapping argument as plain JSON (numpy scalars and arrays, sets, tuples)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray | set | frozenset | tuple | list):
        return [_plain(v) for v in (sorted(value) if isinstance(value, set | frozenset) else value)]
    return value


def probe_decision(run, case, entry: str, group: str, hidden=()) -> StageResult:
    """The learner's decision on hidden candidates with given model scores: rules and order kept.

    The decision is called as ``decide(case.candidates, case.scores,
    **case.kwargs)`` and its returned frame's ``case.output`` column read as one
    final score per candidate. In each group of rows (``group``, e.g. a user's
    candidates):

    - ``decision.exclusions_respected``: the share of groups (those with rows
      both allowed and ruled out) where every ruled-out row scores below every
      allowed one;
    - ``decision.order_kept``: the share of groups (those whose allowed rows have
      at least two distinct model scores) where the final scores of the allowed
      rows order them as the model's scores do (ties free where the model tied).

    A group holding a final score that is not a finite number fails both.
    """
    names = ("decision.exclusions_respected", "decision.order_kept")
    out = StageResult()
    leaked = set(hidden) & set(case.candidates.columns)
    if leaked:  # a library change must never hand labels to learner code
        return out.none(names, f"the candidates hold hidden columns {sorted(leaked)}")
    if group not in case.candidates.columns:
        return out.none(names, f"the candidates have no group column {group!r}")
    frames = {k: v for k, v in case.kwargs.items() if isinstance(v, pd.DataFrame)}
    mappings = {
        k: [[_plain(key), _plain(val)] for key, val in v.items()]
        for k, v in case.kwargs.items()
        if isinstance(v, Mapping)
    }
    plain = {k: v for k, v in case.kwargs.items() if k not in frames and k not in mappings}
    r = run(
        "decision",
        "decision",
        {"decide": entry},
        {
            "candidates": case.candidates,
            "scores": pd.DataFrame({"score": case.scores}),
            **{f"kwarg_{k}": v for k, v in frames.items()},
        },
        {
            "kwargs": {**plain, **mappings},
            "frame_kwargs": list(frames),
            "mapping_kwargs": list(mappings),
            "output": case.output,
        },
    )
    why = _stopped(r)
    if why:
        return out.none(names, f"the decision gave no result: {why}")
    try:
        final = r.table("decision")["score"].to_numpy(dtype=float)
    except (OutputError, KeyError, ValueError) as exc:
        return out.none(names, f"the decision's output cannot be read: {exc}")
    if final.size != len(case.candidates):
        return out.none(names, f"{final.size} final scores for {len(case.candidates)} candidates")

    rows = pd.DataFrame(
        {
            "g": case.candidates[group].to_numpy(),
            "s": case.scores,
            "f": final,
            "ok": case.eligible,
            "why": case.reasons if case.reasons is not None else "ruled out",
        }
    )
    broken = set(rows.loc[~np.isfinite(final), "g"])
    allowed, ruled_out = rows[rows["ok"]], rows[~rows["ok"]]
    lowest = allowed.groupby("g")["f"].min()
    judged = lowest.index.intersection(ruled_out["g"].unique())
    details = {"rows": int(len(rows)), "groups": int(rows["g"].nunique())}
    details["not_finite"] = int((~np.isfinite(final)).sum())
    if details["not_finite"]:
        out.problems.append(
            f"{details['not_finite']} candidate(s) got a final score that is not a number: "
            "give every candidate a finite score"
        )

    # (b) every ruled-out row below every allowed row of its group.
    if len(judged):
        above = ruled_out[ruled_out["g"].isin(judged)]
        above = above[~(above["f"].to_numpy() < lowest.reindex(above["g"]).to_numpy())]
        failed = set(above["g"]) | (broken & set(judged))
        out.metrics[names[0]] = 1.0 - len(failed) / len(judged)
        details["groups_with_exclusions"] = int(len(judged))
        details["ruled_out_ranked_above_allowed"] = {
            str(k): int(v) for k, v in above["why"].value_counts().items()
        }
        for why_out, rows_out in above.groupby("why", sort=False):
            first = rows_out.iloc[0]
            out.problems.append(
                f"{len(rows_out)} row(s) that must rank last ({why_out}) scored at or above an "
                f"allowed row of their {group}, e.g. {group} {_text(first['g'])}: final score "
                f"{first['f']:.4g}, the lowest allowed {lowest.loc[first['g']]:.4g}"
            )
    else:
        out.unmeasured[names[0]] = "no group has rows both allowed and ruled out"

    # (c) allowed rows keep the model's order: each score level strictly below the next.
    levels = (
        allowed.groupby(["g", "s"], sort=True)["f"].agg(["min", "max"]).reset_index()
        if len(allowed)
        else pd.DataFrame(columns=["g", "s", "min", "max"])
    )
    g = levels["g"].to_numpy()
    multi = levels.groupby("g").size()
    multi = multi.index[multi.to_numpy() >= 2]
    if len(multi):
        same = g[1:] == g[:-1]
        wrong = same & ~(levels["max"].to_numpy()[:-1] < levels["min"].to_numpy()[1:])
        failed = set(g[1:][wrong]) | (broken & set(multi))
        out.metrics[names[1]] = 1.0 - len(failed) / len(multi)
        details["groups_ordered"] = int(len(multi))
        details["groups_out_of_order"] = int(len(failed))
        if wrong.any():
            i = int(np.flatnonzero(wrong)[0])
            lo, hi = levels.iloc[i], levels.iloc[i + 1]  # a row of mixed types: floats
            out.problems.append(
                f"in {len(failed)} of {len(multi)} {group} groups the final scores of allowed "
                f"rows do not keep the model's order, e.g. {group} {_text(g[i])}: model score "
                f"{lo['s']:.4g} became {lo['max']:.4g} and the higher {hi['s']:.4g} became "
                f"{hi['min']:.4g}; map the model's score by one strictly increasing function"
            )
    else:
        out.unmeasured[names[1]] = "no group has allowed rows with two distinct model scores"
    out.details = details
    out.problems = _unique_problems(out.problems)
    return out


# ---- monitoring: drift and decay -------------------------------------------------------


def probe_flags(
    run,
    name: str,
    entry: str,
    reference: pd.DataFrame,
    batches: dict[str, pd.DataFrame],
    flagged: str,
    key: str,
    figures: tuple[str, str],
    words: tuple[str, str],
    value: dict | None = None,
) -> StageResult:
    """A check ``(reference, current[, value]) -> {key: bool}`` on named batches.

    ``figures`` are (flags the ``flagged`` batch, quiet on every other);
    ``words`` describe the flagged and the quiet batches in problems; ``value``
    (``{"model": name, "params": {...}}``) is handed to the check as a third
    argument, the project's business value model.
    """
    params = {"key": key, "batches": list(batches)}
    if value is not None:
        params["value_model"] = value
    r = run(name, "flags", {"check": entry}, {"reference": reference, **batches}, params)
    out = StageResult()
    why = _stopped(r)
    if why:
        return out.none(figures, f"the {key} check gave no result: {why}")
    raw = (r.result or {}).get("verdicts")
    raw = raw if isinstance(raw, dict) else {}
    # Only the batches sent, and only short texts: result.json is learner-writable.
    verdicts = {}
    for b in batches:
        v = raw.get(b)
        if isinstance(v, dict):
            flag = v.get("flag")
            verdicts[b] = {
                "flag": flag if isinstance(flag, bool) else None,
                "error": _said(v.get("error")),
                "returned": _said(v.get("returned"), 200),
            }

    def verdict(b):
        v = verdicts.get(b)
        if v is None:
            return None, "no verdict"
        return v["flag"], v["error"]

    hit, err = verdict(flagged)
    quiet = [b for b in batches if b != flagged]
    out.metrics[figures[0]] = 1.0 if hit is True else 0.0
    out.metrics[figures[1]] = 1.0 if all(verdict(b)[0] is False for b in quiet) else 0.0
    for e in [err, *[verdict(b)[1] for b in quiet]]:
        if e:
            out.problems.append(f"{key} check: {str(e)[:300]}")
    if hit is False:
        out.problems.append(f"{words[0]} was not flagged")
    if any(verdict(b)[0] is True for b in quiet):
        out.problems.append(f"{words[1]} was flagged")
    if hit is None and all(verdict(b)[0] is None for b in quiet):
        reason = out.problems[0] if out.problems else "no verdict"
        out.metrics.clear()
        return out.none(figures, reason)
    out.details = {"verdicts": verdicts}
    out.problems = _unique_problems(out.problems)
    return out


# ---- retraining ------------------------------------------------------------------------


def _side(rng, value: float, gate: float, size: int, names: dict, days: int = 7) -> dict:
    split = rng.dirichlet(np.full(days, 8.0))
    per_day = [round(float(value * s), 2) for s in split]
    per_day[-1] = round(float(value - sum(per_day[:-1])), 2)
    return {
        names["value"]: float(round(sum(per_day), 2)),
        names["gate"]: float(round(gate, 4)),
        names["size"]: int(size),
        f"per_day_{names['value']}": per_day,
    }


def promotion_cases(
    seed: int,
    margin: float,
    min_gate: float,
    *,
    value: str = "net_value",
    gate: str = "roc_auc",
    size: str = "rows",
) -> list[dict]:
    """Hidden champion/challenger cases with the right decision (``expected``) and why.

    Promote: more money beyond the margin (also with a slightly lower quality
    figure, and from a money-losing champion). Keep: better quality but less
    money; more money inside the margin; more money but a quality figure below
    the gate; a tie. ``value``, ``gate`` and ``size`` name the figures of each
    side (the project's ``retraining`` section): net value and ROC AUC over
    rows for the fraud capstone, revenue and nDCG over users for a recommender.
    """
    rng = np.random.default_rng(np.random.SeedSequence(int(seed)).spawn(3)[2])
    names = {"value": value, "gate": gate, "size": size}
    cases = []

    def add(kind, expected, champ, chall):
        rows = int(rng.integers(40_000, 70_000))
        cases.append(
            {
                "kind": kind,
                "expected": expected,
                "champion": _side(rng, champ[0], champ[1], rows, names),
                "challenger": _side(rng, chall[0], chall[1], rows, names),
                "margin": margin,
                "min_gate": min_gate,
            }
        )

    def money():
        return float(rng.uniform(20_000, 80_000))

    # A quality figure comfortably above the gate (an AUC of 0.8 or more: the fraud cases).
    low = max(min_gate + 0.05, 0.8) if gate == "roc_auc" else min_gate + 0.05
    high = low + 0.07 if gate != "roc_auc" else 0.92

    def quality():
        return float(rng.uniform(low, high))

    v, a = money(), quality()
    add(
        "more money beyond the margin",
        True,
        (v, a),
        (v * (1 + margin + rng.uniform(0.1, 0.3)), a + rng.uniform(-0.005, 0.02)),
    )
    v, a = money(), quality()
    add(
        "more money, slightly lower " + gate,
        True,
        (v, a),
        (v * (1 + margin + rng.uniform(0.15, 0.3)), a - rng.uniform(0.01, 0.03)),
    )
    a = quality()
    add(
        "a money-losing champion, a challenger that earns",
        True,
        (-rng.uniform(2_000, 8_000), a),
        (rng.uniform(1_000, 5_000), a + rng.uniform(-0.01, 0.01)),
    )
    v, a = money(), quality()
    add(
        "better " + gate + ", less money",
        False,
        (v, a),
        (v * (1 - rng.uniform(0.05, 0.2)), a + rng.uniform(0.02, 0.05)),
    )
    v, a = money(), quality()
    add(
        "more money inside the margin",
        False,
        (v, a),
        (v * (1 + margin * rng.uniform(0.2, 0.8)), a + rng.uniform(0.0, 0.01)),
    )
    v, a = money(), quality()
    add(
        "more money, " + gate + " below the gate",
        False,
        (v, a),
        (v * (1 + margin + rng.uniform(0.2, 0.5)), min_gate - rng.uniform(0.02, 0.08)),
    )
    v, a = money(), quality()
    add("a tie", False, (v, a), (v, a))
    # A tie is a tie: the same figures on both sides, to the cent.
    cases[-1]["challenger"] = dict(cases[-1]["champion"])
    order = rng.permutation(len(cases))
    return [cases[i] for i in order]


def probe_retraining(
    run, cases: list[dict], entry: str, value: str = "net_value", gate: str = "roc_auc"
) -> StageResult:
    """The learner's promotion rule on hidden cases; the figure is the share decided right."""
    name = "retraining.correct_decisions"
    shown = [{k: c[k] for k in ("champion", "challenger", "margin", "min_gate")} for c in cases]
    r = run("retraining", "decisions", {"rule": entry}, {"cases": shown}, {})
    out = StageResult()
    why = _stopped(r)
    if why:
        return out.none([name], f"the promotion rule gave no result: {why}")
    got = (r.result or {}).get("decisions")
    if not isinstance(got, list) or len(got) != len(cases):
        return out.none([name], "the promotion rule gave no decision per case")
    right = 0
    errors = []
    for case, d in zip(cases, got, strict=True):
        d = d if isinstance(d, dict) else {}
        decision = d.get("promote")
        if d.get("error"):
            errors.append(_said(d["error"]))
        if isinstance(decision, bool) and decision == case["expected"]:
            right += 1
        elif isinstance(decision, bool):
            verb = "promoted" if decision else "kept the champion"
            out.problems.append(
                f"case '{case['kind']}': your rule {verb} (champion "
                f"{case['champion'][value]:,.0f} / {gate} {case['champion'][gate]:.3f}, challenger "
                f"{case['challenger'][value]:,.0f} / {gate} {case['challenger'][gate]:.3f}, "
                f"margin {case['margin']:.0%}, gate {case['min_gate']})"
            )
    out.problems = _unique_problems(errors) + out.problems
    if not right and len(errors) == len(cases):
        return out.none([name], errors[0])
    out.metrics[name] = right / len(cases)
    out.details = {"cases": len(cases), "correct": right}
    return out
