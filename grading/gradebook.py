"""The gradebook hand-off: capstone results as an assignment of a course's nbgrader gradebook.

:func:`export_to_gradebook` writes the *current* result of each learner into
nbgrader's own database (:class:`nbgrader.api.Gradebook`), so that
``nbgrader formgrader`` and ``nbgrader export`` show the capstone points
beside the weekly nbgrader assignments, and copies each learner's
``feedback.html`` into nbgrader's feedback folder. The mapping:

========================  ==================================================
nbgrader                  capstone
========================  ==================================================
assignment                ``assignment`` (e.g. ``capstone``)
notebook                  ``notebook`` (one, ``pipeline`` by default)
grade cell (autograded)   one per rubric check, named by the check's ``id``,
                          ``max_score`` = the check's ``max_points``
student                   the result's ``submission["learner"]``
submission                one per learner (its ``timestamp`` is the one of
                          ``submitted/<student>/<assignment>/timestamp.txt``
                          when nbgrader collected the submission, else none)
grade                     ``auto_score`` = the check's ``points``
flagged                   base status not ``graded``, or reduced isolation
feedback                  ``<feedback_directory>/<student>/<assignment>/<notebook>.html``
========================  ==================================================

Formgrader lists an assignment only when ``source/<assignment>/`` exists, and
shows a student's scores only when ``autograded/<student>/<assignment>/``
exists with the submission's timestamp: both folders are made (empty but for
a README in the source folder). The executed notebook is *not* copied to
``autograded/``: formgrader would render learner-controlled outputs in the
instructor's browser.

The gradebook holds each learner's current result only: a newer result
replaces the learner's capstone scores (and clears any manual score given in
formgrader). The append-only history is the results store
(:mod:`grading.store`).
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import unicodedata
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from fullcycle.exceptions import FullcycleError

__all__ = [
    "GradebookError",
    "GradebookExport",
    "check_student_id",
    "export_to_gradebook",
    "grade_cell_name",
]

#: nbgrader's ``student.id``, ``assignment.name`` and cell names are ``String(128)``.
_MAX_ID = 128
#: Bytes read of a ``timestamp.txt`` in nbgrader's submitted folder.
_MAX_TIMESTAMP = 256
_SOURCE_README = """\
# {assignment}

The capstone of this course is graded by fullcycle (`fullcycle grade-cohort`), not by
nbgrader: its scores and feedback are written into this course's gradebook and feedback
folder. This folder exists so that formgrader lists the assignment. Do not run
`nbgrader generate_assignment`, `autograde` or `generate_feedback` on it.
"""


class GradebookError(FullcycleError):
    """Results cannot be written to the nbgrader gradebook (names the learner, rule and fix)."""


@dataclass
class GradebookExport:
    """What one :func:`export_to_gradebook` call wrote.

    Attributes
    ----------
    db_url, course_id, assignment, notebook : str
        Where the results went.
    grade_cells : dict
        Grade cell name -> max score of the capstone notebook.
    written : list of str
        Students whose capstone scores were written (sorted).
    added_students : list of str
        Students that were new to the gradebook.
    replaced : list of str
        Students whose earlier capstone scores were replaced.
    flagged : list of str
        Students whose submission is flagged in formgrader (not ``graded``, or
        graded with reduced isolation).
    feedback : dict
        Student -> the feedback file written in nbgrader's feedback folder.
    missing_feedback : dict
        Student -> the feedback file given for them that does not exist (their
        earlier feedback in nbgrader's folder, if any, was removed).
    skipped : dict
        Learner id -> why it was left out (only with ``skip_invalid_learners``).
    """

    db_url: str
    course_id: str
    assignment: str
    notebook: str
    grade_cells: dict[str, float]
    written: list[str] = field(default_factory=list)
    added_students: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)
    feedback: dict[str, Path] = field(default_factory=dict)
    missing_feedback: dict[str, Path] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def _name_problem(value, what: str) -> str | None:
    """Why nbgrader would refuse or mishandle ``value`` as a student, assignment, notebook id."""
    if not isinstance(value, str) or not value:
        return f"{what} must be a non-empty string, got {value!r}"
    if len(value) > _MAX_ID:
        return (
            f"{what} {value[:40]!r}... has {len(value)} characters; "
            f"nbgrader stores at most {_MAX_ID}"
        )
    if value.strip() != value:
        return (
            f"{what} {value!r} has leading or trailing whitespace, which nbgrader strips "
            f"(it would name another {what})"
        )
    if any(unicodedata.category(ch).startswith("C") for ch in value):
        return f"{what} {value!r} holds a control character (newline, tab, NUL ...)"
    if value.startswith("."):
        return f"{what} {value!r} starts with '.': nbgrader's folder globs skip hidden folders"
    bad = sorted(set(value) & set("/\\"))
    if bad:
        return f"{what} {value!r} holds {''.join(bad)!r}: nbgrader uses it as a folder name"
    bad = sorted(set(value) & set("+*?[]"))
    if bad:
        return (
            f"{what} {value!r} holds {''.join(bad)!r}: nbgrader refuses '+' and '*' in ids "
            "(its exchange splits file names on '+') and reads '*?[]' as a glob"
        )
    bad = sorted(set(value) & set(',"'))
    if bad:
        return f"{what} {value!r} holds {''.join(bad)!r}: `nbgrader export` writes its CSV unquoted"
    return None


def check_student_id(learner) -> str:
    """``learner`` if nbgrader accepts it as a student id, else :class:`GradebookError`.

    nbgrader's rules, gathered from its source: at most 128 characters
    (``student.id``), no leading or trailing whitespace (stripped by its
    command line), a usable folder name (``submitted/<student>/...``; no
    ``/``, no leading ``.``), no ``+`` or ``*`` (refused by ``nbgrader
    submit``), no glob characters ``?[]`` (``--student`` is a glob), and no
    ``,`` or ``"`` (``nbgrader export`` writes an unquoted CSV). An id is never
    rewritten: two learners must not end up as one student.
    """
    problem = _name_problem(learner, "student id")
    if problem:
        raise GradebookError(
            f"{problem}. Fix: give the learner an id nbgrader accepts (rename their submission "
            "folder or zip, e.g. to letters, digits, '_', '-', '.', '@') and grade again."
        )
    return learner


def grade_cell_name(line: Mapping) -> str:
    """The grade cell of a rubric line: the check's ``id`` (its metric when it has none)."""
    name = line.get("id") or line.get("metric")
    problem = _name_problem(name, "rubric check id")
    if problem:
        raise GradebookError(f"{problem}. Fix: rename the check in the project's rubric.")
    return name


def _course_directory(course_dir: Path):
    """nbgrader's CourseDirectory of ``course_dir``, configured by its ``nbgrader_config.py``."""
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = Config()
    if (course_dir / "nbgrader_config.py").is_file():
        try:
            config = PyFileConfigLoader("nbgrader_config.py", path=str(course_dir)).load_config()
        except Exception as exc:
            raise GradebookError(
                f"{course_dir / 'nbgrader_config.py'} cannot be read: {type(exc).__name__}: {exc}. "
                "Fix the course's nbgrader config."
            ) from exc
    coursedir = CourseDirectory(config=config)
    coursedir.root = str(course_dir)  # before db_url is read: its default is under root
    return coursedir


def _open_gradebook(db_url: str, course_id: str):
    """The gradebook at ``db_url``, with nbgrader's schema at its alembic head.

    nbgrader stamps a new database by running the ``alembic`` command (found on
    ``PATH`` only when the venv is activated); here a new database is stamped
    in-process with alembic's API, and an older schema is refused with the fix.
    """
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from nbgrader import dbutil
    from nbgrader.api import Gradebook
    from sqlalchemy import create_engine, inspect

    cfg = Config()
    cfg.set_main_option("script_location", dbutil.ALEMBIC_DIR)
    script = ScriptDirectory.from_config(cfg)
    head = script.get_current_head()
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            tables = inspect(conn).get_table_names()
            migration = MigrationContext.configure(conn)
            current = migration.get_current_revision()
            if not tables:
                migration.stamp(script, head)
                current = head
    except Exception as exc:
        raise GradebookError(
            f"the nbgrader gradebook at {_shown(db_url)} cannot be opened: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    finally:
        engine.dispose()
    if current != head:
        raise GradebookError(
            f"the nbgrader gradebook at {_shown(db_url)} has schema revision {current}, nbgrader "
            f"{_nbgrader_version()} needs {head}. Fix: run `nbgrader db upgrade` in the course "
            "folder (with the venv's bin folder on PATH: nbgrader runs the `alembic` command)."
        )
    return Gradebook(db_url, course_id=course_id)


def _shown(db_url: str) -> str:
    """``db_url`` without its password, fit for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(db_url).render_as_string(hide_password=True)
    except Exception:
        return "<gradebook url>"


def _nbgrader_version() -> str:
    from nbgrader import __version__

    return __version__


def _graded_at(result: Mapping, where: str) -> datetime:
    raw = result.get("graded_at")
    try:
        when = datetime.fromisoformat(raw)
    except (TypeError, ValueError):
        raise GradebookError(
            f"{where}: graded_at {raw!r} is not an ISO timestamp; export results as "
            "grading/report.py writes them (result.json)."
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).replace(tzinfo=None)  # nbgrader keeps naive UTC


def _scores(result: Mapping, where: str) -> dict[str, tuple[float, float]]:
    """Grade cell -> (points, max points) of a result's rubric; unweighted lines are left out."""
    out: dict[str, tuple[float, float]] = {}
    for line in result.get("rubric") or []:
        name = grade_cell_name(line)
        try:
            points, top = float(line["points"]), float(line["max_points"])
        except (KeyError, TypeError, ValueError):
            raise GradebookError(
                f"{where}: rubric line {name!r} lacks numeric points and max_points"
            ) from None
        if not (math.isfinite(points) and math.isfinite(top) and 0 <= points <= top + 1e-9):
            raise GradebookError(f"{where}: rubric line {name!r} has points {points} out of {top}")
        if name in out:
            raise GradebookError(
                f"{where}: two rubric lines are named {name!r}; check ids must be unique"
            )
        if top > 0:  # a check the config turned off weighs nothing and is no grade cell
            out[name] = (points, top)
    return out


def _check_names(assignment: str, notebook: str) -> None:
    for value, what in ((assignment, "assignment name"), (notebook, "notebook name")):
        problem = _name_problem(value, what)
        if problem:
            raise GradebookError(f"{problem}. Fix: choose another {what}.")


def _current_results(results: Iterable[Mapping], assignment: str, skip_invalid: bool):
    """Learner -> (newest result, graded_at, scores), and learner -> why skipped."""
    current: dict[str, tuple[Mapping, datetime, dict]] = {}
    problems: list[str] = []
    skipped: dict[str, str] = {}
    for i, result in enumerate(results):
        sub = result.get("submission") or {}
        learner = sub.get("learner")
        where = (
            f"result {i} (submission {str(sub.get('name'))[:80]!r}, learner {str(learner)[:80]!r})"
        )
        if sub.get("assignment") not in (None, assignment):
            problems.append(
                f"{where} is for assignment {sub.get('assignment')!r}, not {assignment!r}; "
                "export each assignment's results on their own"
            )
            continue
        if learner is None:
            problems.append(
                f"{where} has no learner: only results of a cohort run name their learner"
            )
            continue
        try:
            check_student_id(learner)
        except GradebookError as exc:
            if skip_invalid:
                skipped[str(learner)] = str(exc)
            else:
                problems.append(f"{where}: {exc}")
            continue
        try:
            when = _graded_at(result, where)
            scores = _scores(result, where)
        except GradebookError as exc:
            problems.append(str(exc))
            continue
        if learner not in current or when >= current[learner][1]:  # the later of equals wins
            current[learner] = (result, when, scores)
    return current, skipped, problems


def _rubric(current: Mapping) -> dict[str, float]:
    """Grade cell name -> max score, the same in every result that has a rubric."""
    cells: dict[str, float] | None = None
    first = None
    for learner, (_, _, scores) in sorted(current.items()):
        if not scores:
            continue  # a result stopped before its rubric: zero on every check
        mine = {name: top for name, (_, top) in scores.items()}
        if cells is None:
            cells, first = mine, learner
        elif mine != cells:
            raise GradebookError(
                f"the results of {first!r} and {learner!r} were graded with different rubrics "
                f"({_rubric_diff(cells, mine)}); export results of one rubric and grading config"
            )
    return cells or {}


def _rubric_diff(a: Mapping[str, float], b: Mapping[str, float]) -> str:
    parts = [
        f"{k}: {a.get(k, 'absent')} vs {b.get(k, 'absent')}"
        for k in sorted(set(a) | set(b))
        if a.get(k) != b.get(k)
    ]
    return "; ".join(parts[:6])


def _notebook(gb, assignment: str, notebook: str, course_id: str, cells: Mapping[str, float]):
    """The capstone notebook, its grade cells in line with ``cells``."""
    from nbgrader.api import MissingEntry

    try:
        found = gb.find_assignment(assignment)
    except MissingEntry:
        found = gb.add_assignment(assignment, course_id=course_id)
    others = [nb.name for nb in found.notebooks if nb.name != notebook]
    try:
        nb = gb.find_notebook(notebook, assignment)
    except MissingEntry:
        nb = None
    if others or (nb is not None and (nb.solution_cells or nb.task_cells or nb.source_cells)):
        raise GradebookError(
            f"assignment {assignment!r} of the gradebook is an nbgrader assignment of its own "
            f"(notebooks {sorted(others + ([notebook] if nb is not None else []))}); "
            "choose another assignment name for the capstone"
        )
    if nb is None:
        nb = gb.add_notebook(notebook, assignment)
    existing = {c.name: c.max_score for c in nb.grade_cells}
    if not cells:
        return nb, existing
    if existing == cells:
        return nb, existing
    if nb.submissions:
        raise GradebookError(
            f"the rubric changed since assignment {assignment!r} was exported "
            f"({_rubric_diff(existing, cells)}). Fix: grade every learner with the new rubric and "
            f"export all of them after `nbgrader db assignment remove {assignment} --force`"
        )
    for cell in list(nb.grade_cells):
        if cell.name not in cells:
            gb.db.delete(cell)
    gb.db.commit()
    for name, top in cells.items():
        gb.update_or_create_grade_cell(name, notebook, assignment, max_score=top, cell_type="code")
    return gb.find_notebook(notebook, assignment), dict(cells)


def _flagged(result: Mapping) -> bool:
    status = str(result.get("status") or "")
    return status.split(":")[0] != "graded" or ":" in status


def _submitted_timestamp(coursedir, student: str, assignment: str) -> datetime | None:
    """The timestamp nbgrader reads from ``submitted/<student>/<assignment>/timestamp.txt``.

    Formgrader shows a student's scores only when the gradebook's timestamp is
    this one (``None`` when there is no such file). The file may come from the
    learner's side of nbgrader's exchange: it is read bounded, and an
    unreadable one counts as none.
    """
    from nbgrader.utils import parse_utc

    path = Path(coursedir.format_path(coursedir.submitted_directory, student, assignment))
    path = path / "timestamp.txt"
    if path.is_symlink() or not path.is_file():
        return None
    try:
        with path.open("rb") as fh:
            text = fh.read(_MAX_TIMESTAMP).decode("utf-8").strip()
        return parse_utc(text) if text else None
    except (OSError, UnicodeDecodeError, ValueError, OverflowError):
        return None


def _write_submission(gb, assignment, notebook, student, timestamp, scores, flagged) -> None:
    """The student's capstone submission and grades, replaced by this result's."""
    from nbgrader.api import MissingEntry

    try:
        sub = gb.find_submission(assignment, student)
    except MissingEntry:
        sub = gb.add_submission(assignment, student, timestamp=timestamp)
    sub.timestamp = timestamp
    try:
        nb = gb.find_submission_notebook(notebook, assignment, student)
    except MissingEntry:  # a submission made before the notebook existed: make it anew
        gb.remove_submission(assignment, student)
        gb.add_submission(assignment, student, timestamp=timestamp)
        nb = gb.find_submission_notebook(notebook, assignment, student)
    nb.flagged = flagged
    for grade in nb.grades:
        grade.auto_score = scores.get(grade.cell.name, (0.0, 0.0))[0]
        grade.manual_score = None
        grade.extra_credit = None
        grade.needs_manual_grade = False
    gb.db.commit()


def _formgrader_folders(coursedir, assignment: str, students: Iterable[str]) -> None:
    """The folders formgrader looks for: ``source/<assignment>/``, ``autograded/<student>/...``."""
    source = Path(coursedir.format_path(coursedir.source_directory, ".", assignment))
    if not source.exists():
        source.mkdir(parents=True)
        (source / "README.md").write_text(_SOURCE_README.format(assignment=assignment))
    for student in students:
        path = coursedir.format_path(coursedir.autograded_directory, student, assignment)
        Path(path).mkdir(parents=True, exist_ok=True)


def _copy_feedback(source: Path, dest: Path) -> None:
    """Copy ``source`` to ``dest`` whole or not at all (formgrader never serves half a file)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".", suffix=".part")
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_to_gradebook(
    results: Iterable[Mapping],
    *,
    course_dir: str | os.PathLike,
    assignment: str,
    notebook: str = "pipeline",
    db_url: str | None = None,
    feedback: Mapping[str, str | os.PathLike] | None = None,
    course_id: str | None = None,
    skip_invalid_learners: bool = False,
) -> GradebookExport:
    """Write learners' current capstone results into the course's nbgrader gradebook.

    Every result lands, whatever its status: a ``rejected``, ``notebook_failed``
    or ``timeout`` result keeps its points (often 0) and its submission is
    flagged in formgrader, as is one graded with reduced isolation. Of several
    results of one learner the newest (``graded_at``) counts, and it replaces
    the learner's capstone scores already in the gradebook (manual scores
    given in formgrader included): export the results store's current
    results. Everything is checked before anything is written; an export
    stopped half-way is completed by running it again with the same results.

    Export once, from one process, at the end of a cohort run: the default
    gradebook is SQLite, which is not safe for concurrent writers (nbgrader
    commands writing the same gradebook at the same time included).

    Parameters
    ----------
    results : iterable of dict
        Results as ``result.json`` holds them, each with
        ``submission = {"name", "sha256", "learner", "assignment"}``.
    course_dir : path
        The nbgrader course folder (holding ``nbgrader_config.py``, whose
        ``CourseDirectory`` settings are honoured).
    assignment : str
        The nbgrader assignment of the capstone; results naming another
        assignment are refused.
    notebook : str
        The one notebook of the assignment that holds a grade cell per rubric check.
    db_url : str, optional
        The gradebook; by default the course's (``CourseDirectory.db_url``,
        ``sqlite:///<course_dir>/gradebook.db`` unless configured).
    feedback : mapping, optional
        Learner id -> their ``feedback.html``, copied to
        ``<course_dir>/feedback/<student>/<assignment>/<notebook>.html``
        (nbgrader's ``directory_structure`` and ``feedback_directory``). A
        learner whose file does not exist is listed in ``missing_feedback``, and
        their earlier feedback there is removed: it described another result.
    course_id : str, optional
        nbgrader's course id; by default the course config's
        ``CourseDirectory.course_id``. One of the two must be set.
    skip_invalid_learners : bool
        Leave out (and list in ``skipped``) learners whose ids nbgrader would
        refuse, instead of refusing the whole export.

    Returns
    -------
    GradebookExport

    Raises
    ------
    GradebookError
        A learner id nbgrader refuses, results of another assignment or rubric,
        no course id, an outdated gradebook schema, or
        an assignment name taken by a weekly nbgrader assignment.
    """
    course_dir = Path(course_dir).resolve()
    if not course_dir.is_dir():
        raise GradebookError(
            f"course folder {course_dir} does not exist; create the nbgrader course first"
        )
    _check_names(assignment, notebook)
    coursedir = _course_directory(course_dir)
    course_id = course_id or coursedir.course_id
    if not course_id:
        raise GradebookError(
            f"no nbgrader course id for {course_dir}: set c.CourseDirectory.course_id in its "
            "nbgrader_config.py or pass course_id"
        )
    db_url = db_url or coursedir.db_url
    shown_url = _shown(db_url)

    current, skipped, problems = _current_results(results, assignment, skip_invalid_learners)
    feedback = {str(k): Path(v) for k, v in (feedback or {}).items()}
    if problems:
        shown = "\n  - ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise GradebookError(
            f"nothing was written to the nbgrader gradebook at {shown_url}:\n  - {shown}{more}"
        )
    cells = _rubric(current)

    from nbgrader.api import InvalidEntry, MissingEntry

    summary = GradebookExport(
        db_url=shown_url,
        course_id=course_id,
        assignment=assignment,
        notebook=notebook,
        grade_cells={},
        skipped=skipped,
    )
    gb = _open_gradebook(db_url, course_id)
    try:
        with warnings.catch_warnings():
            # nbgrader's add_submission builds its rows before adding them to the session;
            # SQLAlchemy warns on each ("Object of type ... not in session"), harmlessly.
            warnings.filterwarnings("ignore", message="Object of type .* not in session")
            try:
                _, cells = _notebook(gb, assignment, notebook, course_id, cells)
                summary.grade_cells.update(cells)
                for learner in sorted(current):
                    result, _, scores = current[learner]
                    try:
                        gb.find_student(learner)
                    except MissingEntry:
                        gb.add_student(learner)
                        summary.added_students.append(learner)
                    try:
                        gb.find_submission(assignment, learner)
                        summary.replaced.append(learner)
                    except MissingEntry:
                        pass
                    flagged = _flagged(result)
                    stamp = _submitted_timestamp(coursedir, learner, assignment)
                    _write_submission(gb, assignment, notebook, learner, stamp, scores, flagged)
                    summary.written.append(learner)
                    if flagged:
                        summary.flagged.append(learner)
            except InvalidEntry as exc:
                raise GradebookError(
                    f"the nbgrader gradebook at {shown_url} refused a write: {exc}"
                ) from exc
    finally:
        gb.close()

    _formgrader_folders(coursedir, assignment, summary.written)
    for learner in summary.written:
        if learner not in feedback:
            continue
        dest = Path(coursedir.format_path(coursedir.feedback_directory, learner, assignment))
        dest = dest / f"{notebook}.html"
        if feedback[learner].is_file():
            _copy_feedback(feedback[learner], dest)
            summary.feedback[learner] = dest
        else:
            dest.unlink(missing_ok=True)
            summary.missing_feedback[learner] = feedback[learner]
    return summary
