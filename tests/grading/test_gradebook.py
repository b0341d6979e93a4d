"""Do capstone results land in nbgrader's gradebook and feedback folder, beside the weekly ones?"""

from __future__ import annotations

import csv
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import nbformat
import psutil
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from grading.gradebook import GradebookError, check_student_id, export_to_gradebook

COURSE_ID = "ml101"
BIN = Path(sys.executable).parent


def result(learner, auc, value, *, status="graded", at="2025-03-01T12:00:00+00:00", **sub):
    """A result.json as grading/report.py writes it: a rubric of two checks and one turned off."""
    submission = {"name": f"{learner}.zip", "sha256": "0" * 64, "learner": learner}
    submission["assignment"] = sub.get("assignment", "capstone")
    return {
        "project": "fraud_detection",
        "status": status,
        "graded_at": at,
        "score": {"points": auc + value, "max_points": 5.0},
        "rubric": [
            {"id": "auc", "metric": "roc_auc.vs_reference", "points": auc, "max_points": 2.0},
            {"id": "value", "metric": "share_of_oracle", "points": value, "max_points": 3.0},
            {"id": "drift", "metric": "monitoring.drift", "points": 0.0, "max_points": 0.0},
        ],
        "submission": submission,
    }


@pytest.fixture
def course(tmp_path) -> Path:
    root = tmp_path / "course"
    root.mkdir()
    (root / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.course_id = {COURSE_ID!r}\n"
    )
    return root


def gradebook(course: Path):
    from nbgrader.api import Gradebook

    return Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id=COURSE_ID)


def capstone(course: Path, assignment: str = "capstone") -> dict:
    """Student -> (score, max score, flagged) of ``assignment`` in the course's gradebook."""
    with gradebook(course) as gb:
        out = {}
        for sub in gb.assignment_submissions(assignment):
            (nb,) = sub.notebooks
            out[sub.student.id] = (sub.score, sub.max_score, nb.flagged)
        return out


# --- learner ids -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "learner",
    ["", " alice", "alice ", "a+b", "a*b", "a?b", "a[1]", "a/b", "a\\b", "..", ".hidden", "a,b",
     'a"b', "a\nb", "a\x00b", "x" * 129, None, 42],
)  # fmt: skip
def test_ids_nbgrader_would_refuse_are_refused_with_the_fix(learner):
    """Is an id nbgrader refuses or mishandles refused, naming the id and the fix?"""
    with pytest.raises(GradebookError, match="student id.*Fix: give the learner an id"):
        check_student_id(learner)


@pytest.mark.parametrize(
    "learner", ["alice", "s12345", "ana.maria@uni.edu", "jean-luc_2", "x" * 128]
)
def test_ordinary_ids_are_kept_as_they_are(learner):
    assert check_student_id(learner) == learner


def test_a_refused_id_stops_the_export_before_anything_is_written(course):
    """Is the whole export checked first, so a bad id leaves the gradebook untouched?"""
    results = [result("alice", 2, 3), result("eve+1", 2, 3)]
    with pytest.raises(GradebookError, match=r"(?s)nothing was written.*'eve\+1'.*'\+'"):
        export_to_gradebook(results, course_dir=course, assignment="capstone")
    assert not (course / "gradebook.db").exists()

    summary = export_to_gradebook(
        results, course_dir=course, assignment="capstone", skip_invalid_learners=True
    )
    assert summary.written == ["alice"]
    assert list(summary.skipped) == ["eve+1"] and "'+'" in summary.skipped["eve+1"]
    assert capstone(course) == {"alice": (5.0, 5.0, False)}


def test_results_without_learner_or_of_another_assignment_are_refused(course):
    lone = result("alice", 2, 3)
    lone["submission"]["learner"] = None
    other = result("bob", 2, 3, assignment="week9")
    with pytest.raises(GradebookError) as err:
        export_to_gradebook([lone, other], course_dir=course, assignment="capstone")
    assert "has no learner" in str(err.value)
    assert "for assignment 'week9', not 'capstone'" in str(err.value)


def test_a_course_id_is_required(tmp_path):
    """nbgrader keys assignments by course: is a course without one refused with the fix?"""
    with pytest.raises(GradebookError, match="c.CourseDirectory.course_id"):
        export_to_gradebook([result("alice", 2, 3)], course_dir=tmp_path, assignment="capstone")
    summary = export_to_gradebook(
        [result("alice", 2, 3)], course_dir=tmp_path, assignment="capstone", course_id="c2"
    )
    assert summary.course_id == "c2"


def test_feedback_lands_in_nbgrader_folder_and_a_regrade_without_one_clears_it(course, tmp_path):
    """Is feedback.html copied to feedback/<student>/<assignment>/<notebook>.html, never stale?"""
    page = tmp_path / "feedback.html"
    page.write_text("<p>first result</p>")
    summary = export_to_gradebook(
        [result("alice", 0, 0, status="timeout")],
        course_dir=course,
        assignment="capstone",
        notebook="capstone",
        feedback={"alice": page},
    )
    dest = course / "feedback" / "alice" / "capstone" / "capstone.html"
    assert summary.feedback == {"alice": dest} and dest.read_text() == "<p>first result</p>"

    summary = export_to_gradebook(
        [result("alice", 2, 3, at="2025-03-02T00:00:00+00:00")],
        course_dir=course,
        assignment="capstone",
        notebook="capstone",
        feedback={"alice": tmp_path / "nope.html"},
    )
    assert summary.missing_feedback == {"alice": tmp_path / "nope.html"}
    assert not dest.exists()
    assert capstone(course)["alice"] == (5.0, 5.0, False)


# --- the gradebook ------------------------------------------------------------------------


def test_grade_cells_follow_the_rubric_and_every_status_lands(course):
    """One autograded cell per weighted check; are rejected and reduced-isolation ones flagged?"""
    summary = export_to_gradebook(
        [
            result("alice", 2, 3),
            result("bob", 0, 0, status="rejected"),
            result("carol", 1.5, 2, status="graded:reduced_isolation"),
        ],
        course_dir=course,
        assignment="capstone",
    )
    assert summary.grade_cells == {"auc": 2.0, "value": 3.0}  # "drift" was turned off: no cell
    assert summary.flagged == ["bob", "carol"]
    with gradebook(course) as gb:
        nb = gb.find_notebook("pipeline", "capstone")
        cells = {c.name: (c.max_score, c.cell_type) for c in nb.grade_cells}
        assert cells == {"auc": (2.0, "code"), "value": (3.0, "code")}
        grade = gb.find_grade("value", "pipeline", "capstone", "carol")
        assert (grade.auto_score, grade.needs_manual_grade) == (2.0, False)
    assert capstone(course) == {
        "alice": (5.0, 5.0, False),
        "bob": (0.0, 5.0, True),
        "carol": (3.5, 5.0, True),
    }


def test_a_regrade_replaces_the_learners_scores(course):
    """Does the current result replace the earlier one, manual scores from formgrader included?"""
    export_to_gradebook(
        [result("alice", 0, 0, status="timeout"), result("bob", 1, 1)],
        course_dir=course,
        assignment="capstone",
    )
    with gradebook(course) as gb:
        gb.find_grade("auc", "pipeline", "capstone", "alice").manual_score = 1.0
        gb.db.commit()
    assert capstone(course)["alice"] == (1.0, 5.0, True)

    summary = export_to_gradebook(
        [result("alice", 2, 2.5, at="2025-03-02T08:00:00+00:00")],
        course_dir=course,
        assignment="capstone",
    )
    assert summary.replaced == ["alice"] and summary.added_students == []
    assert capstone(course) == {"alice": (4.5, 5.0, False), "bob": (2.0, 5.0, False)}
    with gradebook(course) as gb:
        assert gb.find_grade("auc", "pipeline", "capstone", "alice").manual_score is None
        assert len(gb.find_submission("capstone", "alice").notebooks[0].grades) == 2


def test_the_newest_result_of_a_learner_counts(course):
    """Of two results of one learner, does the later graded_at win, whatever the order?"""
    newer = result("alice", 2, 3, at="2025-03-02T09:00:00+01:00")
    older = result("alice", 0, 0, status="notebook_failed", at="2025-03-02T07:59:00+00:00")
    export_to_gradebook([newer, older], course_dir=course, assignment="capstone")
    assert capstone(course) == {"alice": (5.0, 5.0, False)}


def test_a_changed_rubric_is_refused_once_scores_exist(course):
    export_to_gradebook([result("alice", 2, 3)], course_dir=course, assignment="capstone")
    changed = result("bob", 2, 3)
    changed["rubric"][0]["max_points"] = 4.0
    with pytest.raises(
        GradebookError, match=r"rubric changed.*auc: 2.0 vs 4.0.*db assignment remove"
    ):
        export_to_gradebook([changed], course_dir=course, assignment="capstone")
    mixed = [result("carol", 2, 3, assignment=None), changed]
    mixed[1]["submission"]["assignment"] = None
    with pytest.raises(GradebookError, match="graded with different rubrics"):
        export_to_gradebook(mixed, course_dir=course, assignment="capstone2")


def test_a_result_stopped_before_its_rubric_scores_zero(course):
    stopped = result("bob", 0, 0, status="grader_error")
    stopped["rubric"] = []
    export_to_gradebook([result("alice", 2, 3), stopped], course_dir=course, assignment="capstone")
    assert capstone(course)["bob"] == (0.0, 5.0, True)


def test_a_weekly_assignment_is_never_overwritten(course):
    """Is an assignment name taken by an nbgrader assignment of its own refused?"""
    export_to_gradebook([result("alice", 2, 3)], course_dir=course, assignment="capstone")
    with gradebook(course) as gb:
        gb.add_assignment("week1")
        gb.add_notebook("week1", "week1")
    with pytest.raises(GradebookError, match="'week1' .* nbgrader assignment of its own"):
        export_to_gradebook(
            [result("alice", 2, 3, assignment="week1")], course_dir=course, assignment="week1"
        )


def test_an_outdated_gradebook_schema_is_refused_with_the_fix(course):
    export_to_gradebook([result("alice", 2, 3)], course_dir=course, assignment="capstone")
    with sqlite3.connect(course / "gradebook.db") as db:
        db.execute("UPDATE alembic_version SET version_num = '282d30a0218e'")
    with pytest.raises(GradebookError, match="282d30a0218e.*run `nbgrader db upgrade`"):
        export_to_gradebook([result("alice", 2, 3)], course_dir=course, assignment="capstone")


def test_the_submitted_timestamp_is_the_submissions(course):
    """Formgrader pairs submitted/ and gradebook by timestamp: is nbgrader's timestamp.txt used?"""
    folder = course / "submitted" / "alice" / "capstone"
    folder.mkdir(parents=True)
    (folder / "timestamp.txt").write_text("2025-02-28 17:30:00.000000 UTC")
    hostile = course / "submitted" / "bob" / "capstone"
    hostile.mkdir(parents=True)
    (hostile / "timestamp.txt").write_text("not a time " * 10_000)
    export_to_gradebook(
        [result("alice", 2, 3), result("bob", 2, 3)], course_dir=course, assignment="capstone"
    )
    with gradebook(course) as gb:
        assert str(gb.find_submission("capstone", "alice").timestamp) == "2025-02-28 17:30:00"
        assert gb.find_submission("capstone", "bob").timestamp is None


# --- nbgrader's own command line on a temporary course ------------------------------------


def nbgrader(course: Path, *args: str) -> str:
    """Run nbgrader's CLI in ``course`` with the venv's bin first on PATH (it runs `alembic`)."""
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "JUPYTER_CONFIG_DIR": str(course.parent / "jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(course.parent / "jupyter-runtime"),
    }
    proc = subprocess.run(
        [str(BIN / "nbgrader"), *args],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def weekly_assignment(course: Path) -> None:
    """week1 the nbgrader way: a source notebook with a graded test, generated, one autograded."""
    meta = {"schema_version": 3, "task": False}
    nb = new_notebook(
        cells=[
            new_code_cell(
                "def add(a, b):\n    ### BEGIN SOLUTION\n    return a + b\n    ### END SOLUTION",
                metadata={"nbgrader": {**meta, "grade": False, "solution": True,
                                       "locked": False, "grade_id": "add"}},
            ),
            new_code_cell(
                "assert add(1, 2) == 3",
                metadata={"nbgrader": {**meta, "grade": True, "solution": False, "locked": True,
                                       "grade_id": "test_add", "points": 1}},
            ),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}},
    )  # fmt: skip
    (course / "source" / "week1").mkdir(parents=True)
    nbformat.write(nb, course / "source" / "week1" / "week1.ipynb")
    (course / "students.csv").write_text(
        "id,last_name,first_name\nalice,Liddell,Alice\nbob,Builder,Bob\n"
    )
    nbgrader(course, "db", "student", "import", "students.csv")
    nbgrader(course, "generate_assignment", "week1")
    done = nbformat.read(course / "release" / "week1" / "week1.ipynb", as_version=4)
    done.cells[0].source = "def add(a, b):\n    return a + b"
    (course / "submitted" / "alice" / "week1").mkdir(parents=True)
    nbformat.write(done, course / "submitted" / "alice" / "week1" / "week1.ipynb")
    nbgrader(course, "autograde", "week1")


@pytest.mark.integration
@pytest.mark.slow
def test_nbgrader_export_shows_the_capstone_beside_the_weekly_assignment(course, tmp_path):
    """Does `nbgrader export` list each student's capstone score and max beside week1's?"""
    weekly_assignment(course)
    feedback = {}
    for learner in ("alice", "bob", "carol"):
        path = tmp_path / "results" / learner / "feedback.html"
        path.parent.mkdir(parents=True)
        path.write_text(f"<!doctype html><title>feedback</title><p>feedback of {learner}</p>")
        feedback[learner] = path

    summary = export_to_gradebook(
        [
            result("alice", 2, 3),  # full marks
            result("bob", 0, 0, status="notebook_failed"),
            result("carol", 1, 2.5),  # not yet in the gradebook
        ],
        course_dir=course,
        assignment="capstone",
        feedback=feedback,
    )
    assert summary.added_students == ["carol"]

    nbgrader(course, "export", "--to", "grades.csv")
    with open(course / "grades.csv", newline="") as fh:
        rows = {
            (r["assignment"], r["student_id"]): (float(r["score"]), float(r["max_score"]))
            for r in csv.DictReader(fh)
        }
    assert rows == {
        ("week1", "alice"): (1.0, 1.0),
        ("week1", "bob"): (0.0, 1.0),
        ("week1", "carol"): (0.0, 1.0),
        ("capstone", "alice"): (5.0, 5.0),
        ("capstone", "bob"): (0.0, 5.0),
        ("capstone", "carol"): (3.5, 5.0),
    }

    listed = nbgrader(course, "db", "student", "list")
    assert "There are 3 students in the database" in listed
    assert "carol (None, None)" in listed

    for learner in ("alice", "bob", "carol"):
        dest = course / "feedback" / learner / "capstone" / "pipeline.html"
        assert dest.read_text() == feedback[learner].read_text()
        assert summary.feedback[learner] == dest

    # formgrader's backend: the capstone listed beside week1, and each student's scores shown
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    api = NbGraderAPI(coursedir=CourseDirectory(root=str(course), course_id=COURSE_ID))
    assert sorted(a["name"] for a in api.get_assignments()) == ["capstone", "week1"]
    mine = {s["name"]: (s["score"], s["max_score"]) for s in api.get_student_submissions("carol")}
    assert mine["capstone"] == (3.5, 5.0)
    shown = {s["student"]: s["score"] for s in api.get_submissions("capstone")}
    assert shown == {"alice": 5.0, "bob": 0.0, "carol": 3.5}

    left = [
        p.info["pid"]
        for p in psutil.process_iter(["pid", "cmdline"])
        if str(tmp_path) in " ".join(p.info["cmdline"] or [])
    ]
    assert left == [], f"processes left behind: {left}"
