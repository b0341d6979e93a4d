"""The service probe: the learner's app, started in the sandbox and measured from outside.

The service is started with uvicorn on a Unix socket in the job folder; the
probe checks readiness within a deadline, the contract the spec declares,
consistency with the offline predictions, that bad input gets a 4xx and never
a 5xx, and latency; then the whole process tree is killed and checked gone.
The other stages (drift and decay checks, data contract, features, policy,
retraining rule) are probed by :mod:`grading.stages` through
:mod:`grading.harness`.

Nothing the service sends is trusted. Every answer is read by
:class:`ServiceClient` as a stream, with a byte cap (:data:`MAX_ANSWER_BYTES`
for one score, :data:`MAX_BATCH_ANSWER_BYTES` for a batch) and one wall-clock
deadline for the whole request, enforced on every read and write of the
socket: a body trickled a byte a second, headers that never end, or a server
that accepts and never answers all end at the deadline. Once the service is
ready, all requests share one budget (:data:`REQUEST_BUDGET_TIMEOUTS` request
timeouts); when it passes, the checks not yet done are "not measured" with that
reason. An answer that breaks a bound is a recorded problem, never an exception
out of the probe. The socket file is connected to only if it is a socket, never
through a link a learner planted in its place.
"""

from __future__ import annotations

import json
import math
import os
import socket
import stat
import subprocess
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import httpcore
import numpy as np
import pandas as pd

from fullcycle.serving.process import kit_service_command
from fullcycle.spec import ServiceContractSpec
from grading.sandbox import Sandbox

__all__ = [
    "MAX_ANSWER_BYTES",
    "MAX_BATCH_ANSWER_BYTES",
    "REQUEST_BUDGET_TIMEOUTS",
    "Answer",
    "NoAnswer",
    "ServiceClient",
    "probe_service",
]

#: What one answer of the service may weigh: a score, the health check, a 4xx.
MAX_ANSWER_BYTES = 1_000_000
#: What the answer to one batch of scores may weigh.
MAX_BATCH_ANSWER_BYTES = 4_000_000
#: Once the service is ready, every request of the probe shares one budget of this many
#: request timeouts (``service.request_timeout_s``). A config field ``service.budget_s``
#: would replace it.
REQUEST_BUDGET_TIMEOUTS = 6
#: How long the launcher may take to exit after SIGKILL before it is reported.
KILL_WAIT_S = 10.0


def _size(n: int) -> str:
    return f"{n / 1e6:g} MB" if n >= 1_000_000 else f"{n / 1e3:g} kB"


# ---- a deadline on every read and write of the socket --------------------------------------


class _Clock:
    """The deadline of the request in flight (``time.monotonic()`` seconds)."""

    def __init__(self) -> None:
        self.at = math.inf

    def left(self, timeout: float | None, error) -> float:
        left = self.at - time.monotonic()
        if left <= 0:
            raise error("the request's deadline passed")
        return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A Unix socket whose every read and write ends by the clock's deadline."""

    def __init__(self, sock: socket.socket, clock: _Clock):
        self._sock = sock
        self._clock = clock

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self._sock.settimeout(self._clock.left(timeout, httpcore.ReadTimeout))
        try:
            return self._sock.recv(max_bytes)
        except TimeoutError:
            raise httpcore.ReadTimeout("the request's deadline passed") from None
        except OSError as exc:
            raise httpcore.ReadError(str(exc)) from None

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        while buffer:
            self._sock.settimeout(self._clock.left(timeout, httpcore.WriteTimeout))
            try:
                sent = self._sock.send(buffer)
            except TimeoutError:
                raise httpcore.WriteTimeout("the request's deadline passed") from None
            except OSError as exc:
                raise httpcore.WriteError(str(exc)) from None
            buffer = buffer[sent:]

    def close(self) -> None:
        self._sock.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        raise httpcore.UnsupportedProtocol("the service probe speaks plain HTTP on a Unix socket")

    def get_extra_info(self, info: str):
        if info == "socket":
            return self._sock
        if info == "is_readable":  # an idle kept-alive connection with data or EOF is stale
            from grading.jobproc import readable

            return self._sock.fileno() >= 0 and readable(self._sock, 0)
        return None


class _DeadlineBackend(httpcore.NetworkBackend):
    """Connections to the service's socket whose streams keep the probe's clock."""

    def __init__(self, clock: _Clock):
        self._clock = clock

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        """Connect to the socket file at ``path`` itself, never to where a link there points.

        The job folder is the learner's: a link planted at ``path`` could aim
        the grader at another socket of the machine. The file is opened
        without following links, checked to be a socket, and connected to
        through its descriptor (``/proc/self/fd/N``), so it cannot be swapped
        in between.
        """
        timeout = self._clock.left(timeout, httpcore.ConnectTimeout)
        try:
            fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise httpcore.ConnectError(
                f"no socket at {Path(path).name} ({exc.strerror})"
            ) from None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                raise httpcore.ConnectError(f"{Path(path).name} is not a socket (a link?)")
            sock.settimeout(timeout)
            sock.connect(f"/proc/self/fd/{fd}")
        except TimeoutError:
            sock.close()
            raise httpcore.ConnectTimeout("the request's deadline passed") from None
        except OSError as exc:
            sock.close()
            raise httpcore.ConnectError(str(exc)) from None
        except BaseException:
            sock.close()
            raise
        finally:
            os.close(fd)
        return _DeadlineStream(sock, self._clock)

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        raise httpcore.ConnectError("the service probe only connects to the service's socket")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


# ---- the client ----------------------------------------------------------------------------


@dataclass
class Answer:
    """A complete answer of the service: its status and its body (within the cap)."""

    status: int
    body: bytes
    seconds: float

    def json(self):
        """The body as JSON; ``ValueError`` when it is not (also when nested too deep)."""
        try:
            return json.loads(self.body)
        except RecursionError:
            raise ValueError("the JSON is nested too deeply") from None


class NoAnswer(Exception):
    """No usable answer: ``reason`` says why; ``past_budget`` when the probe's budget ran out."""

    def __init__(self, reason: str, past_budget: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.past_budget = past_budget


class ServiceClient:
    """HTTP/1.1 to the service's Unix socket; every answer bounded in bytes and in total time.

    Parameters
    ----------
    socket_path : path
        The service's Unix socket.
    request_timeout : float
        Seconds one request may take in total: connecting, sending, the
        headers and the whole body.
    """

    def __init__(self, socket_path: Path, request_timeout: float):
        self.request_timeout = float(request_timeout)
        #: Past this instant (``time.monotonic()``) no request is sent or read any more.
        self.budget_end = math.inf
        self._clock = _Clock()
        self._pool = httpcore.ConnectionPool(
            uds=str(socket_path), network_backend=_DeadlineBackend(self._clock), max_connections=1
        )

    def close(self) -> None:
        self._pool.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body=None,
        content: bytes | None = None,
        max_bytes: int = MAX_ANSWER_BYTES,
        until: float | None = None,
    ) -> Answer:
        """Send one request and read the answer (none of its body when ``max_bytes`` is 0).

        Raises :class:`NoAnswer` when there is no complete answer within
        ``request_timeout`` seconds (or by ``until``, or the budget's end),
        when the body is larger than ``max_bytes``, or when the connection
        fails.
        """
        what = f"{method} {path}"
        start = time.monotonic()
        end = min(start + self.request_timeout, self.budget_end, until or math.inf)
        if end <= start:
            raise NoAnswer(f"{what}: not sent, the probe's time was up", self._past_budget(end))
        self._clock.at = end
        body = content if json_body is None else json.dumps(json_body).encode()
        headers = [(b"Host", b"service"), (b"Accept-Encoding", b"identity")]
        if body is not None:
            headers += [(b"Content-Type", b"application/json")]
            headers += [(b"Content-Length", str(len(body)).encode())]
        t = time.perf_counter()
        try:
            with self._pool.stream(
                method.encode(),
                f"http://service{path}",
                headers=headers,
                content=body,
                extensions={
                    "timeout": dict.fromkeys(("connect", "read", "write", "pool"), end - start)
                },
            ) as r:
                if max_bytes == 0:
                    return Answer(r.status, b"", time.perf_counter() - t)
                raw = self._read_body(r, what, max_bytes, end)
                data = _decode(raw, _header(r, b"content-encoding"), what, max_bytes)
                return Answer(r.status, data, time.perf_counter() - t)
        except httpcore.TimeoutException:
            if self._past_budget(end):
                raise NoAnswer(
                    f"no answer to {what}: the probe's budget for requests ran out", True
                ) from None
            raise NoAnswer(
                f"no answer to {what}: the service's answer took longer than "
                f"{end - start:.3g} s in total"
            ) from None
        except (httpcore.NetworkError, httpcore.ProtocolError, OSError) as exc:
            raise NoAnswer(
                f"no answer to {what}: the connection failed ({type(exc).__name__})"
            ) from None

    def _past_budget(self, end: float) -> bool:
        return end >= self.budget_end and time.monotonic() >= self.budget_end - 1e-3

    def _read_body(self, r, what: str, max_bytes: int, end: float) -> bytes:
        declared = _header(r, b"content-length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise NoAnswer(
                f"the service's answer to {what} was larger than {_size(max_bytes)} "
                f"({int(declared):,} bytes declared)"
            )
        buf = bytearray()
        for chunk in r.iter_stream():
            buf += chunk
            if len(buf) > max_bytes:
                raise NoAnswer(f"the service's answer to {what} was larger than {_size(max_bytes)}")
            if time.monotonic() > end:
                raise httpcore.ReadTimeout("the request's deadline passed")
        return bytes(buf)


def _header(r, name: bytes) -> str | None:
    for key, value in r.headers:
        if key.lower() == name:
            return value.decode("latin-1").strip().lower()
    return None


def _decode(raw: bytes, encoding: str | None, what: str, max_bytes: int) -> bytes:
    """The body without its content encoding (gzip or deflate), decompressed within the cap."""
    if encoding in (None, "", "identity"):
        return raw
    if encoding not in ("gzip", "deflate"):
        raise NoAnswer(
            f"the service's answer to {what} is encoded as {encoding[:40]!r}; the grader asks "
            "for identity and reads gzip or deflate at most"
        )
    d = zlib.decompressobj(zlib.MAX_WBITS | 32 if encoding == "gzip" else zlib.MAX_WBITS)
    try:
        out = d.decompress(raw, max_bytes + 1)
    except zlib.error:
        raise NoAnswer(f"the service's answer to {what} is not valid {encoding}") from None
    if len(out) > max_bytes or d.unconsumed_tail:
        raise NoAnswer(
            f"the service's answer to {what} was larger than {_size(max_bytes)} once decompressed"
        )
    return out


class _OutOfBudget(Exception):
    """The probe's budget for requests ran out during a check."""


# ---- the probe -----------------------------------------------------------------------------


def _jsonable(v):
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def _payloads(rows: pd.DataFrame, c: ServiceContractSpec) -> list[dict]:
    return [
        {field: _jsonable(rec[col]) for field, col in c.fields.items()}
        for rec in rows.to_dict("records")
    ]


def _bad_inputs(example: dict, c: ServiceContractSpec) -> list[tuple[str, str, object]]:
    """(name, path, body) cases that a careful service answers with a 4xx."""
    cases: list[tuple[str, str, object]] = [
        ("body is not JSON", c.score_path, b"{not json"),
        ("empty object", c.score_path, {}),
        ("a list instead of an object", c.score_path, [example]),
        (f"{c.items_key} is not a list", c.batch_path, {c.items_key: "rows"}),
    ]
    for field in c.fields:
        cases.append(
            (f"{field} missing", c.score_path, {k: v for k, v in example.items() if k != field})
        )
        cases.append((f"{field} is an object", c.score_path, {**example, field: {"x": 1}}))
    return cases


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


#: The figures each check measures, in the order the checks run.
_CHECKS = (
    ("scores", ("contract", "consistency")),
    ("bad_input", ("bad_input_4xx",)),
    ("latency", ("p50_ms", "p99_ms")),
)


def probe_service(
    sandbox: Sandbox,
    kit_dir: Path,
    app: str,
    contract: ServiceContractSpec,
    env: dict[str, str],
    rows: pd.DataFrame,
    offline: np.ndarray,
    score_range,
    *,
    ready_timeout: float,
    request_timeout: float,
    consistency_rows: int,
    latency_requests: int,
    tolerance: float,
    max_batch: int = 100,
    log_path: Path | None = None,
) -> dict:
    """Start the learner's app in ``sandbox`` and measure it. Never raises for the app's faults.

    ``rows`` are scoring rows in time order and ``offline`` their offline
    scores. The whole probe ends within ``ready_timeout`` plus
    :data:`REQUEST_BUDGET_TIMEOUTS` × ``request_timeout`` seconds (and the
    time to kill the service); figures it could not measure in that time are
    left out of the answer and named with the reason under ``"unmeasured"``.
    """
    from grading.harness import open_log

    sock = sandbox.job_dir / "service.sock"
    cmd = kit_service_command(kit_dir, app, uds=sock)
    budget = REQUEST_BUDGET_TIMEOUTS * request_timeout
    out: dict = {
        "started": False,
        "ready": False,
        "problems": [],
        "unmeasured": {},
        "budget_s": round(ready_timeout + budget, 3),
    }
    log = open_log(log_path or sandbox.job_dir.parent / "service.log")
    proc = subprocess.Popen(
        sandbox.wrap(cmd, env, kit_dir), stdout=log, stderr=log, start_new_session=True
    )
    out["started"] = True
    t0 = time.monotonic()
    client = ServiceClient(sock, request_timeout)
    try:
        ready_end = t0 + ready_timeout
        while time.monotonic() < ready_end:
            if proc.poll() is not None:
                out["problems"].append(f"the service exited with code {proc.returncode} at start")
                break
            if sock.exists():
                try:
                    answer = client.request(
                        "GET", contract.health_path, max_bytes=0, until=ready_end
                    )
                    if answer.status == 200:
                        out["ready"] = True
                        break
                except NoAnswer:
                    pass
            time.sleep(0.1)
        out["ready_seconds"] = round(time.monotonic() - t0, 3)
        if not out["ready"]:
            if not out["problems"]:
                out["problems"].append(
                    f"the service did not answer {contract.health_path} with 200 within "
                    f"{ready_timeout:.0f} s (does it bind? does start-up hang?)"
                )
            return out
        client.budget_end = time.monotonic() + budget
        example = _payloads(rows.head(1), contract)[0]
        run = {
            "scores": lambda: _check_scores(
                client,
                contract,
                rows,
                offline,
                score_range,
                consistency_rows,
                tolerance,
                max_batch,
                out,
            ),
            "bad_input": lambda: _check_bad_input(client, contract, example, out),
            "latency": lambda: _check_latency(
                client, contract, rows.iloc[consistency_rows:], latency_requests, out
            ),
        }
        stopped = None
        for name, figures in _CHECKS:
            if stopped is None:
                try:
                    run[name]()
                    continue
                except _OutOfBudget:
                    stopped = (
                        f"the service probe's {budget:g} s budget for requests "
                        f"({REQUEST_BUDGET_TIMEOUTS} × the {request_timeout:g} s request timeout) "
                        f"ran out during the {name.replace('_', ' ')} check"
                    )
                    out["problems"].append(stopped)
            for key in figures:
                out.pop(key, None)
                out["unmeasured"][key] = stopped
        return out
    finally:
        client.close()
        sandbox.kill_all((proc.pid,))
        try:
            proc.wait(timeout=KILL_WAIT_S)
        except subprocess.TimeoutExpired:
            out["problems"].append("the service's launcher did not exit after SIGKILL")
        log.close()
        time.sleep(0.05)
        left = sandbox.alive()
        out["leftover_processes"] = len(left)
        out["tree_gone"] = proc.poll() is not None and not left
        out["seconds"] = round(time.monotonic() - t0, 3)


def _ask(client: ServiceClient, method: str, path: str, **kw) -> Answer:
    """``client.request``; a :class:`NoAnswer` past the budget becomes :class:`_OutOfBudget`."""
    try:
        return client.request(method, path, **kw)
    except NoAnswer as exc:
        if exc.past_budget:
            raise _OutOfBudget from None
        raise


def _scores_of(answer: Answer, c: ServiceContractSpec) -> list[tuple[int, float]]:
    """(id, score) pairs of a batch answer; ``ValueError`` when it is not the contract's shape."""
    try:
        results = answer.json()[c.results_key]
        return [(int(x[c.id_field]), float(x[c.score_field])) for x in results]
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError, IndexError):
        raise ValueError(answer.body[:120].decode("utf-8", "replace")) from None


def _check_scores(client, c, rows, offline, score_range, n, tol, max_batch, out):
    sample = rows.head(n)
    want = dict(
        zip(sample[c.fields[c.id_field]].astype("int64"), offline[: len(sample)], strict=True)
    )
    got: dict[int, float] = {}
    contract_ok = True
    payloads = _payloads(sample, c)
    for i in range(0, len(payloads), max_batch):
        chunk = payloads[i : i + max_batch]
        try:
            r = _ask(
                client,
                "POST",
                c.batch_path,
                json_body={c.items_key: chunk},
                max_bytes=MAX_BATCH_ANSWER_BYTES,
            )
        except NoAnswer as exc:
            out["problems"].append(f"{c.batch_path}: {exc.reason}")
            contract_ok = False
            break
        if r.status != 200:
            out["problems"].append(f"{c.batch_path}: status {r.status} for valid rows")
            contract_ok = False
            break
        try:
            pairs = _scores_of(r, c)
        except ValueError as exc:
            out["problems"].append(
                f"{c.batch_path}: the answer is not {{{c.results_key!r}: [{{{c.id_field!r}, "
                f"{c.score_field!r}}}, ...]}}: {str(exc)!r}"
            )
            contract_ok = False
            break
        sent = [p[c.id_field] for p in chunk]
        if [p[0] for p in pairs] != sent:
            out["problems"].append(f"{c.batch_path}: the ids in the answer are not the ids sent")
            contract_ok = False
            break
        lo, hi = score_range
        if not all(math.isfinite(s) and lo <= s <= hi for _, s in pairs):
            out["problems"].append(f"{c.batch_path}: scores outside [{lo}, {hi}] or not finite")
            contract_ok = False
            break
        got.update(pairs)
    contract = 1.0 if contract_ok and len(got) == len(want) else 0.0
    if got:
        diffs = np.array([abs(got[k] - want[k]) for k in got])
        out["consistency"] = float(np.mean(diffs <= tol)) * len(got) / len(want)
        out["max_abs_diff"] = float(diffs.max())
        out["compared"] = len(got)
    else:
        out["consistency"] = 0.0
    out["contract"] = contract


def _check_bad_input(client, c, example, out):
    fours, failures = 0, []
    cases = _bad_inputs(example, c)
    for name, path, body in cases:
        kw = {"content": body} if isinstance(body, bytes) else {"json_body": body}
        try:
            status = _ask(client, "POST", path, max_bytes=0, **kw).status
        except NoAnswer as exc:
            status = exc.reason
        if isinstance(status, int) and 400 <= status < 500:
            fours += 1
        else:
            failures.append(f"{name}: {status}")
    out["bad_input_4xx"] = fours / len(cases)
    if failures:
        out["problems"].append("bad input without a 4xx: " + "; ".join(failures[:6]))


def _check_latency(client, c, rows, n, out):
    times = []
    errors = 0
    first_error = None
    for p in _payloads(rows.head(n), c):
        t = time.perf_counter()
        try:
            ok = _ask(client, "POST", c.score_path, json_body=p).status == 200
        except NoAnswer as exc:
            ok = False
            first_error = first_error or exc.reason
        times.append((time.perf_counter() - t) * 1000)
        errors += not ok
    p50, p99 = _percentile(times, 50), _percentile(times, 99)
    if errors:
        why = f" ({first_error})" if first_error else ""
        out["problems"].append(f"{errors} of {len(times)} single requests failed{why}")
        p99 = float("inf") if errors > len(times) // 10 else p99
    out["latency_ms"] = [round(x, 3) for x in times]
    out["p50_ms"] = p50
    out["p99_ms"] = p99
