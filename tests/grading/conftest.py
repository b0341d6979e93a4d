"""Fixtures of the grader's tests: the tiny ranking project, its hidden files, a config."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import ranking


@pytest.fixture(scope="session")
def ranking_env(tmp_path_factory):
    """(spec, config path, instructor folder) for the tiny ranking project."""
    from fullcycle.spec import load_spec

    root = tmp_path_factory.mktemp("instructor")
    holdout = ranking.write_holdout(root / "hidden")
    spec = load_spec(ranking.write_project(root / "project"))
    config = ranking.write_config(root, holdout)
    return spec, config, root
