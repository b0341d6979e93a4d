"""A low-latency scorer: one row at a time without scikit-learn's per-call overhead.

``HistGradientBoostingClassifier.predict_proba`` costs about 2 ms for one row
on the reference machine, almost all of it input checks and thread start-up
rather than arithmetic; that alone would cap a single-worker service near 500
requests/s. :class:`Scorer` packs the fitted trees of a binary gradient
boosting classifier into flat NumPy arrays once and walks all trees together,
level by level (about 0.25 ms for one row). A random forest (or any bagged
ensemble of scikit-learn decision trees) is packed the same way and averages
its trees' leaf probabilities, as ``predict_proba`` does. It reads the fitted
model, it does not train or change it, and :meth:`Scorer.check` proves on real
rows that it gives the model's own probabilities. Batches of more than
``small_batch`` rows, and every other model type, go to the model's
``predict_proba``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Scorer"]

#: The packed arrays: name, dtype and the value of padding (a padded node is a leaf).
_ARRAYS = (
    ("feature", np.intp, 0),
    ("threshold", np.float64, 0.0),
    ("left", np.intp, 0),
    ("right", np.intp, 0),
    ("leaf", bool, True),
    ("value", np.float64, 0.0),
    ("nan_left", bool, False),
)


class Scorer:
    """Score feature rows with a fitted binary classifier, fast for small batches.

    Parameters
    ----------
    model : fitted classifier with ``predict_proba``
    small_batch : int
        Up to this many rows use the packed trees (when the model has them).
    """

    def __init__(self, model, small_batch: int = 32):
        self.model = model
        self.small_batch = small_batch
        self.fast = False
        self._pack()

    def _pack(self):
        trees = self._forest_trees()
        self._forest = trees is not None
        if trees is None:
            trees = self._boosted_trees()
        if trees is None:
            return
        # One row per tree, padded to the widest tree: walk them all at once.
        n_trees, width = len(trees), max(len(t["leaf"]) for t in trees)
        for name, dtype, fill in _ARRAYS:
            packed = np.full((n_trees, width), fill, dtype=dtype)
            for i, tree in enumerate(trees):
                packed[i, : len(tree[name])] = tree[name]
            setattr(self, f"_{name}", packed)
        self._depth = max(t["depth"] for t in trees)
        self._rows = np.arange(n_trees)
        self.fast = True

    def _boosted_trees(self) -> list[dict] | None:
        """The trees of a binary HistGradientBoostingClassifier, or None."""
        predictors = getattr(self.model, "_predictors", None)
        classes = getattr(self.model, "classes_", ())
        if not predictors or len(classes) != 2 or len(predictors[0]) != 1:
            return None
        nodes = [p[0].nodes for p in predictors]
        if any(n["is_categorical"].any() for n in nodes):
            return None
        self._baseline = float(np.ravel(self.model._baseline_prediction)[0])
        return [
            {
                "feature": n["feature_idx"],
                "threshold": n["num_threshold"],
                "left": n["left"],
                "right": n["right"],
                "leaf": n["is_leaf"].astype(bool),
                "value": n["value"],
                "nan_left": n["missing_go_to_left"].astype(bool),
                "depth": int(n["depth"].max()),
            }
            for n in nodes
        ]

    def _forest_trees(self) -> list[dict] | None:
        """The trees of a forest of binary decision trees (leaf value: P(class 1)), or None."""
        estimators = getattr(self.model, "estimators_", None)
        classes = getattr(self.model, "classes_", ())
        if not isinstance(estimators, list) or not estimators or len(classes) != 2:
            return None
        if not all(hasattr(t, "tree_") and t.tree_.n_outputs == 1 for t in estimators):
            return None
        if getattr(self.model, "estimators_features_", None) is not None:
            return None  # bagging on feature subsets: leave it to predict_proba
        out = []
        for est in estimators:
            t = est.tree_
            leaf = t.children_left == -1
            counts = t.value[:, 0, :]
            missing = getattr(t, "missing_go_to_left", None)
            out.append(
                {
                    "feature": np.where(leaf, 0, t.feature),
                    "threshold": t.threshold,
                    "left": np.where(leaf, 0, t.children_left),
                    "right": np.where(leaf, 0, t.children_right),
                    "leaf": leaf,
                    "value": counts[:, 1] / np.maximum(counts.sum(axis=1), 1e-300),
                    "nan_left": np.zeros(t.node_count, bool)
                    if missing is None
                    else missing.astype(bool),
                    "depth": int(t.max_depth),
                }
            )
        return out

    def _packed(self, X: np.ndarray) -> np.ndarray:
        if self._forest:
            # scikit-learn's trees compare float32 copies of the inputs with their thresholds.
            X = X.astype(np.float32).astype(np.float64)
        rows = self._rows
        node = np.zeros((X.shape[0], rows.size), dtype=np.intp)
        for _ in range(self._depth):
            x = np.take_along_axis(X, self._feature[rows, node], axis=1)
            go_left = (x <= self._threshold[rows, node]) | (
                np.isnan(x) & self._nan_left[rows, node]
            )
            step = np.where(go_left, self._left[rows, node], self._right[rows, node])
            node = np.where(self._leaf[rows, node], node, step)
        if self._forest:
            return self._value[rows, node].mean(axis=1)
        raw = self._baseline + self._value[rows, node].sum(axis=1)
        return 1.0 / (1.0 + np.exp(-raw))

    def predict(self, X) -> np.ndarray:
        """Probability of the positive class for each row of ``X`` (2-D, model's column order)."""
        X = np.asarray(X, dtype=np.float64)
        if self.fast and X.shape[0] <= self.small_batch:
            return self._packed(X)
        names = getattr(self.model, "feature_names_in_", None)
        if names is not None:
            import pandas as pd

            X = pd.DataFrame(X, columns=names)
        return self.model.predict_proba(X)[:, 1]

    def check(self, X, atol: float = 1e-12) -> float:
        """Largest gap between the packed trees and the model's own ``predict_proba`` on ``X``."""
        X = np.asarray(X, dtype=np.float64)
        if not self.fast or X.shape[0] == 0:
            return 0.0
        names = getattr(self.model, "feature_names_in_", None)
        if names is not None:
            import pandas as pd

            ref = self.model.predict_proba(pd.DataFrame(X, columns=names))[:, 1]
        else:
            ref = self.model.predict_proba(X)[:, 1]
        gap = float(np.max(np.abs(self._packed(X) - ref)))
        if gap > atol:
            # Never serve numbers the model would not give: fall back for good.
            self.fast = False
        return gap
