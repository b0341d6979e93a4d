"""The learner's self-check: the grader's steps on public data, the instructor's feedback text."""

from __future__ import annotations

import json
import re

import nbformat
import pytest
import ranking
import yaml

from fullcycle.exceptions import ConfigError, FullcycleError
from grading import grade, load_config, new_config
from grading.check import (
    PUBLIC_SEED_PREFIX,
    _safe,
    cache_folder,
    check_kit,
    format_check,
    public_config,
    public_seed,
)
from grading.config import GradingConfig

from conftest import live_descendants

NOT_YET = 'raise NotImplementedError("not implemented yet")\n'
#: What a terminal must never receive from a kit: C0/C1 controls (but tab and newline), bidi.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.fixture(scope="module")
def public_env(ranking_env, tmp_path_factory):
    """(spec, public data folder): the toy project's public validation files, not its hidden ones."""
    spec, _, _ = ranking_env
    folder = ranking.write_holdout(tmp_path_factory.mktemp("public") / "public", seed=21)
    return spec, folder


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    """Each test's reference cache is its own (the user's ~/.cache is never touched)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def _rubric_rows(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("| ") and "---" not in line]


# ---- the public seed -------------------------------------------------------------------


def test_is_the_public_seed_public_valid_and_never_a_secret_one(tmp_path):
    import hashlib

    seed = public_seed("fraud_detection")
    assert seed == hashlib.sha256(PUBLIC_SEED_PREFIX + b"fraud_detection").hexdigest()[:32]
    assert GradingConfig(secret_seed=seed).secret_seed == seed  # passes the seed validator
    assert public_seed("tiny_ranking") != seed
    secret = new_config(tmp_path / "grading.yaml").secret_seed
    assert secret != seed and secret != public_seed("tiny_ranking")


def test_is_the_public_fraud_world_another_world_than_the_hidden_one(repo, tmp_path):
    """The fraud project's public data are simulated with the public seed, not a secret one."""
    from fullcycle.holdout import build_holdout
    from fullcycle.spec import find_project

    spec = find_project("fraud_detection", search_root=repo)
    cfg = public_config(spec, tmp_path, scale="tiny")
    secret = new_config(tmp_path / "grading.yaml", scale="tiny")
    assert cfg.secret_seed == public_seed("fraud_detection") and cfg.holdout_dir is None
    public = build_holdout(spec, cfg.seed_int, cfg.scale)
    hidden = build_holdout(spec, secret.seed_int, secret.scale)
    assert public.fingerprint() != hidden.fingerprint()
    assert not public.labels.equals(hidden.labels)


def test_does_the_public_config_keep_secrets_stores_and_caches_its_own(public_env, tmp_path):
    spec, folder = public_env
    cfg = public_config(spec, tmp_path / "out", data_dir=folder)
    assert cfg.results_store.startswith(str(tmp_path / "out"))
    assert cfg.cache_dir == str(cache_folder()) == str(tmp_path / "xdg-cache/fullcycle/check")
    if "public" in GradingConfig.model_fields:
        assert cfg.public is True
    else:
        assert cfg.sandbox == "auto"
    with pytest.raises(ConfigError, match="secret_seed"):
        public_config(spec, tmp_path, data_dir=folder, overrides={"secret_seed": "ab" * 16})
    tight = public_config(spec, tmp_path, data_dir=folder, overrides={"limits": {"cpu_s": 5}})
    assert tight.limits.cpu_s == 5 and tight.limits.memory_mb == 8192  # merged with defaults


def test_does_a_files_project_without_public_data_say_where_to_put_them(public_env, tmp_path):
    spec, _ = public_env
    with pytest.raises(FullcycleError, match="public validation data"):
        check_kit(ranking.write_kit(tmp_path / "kit"), project=spec, out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_does_an_unknown_kit_name_ask_for_the_project(tmp_path):
    kit = ranking.write_kit(tmp_path / "my_copy")
    with pytest.raises(FullcycleError, match="--project NAME"):
        check_kit(kit)
    assert not (tmp_path / "my_copy-check").exists()


def test_are_reports_inside_the_kit_refused(public_env, tmp_path, monkeypatch):
    spec, folder = public_env
    kit = ranking.write_kit(tmp_path / "kit")
    with pytest.raises(ConfigError, match="outside the kit"):
        check_kit(kit, project=spec, out_dir=kit / "reports", data_dir=folder)
    monkeypatch.chdir(kit)
    with pytest.raises(ConfigError, match="outside the kit"):
        check_kit(".", project=spec, out_dir="reports", data_dir=folder)
    assert not (kit / "reports").exists()


# ---- whole checks ----------------------------------------------------------------------


@pytest.mark.integration
def test_does_the_reference_kit_get_full_marks_on_public_data(ranking_env, public_env, tmp_path):
    spec, config_path, _ = ranking_env
    _, folder = public_env
    store = load_config(config_path).path(load_config(config_path).results_store)
    before = store.read_bytes() if store.exists() else None
    kit = ranking.write_kit(tmp_path / "kit")
    (tmp_path / "kit-check").mkdir()
    (tmp_path / "kit-check" / "executed.ipynb").write_text("stale")  # from an earlier check
    pids = live_descendants()

    check = check_kit(kit, project=spec, data_dir=folder)

    r = check.result
    assert check.out_dir == tmp_path / "kit-check"  # beside the kit by default
    assert r["status"].split(":")[0] == "graded", r["messages"]
    assert r["score"]["points"] == r["score"]["max_points"] > 0 and check.passed
    assert "PUBLIC validation data" in check.text and str(folder) in check.text
    assert str(check.out_dir / "feedback.html") in check.text
    assert "Isolation: " in check.text
    feedback = (check.out_dir / "feedback.md").read_text()
    rows = _rubric_rows(feedback)
    assert len(rows) == len(spec.rubric) + 1  # the header and one row per check
    assert all(row in check.text for row in rows)
    assert "stale" not in (check.out_dir / "executed.ipynb").read_text()
    # no results store: neither the instructor's nor one left in the report folder
    assert (store.read_bytes() if store.exists() else None) == before
    assert not list(check.out_dir.glob("*.sqlite*"))
    assert live_descendants() <= pids

    # the instructor's grading of the same kit ran on other data
    hidden = grade(kit, spec, load_config(config_path), tmp_path / "hidden-out")
    fingerprint = r["provenance"]["data_fingerprint"]
    assert fingerprint and fingerprint != hidden["provenance"]["data_fingerprint"]
    assert r["provenance"]["seed_sha256"] != hidden["provenance"]["seed_sha256"]


@pytest.mark.integration
def test_does_an_unimplemented_kit_get_a_clean_zero(public_env, tmp_path):
    spec, folder = public_env
    kit = ranking.write_kit(tmp_path / "kit", cells=[NOT_YET], service=NOT_YET, monitor=NOT_YET)
    pids = live_descendants()

    check = check_kit(kit, project=spec, out_dir=tmp_path / "out", data_dir=folder)

    r = check.result
    assert r["status"].split(":")[0] in ("notebook_failed", "invalid_predictions"), r["messages"]
    assert r["score"]["points"] == 0 and not check.passed
    assert "not implemented yet" in check.text
    assert "Traceback" not in check.text
    rows = _rubric_rows((tmp_path / "out" / "feedback.md").read_text())
    assert len(rows) == len(spec.rubric) + 1
    assert all(row in check.text for row in rows)
    assert live_descendants() <= pids


@pytest.mark.integration
def test_are_control_characters_of_the_kit_stripped_from_the_terminal_text(public_env, tmp_path):
    spec, folder = public_env
    cell = 'raise ValueError("\\x1b[2J\\x1b]0;owned\\x07\\rclear-screen\\u202e evil")\n'
    kit = ranking.write_kit(tmp_path / "kit", cells=[cell])

    check = check_kit(kit, project=spec, out_dir=tmp_path / "out", data_dir=folder)

    assert "clear-screen" in check.text and "evil" in check.text  # the message is there ...
    assert not CONTROL.search(check.text)


def test_does_the_sanitiser_keep_text_lines_and_indentation():
    out = _safe("head\n  | a | 1.000 |\nc\x1b[31md\x07\r\u202ee\x9b\x1b]0;title\x07f")
    lines = out.split("\n")
    assert lines[:2] == ["head", "  | a | 1.000 |"] and len(lines) == 3
    assert "c" in lines[2] and "d" in lines[2] and "f" in lines[2] and "title" not in lines[2]
    assert not CONTROL.search(out)
    assert _safe("ünïcödé ✓ | 1.000 |") == "ünïcödé ✓ | 1.000 |"


def test_does_the_header_say_when_isolation_was_reduced(tmp_path):
    result = {
        "project": "tiny_ranking",
        "status": "graded:reduced_isolation",
        "score": {"points": 3, "max_points": 9},
        "isolation": {"kind": "rlimits-only", "reduced": True, "reasons": ["no bubblewrap"]},
    }
    text = format_check(result, tmp_path, "public files", feedback="# tiny_ranking\n| a | b |\n")
    assert "REDUCED ISOLATION (no bubblewrap)" in text and "rlimits-only" in text
    assert text.endswith("# tiny_ranking\n| a | b |\n")
    assert str(tmp_path / "feedback.html") in text


# ---- the reference solution's figures on public data -----------------------------------

#: A rubric line relative to the reference solution (the toy project has none of its own).
VS_REFERENCE = {
    "id": "vs_ref",
    "metric": "ndcg@5.vs_reference",
    "bar": 0.98,
    "partial_from": 0.5,
    "points": 2,
    "feedback": "Rank as well as the reference solution.",
}
#: A weaker learner: popularity only.
WEAK_CELLS = [c.replace('["AFFINITY", "POPULARITY"]', '["POPULARITY"]') for c in ranking.GOOD_CELLS]
STUB = '# YOUR CODE HERE\nraise NotImplementedError("not implemented yet")\n'


def _course(root):
    """A course repository of the toy project with a vs_reference line: (spec, public folder).

    ``root/projects/tiny_ranking/`` (spec and ``public/`` validation files) and ``root/kit``,
    the project's reference kit.
    """
    from fullcycle.spec import load_spec

    project = root / "projects" / "tiny_ranking"
    public = ranking.write_holdout(project / "public", seed=21)
    spec_dict = {**ranking.PROJECT, "rubric": [*ranking.PROJECT["rubric"], VS_REFERENCE]}
    (project / "project.yaml").write_text(yaml.safe_dump(spec_dict, sort_keys=False))
    ranking.write_kit(root / "kit")
    return load_spec(project / "project.yaml"), public


def _line(result, metric):
    return next(line for line in result["rubric"] if line["metric"] == metric)


@pytest.mark.integration
def test_in_the_course_is_the_reference_kit_graded_on_the_same_public_data(tmp_path):
    spec, public = _course(tmp_path / "course")
    kit = ranking.write_kit(tmp_path / "learner", cells=WEAK_CELLS)
    pids = live_descendants()

    check = check_kit(kit, project=spec, out_dir=tmp_path / "out", data_dir=public)

    r = check.result
    assert r["status"].split(":")[0] == "graded", r["messages"]
    ref = r["reference"]
    assert ref["data"] == "public" and ref["source"] == "reference kit" and not ref["cached"]
    line = _line(r, "ndcg@5.vs_reference")
    assert line["measured"] and line["max_points"] == 2
    assert line["value"] == pytest.approx(r["metrics"]["ndcg@5"] / ref["figures"]["ndcg@5"])
    assert line["value"] < 1  # popularity alone ranks worse than the reference
    assert "## The reference solution on the same public data" in check.text
    html = (tmp_path / "out" / "feedback.html").read_text()
    assert "The reference solution on the same public data" in html and "hidden world" not in html
    # a second check reuses the figures from the check's cache
    again = check_kit(kit, project=spec, out_dir=tmp_path / "out", data_dir=public)
    assert again.result["reference"]["cached"]
    assert again.result["reference"]["figures"] == ref["figures"]
    assert live_descendants() <= pids


@pytest.mark.integration
def test_in_a_release_are_the_published_figures_used_and_never_a_stubbed_kit(tmp_path):
    """A release's kit is the learner's stubbed copy: the check compares with the figures
    ``fullcycle release`` measured on the same public data, or says why it cannot."""
    from grading.reference import PUBLISHED, public_entries

    spec, public = _course(tmp_path / "course")
    # what `fullcycle release` writes, measured on the course's reference kit
    entries = public_entries(spec, ["small"])
    published = spec.root / PUBLISHED
    published.write_text(json.dumps(entries))
    # ... and the learner's copy of the kit, stubbed, where the reference kit was
    (tmp_path / "course" / "kit" / "monitor.py").write_text(STUB)
    kit = ranking.write_kit(tmp_path / "learner", cells=WEAK_CELLS)
    pids = live_descendants()

    check = check_kit(kit, project=spec, out_dir=tmp_path / "out", data_dir=public)

    r = check.result
    assert r["status"].split(":")[0] == "graded", r["messages"]
    assert r["reference"]["source"] == "release"
    assert r["reference"]["figures"] == entries["small"]["figures"]
    line = _line(r, "ndcg@5.vs_reference")
    assert line["measured"] and line["max_points"] == 2
    assert line["value"] == pytest.approx(
        r["metrics"]["ndcg@5"] / entries["small"]["figures"]["ndcg@5"]
    )

    # at a scale the release holds no figures for: not measured, weighs nothing, says why
    other = check_kit(kit, project=spec, out_dir=tmp_path / "out2", data_dir=public, scale="tiny")
    r = other.result
    assert r["status"].split(":")[0] == "graded", r["messages"]
    line = _line(r, "ndcg@5.vs_reference")
    assert not line["measured"] and line["max_points"] == 0 and line["points"] == 0
    assert "--scale small" in line["feedback"] and "not measured" in line["feedback"]
    assert r["score"]["max_points"] == sum(c.points for c in spec.rubric) - 2
    assert "grader_error" not in r["status"] and "not measured" in other.text
    assert live_descendants() <= pids


def _job(spec, holdout_fingerprint="fp", scale="small"):
    from types import SimpleNamespace

    config = GradingConfig(secret_seed=public_seed(spec.name), scale=scale)
    config = config.model_copy(update={"public": True})
    holdout = SimpleNamespace(fingerprint=lambda: holdout_fingerprint)
    return SimpleNamespace(spec=spec, config=config, holdout=holdout, disabled={})


def _entry(spec, **changes):
    entry = {
        "figures": {"ndcg@5": 0.8, "roc_auc": 0.7},
        "spec_sha256": spec.sha256,
        "seed": public_seed(spec.name),
        "data_fingerprint": "fp",
    }
    return {"small": {**entry, **changes}}


@pytest.mark.parametrize(
    "published, reason",
    [
        (lambda spec: _entry(spec), None),
        (lambda spec: _entry(spec, figures={"roc_auc": 0.7}), "has no ndcg@5 on the public data"),
        (lambda spec: _entry(spec, figures={"ndcg@5": 0.0}), "a ratio to it means nothing"),
        (lambda spec: _entry(spec, spec_sha256="0" * 64), "project.yaml is not the one"),
        (lambda spec: _entry(spec, seed="ab" * 16), "another seed"),
        (lambda spec: _entry(spec, data_fingerprint="other"), "public data made here differ"),
        (lambda spec: {"tiny": _entry(spec)["small"]}, "`--scale tiny`"),
        (lambda spec: {"small": {"figures": "nan"}}, "is damaged"),
        (lambda spec: "x" * 10, "is damaged"),
    ],
    ids=[
        "same",
        "figure-missing",
        "figure-zero",
        "spec-changed",
        "other-seed",
        "other-data",
        "other-scale",
        "no-figures",
        "junk",
    ],
)
def test_are_published_figures_used_only_for_the_same_public_world(tmp_path, published, reason):
    from grading.reference import PUBLISHED, published_figures, reference_figures

    spec, _ = _course(tmp_path / "course")
    (spec.root / PUBLISHED).write_text(json.dumps(published(spec)))
    (tmp_path / "course" / "kit" / "model.py").write_text(STUB)  # a release: the kit is stubbed
    job = _job(spec)

    figures, why = published_figures(spec, job.config, job.holdout)
    got = reference_figures(job)  # never raises for a self-check

    if reason is None:
        assert figures == {"ndcg@5": 0.8, "roc_auc": 0.7} and why is None
        assert got["figures"] == figures and got["source"] == "release" and not job.disabled
        return
    if figures is not None:  # published, but of no use for this line: it weighs nothing
        assert why is None and got["source"] == "release"
        assert reason in job.disabled["ndcg@5.vs_reference"]
        return
    assert figures is None and reason in why
    assert got["figures"] == {} and reason in got["unavailable"]
    assert job.disabled == {"ndcg@5.vs_reference": got["unavailable"]}


def test_does_a_stubbed_kit_without_published_figures_leave_the_lines_not_measured(tmp_path):
    from grading.reference import reference_figures, relative_figures

    spec, _ = _course(tmp_path / "course")
    nbformat.write(
        ranking.notebook([STUB]), tmp_path / "course" / "kit" / "pipeline.ipynb"
    )  # the stub in a cell
    job = _job(spec)

    got = reference_figures(job)

    assert "is a learner's copy" in got["unavailable"] and got["source"] is None
    assert set(job.disabled) == {"ndcg@5.vs_reference"}
    _, why = relative_figures({"ndcg@5": 0.5}, got["figures"], ["ndcg@5.vs_reference"])
    assert why == {"ndcg@5.vs_reference": got["unavailable"]}


def test_do_reasons_name_the_data_the_figures_come_from():
    from grading.reference import PUBLIC, Figures, relative_figures

    _, hidden = relative_figures({"auc": 1.0}, {}, ["auc.vs_reference"])
    _, public = relative_figures({"auc": 1.0}, Figures(where=PUBLIC), ["auc.vs_reference"])
    assert "hidden world" in hidden["auc.vs_reference"]
    assert (
        "public data" in public["auc.vs_reference"] and "hidden" not in public["auc.vs_reference"]
    )


def test_does_the_feedback_say_which_data_the_reference_ran_on():
    import hashlib

    from grading.report import _context

    def result(seed, data=None):
        return {
            "project": "tiny_ranking",
            "score": {"points": 1, "max_points": 2},
            "rubric": [],
            "metrics": {"roc_auc": 0.7},
            "reference": {"figures": {"roc_auc": 0.8}, **({"data": data} if data else {})},
            "provenance": {"seed_sha256": hashlib.sha256(seed.encode()).hexdigest()},
        }

    assert _context(result(public_seed("tiny_ranking")))["world"] == "public data"
    assert _context(result("ab" * 16, data="public"))["world"] == "public data"
    assert _context(result("ab" * 16))["world"] == "hidden world"
    assert _context(result(public_seed("fraud_detection")))["world"] == "hidden world"
