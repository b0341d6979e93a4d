"""Is grading secure by default? No real isolation, no grading; reduced isolation hides every secret.

Each case is a tiny submission of the ranking fixture project. Where the
grader runs in a subprocess, its command line names the grading config, as
``fullcycle grade ... --config PATH`` does, so a notebook scanning ``/proc``
has something to find.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import psutil
import pytest
import ranking
import yaml

from grading import GradingConfig, GradingConfigError, grade, load_config, new_config
from grading.pipeline import check_isolation
from grading.sandbox import Sandbox

REPO = Path(__file__).resolve().parents[2]
IS_ROOT = os.geteuid() == 0
PREDICT = """\
import pandas as pd
score = pd.read_parquet(score_path)
pd.DataFrame({"CANDIDATE_ID": score["CANDIDATE_ID"], "score": 0.5}).to_csv(predictions_path, index=False)
"""

# What a hostile notebook does to find the grader's secrets: the grading config named on any
# command line (or any *.yaml there, or in an environment it can read), then the config and
# the holdout folder it guessed. It prints all it got: a leak would show in the outputs.
HOSTILE = """\
import glob, json, os, subprocess, sys
via_proc, env_seen = set(), []
for f in glob.glob("/proc/*/cmdline") + glob.glob("/proc/*/environ"):
    try:
        parts = open(f, "rb").read().decode("utf-8", "replace").split("\\0")
    except OSError:
        continue
    if f.endswith("environ"):
        env_seen += parts
    for i, part in enumerate(parts):
        if part == "--config" and i + 1 < len(parts):
            via_proc.add(parts[i + 1])
        elif part.endswith((".yaml", ".yml")):
            via_proc.add(part)
got = {}
for path in sorted(via_proc | {GUESSED_CONFIG}):
    try:
        got[path] = open(path).read()
    except OSError as exc:
        got[path] = type(exc).__name__
try:
    got[HOLDOUT] = os.listdir(HOLDOUT)
except OSError as exc:
    got[HOLDOUT] = type(exc).__name__
for name in ("score.csv", "history.csv"):
    try:
        got[name] = open(os.path.join(HOLDOUT, name)).read()
    except OSError as exc:
        got[name] = type(exc).__name__
job_dir = os.path.dirname(os.path.dirname(os.path.abspath(predictions_path)))
try:  # the grader's private folder beside the job folder: the executed notebook, logs
    got["private"] = os.listdir(os.path.join(os.path.dirname(job_dir), "private"))
except OSError as exc:
    got["private"] = type(exc).__name__
print("FOUND_VIA_PROC", json.dumps(sorted(via_proc)))
print("GOT", json.dumps(got))
print("ENVIRONS", json.dumps(env_seen))
subprocess.Popen(["sleep", MARKER], start_new_session=True)  # a unique duration: findable
"""

# The grader as the CLI runs it: one process whose command line names the config.
GRADER = """\
import sys
from fullcycle.spec import load_spec
from grading import grade, load_config
kit, project, _, config, _, out = sys.argv[1:]
grade(kit, load_spec(project), load_config(config), out)
"""


def _processes(marker: str) -> list:
    """Live processes naming ``marker`` (a zombie waits for its reaper: it runs nothing)."""
    found = []
    for p in psutil.process_iter(["cmdline", "status"]):
        try:
            live = p.info["status"] != psutil.STATUS_ZOMBIE
            if live and any(marker in part for part in p.info["cmdline"] or []):
                found.append(p)
        except psutil.Error:
            continue
    return found


def _of_uid(uid: int) -> list:
    """Live processes of ``uid``."""
    found = []
    for p in psutil.process_iter(["uids", "status"]):
        try:
            live = p.info["status"] != psutil.STATUS_ZOMBIE
            if live and p.info["uids"] and p.info["uids"].real == uid:
                found.append(p)
        except psutil.Error:
            continue
    return found


def _text_of(folder: Path) -> str:
    return "\n".join(
        p.read_bytes().decode("utf-8", "replace") for p in folder.rglob("*") if p.is_file()
    )


@pytest.fixture
def secrets_dir():
    """A folder others may pass (0755), as an instructor's would be: only file modes protect."""
    root = Path(tempfile.mkdtemp(prefix="fullcycle-isolation-test-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _instructor(root: Path, sandbox: str, seed: str) -> tuple[Path, Path, Path]:
    """(config, holdout, project.yaml) with the config 0600 and the holdout 0700."""
    holdout = ranking.write_holdout(root / "hidden")
    holdout.chmod(0o700)
    project = ranking.write_project(root / "project")
    config = ranking.write_config(root / "instructor", holdout, sandbox=sandbox, secret_seed=seed)
    (root / "instructor").chmod(0o755)
    config.chmod(0o600)
    return config, holdout, project


def _hostile_kit(root: Path, config: Path, holdout: Path, marker: str) -> Path:
    head = f"GUESSED_CONFIG = {str(config)!r}\nHOLDOUT = {str(holdout)!r}\nMARKER = {marker!r}\n"
    kit = ranking.write_kit(root / "kit", cells=[head + HOSTILE, *ranking.GOOD_CELLS])
    kit.chmod(0o755)
    return kit


def _grade_in_a_process(root: Path, sandbox: str) -> dict:
    """Grade the hostile kit in a grader process named like the CLI; what the notebook got."""
    seed = secrets.token_hex(16)
    env_secret = f"grader-env-secret-{uuid.uuid4().hex}"
    marker = f"{600 + secrets.randbelow(10**6) / 10**6:.6f}"  # `sleep MARKER` left behind?
    config, holdout, project = _instructor(root, sandbox, seed)
    kit = _hostile_kit(root, config, holdout, marker)
    out = root / "out"
    cmd = [sys.executable, "-c", GRADER, str(kit), str(project), "--config", str(config)]
    cmd += ["--out", str(out)]
    env = {**os.environ, "FULLCYCLE_GRADING_SECRET": env_secret}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    result = json.loads((out / "result.json").read_text())
    text = _text_of(out)
    assert seed not in text and env_secret not in text
    outputs = "\n".join(
        "".join(o.get("text", ""))
        for c in json.loads((out / "executed.ipynb").read_text())["cells"]
        for o in c.get("outputs", [])
    )
    lines = dict(
        line.split(" ", 1) for line in outputs.splitlines() if line[:1].isupper() and " " in line
    )
    assert not _processes(marker), "a learner process survived the grading"
    return {
        "result": result,
        "via_proc": json.loads(lines["FOUND_VIA_PROC"]),
        "got": json.loads(lines["GOT"]),
        "config": str(config),
        "holdout": str(holdout),
    }


# ---- refusals ----------------------------------------------------------------------------


@pytest.mark.integration
def test_without_bubblewrap_required_grading_is_refused_before_learner_code(
    ranking_env, tmp_path, monkeypatch
):
    """Is a missing bubblewrap a recorded refusal that names the fix, with no learner code run?"""
    spec, config_path, _ = ranking_env
    cfg = load_config(config_path)
    assert cfg.sandbox == "required"  # the fixture says `auto`: a legacy name of required
    which = shutil.which
    monkeypatch.setattr(
        shutil, "which", lambda name, *a, **k: None if name == "bwrap" else which(name, *a, **k)
    )
    marks = Path(tempfile.mkdtemp(prefix="fullcycle-isolation-marker-"))
    marks.chmod(0o1777)  # writable by anyone: learner code, had it run, could leave its mark
    marker = marks / "learner-code-ran"
    try:
        kit = ranking.write_kit(
            tmp_path / "kit", cells=[f"open({str(marker)!r}, 'w').write('ran')\n", PREDICT]
        )
        r = grade(kit, spec, cfg, tmp_path / "out")
        assert not marker.exists()
    finally:
        shutil.rmtree(marks, ignore_errors=True)
    assert r["status"] == "grader_error"
    assert "sudo apt-get install -y bubblewrap" in r["messages"][0]
    assert "sandbox: reduced" in r["messages"][0]
    assert r["isolation"]["refused"] == r["messages"][0]
    assert r["isolation"]["learner_code_ran"] is False
    steps = {s["step"]: s["status"] for s in r["provenance"]["steps"]}
    assert steps["prepare"] == "stopped" and steps["execute"] == "skipped"
    on_disk = json.loads((tmp_path / "out" / "result.json").read_text())
    assert on_disk["status"] == "grader_error" and "bubblewrap" in on_disk["messages"][0]
    assert not (tmp_path / "out" / "executed.ipynb").exists()
    with pytest.raises(GradingConfigError, match="apt-get install -y bubblewrap"):
        check_isolation(cfg)


@pytest.mark.integration
def test_a_self_check_without_bubblewrap_runs_and_says_isolation_was_reduced(
    ranking_env, tmp_path, monkeypatch
):
    """On public data (no secret), does grading fall back to rlimits only, and say so?"""
    spec, config_path, _ = ranking_env
    cfg = load_config(config_path)
    off = cfg.service.model_copy(update={"enabled": False})
    cfg = cfg.model_copy(update={"public": True, "service": off})
    which = shutil.which
    monkeypatch.setattr(
        shutil, "which", lambda name, *a, **k: None if name == "bwrap" else which(name, *a, **k)
    )
    kit = ranking.write_kit(tmp_path / "kit", cells=ranking.GOOD_CELLS)
    r = grade(kit, spec, cfg, tmp_path / "out", store=False, learner="ada", assignment="week9")
    assert r["status"] == "graded:reduced_isolation", r["messages"]
    iso = r["isolation"]
    assert iso["mode"] == "public" and iso["kind"] == "rlimits-only" and iso["reduced"] is True
    assert any("bubblewrap" in why for why in iso["reasons"])
    assert r["submission"]["learner"] == "ada" and r["submission"]["assignment"] == "week9"


def test_reduced_isolation_is_refused_to_a_grader_that_is_not_root(tmp_path, monkeypatch):
    """Without root, learner code would run as the grader's user: is `reduced` refused?"""
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(GradingConfigError, match="needs root") as exc:
        Sandbox(tmp_path, mode="reduced")
    assert "grader's own user" in str(exc.value)


@pytest.mark.skipif(not IS_ROOT, reason="reduced isolation needs root")
@pytest.mark.integration
def test_reduced_isolation_refuses_a_config_others_may_read(secrets_dir, tmp_path):
    """Is a group/other-readable grading config refused under `reduced`, naming `chmod 600`?"""
    config, _, project = _instructor(secrets_dir, "reduced", secrets.token_hex(16))
    config.chmod(0o644)
    marker = secrets_dir / "learner-code-ran"
    secrets_dir.chmod(0o1777)
    kit = ranking.write_kit(
        tmp_path / "kit", cells=[f"open({str(marker)!r}, 'w').write('ran')\n", PREDICT]
    )
    from fullcycle.spec import load_spec

    cfg = load_config(config)
    r = grade(kit, load_spec(project), cfg, tmp_path / "out")
    assert r["status"] == "grader_error" and f"chmod 600 {config}" in r["messages"][0]
    assert not marker.exists()
    with pytest.raises(GradingConfigError, match="chmod 600"):
        check_isolation(cfg)


# ---- the config ------------------------------------------------------------------------


def test_a_new_config_requires_bubblewrap_and_off_is_refused(tmp_path):
    """Does `grading-config --new` write `sandbox: required`, and is `sandbox: off` refused?"""
    cfg = new_config(tmp_path / "new.yaml")
    assert cfg.sandbox == "required" and cfg.sandbox_mode == "required"
    written = yaml.safe_load((tmp_path / "new.yaml").read_text())
    assert written["sandbox"] == "required" and "public" not in written
    assert oct((tmp_path / "new.yaml").stat().st_mode & 0o777) == "0o600"

    for value in ("off", "'off'", "none"):
        bad = tmp_path / f"bad-{value.strip(chr(39))}.yaml"
        bad.write_text(f"secret_seed: {cfg.secret_seed}\nsandbox: {value}\n")
        with pytest.raises(GradingConfigError) as exc:
            load_config(bad)
        assert "required" in str(exc.value) and "reduced" in str(exc.value), str(exc.value)

    legacy = tmp_path / "legacy.yaml"
    legacy.write_text(f"secret_seed: {cfg.secret_seed}\nsandbox: auto\n")
    assert load_config(legacy).sandbox == "required"

    public = tmp_path / "public.yaml"
    public.write_text(f"secret_seed: {cfg.secret_seed}\npublic: true\n")
    with pytest.raises(GradingConfigError, match="public"):
        load_config(public)
    in_code = GradingConfig(secret_seed=cfg.secret_seed, public=True)
    assert in_code.sandbox_mode == "public" and "public" not in in_code.model_dump()
    assert in_code.secret_paths() == []


# ---- what a hostile notebook finds -------------------------------------------------------


@pytest.mark.skipif(not IS_ROOT, reason="reduced isolation needs root")
@pytest.mark.integration
def test_reduced_isolation_hides_every_secret_from_a_proc_scan(secrets_dir):
    """With no namespaces, does a notebook that finds the config path in /proc get nothing?"""
    run = _grade_in_a_process(secrets_dir, "reduced")
    r, got = run["result"], run["got"]
    assert r["status"] == "graded:reduced_isolation", r["messages"]
    assert r["status"].split(":")[0] == "graded"
    assert r["isolation"]["reduced"] is True and r["isolation"]["reasons"]
    assert r["isolation"]["other_user"] is True and r["isolation"]["uid"] != 0
    assert run["config"] in run["via_proc"]  # the grader's command line was visible ...
    assert got[run["config"]] == "PermissionError"  # ... the config was not readable
    assert got[run["holdout"]] == "PermissionError"
    assert got["score.csv"] == got["history.csv"] == "PermissionError"
    assert got["private"] == "PermissionError"
    assert not _of_uid(r["isolation"]["uid"])
    assert r["score"]["points"] == r["score"]["max_points"], r["rubric"]  # the rest still works


@pytest.mark.integration
def test_bubblewrap_hides_every_secret_from_a_proc_scan(secrets_dir):
    """Under bubblewrap, does the same notebook see neither the grader nor its files?"""
    run = _grade_in_a_process(secrets_dir, "required")
    r, got = run["result"], run["got"]
    assert r["status"] == "graded", r["messages"]
    assert r["isolation"]["kind"] == "bubblewrap" and r["isolation"]["reduced"] is False
    assert run["config"] not in run["via_proc"]  # its own PID namespace
    assert got[run["config"]] in ("FileNotFoundError", "PermissionError")
    assert got[run["holdout"]] in ("FileNotFoundError", "PermissionError")
    assert got["score.csv"] in ("FileNotFoundError", "PermissionError")
    assert got["private"] in ("FileNotFoundError", "PermissionError")
