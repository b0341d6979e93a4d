"""Is a wrong project spec refused with a message that names the field and the fix?"""

import pytest
import yaml

from fullcycle.exceptions import SpecError
from fullcycle.spec import find_project, load_spec


@pytest.fixture
def spec_dict(repo):
    return yaml.safe_load((repo / "projects/fraud_detection/project.yaml").read_text())


def _write(tmp_path, data):
    path = tmp_path / "project.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_fraud_project_loads(repo):
    """Does the shipped spec load, with its hash and folder recorded?"""
    spec = find_project("fraud_detection", search_root=repo)
    assert spec.task == "binary_classification"
    assert spec.business_value.build().k == 100
    assert len(spec.sha256) == 64
    assert spec.root == (repo / "projects/fraud_detection").resolve()


@pytest.mark.parametrize(
    "edit, expected",
    [
        (
            lambda d: d.update(colour="blue"),
            r"colour: unknown field; allowed fields here: \[.*'business_value'",
        ),
        (
            lambda d: d["data"]["split"].update(train_dayz=7),
            r"data.split.train_dayz: unknown field; allowed fields here: \[.*'train_days'",
        ),
        (lambda d: d["data"].pop("split"), r"data.split: required field is missing"),
        (lambda d: d.update(task="regression"), r"task: .*'binary_classification'"),
        (
            lambda d: d["data"]["split"].update(test_days=0),
            r"data.split.test_days: .*greater than or equal to 1",
        ),
        (
            lambda d: d["data"]["params"].update(n_cards=5),
            r"unknown simulator parameter\(s\) \['n_cards'\]",
        ),
        (
            lambda d: d["business_value"]["params"].update(budget=1),
            r"business_value: .*its parameters are",
        ),
        (
            lambda d: d["business_value"].update(model="lottery"),
            r"unknown business value model 'lottery'; choose from",
        ),
        (
            lambda d: d.update(metrics=["accuracy"]),
            r"metrics: unknown metric 'accuracy'; choose from",
        ),
        (
            lambda d: d["prediction"].update(score_range=[1, 0]),
            r"prediction.score_range: .*low < high",
        ),
        (
            lambda d: d["kit"].update(model_factory="build_model"),
            r"kit.model_factory: .*'module:function'",
        ),
        (lambda d: d["rubric"][0].update(partial_from=0.99), r"rubric\[0\]: .*partial_from"),
        (
            lambda d: d["rubric"].append(dict(d["rubric"][0])),
            r"rubric ids must be unique; repeated: \['auc'\]",
        ),
    ],
)
def test_wrong_fields_are_named(tmp_path, spec_dict, edit, expected):
    """Each mistake gets a SpecError naming where it is."""
    edit(spec_dict)
    with pytest.raises(SpecError, match=expected):
        load_spec(_write(tmp_path, spec_dict))


def test_not_yaml_and_not_a_mapping(tmp_path):
    """Are broken YAML, a list and a missing file refused with a reason?"""
    bad = tmp_path / "project.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(bad)
    bad.write_text("- a\n- b\n")
    with pytest.raises(SpecError, match="must be a mapping"):
        load_spec(bad)
    with pytest.raises(SpecError, match="no such spec file"):
        load_spec(tmp_path / "missing.yaml")
    with pytest.raises(SpecError, match="known projects"):
        find_project("nope", search_root=tmp_path)


def test_smaller_scales_shrink_the_team_with_the_bank(repo):
    """Does a small run keep the full run's proportions: 1,000 customers, 20 reviews a day?"""
    from fullcycle.exceptions import ConfigError
    from fullcycle.run import at_scale

    spec = find_project("fraud_detection", search_root=repo)
    small = at_scale(spec, "small")
    assert small.data.params["n_customers"] == 1000
    assert small.business_value.build().k == 20
    assert at_scale(spec, "full") is spec
    with pytest.raises(ConfigError, match="choose from"):
        at_scale(spec, "huge")
