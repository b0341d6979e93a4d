"""Is a wrong project spec refused with a message that names the field and the fix?"""

import ast

import pytest
import yaml

from fullcycle.exceptions import SpecError
from fullcycle.kit import load_kit
from fullcycle.spec import ProjectSpec, find_project, load_spec


@pytest.fixture
def spec_dict(repo):
    return yaml.safe_load((repo / "projects/fraud_detection/project.yaml").read_text())


def _check(d, check_id):
    """The rubric line of ``d`` with this id (the tests do not depend on the rubric's order)."""
    return next(c for c in d["rubric"] if c["id"] == check_id)


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
            lambda d: d["kit"]["stages"].update(model="build_model"),
            r"kit.stages.model: .*'module:attribute'",
        ),
        (
            lambda d: d["kit"]["stages"].update(modle="model:build_model"),
            r"kit.stages: unknown stage\(s\) \['modle'\]; the stages are \[.*'model'",
        ),
        (
            lambda d: d["kit"]["stages"].update(service="api:make_app"),
            r"service.app \('service:create_app'\) and kit.stages.service \('api:make_app'\)",
        ),
        (
            lambda d: d["service"].update(port=8000),
            r"service.port: unknown field; allowed fields here: \['app', 'contract', 'max_batch'\]",
        ),
        (
            lambda d: d["service"]["contract"].update(score_pth="/score"),
            r"service.contract.score_pth: unknown field; allowed fields here: \[.*'score_path'",
        ),
        (lambda d: d["service"].pop("contract"), r"service.contract: required field is missing"),
        (
            lambda d: d["service"]["contract"].update(id_field="txid"),
            r"service.contract: .*id_field 'txid' is not a request field",
        ),
        (
            lambda d: d["service"]["contract"].update(score_path="v1/score"),
            r"service.contract.score_path: a path starts with '/'",
        ),
        (
            lambda d: d["monitoring"].update(drift_dayz=[136, 142]),
            r"monitoring.drift_dayz: unknown field; allowed fields here: \[.*'drift_days'",
        ),
        (
            lambda d: d["monitoring"].update(clean_days=[135, 129]),
            r"monitoring.clean_days: .*0 <= first <= last, got \[135, 129\]",
        ),
        (
            lambda d: d["monitoring"].update(drift_days=[136, 150]),
            r"monitoring: drift_days \[136, 150\] is not inside replay_days \[122, 142\]",
        ),
        (
            lambda d: d["data"]["split"].update(known_compromised="weekly"),
            r"data.split.known_compromised: .*'handbook' or 'through_delay'",
        ),
        (
            lambda d: _check(d, "service_latency").update(metric="service.p99ms"),
            r"rubric\[\d+\]: rubric check 'service_latency': unknown figure 'service.p99ms'; "
            r"did you mean 'service.p99_ms'",
        ),
        (
            lambda d: _check(d, "service_latency").update(higher_is_better=True, partial_from=None),
            r"rubric\[\d+\]: rubric check 'service_latency': service.p99_ms is better when "
            r"lower; set higher_is_better: false",
        ),
        (
            lambda d: _check(d, "card_precision").update(metric="card_precision@50"),
            r"rubric check 'card_precision': card_precision@50 needs card_precision@50 in "
            r"metrics",
        ),
        (
            lambda d: d.pop("service"),
            r"rubric check 'service_contract': service.contract is measured with the spec's "
            r"service block, and there is none",
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


def test_service_and_monitoring_are_typed(repo):
    """Are the service contract and the monitoring timeline read into typed fields?"""
    spec = find_project("fraud_detection", search_root=repo)
    assert spec.service.app == "service:create_app"
    assert spec.service.max_batch == 1000
    assert spec.service.contract.batch_path == "/v1/score/batch"
    assert spec.service.contract.fields["tx_amount"] == "TX_AMOUNT"
    m = spec.monitoring
    assert m.check == "monitor:check_drift"
    assert (m.replay_days, m.drift_days, m.retrain_labelled_through) == (
        (122, 142),
        (136, 142),
        156,
    )
    assert spec.data.split.known_compromised == "handbook"


def test_the_grader_fixture_project_loads(repo):
    """Does the ranking fixture of the grader's tests (service, monitoring without a timeline) load?"""
    # Read the PROJECT literal without importing the module (its imports take seconds).
    tree = ast.parse((repo / "tests/grading/ranking.py").read_text())
    project = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PROJECT"
    )
    spec = ProjectSpec.model_validate(project)
    assert spec.service.contract.id_field == "candidate_id"
    assert spec.service.max_batch == 1000
    assert spec.monitoring.check == "monitor:check_drift"
    assert spec.monitoring.replay_days is None


def test_kit_stages_name_the_entry_points(tmp_path, spec_dict):
    """Do kit.stages override the defaults, and fill service.app and monitoring.check?"""
    spec_dict["kit"]["stages"] = {"policy": "ranking:review_priority", "service": "api:make_app"}
    spec_dict["service"].pop("app")
    spec = load_spec(_write(tmp_path, spec_dict))
    assert spec.kit.entry("policy") == "ranking:review_priority"
    assert spec.kit.entry("model") == "model:build_model" == spec.kit.model_factory
    assert spec.kit.entry("service") == spec.service.app == "api:make_app"
    assert spec.kit.entry("drift") == spec.monitoring.check == "monitor:check_drift"
    with pytest.raises(SpecError, match=r"unknown kit stage 'polcy'; the stages are"):
        spec.kit.entry("polcy")
    kit_dir = tmp_path / "kit"
    kit_dir.mkdir()
    assert load_kit(spec, kit_dir).stages["policy"] == "ranking:review_priority"


def test_model_factory_is_a_deprecated_spelling_of_the_model_stage(tmp_path, spec_dict):
    """Does kit.model_factory still work, as stages.model, with a DeprecationWarning?"""
    spec_dict["kit"].pop("stages")
    spec_dict["kit"]["model_factory"] = "models:make"
    with pytest.warns(DeprecationWarning, match="kit.model_factory is deprecated"):
        spec = load_spec(_write(tmp_path, spec_dict))
    assert spec.kit.stages["model"] == spec.kit.model_factory == "models:make"
    spec_dict["kit"]["stages"] = {"model": "model:build_model"}
    with (
        pytest.warns(DeprecationWarning),
        pytest.raises(SpecError, match=r"kit.model_factory \('models:make'\) and kit.stages.model"),
    ):
        load_spec(_write(tmp_path, spec_dict))


def test_a_figure_the_grader_registers_can_be_graded(tmp_path, spec_dict, monkeypatch):
    """Is a rubric metric refused until the grader registers that figure, and accepted after?"""
    from fullcycle.metrics import registry

    monkeypatch.setattr(registry, "_FIGURES", dict(registry._FIGURES))
    spec_dict["rubric"][0]["metric"] = "features.speed"
    with pytest.raises(SpecError, match=r"rubric check 'auc': unknown figure 'features.speed'"):
        load_spec(_write(tmp_path, spec_dict))
    registry.register_figure("features.speed", "transactions featurised per second")
    assert load_spec(_write(tmp_path, spec_dict)).rubric[0].metric == "features.speed"


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


@pytest.mark.parametrize("project", ["fraud_detection", "recommender"])
def test_a_live_replay_names_the_timeline_keys_its_spec_lacks(repo, project):
    from fullcycle.live import replay_timeline

    spec = find_project(project, search_root=repo)
    assert replay_timeline(spec).replay_days[0] < replay_timeline(spec).replay_days[1]
    partial = spec.monitoring.model_copy(update={"drift_days": None, "clean_days": None})
    with pytest.raises(SpecError, match=r"lacks \['clean_days', 'drift_days'\]"):
        replay_timeline(spec.model_copy(update={"monitoring": partial}))
    with pytest.raises(SpecError, match="retrain_labelled_through"):
        replay_timeline(spec.model_copy(update={"monitoring": None}))
