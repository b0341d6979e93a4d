"""Does a real run land in a real MLflow store with everything a reviewer needs?"""

import pytest

from fullcycle import tracking
from fullcycle.run import run_project, with_scale
from fullcycle.spec import find_project

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tiny_spec(repo):
    spec = find_project("fraud_detection", search_root=repo)
    return with_scale(spec, n_customers=400, n_terminals=800)


def test_run_is_logged_registered_and_loadable(tmp_path, tiny_spec, clean_mlflow_env):
    """Are params, technical and business metrics, fingerprint, code version and a model
    with signature logged; is the gated model aliased champion and loadable by alias?"""
    import mlflow

    spec = tiny_spec.model_copy(
        update={
            "gate": tiny_spec.gate.model_copy(
                update={"min_value_vs_baseline": -1e9, "min_roc_auc": 0.0}
            )
        }
    )
    result = run_project(spec, tmp_path / "ws", progress=None)
    assert (tmp_path / "ws" / "mlflow.db").is_file()
    assert mlflow.get_tracking_uri().startswith("sqlite:///")
    run = mlflow.get_run(result.run_id)
    assert {
        "roc_auc",
        "card_precision_at_100",
        "net_value",
        "value_vs_baseline",
        "share_of_oracle",
    } <= set(run.data.metrics)
    assert run.data.metrics["net_value"] == pytest.approx(result.scorecard.value.net_value)
    assert run.data.tags["data_fingerprint"] == tracking.data_fingerprint(
        result.prepared.validation.valid
    )
    assert run.data.tags["code_version"].startswith("0.1.0")
    assert run.data.params["split.delay_days"] == "7"
    assert result.registered is not None
    model = tracking.load_champion(spec.name)
    X = result.prepared.X_test.head(20)
    assert (model.predict_proba(X)[:, 1] == result.model.predict_proba(X)[:, 1]).all()
    info = mlflow.models.get_model_info(f"models:/{spec.name}@champion")
    assert [c.name for c in info.signature.inputs] == list(X.columns)
    assert (tmp_path / "ws" / "mlartifacts").is_dir()


def test_failing_gate_is_not_registered(tmp_path, tiny_spec, clean_mlflow_env):
    """Is a model below the gate logged with the reason but not made champion?"""
    spec = tiny_spec.model_copy(
        update={"gate": tiny_spec.gate.model_copy(update={"min_roc_auc": 0.9999})}
    )
    result = run_project(spec, tmp_path / "ws", progress=None)
    assert not result.gate_passed and result.registered is None
    import mlflow

    assert mlflow.get_run(result.run_id).data.tags["gate"].startswith("failed: roc_auc")


def test_tracking_uri_from_the_environment_wins(tmp_path, tiny_spec, monkeypatch):
    """Does MLFLOW_TRACKING_URI send runs elsewhere instead of the workspace store?"""
    other = tmp_path / "elsewhere.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{other}")
    run_project(tiny_spec, tmp_path / "ws", progress=None, register=False)
    assert other.is_file()
    assert not (tmp_path / "ws" / "mlflow.db").exists()


def test_unreachable_store_is_a_clear_error(tmp_path, monkeypatch):
    """Is a broken tracking URI reported with the fix, not a traceback from deep inside MLflow?"""
    from fullcycle.exceptions import TrackingError

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "nosuchscheme://somewhere")
    with pytest.raises(TrackingError, match="MLFLOW_TRACKING_URI"):
        tracking.setup_tracking(tmp_path, "x")
