"""Acceptance on the fraud capstone: the reference earns full marks, the released kit a low score.

Secret seeds are fixed (two of them, one graded at small scale and one at tiny): a test
never draws one. Grading the reference under many fresh seeds at full scale is
``benchmarks/grade_seeds.py``.
"""

import pytest
from kits import KIT, REPO, SEEDS, config, fraud_spec

from grading import grade, new_config


@pytest.mark.integration
@pytest.mark.parametrize(
    ("seed", "scale"), [(SEEDS[0], "small"), (SEEDS[1], "tiny")], ids=["seed0-small", "seed1-tiny"]
)
def test_the_reference_solution_gets_full_marks(tmp_path, seed, scale):
    cfg = config(tmp_path, seed=seed, scale=scale)
    result = grade(KIT, fraud_spec(), cfg, tmp_path / "out")
    assert result["status"] == "graded", result["messages"]
    lost = [r for r in result["rubric"] if not r["passed"]]
    assert not lost, lost
    assert result["score"]["points"] == result["score"]["max_points"] == 25
    assert result["isolation"]["kind"] == "bubblewrap" and not result["isolation"]["reduced"]
    assert result["service"]["tree_gone"] and result["service"]["consistency"] == 1.0
    # The bars relative to the reference: the reference is its own measure, exactly.
    assert result["metrics"]["roc_auc.vs_reference"] == 1.0
    assert not result["reference"]["cached"]


@pytest.mark.integration
def test_the_reference_figures_are_cached_per_seed(tmp_path):
    from types import SimpleNamespace

    from fullcycle.holdout import build_holdout
    from grading.reference import cache_key, reference_figures, reference_kit

    spec = fraud_spec()
    cfg = config(tmp_path, scale="tiny")
    job = SimpleNamespace(spec=spec, config=cfg, holdout=build_holdout(spec, cfg.seed_int, "tiny"))
    first = reference_figures(job)
    assert not first["cached"] and 0.5 < first["figures"]["roc_auc"] <= 1
    again = reference_figures(job)
    assert again["cached"] and again["figures"] == first["figures"]
    other = config(tmp_path / "other", seed=SEEDS[1], scale="tiny")
    assert cache_key(other, spec, reference_kit(spec)) != first["key"]
    assert cache_key(cfg.model_copy(update={"scale": "small"}), spec, KIT) != first["key"]


def test_relative_figures_are_ratios_and_say_why_when_they_mean_nothing():
    from grading.reference import relative_figures

    got, why = relative_figures(
        {"roc_auc": 0.85, "share_of_oracle": 0.3, "card_precision@100": 0.2},
        {"roc_auc": 0.87, "share_of_oracle": -0.1},
        ["roc_auc.vs_reference", "share_of_oracle.vs_reference", "card_precision@100.vs_reference"],
    )
    assert got == {"roc_auc.vs_reference": pytest.approx(0.85 / 0.87)}
    assert "means nothing" in why["share_of_oracle.vs_reference"]
    assert "no card_precision@100" in why["card_precision@100.vs_reference"]


@pytest.mark.integration
def test_the_released_kit_runs_and_scores_low_with_not_implemented_feedback(
    learner_release, tmp_path
):
    files, released = learner_release
    assert files
    text = "\n".join(p.read_text() for p in files if p.suffix in (".py", ".ipynb"))
    assert "BEGIN SOLUTION" not in text and "RandomForestClassifier(" not in text
    assert not list(released.rglob("grading*.yaml"))
    cfg = config(tmp_path, scale="tiny")  # a fixed secret seed: the outcome is repeatable
    kit = released / "starter_kits" / "fraud_detection"
    result = grade(kit, fraud_spec(), cfg, tmp_path / "out")
    assert result["status"] == "notebook_failed"
    assert result["score"]["points"] == 0
    assert "not implemented yet" in result["messages"][0]
    # Every stage is probed on its own, and each line says which stub stopped it.
    for line in result["rubric"]:
        assert line["points"] == 0 and "not implemented yet" in line["feedback"], line
    feedback = (tmp_path / "out" / "feedback.md").read_text()
    assert "not implemented yet" in feedback


def test_a_grading_config_refuses_a_short_seed(tmp_path):
    from grading import GradingConfigError, load_config

    (tmp_path / "g.yaml").write_text("secret_seed: 'deadbeef'\n")
    with pytest.raises(GradingConfigError, match="needs at least 128"):
        load_config(tmp_path / "g.yaml")
    cfg = new_config(tmp_path / "new.yaml")
    assert len(cfg.secret_seed) == 32 and (tmp_path / "new.yaml").stat().st_mode & 0o077 == 0


def test_the_project_rubric_is_the_one_graded_here():
    """projects/fraud_detection/project.yaml and tests/grading/fraud_rubric.yaml say the same."""
    from fullcycle.spec import find_project

    def lines(spec):
        return [(c.id, c.metric, c.bar, c.partial_from, c.points) for c in spec.rubric]

    assert lines(find_project("fraud_detection", REPO)) == lines(fraud_spec())
