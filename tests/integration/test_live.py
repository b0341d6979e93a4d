"""The live loop at tiny scale: a real service process, replay, two verdicts, a decision, no leftovers."""

from __future__ import annotations

import json

import pytest

from fullcycle.live import run_live
from fullcycle.run import run_project
from fullcycle.spec import find_project

pytestmark = pytest.mark.integration


def test_does_the_live_loop_serve_monitor_retrain_and_leave_nothing_behind(
    tmp_path, repo, clean_mlflow_env
):
    spec = find_project("fraud_detection", search_root=repo)
    spec = spec.model_copy(
        update={
            "gate": spec.gate.model_copy(update={"min_roc_auc": 0.5, "min_value_vs_baseline": -1e9})
        }
    )
    assert run_project(spec, tmp_path, scale="tiny", progress=None).registered is not None
    said: list[str] = []
    result = run_live(spec, tmp_path, scale="tiny", single_requests=300, progress=said.append)
    assert result.leftover_processes is False
    assert result.single_requests == 300 and 0 < result.p50_ms <= result.p99_ms
    assert result.replayed > 10_000
    verdicts = {}
    for name in ("clean", "drift"):
        verdict = json.loads((tmp_path / "monitoring" / name / "verdict.json").read_text())
        verdicts[name] = verdict["verdict"]
        assert (tmp_path / "monitoring" / name / "report.html").stat().st_size > 20_000
    # The world is seeded: the clean weeks stay quiet and the card-testing weeks raise an
    # alarm (input drift or, once labels arrive, decay; tests/integration/test_monitoring.py
    # checks which check fires on which window).
    assert verdicts["clean"] == "ok", verdicts
    assert verdicts["drift"] in ("drift", "decay", "drift+decay"), verdicts
    assert result.decision.decision_run_id
    assert any("live 5/5" in line for line in said)
