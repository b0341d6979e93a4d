"""The cohort report: opened in headless Chromium, read back as CSV, its rules on a synthetic cohort."""

from __future__ import annotations

import csv
import hashlib
import os
import urllib.parse
from pathlib import Path

import psutil
import pytest

from grading.cohort_report import CSV_COLUMNS, find_implausible, write_cohort_report

CHROMIUM = "/usr/bin/chromium"
XSS = "<img src=x onerror=alert(1)>"
FORMULA = '=HYPERLINK("http://x")'
#: id, metric, max points
CHECKS = (("auc", "roc_auc.vs_reference", 2.0), ("service", "service.contract", 1.0))
CHECKS += (("leakage", "features.leakage_free", 2.0),)
REFERENCE_AUC = 0.87


def _result(
    learner,
    status="graded",
    points=(2, 1, 2),
    *,
    auc=0.86,
    seconds=40.0,
    sha=None,
    messages=(),
    execution="ok",
    measured=True,
):
    """A result.json as grading/pipeline.py build_result writes it, with only what the report reads."""
    lines = []
    for (cid, metric, max_points), got in zip(CHECKS, points, strict=True):
        line = {
            "id": cid,
            "metric": metric,
            "value": got / max_points if measured else None,
            "bar": 1,
            "partial_from": 0.5,
            "higher_is_better": True,
            "points": float(got),
            "max_points": max_points,
            "measured": measured,
            "passed": got >= max_points,
        }
        if got < max_points:
            line["feedback"] = (
                f"{cid}: lost points."
                if measured
                else f"not measured: stopped. {cid}: lost points."
            )
        lines.append(line)
    return {
        "schema": "fullcycle.grading.result/1",
        "project": "fraud_detection",
        "graded_at": "2025-01-01T00:00:00+00:00",
        "status": status,
        "messages": list(messages),
        "score": {"points": float(sum(points)), "max_points": 5.0},
        "rubric": lines,
        "metrics": {} if auc is None else {"roc_auc": auc, "roc_auc.vs_reference": auc / 0.87},
        "execution": None
        if execution is None
        else {"status": execution, "message": "", "seconds": seconds},
        "reference": {"figures": {"roc_auc": REFERENCE_AUC}},
        "isolation": {"reduced": status.endswith(":reduced_isolation")},
        "submission": {
            "name": f"{learner}.zip",
            "sha256": sha or hashlib.sha256(learner.encode()).hexdigest(),
            "learner": learner,
            "assignment": "capstone",
        },
    }


def _cohort() -> list[dict]:
    """Thirteen learners: every status, the hostile ids, a copied pair, a too-good AUC."""
    copied = "c0" * 32
    return [
        _result("alice"),
        _result("bob", points=(1, 1, 0), seconds=45.0),
        _result("carol", auc=0.95, seconds=50.0),  # 0.08 above the reference
        _result("dave", seconds=2.0),  # full marks, far faster than the median
        _result(XSS, points=(1, 1, 0), sha=copied, seconds=38.0),
        _result(FORMULA, points=(1, 1, 0), sha=copied, seconds=39.0),
        _result(
            "erin",
            "rejected",
            (0, 0, 0),
            auc=None,
            execution=None,
            measured=False,
            messages=["the archive holds 20000 files; at most 2000 are allowed"],
        ),
        _result("frank", "notebook_failed", (2, 1, 1), execution="error", seconds=30.0),
        _result(
            "grace",
            "invalid_predictions",
            (0, 0, 2),
            auc=None,
            measured=False,
            messages=["the predictions are invalid: unknown id '<script>alert(2)</script>'"],
        ),
        _result("heidi", "grader_error", (0, 0, 0), auc=None, measured=False),
        _result("ivan", "timeout", (0, 0, 0), auc=None, execution=None, measured=False),
        _result("judy", "grader_limit", (0, 0, 0), auc=None, execution=None, measured=False),
        _result("mallory", "graded:reduced_isolation", (2, 1, 1), seconds=41.0),
    ]


def _links(results, out: Path) -> dict:
    """Each learner's feedback.html under ``out``; judy's link is not a relative path."""
    links = {}
    for r in results:
        who = r["submission"]["learner"]
        slug = who if who == XSS else "learner-" + "".join(c for c in who if c.isalnum())
        links[who] = f"feedback/{slug}/feedback.html"
        path = out / links[who]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("<!doctype html><title>feedback</title>")
    links["judy"] = "javascript:alert(3)"
    return links


def _descendants() -> list[psutil.Process]:
    return psutil.Process(os.getpid()).children(recursive=True)


@pytest.mark.integration
def test_does_the_cohort_page_open_offline_in_chromium_with_nothing_run(tmp_path):
    """Does the page render in a real browser: no script runs, every plot loads, links resolve?"""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: the cohort report is tested in Debian's Chromium. "
            "Install it with `sudo apt-get install -y chromium` (or `make system`)."
        )
    from playwright.sync_api import sync_playwright

    results = _cohort()
    out = tmp_path / "report"
    links = _links(results, out)
    report = write_cohort_report(results, out, feedback_links=links, title="Capstone <2025>")

    dialogs, requests = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            started = [q for q in _descendants() if "chrom" in q.name().lower()]
            assert started, "Playwright did not start a Chromium process"
            page = browser.new_page()
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(report.html.as_uri(), wait_until="load")
            title = page.title()
            images = page.eval_on_selector_all(
                "img", "els => els.map(e => [e.complete, e.naturalWidth, e.src.slice(0, 21)])"
            )
            learners = page.eval_on_selector_all(
                "#learners tbody tr td.learner", "els => els.map(e => e.textContent)"
            )
            hrefs = page.eval_on_selector_all(
                "#learners tbody tr",
                "rows => rows.map(r => [r.querySelector('td.learner').textContent,"
                " r.querySelector('a.feedback') && r.querySelector('a.feedback').href,"
                " r.innerText])",
            )
            findings = page.eval_on_selector_all(
                "#implausible li",
                "els => els.map(e => [e.dataset.rule, e.textContent])",
            )
            struggles = page.eval_on_selector_all(
                "#struggles tbody tr", "els => els.map(e => e.dataset.check)"
            )
        finally:
            browser.close()
    gone, alive = psutil.wait_procs(started, timeout=15)
    assert not alive, f"Chromium processes left after closing the browser: {alive}"
    left = [q for q in _descendants() if "chrom" in q.name().lower()]
    assert not left, f"Chromium processes left: {left}"

    assert dialogs == [], f"learner text ran as script: {dialogs}"
    assert title == "Capstone <2025>"
    assert all(u.startswith(("file:", "data:")) for u in requests), requests
    assert len(images) == 3, images  # score distribution, pass rate, run time against score
    for complete, width, src in images:
        assert complete and width > 0 and src == "data:image/png;base64", images
    assert sorted(learners) == sorted(r["submission"]["learner"] for r in results)
    assert XSS in learners and FORMULA in learners  # shown as text, not as markup
    for who, href, text in hrefs:
        if who == "judy":  # javascript:alert(3) is not a relative path
            assert href is None and "link refused" in text
            continue
        assert href is not None and href.startswith("file://"), (who, href)
        target = Path(urllib.parse.unquote(urllib.parse.urlsplit(href).path))
        assert target == out / links[who] and target.is_file(), (who, href)
    by_rule = {}
    for rule, text in findings:
        by_rule.setdefault(rule, []).append(text)
    assert sorted(by_rule) == sorted(
        [
            "above_reference",
            "fast_full_marks",
            "same_submission",
            "reduced_isolation",
            "high_score_failed_notebook",
        ]
    )
    copied = by_rule["same_submission"]
    assert len(copied) == 1 and XSS in copied[0] and FORMULA in copied[0]
    assert len(by_rule["above_reference"]) == 1 and "carol" in by_rule["above_reference"][0]
    assert "roc_auc 0.950" in by_rule["above_reference"][0]
    assert len(by_rule["fast_full_marks"]) == 1 and "dave" in by_rule["fast_full_marks"][0]
    assert "mallory" in by_rule["reduced_isolation"][0]
    assert "frank" in by_rule["high_score_failed_notebook"][0]
    assert struggles[0] == "leakage"


def test_is_the_csv_rfc4180_with_formulas_neutralised(tmp_path):
    """Does the CSV hold one row per learner, stable columns, and no formula a sheet would run?"""
    results = _cohort()
    report = write_cohort_report(results, tmp_path)
    raw = report.csv.read_bytes()
    assert raw.count(b"\r\n") == len(results) + 1 and not raw.startswith(b"\xef\xbb\xbf")
    with report.csv.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    assert header == [
        *CSV_COLUMNS[:7],
        "check:auc",
        "check:service",
        "check:leakage",
        *CSV_COLUMNS[7:],
    ]
    assert header == report.summary["columns"]
    assert len(body) == len(results) and all(len(r) == len(header) for r in body)
    rows_by = {r[0]: dict(zip(header, r, strict=True)) for r in body}
    assert "'" + FORMULA in rows_by and FORMULA not in rows_by
    assert XSS in rows_by  # not a formula: left as it is
    assert not any(cell.startswith(("=", "+", "-", "@")) for r in body for cell in r)
    m = rows_by["mallory"]
    assert (m["status"], m["isolation_reduced"], m["points"], m["max_points"]) == (
        "graded",
        "true",
        "4",
        "5",
    )
    assert (m["percent"], m["check:auc"], m["check:leakage"]) == ("80", "2", "1")
    assert rows_by["alice"]["isolation_reduced"] == "false"
    assert rows_by["erin"]["reason"].startswith("the archive holds 20000 files")
    assert rows_by["bob"]["reason"] == "points lost on: auc, leakage"
    assert rows_by["alice"]["reason"] == ""
    assert rows_by["heidi"]["reason"] == "grader error (no message was recorded)"
    assert rows_by[XSS]["submission_sha256"] == "c0" * 32
    assert rows_by["alice"]["graded_at"] == "2025-01-01T00:00:00+00:00"


def test_are_pass_rates_and_struggles_counted_per_check(tmp_path):
    """Are passed, partial, failed and not measured told apart, and the worst checks listed first?"""
    s = write_cohort_report(_cohort(), tmp_path).summary
    assert s["learners"] == 13 and s["reduced_isolation"] == 1
    assert s["by_status"] == {
        "graded": 7,
        "rejected": 1,
        "notebook_failed": 1,
        "invalid_predictions": 1,
        "grader_error": 1,
        "timeout": 1,
        "grader_limit": 1,
    }
    checks = {c["id"]: c for c in s["checks"]}
    leak = checks["leakage"]
    assert (leak["passed"], leak["partial"], leak["failed"], leak["not_measured"]) == (4, 2, 3, 4)
    assert leak["weighed"] == 13 and leak["pass_rate"] == round(4 / 13, 4)
    assert leak["common_reason"] == "leakage: lost points." and leak["common_reason_count"] == 5
    auc = checks["auc"]
    assert (auc["passed"], auc["partial"], auc["failed"], auc["not_measured"]) == (5, 3, 0, 5)
    assert checks["service"]["pass_rate"] == round(8 / 13, 4)
    assert s["struggles"] == ["leakage", "auc", "service"]


def test_does_a_plain_cohort_raise_no_finding_and_are_the_bars_strict():
    """Do the rules stay quiet on ordinary results, and speak just past their bars?"""
    plain = [
        _result("a", seconds=40.0),
        _result("b", auc=REFERENCE_AUC + 0.049, seconds=35.0),  # within 0.05 of the reference
        _result("c", points=(1, 1, 0), seconds=1.0),  # fast, but not full marks
        _result("d", "notebook_failed", (1, 0, 1), execution="error"),  # 40% without a notebook
    ]
    assert find_implausible(plain) == []
    plain[3] = _result("d", "notebook_failed", (2, 1, 0), execution="error")  # 60%
    assert [(f.rule, f.learners) for f in find_implausible(plain)] == [
        ("high_score_failed_notebook", ("d",))
    ]
    plain[2] = _result("c", seconds=1.0)  # full marks in 1 s against a median of 35 s
    assert [f.rule for f in find_implausible(plain)] == [
        "fast_full_marks",
        "high_score_failed_notebook",
    ]


def test_does_an_empty_cohort_still_write_both_files(tmp_path):
    """Does a cohort with no result yet give a page without plots and a CSV with a header?"""
    report = write_cohort_report([], tmp_path / "out")
    text = report.html.read_text()
    assert "<img" not in text and "0 learners" in text
    assert report.csv.read_text().splitlines() == [",".join(report.summary["columns"])]
