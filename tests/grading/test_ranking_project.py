"""Is the grader generic? A top-k ranking project, from files, graded end to end."""

import contextlib
import gc
import json
import os

import ranking

from grading import grade, load_config


def test_a_good_ranking_submission_gets_full_marks(ranking_env, tmp_path):
    spec, config_path, _ = ranking_env
    kit = ranking.write_kit(tmp_path / "kit")
    result = grade(kit, spec, load_config(config_path), tmp_path / "out")
    assert result["status"] == "graded", result["messages"]
    assert result["score"]["points"] == result["score"]["max_points"], result["rubric"]
    m = result["metrics"]
    assert m["ndcg@5"] > 0.6 and m["value_vs_baseline"] > 1.3
    assert m["service.consistency"] == 1.0 and m["service.bad_input_4xx"] == 1.0
    assert result["service"]["tree_gone"] is True
    on_disk = json.loads((tmp_path / "out" / "result.json").read_text())
    assert on_disk["schema"] == "fullcycle.grading.result/1"
    assert on_disk["score"] == result["score"]
    for name in ("feedback.html", "feedback.md", "executed.ipynb"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    assert "data:image/png;base64" in (tmp_path / "out" / "feedback.html").read_text()


def test_popularity_only_loses_the_lift_points_with_feedback(ranking_env, tmp_path):
    spec, config_path, _ = ranking_env
    cells = [
        """\
import pandas as pd
score = pd.read_parquet(score_path)
pd.DataFrame({"CANDIDATE_ID": score["CANDIDATE_ID"], "score": score["POPULARITY"].clip(0, 1)}).to_csv(predictions_path, index=False)
"""
    ]
    kit = ranking.write_kit(tmp_path / "kit", cells=cells, service=None, monitor=None)
    result = grade(kit, spec, load_config(config_path), tmp_path / "out")
    lift = next(r for r in result["rubric"] if r["id"] == "lift")
    assert lift["points"] == 0 and "popularity baseline" in lift["feedback"]
    assert result["score"]["points"] < 3


def open_descriptors() -> list[str]:
    """What this process's open descriptors point at (after a garbage collection)."""
    gc.collect()
    out = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor is gone by now
            out.append(os.readlink(f"/proc/self/fd/{fd}"))
    return out


def test_grading_twice_gives_the_same_result_and_leaves_nothing_open(ranking_env, tmp_path):
    """A grader grades submission after submission in one process (a cohort's worker): the
    second grading leaves no more descriptors open than the first (kernel clients' ZeroMQ
    contexts and sockets were left open, some 30 descriptors a grading)."""
    spec, config_path, _ = ranking_env
    kit = ranking.write_kit(tmp_path / "kit", service=None, monitor=None)
    cfg = load_config(config_path)
    a = grade(kit, spec, cfg, tmp_path / "a")
    after_one = open_descriptors()
    b = grade(kit, spec, cfg, tmp_path / "b")
    after_two = open_descriptors()
    assert len(after_two) <= len(after_one), sorted(set(after_two) - set(after_one))
    assert a["score"] == b["score"] and a["metrics"] == b["metrics"]
    pa, pb = a["provenance"], b["provenance"]
    for key in ("submission", "data_fingerprint", "spec_sha256", "seed_sha256", "packages"):
        assert pa[key] == pb[key]
    assert [s["step"] for s in pa["steps"]][:3] == ["prepare", "execute", "collect"]


def test_a_probe_the_config_turns_off_is_not_measured_and_weighs_nothing(ranking_env, tmp_path):
    spec, config_path, _ = ranking_env
    cfg = load_config(config_path)
    cfg = cfg.model_copy(
        update={
            "service": cfg.service.model_copy(update={"enabled": False}),
            "monitoring": cfg.monitoring.model_copy(update={"enabled": False}),
        }
    )
    kit = ranking.write_kit(tmp_path / "kit")
    result = grade(kit, spec, cfg, tmp_path / "out")
    off = [r for r in result["rubric"] if r["metric"].split(".")[0] in ("service", "monitoring")]
    assert len(off) == 5
    for line in off:
        assert line["max_points"] == 0 and line["passed"] is None and not line["measured"]
        assert line["feedback"].startswith("not measured: the ") and "is off" in line["feedback"]
    assert result["score"] == {"points": 4.0, "max_points": 4.0}  # ndcg and lift, all earned
    assert "not measured" in (tmp_path / "out" / "feedback.md").read_text()
