"""The course: twelve weeks in curriculum/, run through nbgrader's own cycle with three fake learners.

Two course folders (half the weeks each, run at the same time) hold a copy of
the repository's ``nbgrader_config.py`` and their weeks of ``curriculum/``.
nbgrader's CLI generates every week's release; week 1 goes the whole way
through an exchange (release, each learner fetches and submits under their own
user name, collect); the other weeks' submissions are placed where ``collect``
puts them. Then one ``autograde`` and one ``generate_feedback`` over the
folder's weeks, the capstone's scores are exported into week 1's gradebook,
and ``nbgrader export`` is read.

The learners (``course_learners.py``): ``reference`` submits the source
notebooks, lesson and exercise, so autograde executes every notebook of the
course top to bottom; ``untouched`` submits the released exercise as fetched;
``cheater`` submits the released exercise with the week's cheat.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import psutil
import pytest

from grading.course import COURSE_DIR, KEY, sync, weeks
from grading.gradebook import export_to_gradebook

from course_learners import CHEATS, cheat_for, is_test_cell

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COURSE_ID = "fullcycle-ci"
LEARNERS = ("reference", "untouched", "cheater")
WEEKS = [p.name for p in weeks(REPO)]
#: The kits' modules, which a lesson never imports (in a learner's release they are stubs).
KIT_MODULES = sorted({p.stem for p in (REPO / "starter_kits").glob("*/*.py")})
#: Each learner's capstone points (of 25), as the cohort run graded them.
CAPSTONE = dict(zip(LEARNERS, (25.0, 2.0, 0.0), strict=True))
TIMESTAMP = "2026-11-20 12:00:00.000000 UTC"


def nbgrader(cwd: Path, *args: str) -> str:
    """Run nbgrader's CLI in ``cwd``; its stderr (the log), or a failure showing it."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        [str(BIN / "nbgrader"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{done.stderr[-4000:]}"
    return done.stderr


def week_number(week: str) -> int:
    return int(week[4:6])


def submission(course: Path, week: str, learner: str) -> dict[str, nbformat.NotebookNode]:
    """The notebooks ``learner`` hands in for ``week``, by file name."""
    if learner == "reference":
        source = course / COURSE_DIR / week
        return {p.name: nbformat.read(p, as_version=4) for p in sorted(source.glob("*.ipynb"))}
    released = course / "workspace/course/release" / week / "exercise.ipynb"
    nb = nbformat.read(released, as_version=4)
    if learner == "cheater":
        nb = CHEATS[cheat_for(week_number(week))](nb)
    return {"exercise.ipynb": nb}


def course_processes(course: Path) -> list[psutil.Process]:
    """Live processes (kernels included) working in the course folder."""
    out = []
    for p in psutil.process_iter(["cwd", "status"]):
        cwd = p.info.get("cwd") or ""
        if cwd.startswith(str(course)) and p.info.get("status") != psutil.STATUS_ZOMBIE:
            out.append(p)
    return out


def run_course(course: Path, weeks: list[str], exchange: Path | None) -> None:
    """nbgrader's cycle on ``weeks`` in ``course``; the first week through ``exchange`` if given."""
    course.mkdir(parents=True)
    shutil.copyfile(REPO / "nbgrader_config.py", course / "nbgrader_config.py")
    for week in weeks:
        shutil.copytree(REPO / COURSE_DIR / week, course / COURSE_DIR / week)
    on_exchange = [f"--CourseDirectory.course_id={COURSE_ID}"]
    if exchange:
        on_exchange.append(f"--Exchange.root={exchange}")
    nbgrader(course, "generate_assignment", "week*", "--force", *on_exchange)
    placed = weeks
    if exchange:  # the first week as learners and instructor do it
        first, placed = weeks[0], weeks[1:]
        nbgrader(course, "release_assignment", first, *on_exchange)
        for learner in LEARNERS:
            home = exchange.parent / "learners" / learner
            home.mkdir(parents=True)
            nbgrader(home, "fetch_assignment", first, *on_exchange)
            for name, nb in submission(course, first, learner).items():
                nbformat.write(nb, home / first / name)
            if learner != "reference":
                (home / first / "lesson.ipynb").unlink()  # hand in the exercise only
            # Every learner here is the same OS user: name them as a JupyterHub login would.
            nbgrader(home, "submit", first, *on_exchange, f"--CourseDirectory.student_id={learner}")
        nbgrader(course, "collect", first, *on_exchange)
    for week in placed:  # where `collect` puts submissions
        for learner in LEARNERS:
            dest = course / "workspace/course/submitted" / learner / week
            dest.mkdir(parents=True)
            for name, nb in submission(course, week, learner).items():
                nbformat.write(nb, dest / name)
            (dest / "timestamp.txt").write_text(TIMESTAMP)
    nbgrader(course, "autograde", "week*", "--force", *on_exchange)
    nbgrader(course, "generate_feedback", "week*", "--force", *on_exchange)
    if exchange:  # the capstone's scores, as a cohort run hands them over, into the same gradebook
        results = [capstone_result(learner, points) for learner, points in CAPSTONE.items()]
        export_to_gradebook(results, course_dir=course, assignment="capstone", course_id=COURSE_ID)
    nbgrader(course, "export", "--to", str(course / "grades.csv"), *on_exchange)


@pytest.fixture(scope="module")
def courses(tmp_path_factory) -> dict[str, Path]:
    """Week -> the course folder that ran it through nbgrader's cycle (and "capstone" -> the first).

    The weeks are split over two course folders, each with its own gradebook, run at the
    same time (nbgrader autogrades one notebook at a time, and this machine has two cores).
    The first holds week 1, which goes through the exchange, and the capstone's scores.
    """
    base = tmp_path_factory.mktemp("course")
    (base / "exchange").mkdir()
    halves = [WEEKS[0::2], WEEKS[1::2]]
    folders = [base / "a", base / "b"]
    with ThreadPoolExecutor(2) as pool:
        runs = [
            pool.submit(run_course, folder, weeks, base / "exchange" if i == 0 else None)
            for i, (folder, weeks) in enumerate(zip(folders, halves, strict=True))
        ]
        for run in runs:
            run.result()
    yield {"capstone": folders[0]} | {
        w: f for f, weeks in zip(folders, halves, strict=True) for w in weeks
    }
    left = [p for folder in folders for p in course_processes(folder)]
    for p in left:
        p.kill()
    assert not left, f"processes left in the course folders: {[p.cmdline() for p in left]}"


def capstone_result(learner: str, points: float) -> dict:
    """A capstone result as the cohort's results store holds it (result.json's shape)."""
    return {
        "project": "fraud_detection",
        "status": "graded",
        "graded_at": "2026-11-24T12:00:00+00:00",
        "score": {"points": points, "max_points": 25.0},
        "rubric": [
            {"id": "all", "metric": "share_of_oracle", "points": points, "max_points": 25.0}
        ],
        "submission": {
            "name": f"{learner}.zip",
            "sha256": "0" * 64,
            "learner": learner,
            "assignment": "capstone",
        },
    }


@pytest.fixture(scope="module")
def grades(courses) -> dict[tuple[str, str], tuple[float, float]]:
    """(assignment, learner) -> (score, max score), from each course's ``nbgrader export``."""
    out = {}
    for folder in set(courses.values()):
        with open(folder / "grades.csv", newline="") as fh:
            for r in csv.DictReader(fh):
                out[(r["assignment"], r["student_id"])] = (float(r["score"]), float(r["max_score"]))
    return out


def autograded(course: Path, learner: str, week: str, name: str = "exercise.ipynb"):
    return nbformat.read(
        course / "workspace/course/autograded" / learner / week / name, as_version=4
    )


# --- the course as written ---------------------------------------------------------------


def test_the_course_has_twelve_weeks_each_a_lesson_and_an_exercise():
    assert [week_number(w) for w in WEEKS][:12] == list(range(1, 13)), WEEKS
    for week in WEEKS:
        assert sorted(p.name for p in (REPO / COURSE_DIR / week).glob("*.ipynb")) == [
            "exercise.ipynb",
            "lesson.ipynb",
        ], week


@pytest.mark.parametrize("week", WEEKS)
def test_each_exercise_is_autograded_with_hidden_tests(week):
    """Does the exercise have points, and does every test cell hide tests on the essentials?"""
    nb = nbformat.read(REPO / COURSE_DIR / week / "exercise.ipynb", as_version=4)
    tests = [c for c in nb.cells if is_test_cell(c)]
    assert tests, f"{week}: no autograded test cell"
    assert sum(c.metadata["nbgrader"]["points"] for c in tests) > 0
    bare = [
        c.metadata["nbgrader"]["grade_id"]
        for c in tests
        if "### BEGIN HIDDEN TESTS" not in c.source
    ]
    assert not bare, f"{week}: test cells without hidden tests: {bare}"
    ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata]
    assert len(ids) == len(set(ids)), f"{week}: duplicate grade ids"


@pytest.mark.parametrize("week", WEEKS)
def test_each_lesson_ends_where_its_code_goes_and_never_imports_the_kit(week):
    nb = nbformat.read(REPO / COURSE_DIR / week / "lesson.ipynb", as_version=4)
    assert not any("nbgrader" in c.metadata for c in nb.cells), f"{week}: a lesson is not graded"
    headings = [
        c.source for c in nb.cells if c.cell_type == "markdown" and "## Where this goes" in c.source
    ]
    assert headings, f"{week}: the lesson does not end with 'Where this goes in the capstone'"
    kit_import = re.compile(rf"^\s*(from|import)\s+({'|'.join(KIT_MODULES)})\b", re.M)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert not kit_import.search(code), f"{week}: the lesson imports a kit module"


def test_kit_cells_are_in_step_with_the_kit():
    """Is every exercise cell copied from the kit the kit's current text (`fullcycle course`)?"""
    stale = sync(REPO, check=True)
    assert not stale, "run `fullcycle course`: " + "; ".join(map(str, stale))
    synced = [
        c
        for week in WEEKS
        for c in nbformat.read(REPO / COURSE_DIR / week / "exercise.ipynb", as_version=4).cells
        if KEY in c.metadata
    ]
    assert len(synced) >= 6, "most weeks build a kit stage from the kit's own definitions"


# --- nbgrader's cycle ----------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("week", WEEKS)
def test_the_reference_gets_full_marks_and_every_notebook_runs(courses, grades, week):
    score, max_score = grades[(week, "reference")]
    assert max_score > 0 and score == max_score, f"{week}: reference {score}/{max_score}"
    for name in ("lesson.ipynb", "exercise.ipynb"):
        nb = autograded(courses[week], "reference", week, name)
        errors = [
            (i, o.get("ename"), o.get("evalue"))
            for i, c in enumerate(nb.cells)
            if c.cell_type == "code"
            for o in c.outputs
            if o.output_type == "error"
        ]
        assert not errors, f"{week}/{name} did not run top to bottom: {errors}"


@pytest.mark.integration
@pytest.mark.parametrize("week", WEEKS)
def test_the_untouched_release_scores_zero_with_feedback(courses, grades, week):
    assert grades[(week, "untouched")] == (0.0, grades[(week, "reference")][1])
    feedback = courses[week] / "workspace/course/feedback/untouched" / week / "exercise.html"
    assert feedback.is_file(), f"{week}: no feedback for the untouched release"
    assert "not implemented yet" in feedback.read_text()


@pytest.mark.integration
@pytest.mark.parametrize("week", WEEKS)
def test_the_cheater_gets_no_points_the_tests_deny(courses, grades, week):
    cheat = cheat_for(week_number(week))
    score, max_score = grades[(week, "cheater")]
    assert score == 0.0, f"{week}: the {cheat} cheat earned {score}/{max_score}"
    nb = autograded(courses[week], "cheater", week)
    tests = [c for c in nb.cells if is_test_cell(c)]
    if cheat == "edits_tests":  # nbgrader put the locked cells back
        assert not any("the tests are mine now" in c.source for c in tests)
    if cheat == "blanks_cells":  # the course's canaries saw that the tests never ran
        assert all(any(o.get("ename") == "TestsDidNotRun" for o in c.outputs) for c in tests)
    assert (courses[week] / "workspace/course/feedback/cheater" / week / "exercise.html").is_file()


@pytest.mark.integration
def test_weekly_and_capstone_scores_share_one_gradebook(courses):
    """Does one `nbgrader export` list the capstone beside the weeks, for each learner?"""
    folder = courses["capstone"]
    with open(folder / "grades.csv", newline="") as fh:
        rows = {(r["assignment"], r["student_id"]): float(r["score"]) for r in csv.DictReader(fh)}
    weeks = [w for w in WEEKS if courses[w] == folder]
    for learner, points in CAPSTONE.items():
        assert rows[("capstone", learner)] == points
        assert all((week, learner) in rows for week in weeks)
    assert rows[(weeks[0], "reference")] > 0


@pytest.mark.integration
def test_week_one_went_through_the_exchange(courses):
    """Did `collect` file each learner's week-1 submission under their own name?"""
    for learner in LEARNERS:
        folder = courses[WEEKS[0]] / "workspace/course/submitted" / learner / WEEKS[0]
        assert (folder / "exercise.ipynb").is_file() and (folder / "timestamp.txt").is_file()
        assert (folder / "timestamp.txt").read_text().strip() != TIMESTAMP


@pytest.mark.integration
def test_the_canary_line_never_reaches_feedback(courses):
    """The course's canaries are removed before notebooks are saved: feedback shows the tests as written."""
    for week in WEEKS:
        for learner in LEARNERS:
            html = (
                courses[week] / "workspace/course/feedback" / learner / week / "exercise.html"
            ).read_text()
            assert "tests-ran-" not in html, f"{learner}/{week}"
    source = json.dumps(
        nbformat.read(REPO / COURSE_DIR / WEEKS[0] / "exercise.ipynb", as_version=4)
    )
    assert "tests-ran-" not in source
