"""Does each project brief show its spec's numbers, generated, and none typed by hand?"""

import re

import pytest

from fullcycle.brief import render_brief, rubric_table, setting_table, sync_brief
from fullcycle.exceptions import SpecError
from fullcycle.spec import load_spec

REGENERATE = (
    "the brief is out of date with project.yaml; regenerate it with\n"
    '  .venv/bin/python -c "from fullcycle.brief import sync_brief; from fullcycle.spec import '
    "find_project; sync_brief(find_project('{name}'))\""
)


def _specs(repo):
    return [load_spec(p) for p in sorted((repo / "projects").glob("*/project.yaml"))]


def _section(text: str, name: str) -> str:
    found = re.findall(rf"<!-- {name}:start -->\n(.*?)<!-- {name}:end -->", text, re.DOTALL)
    assert len(found) == 1, f"expected one {name} section"
    return found[0]


def test_each_brief_holds_exactly_the_generated_tables(repo):
    """Is the text between the markers of every shipped brief what its spec generates now?"""
    specs = _specs(repo)
    assert specs
    for spec in specs:
        text = (spec.root / "README.md").read_text(encoding="utf-8")
        assert rubric_table(spec) in _section(text, "rubric"), REGENERATE.format(name=spec.name)
        assert not sync_brief(spec, check=True), REGENERATE.format(name=spec.name)


def test_briefs_type_no_numbers_by_hand(repo):
    """Outside the generated tables, does a brief hold no number (a citation aside)?"""
    for spec in _specs(repo):
        text = (spec.root / "README.md").read_text(encoding="utf-8")
        prose = re.sub(r"<!-- (\w+):start -->.*?<!-- \1:end -->", "", text, flags=re.DOTALL)
        prose = re.sub(r"ch\. \d+", "", prose)  # the handbook chapter cited
        assert re.findall(r"\d[\d.,%]*", prose) == [], f"{spec.name}: numbers typed by hand"


def test_the_rubric_table_follows_the_spec(repo, tmp_path):
    """When a bar changes in project.yaml, does regenerating put the new bar in the brief?"""
    spec = load_spec(repo / "projects/fraud_detection")
    table = rubric_table(spec)
    auc = next(c for c in spec.rubric if c.id == "auc")
    assert f"| `auc` | `{auc.metric}` |" in table
    assert f"| ≥ {auc.bar:g} | {auc.partial_from:g} | {auc.points:g} |" in table
    assert "| `service_latency` | `service.p99_ms` |" in table and "| ≤ 50 | 500 | 1 |" in table
    assert f"Total: {sum(c.points for c in spec.rubric):g} points." in table
    checks = [c.model_copy(update={"bar": 0.5}) if c.id == "auc" else c for c in spec.rubric]
    changed = spec.model_copy(update={"rubric": checks})
    brief = tmp_path / "README.md"
    brief.write_text((spec.root / "README.md").read_text(encoding="utf-8"), encoding="utf-8")
    assert sync_brief(changed, brief, check=True) is True
    # --check leaves the file alone:
    assert f"≥ {auc.bar:g} | {auc.partial_from:g}" in brief.read_text(encoding="utf-8")
    assert sync_brief(changed, brief) is True
    assert f"| ≥ 0.5 | {auc.partial_from:g} | {auc.points:g} |" in brief.read_text(encoding="utf-8")
    assert sync_brief(changed, brief) is False


def test_the_setting_table_shows_the_split_and_the_value_model(repo):
    spec = load_spec(repo / "projects/fraud_detection")
    table = setting_table(spec)
    assert "| Training window | days 115–121 (2018-07-25 to 2018-07-31) |" in table
    assert "days 129–135 (2018-08-08 to 2018-08-14)" in table
    assert "on a day ≤ d − 8" in table and "`handbook` rule" in table
    assert "k 100, review_cost 10, recovery_rate 0.8, friction_cost 15" in table


@pytest.mark.parametrize(
    "text, expected",
    [
        ("# A brief without tables\n", "has no rubric section"),
        (
            "<!-- rubric:start -->\n<!-- rubric:end -->\n<!-- scores:start -->\n<!-- scores:end -->",
            r"unknown section\(s\) \['scores'\]",
        ),
        (
            "<!-- rubric:start -->\n<!-- rubric:end -->\n<!-- rubric:start -->\n<!-- rubric:end -->",
            r"section\(s\) \['rubric'\] appear more than once",
        ),
    ],
)
def test_badly_marked_briefs_are_refused(repo, text, expected):
    spec = load_spec(repo / "projects/fraud_detection")
    with pytest.raises(SpecError, match=expected):
        render_brief(text, spec)
