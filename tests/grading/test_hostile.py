"""Hostile submissions against the trusted grader's own bounds: memory, time, processes.

Does every hostile class end as a recorded result with a reason, with the
trusted grader's memory bounded and no process left behind? Each case grades a
tiny submission of the toy ranking project in a fresh Python process (as a
cohort worker does), reads that process's own peak resident memory
(``VmHWM`` of its own memory map, taken at its end: unlike ``ru_maxrss``,
which Linux carries over from the forked test process through ``exec``) and checks it against
:data:`GRADER_PEAK_MB`; every learner process runs under a temporary folder
of the test, and none may be alive afterwards.

The deadlines are made small through the grading config (``ready_timeout_s``,
``request_timeout_s``), so that the whole file runs in about a minute and a
half. Nothing here asserts on wall time: a grade that has not ended after
:data:`HANG_S` is a hang, and fails.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import ranking

from grading.harness import OutputError, read_parquet_bounded
from grading.jobproc import marked_processes
from grading.probes import MAX_ANSWER_BYTES, NoAnswer, ServiceClient
from grading.submission import submission_hash

pytestmark = pytest.mark.integration

#: The trusted grading process's peak resident memory, whatever the submission does, for the
#: toy project: about 300 MB are Python, pandas, scikit-learn and Papermill themselves, the
#: rest is headroom for the bounded reads (a 4 MB batch answer, a 2 MB result.json, a 32 MB
#: table, predictions of at most 1,000,000 rows of 100 characters).
GRADER_PEAK_MB = 600
#: A guard, not the bound: the grading process's address space is capped, so that a
#: regression fails a test instead of exhausting the machine.
ADDRESS_SPACE_GUARD_MB = 6144
#: A grade that has not ended after this long is a hang.
HANG_S = 150

#: Short probe deadlines: the service gets 6 s to start, 0.5 s per request, 3 s (six request
#: timeouts) for all its requests.
FAST_SERVICE = {"ready_timeout_s": 6, "request_timeout_s": 0.5, "requests": 20}
#: Cases about the notebook's files need neither the service nor the monitor.
NO_PROBES = {"service": {"enabled": False}, "monitoring": {"enabled": False}}

PREDICT = """\
import pandas as pd
score = pd.read_parquet(score_path)
pd.DataFrame({"CANDIDATE_ID": score["CANDIDATE_ID"], "score": 0.5}).to_csv(predictions_path, index=False)
"""


_CHILD = r"""
import json, resource, sys
guard = int(sys.argv[6]) * 2**20
resource.setrlimit(resource.RLIMIT_AS, (guard, guard))
from fullcycle.spec import load_spec
from grading import grade, load_config
result = grade(sys.argv[3], load_spec(sys.argv[1]), load_config(sys.argv[2]), sys.argv[4])
peak_mb = next(
    int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")
) / 1024
with open(sys.argv[5], "w") as f:
    json.dump({"result": result, "peak_mb": peak_mb}, f)
"""


def _run_child(tmp_path: Path, code: str, *args: str) -> None:
    """Run ``code`` in a fresh Python; every process it starts must be gone when it ends.

    Its temporary folders (the grading's job folder among them) live in a
    fresh short folder (a Unix socket path has at most 107 bytes), whose name
    marks every learner process's command line.
    """
    tmp = Path(tempfile.mkdtemp(prefix="fc-hostile-"))
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(Path(ranking.__file__).parent)}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=HANG_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"the grader did not end within {HANG_S} s: it hung")
    finally:
        left = marked_processes(str(tmp))
        shutil.rmtree(tmp, ignore_errors=True)
    assert proc.returncode == 0, output.decode("utf-8", "replace")[-3000:]
    assert not left, f"processes of the grading were left running: {left}"


def _grade(ranking_env, tmp_path: Path, kit: Path, **overrides) -> tuple[dict, float]:
    """Grade ``kit`` in a fresh process; (result, peak MB). Checks what every case must hold."""
    spec, _, root = ranking_env
    config = ranking.write_config(tmp_path / "instructor", root / "hidden", **overrides)
    report = tmp_path / "report.json"
    _run_child(
        tmp_path,
        _CHILD,
        str(root / "project" / "project.yaml"),
        str(config),
        str(kit),
        str(tmp_path / "out"),
        str(report),
        str(ADDRESS_SPACE_GUARD_MB),
    )
    got = json.loads(report.read_text())
    result, peak = got["result"], got["peak_mb"]
    assert result["status"].split(":")[0] != "grader_error", result["messages"]
    assert peak < GRADER_PEAK_MB, f"the grader peaked at {peak:.0f} MB"
    return result, peak


def _line(result: dict, metric: str) -> dict:
    return next(x for x in result["rubric"] if x["metric"] == metric)


# ---- the service -------------------------------------------------------------------------

_STREAM = "from fastapi.responses import StreamingResponse\n"

ENDLESS_SCORE = ranking.GOOD_SERVICE.replace(
    "        return score(item)\n",
    "        def forever():\n"
    "            chunk = b'9' * 2**20\n"
    "            while True:\n"
    "                yield chunk\n"
    "        return StreamingResponse(forever(), media_type='application/json')\n",
).replace("import json, math, os\n", "import json, math, os\n" + _STREAM)

TRICKLED_SCORE = ranking.GOOD_SERVICE.replace(
    "        return score(item)\n",
    "        async def slowly():\n"
    "            import asyncio\n"
    "            while True:\n"
    "                yield b' '\n"
    "                await asyncio.sleep(0.2)\n"
    "        return StreamingResponse(slowly(), media_type='application/json')\n",
).replace("import json, math, os\n", "import json, math, os\n" + _STREAM)

ENDLESS_BATCH = ranking.GOOD_SERVICE.replace(
    '        return {"scores": [score(i) for i in batch.items]}\n',
    "        def forever():\n"
    "            yield b'{\"scores\": ['\n"
    '            row = b\'{"candidate_id": 1, "score": 0.5},\' * 1000\n'
    "            while True:\n"
    "                yield row\n"
    "        return StreamingResponse(forever(), media_type='application/json')\n",
).replace("import json, math, os\n", "import json, math, os\n" + _STREAM)

#: Binds the socket itself (uvicorn never gets to): /health answers, every other request
#: gets a status line and then one byte of a header every 0.2 s, forever.
NEVER_ANSWERS = """\
import socket, sys, threading, time


def handle(conn):
    try:
        data = b""
        while b"\\r\\n\\r\\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        if data.startswith(b"GET /health "):
            conn.sendall(b"HTTP/1.1 200 OK\\r\\ncontent-length: 2\\r\\nconnection: close\\r\\n\\r\\n{}")
            return
        conn.sendall(b"HTTP/1.1 200 OK\\r\\nx-slow: ")
        while True:
            conn.sendall(b"a")
            time.sleep(0.2)
    except OSError:
        pass
    finally:
        conn.close()


def create_app():
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sys.argv[sys.argv.index("--uds") + 1])
    server.listen(64)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()
"""


def _service_case(ranking_env, tmp_path, service: str) -> dict:
    kit = ranking.write_kit(tmp_path / "kit", service=service, monitor=None)
    result, _ = _grade(
        ranking_env, tmp_path, kit, service=FAST_SERVICE, monitoring={"enabled": False}
    )
    assert result["status"].split(":")[0] == "graded", result["messages"]
    assert result["service"]["ready"] and result["service"]["tree_gone"]
    return result


def test_an_endless_score_body_is_cut_at_the_cap(ranking_env, tmp_path):
    """Does a service streaming an endless answer to one score fill the grader's memory?"""
    r = _service_case(ranking_env, tmp_path, ENDLESS_SCORE)
    assert any("was larger than 1 MB" in p for p in r["service"]["problems"]), r["service"]
    assert r["service"]["p99_ms"] is None  # every request failed: p99 is infinite


def test_a_trickled_score_body_ends_at_the_request_deadline(ranking_env, tmp_path):
    """Does a body trickled a byte at a time (each read on time) hang the grader?"""
    r = _service_case(ranking_env, tmp_path, TRICKLED_SCORE)
    problems = " | ".join(r["service"]["problems"])
    assert "took longer than 0.5 s in total" in problems or "budget" in problems, problems
    # 20 requests of 0.5 s do not fit the 3 s budget: latency is not measured, and says why.
    assert "budget" in r["service"]["unmeasured"]["p99_ms"]
    assert r["service"]["contract"] == 1  # what was measured before still counts


def test_a_service_that_never_finishes_its_headers(ranking_env, tmp_path):
    """Does a server that accepts, then sends headers a byte at a time forever, hang the grader?"""
    r = _service_case(ranking_env, tmp_path, NEVER_ANSWERS)
    assert any("took longer than 0.5 s in total" in p for p in r["service"]["problems"])
    assert _line(r, "service.contract")["points"] == 0
    assert "budget" in r["service"]["unmeasured"]["bad_input_4xx"]
    assert not _line(r, "service.bad_input_4xx")["measured"]


def test_a_batch_endpoint_that_streams_forever(ranking_env, tmp_path):
    """Does a healthy service whose batch answer never ends fill the grader's memory?"""
    r = _service_case(ranking_env, tmp_path, ENDLESS_BATCH)
    assert any("was larger than 4 MB" in p for p in r["service"]["problems"]), r["service"]
    assert _line(r, "service.contract")["points"] == 0
    assert r["service"]["bad_input_4xx"] == 1  # the rest of the probe still ran


# ---- a stage's answer ----------------------------------------------------------------------

HUGE_RESULT = """\
import json, os, sys


def check_drift(reference, current):
    out = json.load(open(sys.argv[1]))["out"]
    with open(os.path.join(out, "result.json"), "w") as f:
        for _ in range(60):
            f.write("[" * 2**20)
    os._exit(0)
"""

DEEP_RESULT = """\
import json, os, sys


def check_drift(reference, current):
    out = json.load(open(sys.argv[1]))["out"]
    with open(os.path.join(out, "result.json"), "w") as f:
        f.write('{"verdicts": ' + "[" * 500_000 + "]" * 500_000 + "}")
    os._exit(0)
"""


@pytest.mark.parametrize(
    ("monitor", "reason"),
    [(HUGE_RESULT, "above the 2,000,000 allowed"), (DEEP_RESULT, "nested too deeply")],
    ids=["huge", "deeply_nested"],
)
def test_a_stage_writing_a_hostile_result_json(ranking_env, tmp_path, monitor, reason):
    """Does a drift check that forges a 60 MB, or a million-deep, result.json crash the grader?"""
    kit = ranking.write_kit(tmp_path / "kit", cells=[PREDICT], service=None, monitor=monitor)
    r, _ = _grade(ranking_env, tmp_path, kit, service={"enabled": False})
    why = r["stages"]["drift"]["unmeasured"]["monitoring.flags_drift"]
    assert reason in why, why
    assert _line(r, "monitoring.flags_drift")["points"] == 0


# ---- the notebook's files and outputs ----------------------------------------------------


def test_a_multi_gb_sparse_predictions_file(ranking_env, tmp_path):
    """Is a 2 GB predictions file (sparse: no disk quota hit) refused before it is read?"""
    cells = ["with open(predictions_path, 'wb') as f:\n    f.truncate(2 * 2**30)\n"]
    kit = ranking.write_kit(tmp_path / "kit", cells=cells, service=None, monitor=None)
    r, _ = _grade(ranking_env, tmp_path, kit, limits={"file_size_mb": 3072}, **NO_PROBES)
    assert r["status"].split(":")[0] == "invalid_predictions"
    assert any("the limit is 200 MB" in m for m in r["messages"]), r["messages"]


def test_a_predictions_csv_with_a_100_mb_line(ranking_env, tmp_path):
    """Is a CSV whose second line is 100 MB refused by the scan, before pandas parses it?"""
    cells = [
        "with open(predictions_path, 'wb') as f:\n"
        "    f.write(b'CANDIDATE_ID,score\\n1,')\n"
        "    for _ in range(100):\n"
        "        f.write(b'9' * 2**20)\n"
        "    f.write(b'\\n')\n"
    ]
    kit = ranking.write_kit(tmp_path / "kit", cells=cells, service=None, monitor=None)
    limits = {"file_size_mb": 256, "disk_mb": 300}
    r, _ = _grade(ranking_env, tmp_path, kit, limits=limits, **NO_PROBES)
    assert r["status"].split(":")[0] == "invalid_predictions"
    assert any("line 2 is longer than 64 kB" in m for m in r["messages"]), r["messages"]


def test_one_huge_output_message_never_reaches_the_grader(ranking_env, tmp_path):
    """Does one 200 MB print (one kernel message) land in the grader's memory?"""
    cells = ["print('x' * 200_000_000)\n", PREDICT]
    kit = ranking.write_kit(tmp_path / "kit", cells=cells, service=None, monitor=None)
    r, _ = _grade(ranking_env, tmp_path, kit, **NO_PROBES)
    assert r["status"].split(":")[0] == "notebook_failed"
    assert r["execution"]["status"] == "limit", r["execution"]
    assert "message larger than" in r["execution"]["message"]


# ---- reading predictions, alone -----------------------------------------------------------

_READ = r"""
import json, resource, sys
from pathlib import Path
from grading.validate import read_predictions
try:
    frame = read_predictions(Path(sys.argv[1]), "CANDIDATE_ID", "score")
    out = {"rows": len(frame), "longest": int(frame["score"].str.len().max())}
except ValueError as exc:
    out = {"error": str(exc)}
out["peak_mb"] = next(
    int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")
) / 1024
Path(sys.argv[2]).write_text(json.dumps(out))
"""


def _read_alone(tmp_path: Path, path: Path) -> dict:
    report = tmp_path / "read.json"
    _run_child(tmp_path, _READ, str(path), str(report))
    got = json.loads(report.read_text())
    assert got["peak_mb"] < GRADER_PEAK_MB, f"reading peaked at {got['peak_mb']:.0f} MB"
    return got


def test_a_parquet_dictionary_bomb_is_never_expanded(tmp_path):
    """Does a 60 kB Parquet file whose one 1 MB text repeats 2,000 times expand to 2 GB?"""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 2000
    score = pa.DictionaryArray.from_arrays(pa.array([0] * n, pa.int32()), pa.array(["7" * 2**20]))
    path = tmp_path / "predictions.csv"  # the magic bytes decide, not the name
    pq.write_table(pa.table({"CANDIDATE_ID": list(range(n)), "score": score}), path)
    assert path.stat().st_size < 200_000
    got = _read_alone(tmp_path, path)
    assert got.get("rows") == n and got["longest"] == 100, got  # every value cut to 100 chars


def test_millions_of_short_rows_are_refused(tmp_path):
    """Are 3 million rows (18 MB, several GB as Python strings) refused at the row cap?"""
    path = tmp_path / "predictions.csv"
    with path.open("wb") as f:
        f.write(b"CANDIDATE_ID,score\n")
        for _ in range(30):
            f.write(b"1,0.5\n" * 100_000)
    got = _read_alone(tmp_path, path)
    assert "more than 1,000,000 rows" in got.get("error", ""), got


def test_a_quoted_field_cannot_hide_a_huge_record(tmp_path):
    """Is a record of many short lines joined by one quoted field measured as one record?"""
    path = tmp_path / "predictions.csv"
    path.write_bytes(b'CANDIDATE_ID,score\n1,"' + b"9\n" * 100_000 + b'"\n')
    got = _read_alone(tmp_path, path)
    assert "line 2 is longer than 64 kB" in got.get("error", ""), got


def test_a_parquet_table_declaring_too_many_rows_is_refused():
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.table({"x": [1.0] * 10}), buf)
    with pytest.raises(OutputError, match="10 rows; at most 5"):
        read_parquet_bounded(buf.getvalue(), max_rows=5)
    with pytest.raises(OutputError, match="not a Parquet file"):
        read_parquet_bounded(b"PAR1" + b"\0" * 20)


# ---- the service client, alone ------------------------------------------------------------


@pytest.fixture
def short_dir():
    """A folder with a short path, for Unix sockets (107 bytes at most)."""
    path = Path(tempfile.mkdtemp(prefix="fc-sock-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


class _RawServer:
    """A Unix-socket server answering every request with ``answer(conn)`` in a thread."""

    def __init__(self, path: Path, answer):
        self.path = path
        self.answer = answer
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn):
        try:
            conn.recv(65536)
            self.answer(conn, self.stop)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.stop.set()
        self.sock.close()


def _trickle_headers(conn, stop):
    conn.sendall(b"HTTP/1.1 200 OK\r\nx-slow: ")
    while not stop.wait(0.05):
        conn.sendall(b"a")


def _endless_body(conn, stop):
    conn.sendall(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (1 << 16, b"9" * (1 << 16))
    while not stop.is_set():
        conn.sendall(chunk)


@functools.cache
def _bomb() -> bytes:
    """100 MB of gzip in about 100 kB."""
    return gzip.compress(b"9" * 100_000_000)


def _gzip_bomb(conn, stop):
    bomb = _bomb()
    head = b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: %d\r\n\r\n" % len(bomb)
    conn.sendall(head + bomb)


def _silence(conn, stop):
    stop.wait(30)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (_trickle_headers, "took longer than 0.5 s in total"),
        (_silence, "took longer than 0.5 s in total"),
        (_endless_body, "was larger than 1 MB"),
        (_gzip_bomb, "larger than 1 MB once decompressed"),
    ],
    ids=["trickled_headers", "silence", "endless_body", "gzip_bomb"],
)
def test_the_service_client_bounds_every_answer(short_dir, answer, reason):
    """Does every answer end, within its deadline and its byte cap, as a reason?"""
    assert len(_bomb()) < MAX_ANSWER_BYTES
    server = _RawServer(short_dir / "s.sock", answer)
    client = ServiceClient(short_dir / "s.sock", request_timeout=0.5)
    got: list = []

    def ask():
        try:
            client.request("POST", "/score", json_body={"x": 1})
        except NoAnswer as exc:
            got.append(exc.reason)

    try:
        t = threading.Thread(target=ask, daemon=True)
        t.start()
        t.join(HANG_S)
        assert not t.is_alive(), "the request did not end: the client hung"
    finally:
        client.close()
        server.close()
    assert got and reason in got[0], got


def test_the_budget_stops_requests_and_says_so(short_dir):
    server = _RawServer(short_dir / "s.sock", _silence)
    client = ServiceClient(short_dir / "s.sock", request_timeout=5)
    client.budget_end = time.monotonic() + 0.3
    try:
        with pytest.raises(NoAnswer, match="budget for requests ran out") as info:
            client.request("GET", "/health")
        assert info.value.past_budget
    finally:
        client.close()
        server.close()


def test_a_link_planted_in_place_of_the_socket_is_not_followed(short_dir):
    """Could a learner aim the grader's requests at another socket of the machine?"""
    server = _RawServer(short_dir / "elsewhere.sock", _endless_body)
    os.symlink(short_dir / "elsewhere.sock", short_dir / "s.sock")
    client = ServiceClient(short_dir / "s.sock", request_timeout=0.5)
    try:
        with pytest.raises(NoAnswer, match="the connection failed"):
            client.request("GET", "/health")
    finally:
        client.close()
        server.close()


# ---- the submission itself ---------------------------------------------------------------


def test_the_submission_hash_follows_no_link_and_opens_no_fifo(tmp_path):
    """Would a link to /proc/kcore or a FIFO in a submission folder hang the hash?"""
    kit = ranking.write_kit(tmp_path / "kit")
    before = submission_hash(kit)
    os.symlink("/proc/kcore", kit / "kcore")
    os.mkfifo(kit / "fifo")
    after = submission_hash(kit)
    assert after != before and len(after) == 64


def test_an_archive_index_of_70000_members_is_refused_before_parsing(tmp_path):
    import zipfile

    from grading.errors import SubmissionError
    from grading.submission import import_submission

    path = tmp_path / "s.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(70_000):
            zf.writestr(f"f{i}", b"")
    with pytest.raises(SubmissionError, match="70000 members; at most 2000"):
        import_submission(path, tmp_path / "dest")
