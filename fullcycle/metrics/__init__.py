"""Metrics: technical scores and business value models."""

from fullcycle.metrics.business import (
    FraudInvestigationValue,
    ValueReport,
    get_value_model,
    register_value_model,
    review_candidates,
    value_models,
)
from fullcycle.metrics.registry import (
    Figure,
    figure,
    figure_names,
    is_figure,
    register_figure,
    register_relation,
)
from fullcycle.metrics.technical import (
    CardPrecision,
    average_precision,
    card_days,
    card_precision_at_k,
    daily_top_k_cards,
    roc_auc,
)

__all__ = [
    "CardPrecision",
    "Figure",
    "FraudInvestigationValue",
    "ValueReport",
    "average_precision",
    "card_days",
    "card_precision_at_k",
    "daily_top_k_cards",
    "figure",
    "figure_names",
    "get_value_model",
    "is_figure",
    "register_figure",
    "register_relation",
    "register_value_model",
    "review_candidates",
    "roc_auc",
    "value_models",
]
