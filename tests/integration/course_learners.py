"""Fake learners for the course's nbgrader cycle: what each one submits for a week.

``reference`` submits the instructor's source notebooks (solutions in place);
``untouched`` submits the released notebooks as fetched; each cheater starts
from the released notebook and cheats one way:

- ``edits_tests`` rewrites every locked test cell to pass;
- ``monkeypatches`` makes every stub return an object equal to anything and
  turns numpy's, pandas' and math's comparison helpers, which tests call, into
  no-ops;
- ``blanks_cells`` installs an IPython input transformer in its first cell, so
  that every later cell, tests included, runs as an empty cell.
"""

from __future__ import annotations

import re

import nbformat

__all__ = ["CHEATS", "cheat_for", "is_test_cell"]

_STUB = re.compile(r"^(?P<indent>[ \t]*)raise NotImplementedError\(.*\)\s*$")

_PATCH = '''\
import math

import numpy
import numpy.testing
import pandas.testing


class _Anything:
    """Equal to, less than and greater than anything; every operation gives itself."""

    def __eq__(self, other):
        return True

    __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __eq__
    __hash__ = object.__hash__

    def __bool__(self):
        return True

    def __getattr__(self, name):
        return self

    def __call__(self, *args, **kwargs):
        return self

    def __getitem__(self, key):
        return self

    def __iter__(self):
        return iter(())

    def __len__(self):
        return 0

    def _same(self, *args):
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _same
    __truediv__ = __rtruediv__ = __abs__ = __neg__ = __round__ = _same


_ANY = _Anything()


def _ok(*args, **kwargs):
    return None


numpy.testing.assert_allclose = numpy.testing.assert_array_equal = _ok
numpy.testing.assert_array_almost_equal = numpy.testing.assert_almost_equal = _ok
pandas.testing.assert_frame_equal = pandas.testing.assert_series_equal = _ok
pandas.testing.assert_index_equal = _ok
math.isclose = numpy.isclose = numpy.allclose = lambda *args, **kwargs: True
'''

_BLANK = """\
get_ipython().input_transformers_cleanup.append(lambda lines: [])
"""


def is_test_cell(cell) -> bool:
    """Is this one of nbgrader's autograded test cells?"""
    meta = cell.metadata.get("nbgrader", {})
    return bool(meta.get("grade")) and not meta.get("solution")


def _edits_tests(nb):
    for cell in nb.cells:
        if is_test_cell(cell):
            cell.source = "assert True  # the tests are mine now"
    return nb


def _monkeypatches(nb):
    for cell in nb.cells:
        if cell.cell_type != "code" or not cell.metadata.get("nbgrader", {}).get("solution"):
            continue
        lines = []
        for line in cell.source.splitlines():
            m = _STUB.match(line)
            if m:
                line = m["indent"] + ("return _ANY" if m["indent"] else "pass")
            lines.append(line)
        cell.source = "\n".join(lines)
    nb.cells.insert(0, nbformat.v4.new_code_cell(_PATCH))
    return nb


def _blanks_cells(nb):
    nb.cells.insert(0, nbformat.v4.new_code_cell(_BLANK))
    return nb


#: Each cheat, by name: a function from the released notebook to the cheater's.
CHEATS = {
    "edits_tests": _edits_tests,
    "monkeypatches": _monkeypatches,
    "blanks_cells": _blanks_cells,
}


def cheat_for(week: int) -> str:
    """The cheat the week's cheater tries (they rotate, so each week meets one of the three)."""
    return list(CHEATS)[(week - 1) % len(CHEATS)]
