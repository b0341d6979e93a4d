"""Does `fullcycle live` on the recommender serve two real services, A/B them on the same visits,
monitor, decide with the kit's rule on live revenue, and leave nothing running?"""

import json
import subprocess
import sys

import pytest

from fullcycle.spec import find_project
from grading.jobproc import marked_processes

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def live(tmp_path_factory, repo):
    workspace = tmp_path_factory.mktemp("live-recommender")
    run = subprocess.run(
        [sys.executable, "-m", "fullcycle", "live", "--project", "recommender"]
        + ["--workspace", str(workspace), "--scale", "tiny", "--single-requests", "100"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=repo,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads((workspace / "live" / "recommender" / "live.json").read_text())
    return run.stdout, report, workspace


def test_both_arms_answer_every_visit_of_the_ab_week_and_sell_something(live):
    out, report, _ = live
    plan = find_project("recommender").monitoring
    lo, hi = plan.drift_days
    first, last = plan.replay_days
    assert sorted(map(int, report["revenue"]["champion"])) == list(range(first, last + 1))
    assert sorted(map(int, report["revenue"]["challenger"])) == list(range(lo, hi + 1))
    assert sum(report["revenue"]["champion"].values()) > 0
    assert sum(report["revenue"]["challenger"].values()) > 0
    assert report["single_requests"] == 100 and report["p50_ms"] > 0
    assert "[live 5/5] A/B on days" in out


def test_the_drift_week_is_flagged_and_the_clean_week_is_not(live):
    _, report, _ = live
    assert report["drift"] == {"clean": False, "drift": True}


def test_the_decision_follows_the_kits_rule_on_live_revenue(live):
    _, report, _ = live
    d = report["decision"]
    champion, challenger = d["champion"], d["challenger"]
    rule = find_project("recommender").retraining  # the project's margin and gate
    assert d["margin"] == rule.margin and d["min_ndcg"] == rule.min_gate
    # Both arms clear the gate and rank better than showing everyone the popular items.
    for arm in (champion, challenger):
        assert arm["ndcg"] >= rule.min_gate and arm["ndcg"] > report["ndcg"]["popularity"]
    need = champion["revenue"] + rule.margin * abs(champion["revenue"])
    assert d["promote"] == (challenger["revenue"] > need)
    # The same visits for both arms: one user count, and the reason quotes both revenues.
    assert champion["users"] == challenger["users"] > 0
    assert f"{challenger['revenue']:,.2f}" in d["reason"]
    assert f"{champion['revenue']:,.2f}" in d["reason"]


def test_nothing_is_left_running(live):
    _, report, workspace = live
    assert report["leftover_processes"] is False
    assert not marked_processes(str(workspace))
