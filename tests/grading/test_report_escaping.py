"""Learner text in the reports: escaped in feedback.html, neutralised in feedback.md, clean on a terminal.

feedback.md is rendered the way nbgrader renders feedback (nbconvert's mistune renderer,
which passes raw HTML and ``javascript:`` links through) and by markdown-it with raw HTML
allowed; neither may produce an element, attribute or link from learner text.
"""

from __future__ import annotations

import json
import random
import string
import zipfile
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import markdown_it
import pytest
import ranking
from nbconvert.filters.markdown_mistune import markdown2html_mistune

from grading import format_scorecard, grade, load_config
from grading.jobproc import marked_processes
from grading.report import write_reports
from grading.text import LIMIT, environment, md_escape, terminal_safe

PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<iframe src=javascript:alert(1)></iframe>",
    "<svg onload=alert(1)>",
    '"><b onmouseover="alert(1)">x</b>',
    "<!-- comment --><style>body{display:none}</style>",
    "](javascript:alert(1))",
    "[click](javascript:alert(1))",
    "![x](javascript:alert(1))",
    "<javascript:alert(1)>",
    "<https://evil.example/>",
    "https://evil.example/phish",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "&#60;script&#62;",
    "# a heading",
    "## another\n# and another",
    "1. ordered",
    "- bullet",
    "---",
    "===",
    "> quoted",
    "    indented code",
    "`code` and ``more``",
    "```\nfenced\n```",
    "*em* **strong** _em_ __strong__ ~~gone~~",
    "| a | b |\n|---|---|\n| c | d |",
    "[ref]: javascript:alert(1)",
    "[^1] footnote",
    "$\\href{javascript:alert(1)}{x}$",
    "\\(x\\) and \\",
    "\x1b[31mred\x1b[0m \x1b]8;;https://evil.example\x07link\x1b]8;;\x07 \x1b]0;title\x07",
    "line\rover\x08written\x00 \u202eevil\u202c",
    "term\n: definition",
]
LEARNER_HTML = ("script", "iframe", "svg", "style", "b", "em", "strong", "code", "del", "a", "img")


class _Elements(HTMLParser):
    """The elements, attributes and text of an HTML page."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag

    def handle_data(self, data):
        self.text.append(data)

    def count(self, tag: str) -> int:
        return sum(t == tag for t, _ in self.tags)

    def words(self) -> str:
        return " ".join("".join(self.text).split())


def _mistune(md: str) -> str:
    return markdown2html_mistune(md)


def _markdown_it(md: str) -> str:
    return (
        markdown_it.MarkdownIt("commonmark", {"html": True})
        .enable(["table", "strikethrough"])
        .render(md)
    )


RENDERERS = {"nbconvert-mistune": _mistune, "markdown-it-html": _markdown_it}


def _shown(text: str) -> str:
    """What a reader should see of ``text``: one line, no escape sequences or controls."""
    return " ".join(terminal_safe(text).split())


def _assert_inert(page: _Elements, allowed: set[str]) -> None:
    for tag, attrs in page.tags:
        assert tag in allowed, (tag, attrs)
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, attrs)
            assert "javascript" not in (value or "").lower(), (tag, attrs)


# ---- md_escape and terminal_safe ---------------------------------------------------------


def _fuzz(n: int = 400, seed: int = 10) -> list[str]:
    rng = random.Random(seed)
    alphabet = string.punctuation + "ab1 \n\t" + "\x1b"
    return [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 24))) for _ in range(n)
    ] + PAYLOADS


@pytest.mark.parametrize("renderer", sorted(RENDERERS))
def test_is_escaped_markdown_shown_as_exactly_its_text(renderer):
    """Does every string render as one paragraph holding its own text, and nothing else?"""
    render = RENDERERS[renderer]
    for s in _fuzz():
        want, md = _shown(s), md_escape(s)
        for source, expected in ((f"x {md} y", f"x {want} y"), (md, want)):
            if not expected:
                continue
            page = _Elements(render(source))
            assert [t for t, _ in page.tags] == ["p"], (s, source, render(source))
            assert page.words() == " ".join(expected.split()), (s, source, page.words())
        lines = _Elements(render(md_escape(s, single_line=False)))
        assert [t for t, _ in lines.tags] == (["p"] if want else []), (s, lines.tags)
        assert lines.words() == want, (s, lines.words())


@pytest.mark.parametrize("renderer", sorted(RENDERERS))
def test_is_escaped_markdown_inert_in_a_list_item_and_a_table_cell(renderer):
    render = RENDERERS[renderer]
    for s in _fuzz(150, seed=11):
        want = _shown(s)
        item = _Elements(render(f"- {md_escape(s)}\n"))
        assert {t for t, _ in item.tags} <= {"ul", "li", "p"}, (s, item.tags)
        assert item.words() == want, (s, item.words())
        source = f"| a | b |\n|---|---|\n| {md_escape(s)} | z |\n"
        table = _Elements(render(source))
        assert {t for t, _ in table.tags} <= {"table", "thead", "tbody", "tr", "th", "td"}
        assert table.count("td") == 2, (s, render(source))
        assert table.words() == " ".join(f"a b {want} z".split()), (s, table.words())


def test_is_markdown_cut_at_the_limit_and_kept_on_one_line():
    md = md_escape("x" * 10_000 + "\n# heading", limit=100)
    assert "\n" not in md and len(md) < 200 and "more characters" in md
    assert md_escape("a\n\n# b\n- c", single_line=False) == "a\n\\# b\n\\- c"
    assert md_escape("x" * (LIMIT + 1)).endswith("(1 more characters)")


def test_is_terminal_text_free_of_escape_sequences_and_line_breaks():
    s = terminal_safe("\x1b[2J\x1b[31mred\x1b[0m\nforged: 14 / 14 points\r\x07\x9b1mx\u202e", 40)
    assert s == "red forged: 14 / 14 points x"
    assert terminal_safe("y" * 50, 10) == "y" * 10 + "… (40 more characters)"


def test_does_the_scorecard_print_hostile_messages_on_one_clean_line_each():
    result = _hostile_result()
    result["messages"] = [*PAYLOADS, "x" * 10_000]
    card = format_scorecard(result)
    assert "\x1b" not in card and "\r" not in card and "\x00" not in card
    # A title line, one line per message, the isolation line, the header, one per check.
    assert len(card.splitlines()) == 1 + len(result["messages"]) + 1 + 1 + len(result["rubric"])
    assert all(len(line) < 400 for line in card.splitlines())


def test_does_the_environment_escape_html_and_neutralise_markdown(tmp_path):
    env = environment()
    assert env.from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"
    assert env.from_string("{{ x | num('.2f') }}").render(x=0.5) == "0.50"
    assert env.from_string("{{ x | num }}").render(x="<b>") == "&lt;b&gt;"
    assert env.from_string("{{ x | num }}").render(x=None) == "-"
    env.loader.searchpath.append(str(tmp_path))
    (tmp_path / "t.md.j2").write_text("- {{ x }} {{ n }}")
    assert env.get_template("t.md.j2").render(x="[a](javascript:b)", n=3) == (
        "- \\[a\\](javascript:b) 3"
    )
    with pytest.raises(Exception, match="undefined"):
        env.from_string("{{ missing }}").render()


# ---- the reports -------------------------------------------------------------------------


def _hostile_result() -> dict:
    long = "<script>" + "A" * 100_000 + "</script>"
    return {
        "project": "tiny_ranking",
        "status": "notebook_failed",
        "score": {"points": 1.5, "max_points": 4},
        "messages": [*PAYLOADS[:12], long],
        "rubric": [
            {
                "id": "ndcg",
                "metric": "ndcg@5",
                "value": 0.41234,
                "bar": 0.6,
                "points": 1.5,
                "max_points": 2,
                "passed": False,
                "feedback": "not measured: " + PAYLOADS[7] + ". " + PAYLOADS[1],
            },
            {
                "id": "<img src=x onerror=alert(1)>",
                "metric": "service.contract",
                "value": None,
                "bar": 1,
                "points": 0,
                "max_points": 0,
                "passed": None,
                "feedback": "not measured: " + PAYLOADS[14],
            },
        ],
        "metrics": {"roc_auc": 0.6},
        "service": {"problems": PAYLOADS[12:24]},
        "monitoring": {"problems": PAYLOADS[24:] + [long]},
        "stages": {
            "contract": {"problems": PAYLOADS},
            "<script>alert(2)</script>": {"problems": ["# x"]},
        },
        "reference": {"figures": {"roc_auc": 0.8}},
        "isolation": {"reduced": True, "reasons": ["<script>alert(3)</script>"]},
    }


def _write(tmp_path: Path, result: dict) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    job = SimpleNamespace(
        out_dir=out,
        result=result,
        executed_notebook=tmp_path / "none.ipynb",
        scorecard=None,
        scores=None,
        service={"latency_ms": [1.0, 2.0, 2.5, 4.0]},  # one plot: the page has one real image
    )
    write_reports(job)
    return out


FEEDBACK_HTML = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p"}
FEEDBACK_HTML |= {"strong", "ul", "li", "table", "thead", "tbody", "tr", "th", "td", "blockquote"}


def test_is_feedback_html_free_of_learner_markup(tmp_path):
    """Do scripts, images, frames, handlers and links from learner text stay text?"""
    out = _write(tmp_path, _hostile_result())
    html = (out / "feedback.html").read_text(encoding="utf-8")
    page = _Elements(html)
    _assert_inert(page, FEEDBACK_HTML | {"img"})
    images = [attrs for tag, attrs in page.tags if tag == "img"]
    assert len(images) == 1 and images[0]["src"].startswith("data:image/png;base64,")
    assert page.count("h1") == 1 and page.count("script") == 0 and page.count("a") == 0
    csp = [a["content"] for t, a in page.tags if t == "meta" and "http-equiv" in a]
    assert csp and "default-src 'none'" in csp[0]  # no script runs even if one got in
    text = page.words()
    for shown in ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "](javascript:"):
        assert shown in text
    assert "<script>alert(2)</script>: what to look at" in text
    assert "\x1b" not in html and "more characters" in text
    assert len(html) < 300_000  # 200 kB of learner text is cut, not copied


@pytest.mark.parametrize("renderer", sorted(RENDERERS))
def test_is_feedback_md_inert_when_rendered(tmp_path, renderer):
    """Rendered as nbgrader renders feedback, does feedback.md hold only the report's own markup?"""
    result = _hostile_result()
    md = (_write(tmp_path, result) / "feedback.md").read_text(encoding="utf-8")
    assert "\x1b" not in md and len(md) < 150_000
    page = _Elements(RENDERERS[renderer](md))
    # nbconvert adds a "¶" anchor to each heading; any other link would be learner-made.
    anchors = [attrs for tag, attrs in page.tags if tag == "a"]
    assert all(a.get("class") == "anchor-link" and a["href"].startswith("#") for a in anchors)
    _assert_inert(page, FEEDBACK_HTML | {"a"})
    # The report's own headings only: the title, lost points, 2 probe and 2 stage sections,
    # the reference table.
    assert page.count("h1") == 1 and page.count("h2") == 6, md
    assert page.count("strong") == 1 + len(result["rubric"])
    # One item per message, lost point and problem; the 33 contract problems are cut at 8 + 1.
    lists = (result["messages"], result["rubric"], result["service"]["problems"])
    lists += (result["monitoring"]["problems"], ["# x"])
    assert page.count("li") == sum(map(len, lists)) + 8 + 1
    text = page.words()
    for shown in ("<script>alert(1)</script>", "[click](javascript:alert(1))", "# a heading"):
        assert shown in text


def test_are_benign_reports_unchanged_by_escaping(tmp_path):
    """Is an ordinary report's Markdown plain (nothing escaped that needs no escaping)?"""
    result = _hostile_result()
    result.update(messages=["the notebook did not finish: cell 2 raised ValueError: bad"])
    result.update(service={}, monitoring={}, stages={}, isolation=None)
    result["rubric"][1]["id"] = "service_contract"
    result["rubric"][0]["feedback"] = "Rank by what the user likes, not only by what is popular."
    result["rubric"][1]["feedback"] = "not measured: the service probe is off for this grading."
    md = (_write(tmp_path, result) / "feedback.md").read_text(encoding="utf-8")
    assert md == (
        "# tiny_ranking: 1.5 / 4 points\n\n"
        "**What stopped the grading:**\n\n"
        "- the notebook did not finish: cell 2 raised ValueError: bad\n\n"
        "| check | value | bar | points |\n|---|---|---|---|\n"
        "| ndcg | 0.412 | 0.6 | 1.5 / 2 |\n"
        "| service_contract | - | 1 | not measured |\n\n"
        "## Where points were lost and how to win them\n\n"
        "- **ndcg** (1.5/2): Rank by what the user likes, not only by what is popular.\n"
        "- **service_contract** (0/0): not measured: the service probe is off for this grading.\n\n"
        "## The reference solution on the same hidden world\n\n"
        "| figure | reference | yours |\n|---|---|---|\n"
        "| roc_auc | 0.800 | 0.600 |\n"
    )


# ---- end to end: a hostile submission graded for real ------------------------------------

HOSTILE_CELLS = [
    """\
import pandas as pd
score = pd.read_parquet(score_path)
ids = score["CANDIDATE_ID"].astype(str).tolist()
ids[:3] = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "](javascript:alert(1))"]
pd.DataFrame({"CANDIDATE_ID": ids, "score": 0.5}).to_csv(predictions_path, index=False)
""",
    'raise ValueError("<iframe src=javascript:alert(1)></iframe> \\x1b[31m# [x](javascript:alert(1))")\n',
]
HOSTILE_MONITOR = """\
def check_drift(reference, current):
    raise RuntimeError("<svg onload=alert(1)> **bold** `code`")
"""


def _check_reports(out: Path) -> str:
    page = _Elements((out / "feedback.html").read_text(encoding="utf-8"))
    _assert_inert(page, FEEDBACK_HTML | {"img"})
    assert all(a["src"].startswith("data:image/png;base64,") for t, a in page.tags if t == "img")
    md = (out / "feedback.md").read_text(encoding="utf-8")
    for render in RENDERERS.values():
        rendered = _Elements(render(md))
        _assert_inert(rendered, FEEDBACK_HTML | {"a"})
        assert all(a.get("class") == "anchor-link" for t, a in rendered.tags if t == "a")
    return page.words()


@pytest.mark.integration
def test_a_submission_with_html_in_its_ids_and_errors_gets_inert_reports(ranking_env, tmp_path):
    spec, config_path, _ = ranking_env
    kit = ranking.write_kit(tmp_path / "kit", cells=HOSTILE_CELLS, monitor=HOSTILE_MONITOR)
    r = grade(kit, spec, load_config(config_path), tmp_path / "out")
    assert r["status"] == "notebook_failed", r["messages"]
    text = _check_reports(tmp_path / "out")
    # The learner's text is shown, as text.
    assert "<iframe src=javascript:alert(1)></iframe>" in text
    assert "<script>alert(1)</script>" in text and "<svg onload=alert(1)>" in text
    assert "\x1b" not in (tmp_path / "out" / "feedback.md").read_text(encoding="utf-8")
    assert "\x1b" not in format_scorecard(r)
    assert (
        json.loads((tmp_path / "out" / "result.json").read_text(encoding="utf-8"))["status"]
        == r["status"]
    )
    assert not marked_processes(str(tmp_path))


def test_a_hostile_file_name_in_a_zip_stays_text(ranking_env, tmp_path):
    spec, config_path, _ = ranking_env
    with zipfile.ZipFile(tmp_path / "s.zip", "w") as zf:
        zf.writestr("../<img src=x onerror=alert(1)>](javascript:alert(1)).py", "x")
    r = grade(tmp_path / "s.zip", spec, load_config(config_path), tmp_path / "out")
    assert r["status"] == "rejected"
    assert "<img src=x onerror=alert(1)>" in _check_reports(tmp_path / "out")
