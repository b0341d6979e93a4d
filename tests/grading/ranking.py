"""A second, tiny project for the grader: rank items for users (top-k), data from files.

Nothing here is about fraud: if the grader can prepare, run, validate, score,
probe and report this project, its steps are driven by the spec alone.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import yaml

N_USERS = 60
N_ITEMS = 40
CANDIDATES = 15

PROJECT = {
    "name": "tiny_ranking",
    "title": "Tiny top-k recommender (grader fixture)",
    "task": "top_k_ranking",
    "data": {
        "source": "files",
        "path": "data",
        "split": {"train_start_day": 0},
    },
    "prediction": {
        "id_column": "CANDIDATE_ID",
        "output_column": "score",
        "score_range": [0.0, 1.0],
        "label_column": "PURCHASED",
        "group_column": "USER_ID",
    },
    "metrics": ["roc_auc", "ndcg@5"],
    "business_value": {
        "model": "recommendation_revenue",
        "params": {"k": 5, "attribution_rate": 0.3},
    },
    "kit": {"path": "kit", "notebook": "pipeline.ipynb"},
    "service": {
        "app": "service:create_app",
        "contract": {
            "health_path": "/health",
            "score_path": "/score",
            "batch_path": "/score/batch",
            "items_key": "items",
            "results_key": "scores",
            "id_field": "candidate_id",
            "score_field": "score",
            "fields": {
                "candidate_id": "CANDIDATE_ID",
                "user_id": "USER_ID",
                "affinity": "AFFINITY",
                "popularity": "POPULARITY",
            },
        },
    },
    "monitoring": {"check": "monitor:check_drift"},
    "rubric": [
        {
            "id": "ndcg",
            "metric": "ndcg@5",
            "bar": 0.6,
            "partial_from": 0.3,
            "points": 2,
            "feedback": "Rank by what the user likes, not only by what is popular.",
        },
        {
            "id": "lift",
            "metric": "value_vs_baseline",
            "bar": 1.3,
            "partial_from": 1.0,
            "points": 2,
            "feedback": "Revenue is not above the popularity baseline.",
        },
        {
            "id": "contract",
            "metric": "service.contract",
            "bar": 1,
            "points": 1,
            "feedback": "Answer the batch endpoint as the contract says.",
        },
        {
            "id": "consistent",
            "metric": "service.consistency",
            "bar": 0.99,
            "points": 1,
            "feedback": "Serve the same scores as the notebook.",
        },
        {
            "id": "bad_input",
            "metric": "service.bad_input_4xx",
            "bar": 1,
            "points": 1,
            "feedback": "Reject malformed requests with a 4xx.",
        },
        {
            "id": "drift",
            "metric": "monitoring.flags_drift",
            "bar": 1,
            "points": 1,
            "feedback": "Flag the faulty batch.",
        },
        {
            "id": "quiet",
            "metric": "monitoring.quiet_on_clean",
            "bar": 1,
            "points": 1,
            "feedback": "Stay quiet on an ordinary batch.",
        },
    ],
}


def _candidates(rng, start_id: int) -> pd.DataFrame:
    users = np.repeat(np.arange(N_USERS), CANDIDATES)
    items = np.concatenate([rng.choice(N_ITEMS, CANDIDATES, replace=False) for _ in range(N_USERS)])
    popularity = (items % 10) / 10 + rng.random(len(items)) * 0.1
    affinity = rng.random(len(items))
    p = 1 / (1 + np.exp(-(6 * affinity + 1.0 * popularity - 5)))
    return pd.DataFrame(
        {
            "CANDIDATE_ID": np.arange(start_id, start_id + len(items)),
            "USER_ID": users,
            "ITEM_ID": items,
            "PRICE": 5 + (items % 7) * 3.0,
            "POPULARITY": popularity.round(4),
            "AFFINITY": affinity.round(4),
            "PURCHASED": (rng.random(len(items)) < p).astype(int),
        }
    )


def write_holdout(folder: Path, seed: int = 3) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    history = _candidates(rng, 0)
    score = _candidates(rng, 100_000)
    history.to_csv(folder / "history.csv", index=False)
    score.to_csv(folder / "score.csv", index=False)
    inputs = ["CANDIDATE_ID", "USER_ID", "AFFINITY", "POPULARITY"]
    ref = _candidates(rng, 200_000)[inputs]
    clean = _candidates(rng, 300_000)[inputs]
    drifted = _candidates(rng, 400_000)[inputs]
    drifted["AFFINITY"] = drifted["AFFINITY"] * 0.2 + 0.8  # an upstream rescaling bug
    ref.to_csv(folder / "reference.csv", index=False)
    clean.to_csv(folder / "clean.csv", index=False)
    drifted.to_csv(folder / "drifted.csv", index=False)
    return folder


def write_project(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "project.yaml").write_text(yaml.safe_dump(PROJECT, sort_keys=False))
    return folder / "project.yaml"


PARAMETERS = """\
train_path = None
score_path = None
predictions_path = "predictions.csv"
model_dir = "model"
seed = 0
"""

GOOD_CELLS = [
    """\
import json
from pathlib import Path
import pandas as pd
from sklearn.linear_model import LogisticRegression
history = pd.read_csv(train_path) if str(train_path).endswith(".csv") else pd.read_parquet(train_path)
score = pd.read_parquet(score_path)
FEATURES = ["AFFINITY", "POPULARITY"]
model = LogisticRegression().fit(history[FEATURES], history["PURCHASED"])
""",
    """\
scores = model.predict_proba(score[FEATURES])[:, 1]
pd.DataFrame({"CANDIDATE_ID": score["CANDIDATE_ID"], "score": scores}).to_csv(predictions_path, index=False)
Path(model_dir).mkdir(parents=True, exist_ok=True)
(Path(model_dir) / "model.json").write_text(json.dumps(
    {"coef": model.coef_[0].tolist(), "intercept": float(model.intercept_[0]), "features": FEATURES}))
""",
]

GOOD_SERVICE = '''\
"""Scores candidates with the weights the notebook saved (no pickles)."""
import json, math, os
from pathlib import Path
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    candidate_id: int
    user_id: int
    affinity: float
    popularity: float


class Batch(BaseModel):
    items: list[Item]


def create_app():
    saved = json.loads((Path(os.environ["FULLCYCLE_MODEL_DIR"]) / "model.json").read_text())
    app = FastAPI()

    def score(item):
        z = saved["intercept"] + saved["coef"][0] * item.affinity + saved["coef"][1] * item.popularity
        return {"candidate_id": item.candidate_id, "score": 1 / (1 + math.exp(-z))}

    @app.get("/health")
    def health():
        return {"ok": True}

    @app.post("/score")
    def one(item: Item):
        return score(item)

    @app.post("/score/batch")
    def many(batch: Batch):
        return {"scores": [score(i) for i in batch.items]}

    return app
'''

GOOD_MONITOR = """\
from scipy.stats import ks_2samp


def check_drift(reference, current):
    stat = ks_2samp(reference["AFFINITY"], current["AFFINITY"]).statistic
    return {"drift": bool(stat > 0.2), "ks": float(stat)}
"""


def notebook(cells: list[str], parameters: str = PARAMETERS) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]})]
    nb.cells += [nbformat.v4.new_code_cell(textwrap.dedent(c)) for c in cells]
    return nb


def write_kit(
    folder: Path,
    cells: list[str] | None = None,
    service: str | None = GOOD_SERVICE,
    monitor: str | None = GOOD_MONITOR,
    raw_notebook: bytes | None = None,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if raw_notebook is not None:
        (folder / "pipeline.ipynb").write_bytes(raw_notebook)
    else:
        nbformat.write(notebook(GOOD_CELLS if cells is None else cells), folder / "pipeline.ipynb")
    if service:
        (folder / "service.py").write_text(service)
    if monitor:
        (folder / "monitor.py").write_text(monitor)
    return folder


def write_config(folder: Path, holdout: Path, **overrides) -> Path:
    cfg = {
        "secret_seed": "8c1f2e9a7b3d4c5e6f708192a3b4c5d6",
        "sandbox": "auto",
        "limits": {
            "cell_timeout_s": 20,
            "run_timeout_s": 60,
            "memory_mb": 3072,
            "processes": 64,
            "disk_mb": 100,
            "output_mb": 2,
            "max_cells": 500,
            "file_size_mb": 64,
        },
        "service": {
            "ready_timeout_s": 20,
            "request_timeout_s": 3,
            "requests": 20,
            "consistency_rows": 50,
        },
        "monitoring": {"timeout_s": 60},
        "results_store": str(folder / "results.sqlite"),
        "holdout_dir": str(holdout),
    }
    for key, value in overrides.items():
        if isinstance(value, dict):
            cfg[key] = {**cfg.get(key, {}), **value}
        else:
            cfg[key] = value
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "grading.yaml"
    path.write_text(json.dumps(cfg))
    return path
