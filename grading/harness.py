"""The stage harness: run one task on kit entry points in the sandbox, judge nothing.

:func:`run_stage` writes a task's inputs (frames as Parquet, the rest as JSON)
into a fresh folder of the job, starts ``python -c RUNNER job.json`` in the
sandbox with the kit folder first on the path, and enforces a wall-clock
deadline and the job folder's disk quota from outside (the process group and
the sandbox's cgroup are killed). The runner imports the entry points
(``module:attribute``), runs one of the small tasks below on them, and writes
``result.json`` (and Parquet tables) into the folder's ``out/``. The grader
reads them back with size bounds, refusing links and special files; learner
errors come back as reasons ("not implemented yet" for
``NotImplementedError``, otherwise the exception with the kit file and line
that raised it).

Tasks (each a function of the runner; judging happens in the grader). The
runner runs in the learner's process: a submission that sets out to forge its
own outputs can; what it cannot do is reach the labels, the grader's memory or
anything outside the job folder, and the executed kit code is there for an
instructor to read.

``flags``      ``check(reference, current, *extra) -> {key: bool}`` per named batch
``decisions``  ``rule(champion, challenger, margin, min_roc_auc) -> {"promote": bool}`` per case
``contract``   ``validate(raw, **kwargs)`` -> ``valid`` (the id and value columns, typed by
               kind) and ``quarantine`` (id and reason) tables; frame arguments arrive as
               ``kwarg_<name>`` inputs
``leakage``    ``build(delay).fit(history, y).transform(rows)`` under variants
``parity``     offline features of one day against online ones, event by event
``priority``   ``policy(candidates, value) -> one float per row``
``decision``   ``decide(candidates, scores, **kwargs)`` -> the returned frame's ``output``
               column, one float per candidate (rows matched on the candidates' index);
               frame arguments arrive as ``kwarg_<name>`` inputs, mappings as
               ``[key, value]`` pairs rebuilt into dicts (their keys' types kept)

Every byte the learner's code controls is read with a bound in size and in
time: the run has a wall-clock deadline (its process group and its sandbox
are killed when it passes, and after it ends in any case), ``result.json`` is
read by :func:`read_bounded` (regular files only, at most
:data:`MAX_JSON_BYTES`), tables by :func:`read_parquet_bounded` (rows, columns,
footer and decoded bytes checked before and while decoding), logs by their last
:data:`LOG_TAIL_BYTES` only, and no file of the job folder is ever opened in a
way that can block (links and FIFOs are refused).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from grading.sandbox import Sandbox

__all__ = [
    "OutputError",
    "StageRun",
    "copy_bounded",
    "open_log",
    "read_bounded",
    "read_parquet_bounded",
    "run_stage",
]

#: What one output may weigh, by default: ``result.json`` on disk, and a table both on
#: disk and decoded in memory.
MAX_JSON_BYTES = 2_000_000
MAX_TABLE_BYTES = 32_000_000
#: The most rows and columns one table may have (the largest stage table, the decision's, has
#: ~170,000 rows).
MAX_TABLE_ROWS = 1_000_000
MAX_TABLE_COLUMNS = 10_000
#: A Parquet file's footer (its schema and row-group index) at most.
MAX_PARQUET_FOOTER_BYTES = 4_000_000
#: How much of the end of a log is read to explain a failure.
LOG_TAIL_BYTES = 4000
#: How long a killed process may take to be reaped before the grader moves on.
KILL_WAIT_S = 10.0


class OutputError(Exception):
    """An output of a stage run cannot be read safely (missing, a link, too large, malformed)."""


_RUNNER = r'''
import importlib, json, os, sys, traceback

JOB = json.load(open(sys.argv[1]))
KIT = JOB["kit"]
OUT = JOB["out"]
sys.path.insert(0, KIT)

import numpy as np
import pandas as pd


def short(value, n=200):
    try:
        text = repr(value)
    except Exception as exc:
        text = f"<unprintable {type(value).__name__}: {type(exc).__name__}>"
    return text if len(text) <= n else text[: n - 3] + "..."


def explain(exc):
    """A reason for the grader: not implemented yet, or the error and the kit line that raised it."""
    where = ""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.startswith(KIT + os.sep):
            where = f" ({os.path.relpath(frame.filename, KIT)}, line {frame.lineno})"
            break
    if isinstance(exc, NotImplementedError):
        text = str(exc).strip()
        extra = f": {text}" if text and text != "not implemented yet" else ""
        return ("not implemented yet" + extra + where)[:400]
    return (f"{type(exc).__name__}: {exc}"[:300] + where)[:400]


def load(target):
    module, name = target.split(":")
    obj = getattr(importlib.import_module(module), name, None)
    if obj is None:
        raise AttributeError(f"{module}.py has no {name!r}")
    return obj


def as_flag(value, key):
    """(flag, None) for a bool-like answer; (None, why) otherwise. numpy.bool_ is a bool."""
    v = value.get(key, None) if isinstance(value, dict) else value
    if isinstance(v, np.ndarray) and v.ndim == 0:
        v = v.item()
    if isinstance(v, (bool, np.bool_)):
        return bool(v), None
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool) and int(v) in (0, 1):
        return bool(int(v)), None
    if isinstance(value, dict) and key not in value:
        return None, f"the answer has no {key!r} key: it returned {short(value)}"
    return None, f"{key!r} must be True or False; it returned {short(value)}"


def save(name, frame):
    frame.to_parquet(os.path.join(OUT, name + ".parquet"), index=False)


def numeric_frame(obj, n_rows, columns=None):
    """A transform's output as a float frame (a DataFrame, or an array with named columns)."""
    if isinstance(obj, pd.DataFrame):
        frame = obj.reset_index(drop=True)
    else:
        arr = np.asarray(obj)
        if arr.ndim != 2:
            raise TypeError(f"transform must return a table, got {type(obj).__name__} {arr.shape}")
        frame = pd.DataFrame(arr, columns=columns or [f"x{i}" for i in range(arr.shape[1])])
    if len(frame) != n_rows:
        raise ValueError(f"transform returned {len(frame)} rows for {n_rows} rows given")
    frame.columns = [str(c) for c in frame.columns]
    return frame.apply(lambda s: pd.to_numeric(s, errors="coerce")).astype(float)


# ---- tasks -------------------------------------------------------------------------------


def task_flags(entries, inputs, params):
    check = entries["check"]
    reference = inputs["reference"]
    extra = []
    if params.get("value_model"):
        from fullcycle.metrics.business import get_value_model

        vm = params["value_model"]
        extra.append(get_value_model(vm["model"], **vm["params"]))
    out = {}
    for name in params["batches"]:
        try:
            answer = check(reference.copy(), inputs[name].copy(), *extra)
            flag, why = as_flag(answer, params["key"])
            out[name] = {"flag": flag, "error": why, "returned": short(answer)}
        except BaseException as exc:  # noqa: BLE001 - every learner fault is a reason
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            out[name] = {"flag": None, "error": explain(exc), "returned": None}
    return {"verdicts": out}


def task_decisions(entries, inputs, params):
    rule = entries["rule"]
    out = []
    for case in inputs["cases"]:
        try:
            answer = rule(
                dict(case["champion"]), dict(case["challenger"]), case["margin"], case["min_gate"]
            )
            flag, why = as_flag(answer, "promote")
            reason = answer.get("reason") if isinstance(answer, dict) else None
            out.append({"promote": flag, "error": why, "reason": short(reason, 300)})
        except BaseException as exc:  # noqa: BLE001
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            out.append({"promote": None, "error": explain(exc), "reason": None})
    return {"decisions": out}


def task_contract(entries, inputs, params):
    kwargs = dict(params.get("kwargs") or {})
    for name in params.get("frame_kwargs") or []:
        kwargs[name] = inputs["kwarg_" + name].copy()
    result = entries["validate"](inputs["raw"].copy(), **kwargs)
    valid = getattr(result, "valid", None)
    quarantine = getattr(result, "quarantine", None)
    if not isinstance(valid, pd.DataFrame) or not isinstance(quarantine, pd.DataFrame):
        raise TypeError(
            "validate_export must return a ValidationResult (valid and quarantine frames); "
            f"it returned {short(result)}"
        )
    id_column = params["id_column"]
    kinds = params["columns"]
    keep = [c for c in kinds if c in valid.columns]
    v = valid[keep].copy()
    untyped = {}
    for c in keep:
        col = v[c]
        if kinds[c] == "time":
            if pd.api.types.is_datetime64_any_dtype(col):
                if getattr(col.dt, "tz", None) is not None:
                    col = col.dt.tz_convert("UTC").dt.tz_localize(None)
                v[c] = col.astype("datetime64[ns]")
            else:
                untyped[c] = str(col.dtype)
                v[c] = pd.Series(pd.NaT, index=v.index, dtype="datetime64[ns]")
        elif kinds[c] in ("text", "exact_text"):
            v[c] = col.astype(object).map(lambda x: None if x is None or x != x else str(x)).astype("string")
        elif pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            v[c] = pd.to_numeric(col, errors="coerce").astype(float)
        else:
            untyped[c] = str(col.dtype)
            v[c] = np.nan
    save("valid", v.reset_index(drop=True))
    ids = quarantine[id_column] if id_column in quarantine else pd.Series([None] * len(quarantine))
    if "QUARANTINE_REASON" in quarantine:
        reasons = quarantine["QUARANTINE_REASON"].map(
            lambda r: "" if r is None or (isinstance(r, float) and r != r) else str(r)[:300]
        )
    else:
        reasons = pd.Series([""] * len(quarantine), dtype=object)
    save(
        "quarantine",
        pd.DataFrame(
            {
                id_column: pd.to_numeric(pd.Series(ids).reset_index(drop=True), errors="coerce").astype(float),
                "QUARANTINE_REASON": reasons.reset_index(drop=True).astype(str),
            }
        ),
    )
    return {"valid_rows": int(len(valid)), "quarantined_rows": int(len(quarantine)), "untyped": untyped}


def task_leakage(entries, inputs, params):
    build = entries["build"]
    delay = params["delay_days"]
    label = params["label"]
    history, rows, future = inputs["history"], inputs["rows"], inputs["future"]
    n = len(rows)

    def features(hist, target):
        t = build(delay)
        t.fit(hist.drop(columns=[label]), hist[label])
        return numeric_frame(t.transform(target.drop(columns=[label], errors="ignore")), len(target))

    flipped = history.copy()
    late = flipped["TX_DATETIME"] >= pd.Timestamp(params["flip_from"])
    flipped.loc[late, label] = 1 - flipped.loc[late, label]
    variants = {
        "base": lambda: features(history, rows),
        "flipped_labels": lambda: features(flipped, rows),
        "future_rows": lambda: features(history, pd.concat([rows, future], ignore_index=True)).iloc[:n],
        "future_history": lambda: features(
            pd.concat([history, future], ignore_index=True), rows
        ),
    }
    return {"errors": save_variants(variants), "rows": n}


def save_variants(variants):
    """Save each variant's frame under its name; the errors by name (none after a failed base)."""
    errors = {}
    for name, make in variants.items():
        try:
            save(name, make().reset_index(drop=True))
        except BaseException as exc:  # noqa: BLE001
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            errors[name] = explain(exc)
            if name == "base":
                break
    return errors


def per_key(obj, keys):
    """A per-key answer (a Series on the keys, or one number per key in order) as floats."""
    if isinstance(obj, pd.DataFrame) and obj.shape[1] == 1:
        obj = obj.iloc[:, 0]
    if isinstance(obj, pd.Series) and obj.index.isin(keys).all() and obj.index.is_unique:
        obj = obj.reindex(keys)
    arr = pd.to_numeric(pd.Series(np.asarray(obj).reshape(-1)), errors="coerce").to_numpy(float)
    if arr.size != len(keys):
        raise ValueError(f"it returned {arr.size} values for {len(keys)} keys: {short(obj)}")
    return arr


def task_as_of(entries, inputs, params):
    fn = entries["feature"]
    day, keys = params["day"], inputs["keys"]["key"].to_numpy()
    past, later = inputs["events"], inputs["later"]
    both = pd.concat([past, later], ignore_index=True)
    both = both.iloc[np.random.default_rng(params["shuffle_seed"]).permutation(len(both))]

    def value(events):
        got = fn(events.copy(), **{params["day_arg"]: day, params["keys_arg"]: keys.copy()})
        return pd.DataFrame({"value": per_key(got, keys)})

    variants = {"base": lambda: value(past), "with_later": lambda: value(both.reset_index(drop=True))}
    return {"errors": save_variants(variants), "keys": int(len(keys))}


def open_online(cls, path, delay):
    """The kit's online features on a fresh store, as its service opens them.

    The kit's ``OnlineFeatures.open(path, delay_days)`` when it has one, else
    ``OnlineFeatures(WindowStore(path, keys=KEYS), delay_days)``.
    """
    opener = getattr(cls, "open", None)
    if callable(opener):
        return opener(path, delay)
    from fullcycle.serving.store import WindowStore

    return cls(WindowStore(path, keys=tuple(getattr(cls, "KEYS", ("card", "terminal")))), delay)


def warm_start(online, history, label):
    """The kit's own warm start when it has one, else every row in arrival order, then labels."""
    warm = getattr(online, "warm_start", None)
    if callable(warm):
        warm(history.copy())
        return
    for rec in history.drop(columns=[label]).to_dict("records"):
        online.update(transaction(rec))
    online.label(list(zip(history["TRANSACTION_ID"].astype(int).tolist(), history[label].astype(int).tolist())))


def transaction(record):
    """One raw transaction as the service hands it to the online features."""
    out = {}
    for key, value in record.items():
        if isinstance(value, pd.Timestamp):
            value = value.to_pydatetime()
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out


def task_parity(entries, inputs, params):
    delay = params["delay_days"]
    label = params["label"]
    history, day = inputs["history"], inputs["day"]
    out = {"errors": {}}
    try:
        t = entries["build"](delay)
        t.fit(history.drop(columns=[label]), history[label])
        offline = numeric_frame(t.transform(day), len(day))
        save("offline", offline)
    except BaseException as exc:  # noqa: BLE001
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        out["errors"]["offline"] = explain(exc)
    try:
        online = open_online(entries["online"], os.path.join(JOB["scratch"], "online.sqlite"), delay)
        warm_start(online, history, label)
        got = []
        for rec in day[params["raw_columns"]].to_dict("records"):
            tx = transaction(rec)
            f = online.features(dict(tx))
            if not isinstance(f, dict):
                raise TypeError(f"OnlineFeatures.features must return a dict; it returned {short(f)}")
            got.append({str(k): v for k, v in f.items()})
            online.update(tx)
        frame = pd.DataFrame(got)
        save("online", frame.apply(lambda s: pd.to_numeric(s, errors="coerce")).astype(float))
    except BaseException as exc:  # noqa: BLE001
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        out["errors"]["online"] = explain(exc)
    return out


def task_priority(entries, inputs, params):
    from fullcycle.metrics.business import get_value_model

    vm = params["value_model"]
    value = get_value_model(vm["model"], **vm["params"])
    candidates = inputs["candidates"]
    got = entries["policy"](candidates.copy(), value)
    try:
        arr = np.asarray(got, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise TypeError(f"review_priority must return numbers, one per candidate; it returned {short(got)}") from None
    if arr.size != len(candidates):
        raise ValueError(f"review_priority returned {arr.size} values for {len(candidates)} candidates")
    save("priority", pd.DataFrame({"priority": arr}))
    return {"rows": int(arr.size)}


def task_decision(entries, inputs, params):
    kwargs = dict(params.get("kwargs") or {})
    for name in params.get("frame_kwargs") or []:
        kwargs[name] = inputs["kwarg_" + name].copy()
    for name in params.get("mapping_kwargs") or []:
        kwargs[name] = {k: v for k, v in kwargs[name]}
    candidates = inputs["candidates"]
    scores = inputs["scores"]["score"].to_numpy(dtype=float)
    got = entries["decide"](candidates.copy(), scores.copy(), **kwargs)
    column = params["output"]
    if not isinstance(got, pd.DataFrame) or column not in got.columns:
        raise TypeError(
            f"the decision must return a DataFrame with a {column!r} column, one row per "
            f"candidate; it returned {short(got)}"
        )
    if len(got) != len(candidates):
        raise ValueError(f"the decision returned {len(got)} rows for {len(candidates)} candidates")
    final = got[column]
    if final.index.is_unique and final.index.sort_values().equals(candidates.index):
        final = final.reindex(candidates.index)  # rows in another order, on the same index
    try:
        arr = pd.to_numeric(final, errors="raise").to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"the {column!r} column must hold numbers; it holds {short(final.head())}") from None
    save("decision", pd.DataFrame({"score": arr}))
    return {"rows": int(arr.size)}


TASKS = {
    "flags": task_flags,
    "decisions": task_decisions,
    "contract": task_contract,
    "leakage": task_leakage,
    "as_of": task_as_of,
    "parity": task_parity,
    "priority": task_priority,
    "decision": task_decision,
}


def main():
    inputs = {}
    for name, (kind, path) in JOB["inputs"].items():
        if kind == "parquet":
            inputs[name] = pd.read_parquet(path)
        else:
            with open(path) as f:
                inputs[name] = json.load(f)
    entries = {}
    for role, target in JOB["entries"].items():
        try:
            entries[role] = load(target)
        except BaseException as exc:  # noqa: BLE001
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            reason = explain(exc)
            if not reason.startswith("not implemented yet"):
                reason = f"cannot import {target}: {reason}"
            return {"error": reason}
    try:
        return TASKS[JOB["task"]](entries, inputs, JOB["params"])
    except BaseException as exc:  # noqa: BLE001
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return {"error": explain(exc)}


result = main()
with open(os.path.join(OUT, "result.json"), "w") as f:
    json.dump(result, f, default=str, allow_nan=True)
'''


@dataclass
class StageRun:
    """How one sandboxed stage run ended, and what it wrote.

    ``result`` is the runner's ``result.json`` (``None`` if there is none);
    ``problems`` are reasons the grader can show (timeouts, no output, the
    learner's own error under ``result["error"]``).
    """

    folder: Path
    result: dict | None = None
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    timed_out: bool = False

    @property
    def out(self) -> Path:
        return self.folder / "out"

    @property
    def error(self) -> str | None:
        """The learner's error that stopped the whole task, if any."""
        if isinstance(self.result, dict) and self.result.get("error"):
            return str(self.result["error"])[:400]
        return None

    def reason(self) -> str | None:
        """Why the task gave no usable answer (the first problem), or None."""
        if self.error:
            return self.error
        return self.problems[0] if self.problems else None

    def table(
        self, name: str, max_bytes: int = MAX_TABLE_BYTES, max_rows: int = MAX_TABLE_ROWS
    ) -> pd.DataFrame:
        """Read ``out/<name>.parquet`` safely; :class:`OutputError` says why it cannot be.

        At most ``max_bytes`` on disk and again decoded in memory, and
        ``max_rows`` rows.
        """
        data = read_bounded(self.out / f"{name}.parquet", max_bytes, inside=self.folder)
        return read_parquet_bounded(
            data, max_rows=max_rows, max_bytes=max_bytes, name=f"{name}.parquet"
        )


def read_bounded(path: Path, max_bytes: int, inside: Path | None = None) -> bytes:
    """The bytes of a regular file written by learner code: no links, no devices, bounded size."""
    path = Path(path)
    if inside is not None:
        real = Path(os.path.realpath(path))
        root = Path(os.path.realpath(inside))
        if real != root and root not in real.parents:
            raise OutputError(f"{path.name} points outside its folder")
    fd = _open_regular(path, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        if st.st_size > max_bytes:
            raise OutputError(
                f"{path.name} is {st.st_size:,} bytes, above the {max_bytes:,} allowed"
            )
        chunks, total = [], 0
        while total <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:
            raise OutputError(f"{path.name} grew above the {max_bytes:,} bytes allowed")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _open_regular(path: Path, flags: int, mode: int = 0o600) -> int:
    """A descriptor of the regular file ``path``: no links followed, never blocking on a FIFO."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    except FileNotFoundError:
        raise OutputError(f"no {path.name} was written") from None
    except OSError as exc:
        raise OutputError(f"{path.name} cannot be opened ({exc.strerror}; a link?)") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OutputError(f"{path.name} is not a regular file")
    os.set_blocking(fd, True)
    return fd


def open_log(path: Path):
    """``path`` opened for writing a learner process's output, truncated; refuses links and FIFOs.

    A log may sit where learner code can write: a FIFO or a link planted there
    must not block or redirect the grader.
    """
    path = Path(path)
    try:
        return os.fdopen(_open_regular(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "wb")
    except OutputError:  # whatever was planted there (never followed): replace it with a file
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        return os.fdopen(_open_regular(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL), "wb")


def copy_bounded(src: Path, dest: Path, max_bytes: int) -> int:
    """Copy the regular file ``src`` (no links, no FIFOs) to ``dest`` if it has at most ``max_bytes``.

    Returns the bytes copied; :class:`OutputError` says why nothing was. The
    size is checked before a byte is read (a sparse file of many GB is refused
    at once), and again while copying.
    """
    fd = _open_regular(Path(src), os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if size > max_bytes:
            raise OutputError(
                f"{Path(src).name} is {size:,} bytes, above the {max_bytes:,} allowed"
            )
        total = 0
        with open(dest, "wb") as out:
            while chunk := os.read(fd, 1 << 20):
                total += len(chunk)
                if total > max_bytes:
                    raise OutputError(
                        f"{Path(src).name} grew above the {max_bytes:,} bytes allowed"
                    )
                out.write(chunk)
        return total
    except OutputError:
        Path(dest).unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)


def read_parquet_bounded(
    source: bytes | Path,
    columns: list[str] | None = None,
    *,
    max_rows: int = MAX_TABLE_ROWS,
    max_bytes: int = MAX_TABLE_BYTES,
    max_columns: int = MAX_TABLE_COLUMNS,
    max_chars: int | None = None,
    name: str | None = None,
) -> pd.DataFrame:
    """A Parquet table written by learner code, decoded only once its size is known to be bounded.

    Checked before decoding: the footer (at most
    :data:`MAX_PARQUET_FOOTER_BYTES`), ``max_rows``, ``max_columns``, flat
    columns only, and the declared uncompressed size of the columns read
    (``max_bytes``). Text columns are read dictionary-encoded and their
    decoded size is computed before they are expanded (a few kB of Parquet can
    declare gigabytes of repeated text); ``max_chars`` cuts every text value.

    Parameters
    ----------
    source : bytes or path
        The file's bytes, or a path to a regular file.
    columns : list of str, optional
        The columns to read (all by default); a missing one is an error.
    name : str, optional
        The file's name in messages.

    Raises
    ------
    OutputError
        Saying what was wrong (too many rows, too large, not Parquet, ...).
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if isinstance(source, bytes | bytearray | memoryview):
        name = name or "the table"
        handle = None
        data = bytes(source)
        size = len(data)
        tail = data[-8:]

        def reader():
            return pa.BufferReader(data)
    else:
        name = name or Path(source).name
        fd = _open_regular(Path(source), os.O_RDONLY)
        handle = os.fdopen(fd, "rb")
        size = os.fstat(fd).st_size
        handle.seek(max(0, size - 8))
        tail = handle.read(8)

        def reader():
            handle.seek(0)
            return handle

    try:
        if size < 12 or tail[4:] != b"PAR1":
            raise OutputError(f"{name} is not a Parquet file")
        footer = int.from_bytes(tail[:4], "little")
        if footer > min(MAX_PARQUET_FOOTER_BYTES, size - 12):
            raise OutputError(
                f"{name}'s Parquet footer is {footer:,} bytes, above the "
                f"{MAX_PARQUET_FOOTER_BYTES:,} allowed (too many columns or row groups?)"
            )
        try:
            meta = pq.ParquetFile(reader())
            schema = meta.schema_arrow
            md = meta.metadata
        except Exception as exc:
            raise OutputError(f"{name} is not a readable table ({type(exc).__name__})") from None
        if len(schema.names) > max_columns:
            raise OutputError(f"{name} has {len(schema.names):,} columns; at most {max_columns:,}")
        if md.num_rows > max_rows:
            raise OutputError(f"{name} has {md.num_rows:,} rows; at most {max_rows:,} are read")
        wanted = list(schema.names) if columns is None else list(columns)
        missing = [c for c in wanted if c not in schema.names]
        if missing:
            raise OutputError(f"{name} has no column(s) {missing}; it has {schema.names[:10]}")
        nested = [c for c in wanted if pa.types.is_nested(schema.field(c).type)]
        if nested:
            raise OutputError(f"{name}: column(s) {nested[:5]} hold nested values; write flat ones")
        declared = 0
        for i in range(md.num_row_groups):
            group = md.row_group(i)
            for j in range(group.num_columns):
                col = group.column(j)
                if col.path_in_schema in wanted:
                    declared += max(col.total_uncompressed_size, 0)
        if declared > max_bytes:
            raise OutputError(
                f"{name} holds {declared:,} bytes uncompressed, above the {max_bytes:,} allowed"
            )
        texts = [
            c
            for c in wanted
            if pa.types.is_string(schema.field(c).type)
            or pa.types.is_large_string(schema.field(c).type)
            or pa.types.is_binary(schema.field(c).type)
            or pa.types.is_large_binary(schema.field(c).type)
            or pa.types.is_dictionary(schema.field(c).type)
        ]
        try:
            table = pq.ParquetFile(reader(), read_dictionary=texts).read(
                columns=wanted, use_pandas_metadata=False
            )
        except Exception as exc:
            raise OutputError(f"{name} is not a readable table ({type(exc).__name__})") from None
        total = 0
        decoded = {}
        for c in wanted:
            col = table.column(c)
            if not pa.types.is_dictionary(col.type):
                total += col.nbytes
                continue
            chunks = []
            for chunk in col.chunks:
                values = chunk.dictionary
                if max_chars is not None and pa.types.is_string(values.type):
                    values = pc.utf8_slice_codeunits(values, 0, max_chars)
                lengths = pc.binary_length(values) if len(values) else pa.array([], pa.int64())
                total += (pc.sum(pc.take(lengths, chunk.indices)).as_py() or 0) + 8 * len(chunk)
                chunks.append(pa.DictionaryArray.from_arrays(chunk.indices, values))
            if total > max_bytes:
                break
            decoded[c] = chunks
        if total > max_bytes:
            raise OutputError(
                f"{name} decodes to more than {max_bytes:,} bytes (repeated long text?)"
            )
        for c, chunks in decoded.items():
            value_type = table.schema.field(c).type.value_type
            plain = pa.chunked_array([ch.cast(value_type) for ch in chunks], type=value_type)
            table = table.set_column(table.schema.get_field_index(c), c, plain)
        try:
            return table.to_pandas(ignore_metadata=True)
        except Exception as exc:
            raise OutputError(f"{name} is not a readable table ({type(exc).__name__})") from None
    finally:
        if handle is not None:
            handle.close()


def _write_input(folder: Path, name: str, value) -> tuple[str, str]:
    if isinstance(value, pd.DataFrame):
        path = folder / f"{name}.parquet"
        value.to_parquet(path, index=False)
        return "parquet", str(path)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(value, default=str))
    return "json", str(path)


def run_stage(
    job_dir: Path,
    sandbox_factory,
    kit_dir: Path,
    name: str,
    task: str,
    entries: dict[str, str],
    inputs: dict,
    params: dict,
    *,
    timeout: float,
    env: dict[str, str] | None = None,
    log: Path | None = None,
) -> StageRun:
    """Run the runner's ``task`` on the kit's ``entries`` in a fresh sandbox; never raises for the kit.

    Parameters
    ----------
    job_dir : path
        The job folder (the sandbox's only writable place); inputs go to
        ``job_dir/stages/<name>/``.
    sandbox_factory : callable
        ``() -> Sandbox`` for this run (closed afterwards).
    kit_dir : path
        The submission's kit folder (first on the runner's path, its cwd).
    name : str
        A folder name for this run.
    task : str
        One of the runner's tasks (see the module docstring).
    entries : dict
        ``role -> "module:attribute"`` entry points the task calls.
    inputs : dict
        ``name -> DataFrame`` (Parquet) or JSON-able value.
    params : dict
        JSON-able parameters of the task.
    timeout : float
        Wall-clock seconds before the whole process group is killed.
    log : path, optional
        Where the run's stderr goes (outside the job folder).
    """
    stages = Path(job_dir) / "stages"
    # Learner code ran in this folder before: a planted link must not steer the grader's writes.
    if stages.is_symlink() or (stages.exists() and not stages.is_dir()):
        stages.unlink()
    stages.mkdir(exist_ok=True)
    folder = stages / name
    if folder.is_symlink() or folder.is_file():
        folder.unlink()
    elif folder.exists():
        shutil.rmtree(folder)  # never follows links inside
    folder.mkdir()
    out = folder / "out"
    out.mkdir()
    scratch = folder / "scratch"
    scratch.mkdir()
    run = StageRun(folder)
    files = {k: _write_input(folder, k, v) for k, v in inputs.items()}
    spec = {
        "kit": str(kit_dir),
        "out": str(out),
        "scratch": str(scratch),
        "task": task,
        "entries": entries,
        "inputs": files,
        "params": params,
    }
    (folder / "job.json").write_text(json.dumps(spec, default=str))
    sandbox: Sandbox = sandbox_factory()
    for p in (folder.parent, folder, out, *folder.iterdir()):
        sandbox.chown_for_sandbox(p)
    log = log or folder.parent / f"{name}.log"
    t0 = time.monotonic()
    try:
        with open_log(log) as err:
            cmd = sandbox.wrap(
                [sys.executable, "-c", _RUNNER, str(folder / "job.json")], env, kit_dir
            )
            proc = subprocess.Popen(
                cmd, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True
            )
            try:
                stop = _watch(proc, sandbox, Path(job_dir), t0 + timeout)
            finally:
                # Ended, timed out or interrupted: nothing it started may outlive the run.
                sandbox.kill_all((proc.pid,))
                try:
                    proc.wait(timeout=KILL_WAIT_S)
                except subprocess.TimeoutExpired:
                    run.problems.append(f"the {name} stage's launcher did not exit after SIGKILL")
            if stop is not None:
                run.timed_out = True
                run.problems.insert(
                    0,
                    f"the {name} stage took longer than {timeout:.0f} s"
                    if stop == "time"
                    else f"the {name} stage grew the job folder past the "
                    f"{sandbox.limits.disk_mb} MB disk quota",
                )
    finally:
        sandbox.close()
    run.seconds = round(time.monotonic() - t0, 3)
    if run.timed_out:
        return run
    try:
        raw = read_bounded(out / "result.json", MAX_JSON_BYTES, inside=folder)
        try:
            result = json.loads(raw)
        except RecursionError:
            raise OutputError("result.json is nested too deeply") from None
        if not isinstance(result, dict):
            raise OutputError("result.json is not an object")
        run.result = result
    except (OutputError, ValueError, UnicodeDecodeError) as exc:
        tail = _tail(log)
        why = str(exc) if isinstance(exc, OutputError) else "result.json is not valid JSON"
        run.problems.append(
            f"the {name} stage gave no answer ({why})"
            + (f"; last error line: {tail}" if tail else "")
        )
    return run


def _watch(proc, sandbox: Sandbox, job_dir: Path, deadline: float) -> str | None:
    """Wait for ``proc``; ``"time"`` or ``"disk"`` when a limit was passed first (then kill it)."""
    from grading.execute import _dir_size

    cap = sandbox.limits.disk_mb * 1024 * 1024
    next_disk = 0.0
    while True:
        try:
            proc.wait(timeout=0.25)
            return None
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        if now > deadline:
            return "time"
        if now >= next_disk:  # the folder walk costs a little: every second is enough
            next_disk = now + 1.0
            if _dir_size(job_dir, cap) > cap:
                return "disk"


def _tail(log: Path, limit: int = LOG_TAIL_BYTES) -> str:
    """The last non-empty line of a log, read with a bound (and never from a FIFO or a link)."""
    try:
        fd = _open_regular(Path(log), os.O_RDONLY)
    except (OutputError, OSError):
        return ""
    try:
        size = os.fstat(fd).st_size
        data = os.pread(fd, limit, max(0, size - limit))
    except OSError:
        return ""
    finally:
        os.close(fd)
    lines = data.decode("utf-8", "replace").strip().splitlines()
    return lines[-1][:300] if lines else ""
