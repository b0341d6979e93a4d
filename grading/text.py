"""Learner text made safe for reports: HTML autoescaping, neutralised Markdown, clean terminals.

Every string a submission can influence (prediction ids, exception messages,
problems its service or stage functions caused, file names of its kit) reaches
a report through one of these, never through an f-string:

- :func:`environment` — the Jinja2 environment of every grading report. Templates
  ending in ``.html.j2`` (and any other name) are HTML-autoescaped; templates ending in
  ``.md.j2`` neutralise every ``{{ value }}`` with :func:`md_escape`, so a template
  cannot forget to. In both kinds a printed string is first cleaned of control
  characters and cut at :data:`LIMIT` characters. A value passes untouched only when
  it is :class:`markupsafe.Markup`: what the filters ``num`` and ``md`` return, or
  what the grader built itself (a base64 plot).
- :func:`md_escape` — one value inside Markdown that nbgrader renders to HTML
  (nbconvert's mistune renderer passes raw HTML and ``javascript:`` links through):
  ``<``, ``>`` and ``&`` become entities, Markdown punctuation is backslash-escaped.
- :func:`terminal_safe` — one value printed to a terminal: no ANSI escape sequences,
  no control characters, no line breaks that could forge a line of the scorecard.
"""

from __future__ import annotations

import math
import numbers
import re
from pathlib import Path

import jinja2
from markupsafe import Markup

__all__ = ["LIMIT", "TEMPLATES", "clip", "environment", "md_escape", "terminal_safe"]

#: Characters of one learner string shown in a report; the rest is cut with a note.
LIMIT = 2000
#: The folder of the grader's report templates.
TEMPLATES = Path(__file__).resolve().parent / "templates"

# ANSI/VT escape sequences: CSI (colours, cursor moves), OSC (titles, hyperlinks; ended by BEL
# or ST), DCS/SOS/PM/APC strings, and two-character escapes.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"
    r"|\x1b[ -/]*[0-~]?"
    r"|\x9b[0-?]*[ -/]*[@-~]"
)
# C0 and C1 controls (tab and newline handled apart), DEL, and the Unicode controls that
# reorder or hide text (bidi overrides and isolates, zero-width joiners, BOM).
_CONTROLS = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]"
)
_BREAKS = re.compile(r"[\t\n\r\u2028\u2029]+")
_LINES = re.compile(r"\r\n|[\n\r\u2028\u2029]")
_SPACES = re.compile(r"\s+")
# Backslash-escaped wherever they stand: emphasis, code, links and images (a link needs
# "](", so escaping the brackets is enough), tables, strikethrough, math, headings and the
# escape character itself.
_MD_ALWAYS = frozenset("\\`*[]|~$#")
# Escaped only at the start of a line, where they open a block (list, setext heading,
# definition).
_MD_LINE_START = frozenset("-+=:")
_ORDERED = re.compile(r"(\d{1,9})([.)])")


def _strip(value: object) -> str:
    """``value`` as text without escape sequences or control characters (tab and breaks stay)."""
    return _CONTROLS.sub("", _ESCAPES.sub("", str(value)))


def _clean(value: object, limit: int | None, single_line: bool) -> str:
    """``value`` as text without escape sequences or control characters, cut at ``limit``.

    Spaces are collapsed and each line stripped (Markdown reads leading spaces as
    indentation); ``single_line`` turns the line breaks into spaces too.
    """
    text = _strip(value)
    if single_line:
        text = _SPACES.sub(" ", _BREAKS.sub(" ", text)).strip()
    else:
        text = "\n".join(_SPACES.sub(" ", line).strip() for line in _LINES.split(text))
    return clip(text, limit)


def clip(text: str, limit: int | None = LIMIT) -> str:
    """``text`` cut at ``limit`` characters, saying how much was left out.

    Parameters
    ----------
    text : str
    limit : int or None
        At most this many characters of ``text`` are kept; ``None`` keeps all.
    """
    text = str(text)
    if limit is None or len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def terminal_safe(value: object, limit: int | None = None) -> str:
    """``value`` as one line safe to print to a terminal.

    ANSI escape sequences (colours, cursor moves, window titles, hyperlinks) and
    control characters are removed, line breaks and tabs become spaces (a learner's
    message cannot forge a line of the scorecard), and the text is cut at ``limit``.

    Parameters
    ----------
    value : object
        Any value; ``str(value)`` is what is shown.
    limit : int or None
        At most this many characters are kept; ``None`` keeps all.
    """
    return _clean(value, limit, single_line=True)


def _md_line(line: str) -> str:
    out = []
    for i, ch in enumerate(line):
        if ch == "&":
            out.append("&amp;")
        elif ch == "<":
            out.append("&lt;")
        elif ch == ">":
            out.append("&gt;")
        elif ch in _MD_ALWAYS:
            out.append("\\" + ch)
        elif ch == "_":
            # Intraword underscores (service_contract) emphasise nothing; others may.
            inner = 0 < i < len(line) - 1 and line[i - 1].isalnum() and line[i + 1].isalnum()
            out.append(ch if inner else "\\_")
        elif ch in "()" and i and line[i - 1] == "\\":
            out.append("\\" + ch)  # no TeX delimiter \\( \\) for nbconvert's math parser
        elif ch == ":" and line.startswith("//", i + 1):
            out.append("\\:")  # no bare-URL autolink (https://...)
        elif i == 0 and ch in _MD_LINE_START:
            out.append("\\" + ch)
        else:
            out.append(ch)
    text = "".join(out)
    m = _ORDERED.match(text)
    if m:  # "1. " or "1) " would open an ordered list
        text = m.group(1) + "\\" + m.group(2) + text[m.end() :]
    return text


def md_escape(value: object, limit: int | None = LIMIT, single_line: bool = True) -> str:
    """``value`` as Markdown text that renders as exactly that text, never as markup.

    nbgrader renders feedback Markdown with nbconvert's mistune renderer, which
    passes raw HTML through and keeps ``javascript:`` links; other renderers differ.
    So nothing is left for any renderer to interpret: ``&``, ``<`` and ``>`` become
    HTML entities (no tag, comment or autolink can open); the characters of Markdown
    inline syntax are backslash-escaped: ``\\ ` * [ ] | ~ $ #`` everywhere, ``_`` unless
    inside a word, ``(`` and ``)`` after a backslash (TeX delimiters), ``:`` before
    ``//`` (bare-URL autolinks); and so are the markers that open a block at a line's
    start (``-``, ``+``, ``=``, ``:``, ``1.``, ``1)``). No emphasis, code, link, image,
    table cell, strikethrough, math, heading or list can form. Escape sequences and
    control characters are removed and the text is cut at ``limit`` characters before
    it is escaped.

    Parameters
    ----------
    value : object
        Any value; ``str(value)`` is what is shown.
    limit : int or None
        At most this many characters of the text are kept; ``None`` keeps all.
    single_line : bool
        Line breaks become spaces (a table cell, a list item, a heading). When false,
        lines are kept, each escaped on its own, without blank lines (a blank line
        would end the enclosing list item).

    Returns
    -------
    str
        The escaped text.
    """
    text = _clean(value, limit, single_line)
    if single_line:
        return _md_line(text)
    return "\n".join(_md_line(line) for line in text.split("\n") if line)


def _number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _num(value: object, spec: str = "g", missing: str = "-") -> object:
    """Filter ``num``: a number formatted with ``spec``; ``missing`` for None or NaN.

    Anything that is not a number is returned as it is, to be escaped like any text.
    """
    if value is None or (_number(value) and math.isnan(float(value))):
        return Markup(missing)
    if not _number(value):
        return value
    return Markup(format(float(value), spec))


def _md(value: object, limit: int | None = LIMIT) -> Markup:
    """Filter ``md``: :func:`md_escape`, marked so that it is not escaped again."""
    return Markup(md_escape(value, limit))


def _markdown_template(name: str | None) -> bool:
    return bool(name) and name.endswith((".md.j2", ".md"))


@jinja2.pass_context
def _finalize(context: jinja2.runtime.Context, value: object) -> object:
    """Every printed value: clean and cut learner text; neutralise it in Markdown templates."""
    if isinstance(value, Markup) or _number(value) or isinstance(value, bool):
        return value
    if _markdown_template(context.name):
        return md_escape(value)
    return clip(_strip(value), LIMIT)  # HTML: autoescaping follows; whitespace is kept


def environment() -> jinja2.Environment:
    """A new Jinja2 environment for the grader's reports, loading from :data:`TEMPLATES`.

    HTML autoescaping is on for every template except those ending in ``.md.j2``,
    whose printed values are neutralised by :func:`md_escape` instead. In HTML
    templates a printed string also loses its escape sequences and control characters
    and is cut at :data:`LIMIT` characters; mark what the grader built itself (a base64
    plot) :class:`markupsafe.Markup` to print it whole. Undefined names are errors. Filters: ``num(spec="g", missing="-")`` formats a number,
    ``md`` escapes for Markdown explicitly, ``clip(limit)`` cuts text,
    ``terminal`` applies :func:`terminal_safe`.

    Returns
    -------
    jinja2.Environment
        A fresh environment; add filters to it freely.
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "htm", "xml", "html.j2", "htm.j2", "xml.j2"),
            disabled_extensions=("md.j2", "md"),
            default_for_string=True,
            default=True,
        ),
        finalize=_finalize,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(num=_num, md=_md, clip=clip, terminal=terminal_safe)
    return env
