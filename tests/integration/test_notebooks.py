"""Are notebooks stored without outputs, and does the kit notebook run top to bottom?"""

import json

import nbformat
import pytest

NOTEBOOK_DIRS = ("starter_kits", "curriculum", "projects")


def _notebooks(repo):
    return sorted(
        p
        for d in NOTEBOOK_DIRS
        for p in (repo / d).rglob("*.ipynb")
        if ".ipynb_checkpoints" not in p.parts
    )


def test_there_are_notebooks(repo):
    assert _notebooks(repo), "no notebooks found; the kit notebook is missing"


def test_notebooks_are_committed_without_outputs(repo):
    """Does every stored notebook have no outputs and no execution counts?"""
    dirty = []
    for path in _notebooks(repo):
        nb = json.loads(path.read_text())
        for i, cell in enumerate(nb["cells"]):
            if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count")):
                dirty.append(f"{path.relative_to(repo)} cell {i}")
    assert not dirty, "clear outputs before committing: " + ", ".join(dirty)


def test_kit_notebook_has_a_parameters_cell(repo):
    nb = nbformat.read(repo / "starter_kits/fraud_detection/pipeline.ipynb", as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1


@pytest.mark.integration
def test_kit_notebook_runs_end_to_end(repo, tmp_path, clean_mlflow_env):
    """Does Papermill run the kit notebook to the end and does it hand over predictions and a model?"""
    import pandas as pd
    import papermill as pm

    out = tmp_path / "executed.ipynb"
    pm.execute_notebook(
        str(repo / "starter_kits/fraud_detection/pipeline.ipynb"),
        str(out),
        parameters={
            "scale": "tiny",
            "workspace": str(tmp_path / "ws"),
            "predictions_path": str(tmp_path / "pred.csv"),
            "model_dir": str(tmp_path / "model"),
        },
        cwd=str(repo / "starter_kits/fraud_detection"),
        progress_bar=False,
        kernel_name="python3",
    )
    preds = pd.read_csv(tmp_path / "pred.csv")
    assert list(preds.columns) == ["TRANSACTION_ID", "fraud_score"]
    assert preds["TRANSACTION_ID"].is_unique and preds["fraud_score"].between(0, 1).all()
    assert (tmp_path / "model" / "model.joblib").is_file()
    text = out.read_text()
    assert "Scorecard" in text and "image/png" in text


@pytest.mark.integration
def test_kit_notebook_follows_the_submission_contract(repo, tmp_path, clean_mlflow_env):
    """Given train_path (labelled history) and score_path (no labels), does the notebook write
    one score per scoring id, with the labels never in its hands?"""
    import pandas as pd
    import papermill as pm

    from fullcycle.data import save_transactions, simulate_transactions

    tx = simulate_transactions(n_customers=300, n_terminals=600, n_days=40, seed=8).transactions
    history = tx[tx["TX_TIME_DAYS"] < 30]
    score = tx[tx["TX_TIME_DAYS"].between(30, 33)].drop(columns=["TX_FRAUD", "TX_FRAUD_SCENARIO"])
    save_transactions(history, tmp_path / "history.parquet")
    save_transactions(score.sample(frac=1, random_state=0), tmp_path / "score.csv")
    pm.execute_notebook(
        str(repo / "starter_kits/fraud_detection/pipeline.ipynb"),
        str(tmp_path / "executed.ipynb"),
        parameters={
            "train_path": str(tmp_path / "history.parquet"),
            "score_path": str(tmp_path / "score.csv"),
            "workspace": str(tmp_path / "ws"),
            "predictions_path": str(tmp_path / "pred.csv"),
            "model_dir": str(tmp_path / "model"),
        },
        cwd=str(repo / "starter_kits/fraud_detection"),
        progress_bar=False,
        kernel_name="python3",
    )
    preds = pd.read_csv(tmp_path / "pred.csv")
    assert sorted(preds["TRANSACTION_ID"]) == sorted(score["TRANSACTION_ID"])
    assert preds["fraud_score"].between(0, 1).all()
    assert not (tmp_path / "ws").exists()  # no labels, no gate, nothing registered
