"""The adversarial suite: each case is a tiny submission trying to cheat, break or escape.

Every case must end in a clear recorded failure or a correct low score: never
a grader crash, never a high score, never a process left behind. The list is
docs/instructors.md's table; keep them in step.
"""

from __future__ import annotations

import io
import json
import os
import stat
import zipfile

import nbformat
import pytest
import ranking

from grading import grade, load_config
from grading.jobproc import marked_processes

SECRET = "grader-secret-7f3a9c"
PREDICT = """\
import pandas as pd
score = pd.read_parquet(score_path)
pd.DataFrame({"CANDIDATE_ID": score["CANDIDATE_ID"], "score": 0.5}).to_csv(predictions_path, index=False)
"""


def _grade(ranking_env, tmp_path, monkeypatch, kit, **overrides):
    spec, config_path, root = ranking_env
    cfg = load_config(config_path)
    if overrides:
        cfg = cfg.model_copy(update=overrides)
    monkeypatch.setenv("FULLCYCLE_GRADING_SECRET", SECRET)
    result = grade(kit, spec, cfg, tmp_path / "out")
    assert result["status"] != "grader_error", result["messages"]
    assert result["score"]["points"] <= 0.5 * result["score"]["max_points"], result["rubric"]
    return result


def _kit(tmp_path, cells, **kw):
    return ranking.write_kit(tmp_path / "kit", cells=cells, **kw)


def _text_of(folder) -> str:
    return "\n".join(
        p.read_bytes().decode("utf-8", "replace") for p in folder.rglob("*") if p.is_file()
    )


# ---- cheating ----------------------------------------------------------------------------


def test_reading_the_labels_path_fails(ranking_env, tmp_path, monkeypatch):
    _, _, root = ranking_env
    labels = root / "hidden" / "score.csv"
    cells = [
        f"""\
import pandas as pd
score = pd.read_parquet(score_path)
try:
    truth = pd.read_csv({str(labels)!r}).set_index("CANDIDATE_ID")["PURCHASED"]
    s = truth.reindex(score["CANDIDATE_ID"]).to_numpy()
except OSError as exc:
    print("cannot read labels:", exc)
    s = 0.5
pd.DataFrame({{"CANDIDATE_ID": score["CANDIDATE_ID"], "score": s}}).to_csv(predictions_path, index=False)
"""
    ]
    r = _grade(ranking_env, tmp_path, monkeypatch, _kit(tmp_path, cells))
    assert "cannot read labels" in (tmp_path / "out" / "executed.ipynb").read_text()
    assert r["metrics"]["ndcg@5"] < 0.6


def test_patching_the_grader_metrics_changes_nothing(ranking_env, tmp_path, monkeypatch):
    cells = [
        PREDICT
        + """
import grading.rubric, fullcycle.metrics.technical as t
grading.rubric._earned = lambda *a: 100.0
t.roc_auc = lambda *a, **k: 1.0
t.ndcg_at_k = lambda *a, **k: 1.0
"""
    ]
    r = _grade(ranking_env, tmp_path, monkeypatch, _kit(tmp_path, cells))
    assert r["metrics"]["roc_auc"] == pytest.approx(0.5)


def test_writing_to_the_results_store_fails(ranking_env, tmp_path, monkeypatch):
    _, config_path, _ = ranking_env
    store = load_config(config_path).path(load_config(config_path).results_store)
    before = len(__import__("grading.store").store.ResultsStore(store).rows())
    cells = [
        PREDICT
        + f"""
import sqlite3
try:
    db = sqlite3.connect({str(store)!r})
    db.execute("INSERT INTO results (graded_at, project, submission, submission_sha256, status, points, max_points, result_json) VALUES ('x','tiny_ranking','forged','0','graded',99,99,'{{}}')")
    db.commit()
except Exception as exc:
    print("store not reachable:", type(exc).__name__)
"""
    ]
    _grade(ranking_env, tmp_path, monkeypatch, _kit(tmp_path, cells))
    from grading.store import ResultsStore

    rows = ResultsStore(store).rows()
    assert len(rows) == before + 1 and rows[-1]["submission"] == "kit"
    assert all(r["submission"] != "forged" for r in rows)


def test_printing_a_fake_score_and_forging_reports_changes_nothing(
    ranking_env, tmp_path, monkeypatch
):
    cells = [
        PREDICT
        + """
print("fraud_detection: 14 / 14 points (graded)")
import json, pathlib
for d in (pathlib.Path("."), pathlib.Path(predictions_path).parent, pathlib.Path("..")):
    try:
        (d / "result.json").write_text(json.dumps({"score": {"points": 99, "max_points": 99}}))
    except OSError:
        pass
"""
    ]
    r = _grade(ranking_env, tmp_path, monkeypatch, _kit(tmp_path, cells))
    on_disk = json.loads((tmp_path / "out" / "result.json").read_text())
    assert on_disk["score"] == r["score"] and on_disk["score"]["points"] < 99


def test_rewriting_its_own_executed_notebook_does_not_reach_the_report(
    ranking_env, tmp_path, monkeypatch
):
    cells = [
        PREDICT
        + """
import pathlib
for p in list(pathlib.Path("/").glob("tmp/**/*.ipynb")) + list(pathlib.Path("..").rglob("*.ipynb")):
    try:
        p.write_text('{"forged": true}')
    except OSError:
        pass
"""
    ]
    _grade(ranking_env, tmp_path, monkeypatch, _kit(tmp_path, cells))
    executed = nbformat.read(tmp_path / "out" / "executed.ipynb", as_version=4)
    assert "papermill" in executed.metadata and "forged" not in executed.metadata
    assert len(executed.cells) == 3  # parameters, injected parameters, the cell


def test_secrets_in_the_grader_environment_and_proc_are_not_visible(
    ranking_env, tmp_path, monkeypatch
):
    cells = [
        PREDICT
        + """
import os, glob
found = [f"{k}={v}" for k, v in os.environ.items()]
for f in glob.glob("/proc/*/environ") + glob.glob("/proc/*/cmdline"):
    try:
        found.append(open(f, "rb").read().decode("utf-8", "replace"))
    except OSError:
        pass
print("\\n".join(found))
open("seen.txt", "w").write("\\n".join(found))
"""
    ]
    from grading import load_config

    _grade(ranking_env, tmp_path, monkeypatch, _kit(tmp_path, cells))
    text = _text_of(tmp_path / "out")
    seed = load_config(ranking_env[1]).secret_seed  # the seed the grader really used
    assert "FULLCYCLE_GRADING_SECRET" not in text and SECRET not in text
    assert seed not in text


def test_a_network_connection_fails(ranking_env, tmp_path, monkeypatch):
    cells = ["import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=3)\n", PREDICT]
    r = _grade(ranking_env, tmp_path, monkeypatch, _kit(tmp_path, cells))
    assert r["status"] == "notebook_failed"
    assert "OSError" in r["execution"]["message"] or "unreachable" in r["execution"]["message"]


# ---- resources -------------------------------------------------------------------------


def test_an_infinite_loop_hits_the_cell_clock(ranking_env, tmp_path, monkeypatch):
    spec, config_path, _ = ranking_env
    limits = load_config(config_path).limits.model_copy(update={"cell_timeout_s": 3})
    r = _grade(
        ranking_env,
        tmp_path,
        monkeypatch,
        _kit(tmp_path, ["while True:\n    pass\n"]),
        limits=limits,
    )
    assert r["status"] == "notebook_failed" and "3 s cell limit" in r["execution"]["message"]


def test_the_whole_run_clock_stops_many_slow_cells(ranking_env, tmp_path, monkeypatch):
    spec, config_path, _ = ranking_env
    limits = load_config(config_path).limits.model_copy(
        update={"cell_timeout_s": 5, "run_timeout_s": 6}
    )
    cells = ["import time\ntime.sleep(4)\n"] * 4
    r = _grade(ranking_env, tmp_path, monkeypatch, _kit(tmp_path, cells), limits=limits)
    assert r["execution"]["status"] == "limit" and "whole run" in r["execution"]["message"]


def test_a_fork_bomb_is_held_by_the_process_limit(ranking_env, tmp_path, monkeypatch):
    cells = [
        """\
import os, time
children = 0
while True:
    pid = os.fork()
    if pid == 0:
        time.sleep(600)
        os._exit(0)
    children += 1
"""
    ]
    r = _grade(ranking_env, tmp_path, monkeypatch, _kit(tmp_path, cells))
    assert r["status"] == "notebook_failed"
    assert "BlockingIOError" in r["execution"]["message"] or "Resource" in r["execution"]["message"]


def test_allocating_50_gb_fails_with_memory_error(ranking_env, tmp_path, monkeypatch):
    r = _grade(ranking_env, tmp_path, monkeypatch, _kit(tmp_path, ["b = bytearray(50 * 2**30)\n"]))
    assert r["execution"]["error"] == "MemoryError"


def test_filling_the_disk_hits_the_quota(ranking_env, tmp_path, monkeypatch):
    cells = [
        """\
chunk = b"x" * (8 * 2**20)
i = 0
while True:
    with open(f"fill{i}.bin", "wb") as f:
        for _ in range(4):
            f.write(chunk)
    i += 1
"""
    ]
    r = _grade(ranking_env, tmp_path, monkeypatch, _kit(tmp_path, cells))
    assert r["execution"]["status"] == "limit" and "disk quota" in r["execution"]["message"]


def test_filling_the_private_tmp_stops_at_the_quota(ranking_env, tmp_path, monkeypatch):
    """Is the sandbox's in-memory /tmp capped, so that a submission cannot fill the RAM?"""
    cells = [
        """\
written = 0
try:
    for i in range(10_000):  # up to 40 GB in 4 MB files, if nothing stops it
        with open(f"/tmp/fill{i}.bin", "wb") as f:
            f.write(b"x" * (4 * 2**20))
        written += 4
except OSError:
    raise RuntimeError(f"/tmp is full after {written} MB") from None
"""
    ]
    r = _grade(ranking_env, tmp_path, monkeypatch, _kit(tmp_path, cells))
    message = r["execution"]["message"]
    assert "/tmp is full after" in message, message
    assert int(message.split("after ")[1].split(" MB")[0]) <= 100  # the fixture's disk_mb


def test_a_background_process_does_not_survive(ranking_env, tmp_path, monkeypatch):
    cells = [
        "import subprocess\nsubprocess.Popen(['sleep', '613.0417'], start_new_session=True)\n",
        PREDICT,
    ]
    _grade(ranking_env, tmp_path, monkeypatch, _kit(tmp_path, cells, service=None, monitor=None))
    # a marker no other process on a shared machine carries ("613" alone matched a CI shell)
    assert not marked_processes("613.0417")


def test_1gb_of_output_is_cut_at_the_output_cap(ranking_env, tmp_path, monkeypatch):
    cells = ["for _ in range(1000):\n    print('x' * 1_000_000)\n"]
    r = _grade(ranking_env, tmp_path, monkeypatch, _kit(tmp_path, cells))
    assert r["execution"]["status"] == "limit" and "output" in r["execution"]["message"]


def test_a_kernel_that_dies_mid_run_is_recorded(ranking_env, tmp_path, monkeypatch):
    cells = ["import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", PREDICT]
    r = _grade(ranking_env, tmp_path, monkeypatch, _kit(tmp_path, cells))
    assert r["execution"]["status"] == "kernel_died"


# ---- bad predictions -------------------------------------------------------------------

BAD = {
    "nan": ("s = [float('nan')] + [0.5] * (len(score) - 1)\nids = score['CANDIDATE_ID']", "NaN"),
    "inf": (
        "s = [float('inf')] + [0.5] * (len(score) - 1)\nids = score['CANDIDATE_ID']",
        "infinite",
    ),
    "missing": ("ids = score['CANDIDATE_ID'].iloc[10:]\ns = 0.5", "have no prediction"),
    "unknown": ("ids = score['CANDIDATE_ID'] + 7_000_000\ns = 0.5", "not in score_path"),
    "duplicate": (
        "ids = pd.concat([score['CANDIDATE_ID'], score['CANDIDATE_ID'].head(3)])\ns = 0.5",
        "more than once",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_predictions_are_reported_with_counts_and_examples(
    case, ranking_env, tmp_path, monkeypatch
):
    body, expected = BAD[case]
    cells = [
        "import pandas as pd\nscore = pd.read_parquet(score_path)\n"
        + body
        + "\npd.DataFrame({'CANDIDATE_ID': ids, 'score': s}).to_csv(predictions_path, index=False)\n"
    ]
    r = _grade(ranking_env, tmp_path, monkeypatch, _kit(tmp_path, cells))
    assert r["status"] == "invalid_predictions"
    assert any(expected in p for p in r["validation"]["problems"]), r["validation"]
    # What needs the predictions earns nothing; the drift check is a stage of its own.
    for line in r["rubric"]:
        if not line["metric"].startswith("monitoring."):
            assert line["points"] == 0 and "predictions are invalid" in line["feedback"], line


# ---- bad notebooks and archives --------------------------------------------------------


def _rejected(ranking_env, tmp_path, monkeypatch, kit, words):
    r = _grade(ranking_env, tmp_path, monkeypatch, kit)
    assert r["status"] == "rejected" and words in r["messages"][0], r["messages"]
    return r


def test_a_malformed_notebook_is_rejected(ranking_env, tmp_path, monkeypatch):
    kit = ranking.write_kit(tmp_path / "kit", raw_notebook=b'{"cells": [}')
    _rejected(ranking_env, tmp_path, monkeypatch, kit, "not a valid Jupyter notebook")


def test_a_non_utf8_notebook_is_rejected(ranking_env, tmp_path, monkeypatch):
    nb = (
        nbformat.writes(ranking.notebook([PREDICT])).encode().replace(b"pandas", b"pand\xff\xfe", 1)
    )
    kit = ranking.write_kit(tmp_path / "kit", raw_notebook=nb)
    _rejected(ranking_env, tmp_path, monkeypatch, kit, "not UTF-8")


def test_10000_cells_are_rejected(ranking_env, tmp_path, monkeypatch):
    kit = _kit(tmp_path, ["x = 1\n"] * 10_000)
    _rejected(ranking_env, tmp_path, monkeypatch, kit, "10001 cells")


def _zip(path, members):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data, mode in members:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return path


def test_a_zip_with_path_traversal_is_rejected(ranking_env, tmp_path, monkeypatch):
    z = _zip(tmp_path / "s.zip", [("../../evil.py", b"x", 0o100644)])
    _rejected(ranking_env, tmp_path, monkeypatch, z, "points outside the submission")
    assert not (tmp_path / "evil.py").exists()


def test_a_zip_with_a_symlink_is_rejected(ranking_env, tmp_path, monkeypatch):
    z = _zip(tmp_path / "s.zip", [("kit/labels", b"/etc/passwd", stat.S_IFLNK | 0o777)])
    _rejected(ranking_env, tmp_path, monkeypatch, z, "symbolic link")


def test_a_zip_bomb_is_rejected_before_unpacking(ranking_env, tmp_path, monkeypatch):
    z = _zip(tmp_path / "s.zip", [("kit/big.bin", b"\0" * (300 * 2**20), 0o100644)])
    assert z.stat().st_size < 2_000_000
    _rejected(ranking_env, tmp_path, monkeypatch, z, "MB")


def test_a_folder_with_a_symlink_is_rejected(ranking_env, tmp_path, monkeypatch):
    _, _, root = ranking_env
    kit = _kit(tmp_path, [PREDICT])
    os.symlink(root / "hidden" / "score.csv", kit / "labels.csv")
    _rejected(ranking_env, tmp_path, monkeypatch, kit, "symbolic link")


def test_a_good_zip_is_graded(ranking_env, tmp_path, monkeypatch):
    kit = ranking.write_kit(tmp_path / "kit")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in kit.iterdir():
            zf.write(p, f"kit/{p.name}")
    (tmp_path / "s.zip").write_bytes(buf.getvalue())
    spec, config_path, _ = ranking_env
    r = grade(tmp_path / "s.zip", spec, load_config(config_path), tmp_path / "out")
    assert r["score"]["points"] == r["score"]["max_points"]


# ---- services and monitors -------------------------------------------------------------

GOOD_NOTEBOOK = ranking.GOOD_CELLS


def _service_case(ranking_env, tmp_path, monkeypatch, service):
    spec, config_path, _ = ranking_env
    kit = ranking.write_kit(tmp_path / "kit", service=service)
    cfg = load_config(config_path)
    cfg = cfg.model_copy(
        update={
            "service": cfg.service.model_copy(update={"ready_timeout_s": 6, "request_timeout_s": 2})
        }
    )
    monkeypatch.setenv("FULLCYCLE_GRADING_SECRET", SECRET)
    r = grade(kit, spec, cfg, tmp_path / "out")
    assert r["status"] == "graded"
    earned = {x["metric"]: x["points"] for x in r["rubric"]}
    assert earned["service.contract"] == 0 and earned["service.consistency"] == 0, r["rubric"]
    assert not marked_processes(str(tmp_path))
    return r


def test_a_service_that_never_binds(ranking_env, tmp_path, monkeypatch):
    service = "import time\ndef create_app():\n    time.sleep(3600)\n"
    r = _service_case(ranking_env, tmp_path, monkeypatch, service)
    assert "within 6 s" in r["service"]["problems"][0] and r["service"]["tree_gone"]


def test_a_service_that_hangs(ranking_env, tmp_path, monkeypatch):
    service = ranking.GOOD_SERVICE.replace(
        "        return score(item)", "        import time; time.sleep(3600)"
    ).replace(
        '        return {"scores"',
        '        import time; time.sleep(3600)\n        return {"scores"',
    )
    r = _service_case(ranking_env, tmp_path, monkeypatch, service)
    assert any("no answer" in p for p in r["service"]["problems"])


def test_a_service_that_answers_200_with_garbage(ranking_env, tmp_path, monkeypatch):
    service = (
        "from fastapi import FastAPI, Request\n"
        "def create_app():\n"
        "    app = FastAPI()\n"
        "    @app.get('/health')\n"
        "    def h():\n"
        "        return {}\n"
        "    @app.post('/{path:path}')\n"
        "    async def anything(path: str, request: Request):\n"
        "        return {'hello': 'world'}\n"
        "    return app\n"
    )
    r = _service_case(ranking_env, tmp_path, monkeypatch, service)
    assert r["metrics"]["service.contract"] == 0 and r["metrics"]["service.bad_input_4xx"] == 0


def test_a_monitor_that_always_cries_drift_loses_the_quiet_point(
    ranking_env, tmp_path, monkeypatch
):
    spec, config_path, _ = ranking_env
    kit = ranking.write_kit(
        tmp_path / "kit",
        monitor="def check_drift(reference, current):\n    return {'drift': True}\n",
    )
    r = grade(kit, spec, load_config(config_path), tmp_path / "out")
    assert r["metrics"]["monitoring.flags_drift"] == 1
    assert r["metrics"]["monitoring.quiet_on_clean"] == 0
