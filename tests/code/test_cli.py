"""Does the command line do its jobs and turn errors into one readable line?"""

import subprocess
import sys

import pandas as pd
from click.testing import CliRunner

from fullcycle.cli import cli


def test_simulate_then_validate_a_messy_file(tmp_path):
    """Can a user write a messy CSV and get a quarantine file with reasons back?"""
    runner = CliRunner()
    out = tmp_path / "tx.csv"
    r = runner.invoke(
        cli,
        [
            "simulate",
            "--out",
            str(out),
            "--customers",
            "100",
            "--terminals",
            "200",
            "--days",
            "20",
            "--messy",
            "0.02",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "wrote" in r.output and out.is_file()
    q = tmp_path / "q.csv"
    r = runner.invoke(cli, ["validate", str(out), "--quarantine", str(q)])
    assert r.exit_code == 0, r.output
    quarantine = pd.read_csv(q)
    assert len(quarantine) > 0 and quarantine["QUARANTINE_REASON"].notna().all()
    assert "quarantined" in r.output


def test_errors_are_one_line_and_exit_2(tmp_path):
    """Do an unknown project and a bad scenario list exit 2 with 'error:' and no traceback?"""
    proc = subprocess.run(
        [sys.executable, "-m", "fullcycle.cli", "run", "--project", "nope"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: no project named 'nope'")
    assert "Traceback" not in proc.stderr
    r = CliRunner().invoke(
        cli, ["simulate", "--out", str(tmp_path / "x.csv"), "--scenarios", "1,9"]
    )
    assert r.exit_code == 2
    assert "unknown scenario" in r.output


def test_run_tiny_without_tracking(tmp_path, repo, monkeypatch):
    """Does `fullcycle run` print the scorecard and write its metrics as JSON?"""
    import json

    monkeypatch.chdir(repo)
    r = CliRunner().invoke(
        cli,
        [
            "run",
            "--project",
            "fraud_detection",
            "--scale",
            "tiny",
            "--no-track",
            "--json-out",
            str(tmp_path / "m.json"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "Scorecard" in r.output and "net savings" in r.output
    assert "roc_auc" in json.loads((tmp_path / "m.json").read_text())["reference"]


def _learner_kit(repo, tmp_path, model_body: str | None = None):
    """A copy of the reference kit, released (stubs), with build_model written as given."""
    import shutil

    from grading.release import strip_solutions

    kit = tmp_path / "kit"
    shutil.copytree(repo / "starter_kits/fraud_detection", kit)
    for path in kit.glob("*.py"):
        path.write_text(strip_solutions(path.read_text(), str(path)))
    if model_body is not None:
        text = (kit / "model.py").read_text()
        stub = '    # YOUR CODE HERE\n    raise NotImplementedError("not implemented yet")\n'
        (kit / "model.py").write_text(text.replace(stub, model_body))
    return kit


def test_run_executes_the_learners_kit(tmp_path, repo, monkeypatch):
    """Does `fullcycle run --kit DIR` run that kit's code, and name the first stub it meets?"""
    monkeypatch.chdir(repo)
    kit = _learner_kit(repo, tmp_path)
    r = CliRunner().invoke(
        cli,
        ["run", "--project", "fraud_detection", "--scale", "tiny", "--no-track", "--kit", str(kit)],
    )
    assert r.exit_code == 2
    assert "not implemented yet: contract.py" in r.output
    # With the reference's contract and features but the learner's own model:
    import shutil

    body = (
        "    from sklearn.linear_model import LogisticRegression\n"
        "    from sklearn.pipeline import make_pipeline\n"
        "    from sklearn.preprocessing import StandardScaler\n\n"
        "    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))\n"
    )
    kit2 = _learner_kit(repo, tmp_path / "b", body)
    for name in ("contract.py", "features.py"):
        shutil.copy(repo / "starter_kits/fraud_detection" / name, kit2 / name)
    r = CliRunner().invoke(
        cli,
        [
            "run",
            "--project",
            "fraud_detection",
            "--scale",
            "tiny",
            "--no-track",
            "--kit",
            str(kit2),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "trained Pipeline" in r.output and "Scorecard" in r.output
