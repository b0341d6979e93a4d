"""Metrics: technical scores and business value models."""

from fullcycle.metrics.business import (
    FraudInvestigationValue,
    ValueReport,
    get_value_model,
    register_value_model,
    value_models,
)
from fullcycle.metrics.technical import (
    CardPrecision,
    average_precision,
    card_precision_at_k,
    daily_top_k_cards,
    roc_auc,
)

__all__ = [
    "CardPrecision",
    "FraudInvestigationValue",
    "ValueReport",
    "average_precision",
    "card_precision_at_k",
    "daily_top_k_cards",
    "get_value_model",
    "register_value_model",
    "roc_auc",
    "value_models",
]
