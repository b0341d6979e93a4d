"""Acceptance on the fraud capstone: the reference earns full marks, the released kit a low score."""

import pytest

from grading import grade, new_config, release


@pytest.mark.integration
def test_the_reference_solution_gets_full_marks(repo, tmp_path):
    from fullcycle.spec import find_project

    cfg = new_config(tmp_path / "grading.yaml", scale="full")
    result = grade(
        repo / "starter_kits/fraud_detection",
        find_project("fraud_detection"),
        cfg,
        tmp_path / "out",
    )
    assert result["status"] == "graded", result["messages"]
    lost = [r for r in result["rubric"] if not r["passed"]]
    assert not lost, lost
    assert result["isolation"]["kind"] == "bubblewrap" and not result["isolation"]["reduced"]
    assert result["service"]["tree_gone"] and result["service"]["consistency"] == 1.0


@pytest.mark.integration
def test_the_released_kit_runs_and_scores_low_with_not_implemented_feedback(repo, tmp_path):
    from fullcycle.spec import find_project

    files = release(repo, tmp_path / "release")
    assert files
    text = "\n".join(p.read_text() for p in files if p.suffix in (".py", ".ipynb"))
    assert "BEGIN SOLUTION" not in text and "HistGradientBoostingClassifier(" not in text
    assert not list((tmp_path / "release").rglob("grading*.yaml"))
    cfg = new_config(tmp_path / "grading.yaml", scale="tiny")
    kit = tmp_path / "release" / "starter_kits" / "fraud_detection"
    result = grade(kit, find_project("fraud_detection"), cfg, tmp_path / "out")
    assert result["status"] == "notebook_failed"
    assert result["score"]["points"] == 0
    assert "not implemented yet" in result["messages"][0]
    feedback = (tmp_path / "out" / "feedback.md").read_text()
    assert "not implemented yet" in feedback


def test_a_grading_config_refuses_a_short_seed(tmp_path):
    from grading import GradingConfigError, load_config

    (tmp_path / "g.yaml").write_text("secret_seed: 'deadbeef'\n")
    with pytest.raises(GradingConfigError, match="needs at least 128"):
        load_config(tmp_path / "g.yaml")
    cfg = new_config(tmp_path / "new.yaml")
    assert len(cfg.secret_seed) == 32 and (tmp_path / "new.yaml").stat().st_mode & 0o077 == 0
