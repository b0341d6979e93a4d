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


# ---- the recommender kit's notebook ------------------------------------------------------------

RECOMMENDER_KIT = "starter_kits/recommender"
HANDOVER_KEYS = {"model", "items", "bought"}


def _run_recommender_notebook(repo, tmp_path, **parameters):
    """Papermill runs the recommender kit's notebook in its folder; returns the executed notebook."""
    import papermill as pm

    out = tmp_path / "executed.ipynb"
    pm.execute_notebook(
        str(repo / RECOMMENDER_KIT / "pipeline.ipynb"),
        str(out),
        parameters={
            "workspace": str(tmp_path / "ws"),
            "predictions_path": str(tmp_path / "pred.csv"),
            "model_dir": str(tmp_path / "model"),
            **parameters,
        },
        cwd=str(repo / RECOMMENDER_KIT),
        progress_bar=False,
        kernel_name="python3",
    )
    return nbformat.read(out, as_version=4)


def _printed(nb) -> str:
    return "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )


def test_recommender_notebook_has_a_parameters_cell(repo):
    """Does the recommender notebook take the same parameters as the fraud kit's?"""
    nb = nbformat.read(repo / RECOMMENDER_KIT / "pipeline.ipynb", as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    names = [line.split("=")[0].strip() for line in tagged[0].source.splitlines() if "=" in line]
    assert names == [
        "train_path",
        "score_path",
        "scale",
        "seed",
        "workspace",
        "track",
        "predictions_path",
        "model_dir",
    ]


@pytest.mark.integration
def test_recommender_notebook_runs_end_to_end(repo, tmp_path, clean_mlflow_env):
    """At small scale, does the notebook score every candidate in [0, 1], hand over what the
    service loads, and print an nDCG@10 above popularity's that its own file reproduces?"""
    import re

    import joblib
    import pandas as pd

    from fullcycle.data.candidates import project_window
    from fullcycle.kit import Kit
    from fullcycle.metrics.technical import ndcg_at_k
    from fullcycle.spec import find_project

    nb = _run_recommender_notebook(repo, tmp_path, scale="small")
    candidates = project_window(find_project("recommender"), scale="small").candidates
    preds = pd.read_csv(tmp_path / "pred.csv")
    assert list(preds.columns) == ["CANDIDATE_ID", "score"]
    assert len(preds) == len(candidates) and preds["CANDIDATE_ID"].is_unique
    assert set(preds["CANDIDATE_ID"]) == set(candidates["CANDIDATE_ID"])
    assert preds["score"].between(0, 1).all()
    assert (preds["score"] == 0).any() and (preds["score"] > 0).any()  # the rules excluded some

    Kit(repo / RECOMMENDER_KIT).module("model")  # the notebook pickled the model from it
    saved = joblib.load(tmp_path / "model" / "model.joblib")
    assert set(saved) == HANDOVER_KEYS
    assert callable(saved["model"].score) and set(saved["items"]["ITEM_ID"]) == set(
        candidates["ITEM_ID"]
    )

    # The figures the notebook printed, and the same nDCG@10 recomputed from its file.
    text = _printed(nb)
    found = re.search(r"nDCG@10\s+model ([0-9.]+)\s+popularity ([0-9.]+)", text)
    assert found, "the notebook did not print its nDCG@10 against popularity"
    model_ndcg, popular_ndcg = map(float, found.groups())
    assert model_ndcg > popular_ndcg
    scored = candidates.merge(preds, on="CANDIDATE_ID", validate="one_to_one")
    ndcg = ndcg_at_k(scored, scored["score"], 10, "PURCHASED", "USER_ID")
    assert round(ndcg, 3) == model_ndcg
    assert "image/png" in (tmp_path / "executed.ipynb").read_text()
    assert (tmp_path / "ws" / "mlflow.db").is_file()  # labelled and track=True: the run is logged


@pytest.mark.integration
def test_recommender_notebook_follows_the_submission_contract(repo, tmp_path, clean_mlflow_env):
    """Given a history file and unlabelled candidates (tiny), does the notebook write one score
    per candidate, track nothing without labels, and hand over a model that the kit's service
    loads and scores with exactly the file's numbers?"""
    import joblib
    import pandas as pd
    from fastapi.testclient import TestClient

    from fullcycle.data.candidates import project_window
    from fullcycle.kit import Kit
    from fullcycle.spec import find_project

    window = project_window(find_project("recommender"), scale="tiny")
    candidates = window.candidates.drop(columns="PURCHASED")
    window.history.to_parquet(tmp_path / "history.parquet")
    candidates.sample(frac=1, random_state=0).to_parquet(tmp_path / "candidates.parquet")
    _run_recommender_notebook(
        repo,
        tmp_path,
        train_path=str(tmp_path / "history.parquet"),
        score_path=str(tmp_path / "candidates.parquet"),
    )
    preds = pd.read_csv(tmp_path / "pred.csv", float_precision="round_trip")
    assert sorted(preds["CANDIDATE_ID"]) == sorted(candidates["CANDIDATE_ID"])
    assert preds["score"].between(0, 1).all()
    assert not (tmp_path / "ws").exists()  # no labels, no scorecard, nothing tracked

    kit = Kit(repo / RECOMMENDER_KIT)
    kit.module("model")  # the notebook pickled the model from it
    assert set(joblib.load(tmp_path / "model" / "model.joblib")) == HANDOVER_KEYS
    service = kit.module("service")
    app = service.create_app(service.Settings(model_dir=tmp_path / "model", max_batch=1000))
    rows = candidates.sample(1000, random_state=1)
    body = {
        "candidates": [
            {"candidate_id": c, "user_id": u, "item_id": i, "in_stock": s}
            for c, u, i, s in zip(
                rows["CANDIDATE_ID"].tolist(),
                rows["USER_ID"].tolist(),
                rows["ITEM_ID"].tolist(),
                rows["IN_STOCK"].tolist(),
                strict=True,
            )
        ]
    }
    with TestClient(app) as client:
        answer = client.post("/v1/score/batch", json=body)
    assert answer.status_code == 200, answer.text
    served = pd.DataFrame(answer.json()["scores"])
    assert served["candidate_id"].tolist() == rows["CANDIDATE_ID"].tolist()
    expected = preds.set_index("CANDIDATE_ID").loc[rows["CANDIDATE_ID"], "score"]
    assert (expected == 0).any() and (expected > 0).any()
    assert served["score"].tolist() == expected.tolist()
