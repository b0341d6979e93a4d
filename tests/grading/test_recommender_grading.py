"""Acceptance on the recommender capstone: the same grader, a second project, nothing special-cased.

The reference kit earns full marks on a hidden world; the released kit runs to a clean 0 that
says what is not written yet. Secret seeds are fixed (a test never draws one); grading the
reference under many fresh seeds is ``benchmarks/grade_seeds.py --project recommender``.
"""

import pytest
from kits import REPO, SEEDS, config

from grading import grade

KIT = REPO / "starter_kits" / "recommender"


def _spec():
    from fullcycle.spec import find_project

    return find_project("recommender", REPO)


@pytest.mark.integration
def test_the_reference_recommender_gets_full_marks(tmp_path):
    spec = _spec()
    result = grade(KIT, spec, config(tmp_path, seed=SEEDS[1], scale="tiny"), tmp_path / "out")
    assert result["status"] == "graded", result["messages"]
    lost = [r for r in result["rubric"] if not r["passed"]]
    assert not lost, lost
    total = sum(line.points for line in spec.rubric)
    assert result["score"]["points"] == result["score"]["max_points"] == total
    m = result["metrics"]
    assert m["ndcg@10.vs_reference"] == 1.0  # the reference is its own measure, exactly
    assert m["ndcg@10"] > 2 * m["baseline_ndcg@10"]  # far above popularity for everyone
    assert 0 < m["share_of_oracle"] < 1 and m["value_vs_baseline"] > 1.1
    assert result["service"]["tree_gone"] and result["service"]["consistency"] == 1.0
    assert result["monitoring"]["flags_drift"] == 1 and result["monitoring"]["quiet_on_clean"] == 1
    assert result["isolation"]["kind"] == "bubblewrap" and not result["isolation"]["reduced"]


@pytest.mark.integration
def test_the_released_recommender_kit_runs_to_a_clean_zero(learner_release, tmp_path):
    files, released = learner_release
    kit = released / "starter_kits" / "recommender"
    text = "\n".join(p.read_text() for p in kit.iterdir() if p.suffix in (".py", ".ipynb"))
    assert files and "BEGIN SOLUTION" not in text and "np.linalg" not in text
    result = grade(kit, _spec(), config(tmp_path, scale="tiny"), tmp_path / "out")
    assert result["status"] == "notebook_failed"
    assert result["score"]["points"] == 0
    assert "not implemented yet" in result["messages"][0]
    for line in result["rubric"]:
        assert line["points"] == 0 and "not implemented yet" in line["feedback"], line
    assert "not implemented yet" in (tmp_path / "out" / "feedback.md").read_text()
