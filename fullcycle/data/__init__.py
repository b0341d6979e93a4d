"""Data: the fraud simulator, messiness, loaders, validation and time splits."""

from fullcycle.data.fraud import (
    SCENARIOS,
    TRANSACTION_COLUMNS,
    FraudSimulation,
    FraudSimulatorConfig,
    simulate_transactions,
)
from fullcycle.data.loaders import load_transactions, save_transactions
from fullcycle.data.messiness import MESS_KINDS, MessReport, make_messy
from fullcycle.data.splits import TimeSplit, time_split
from fullcycle.data.validation import (
    ValidationResult,
    clean_and_validate,
    standardize_transactions,
    transaction_schema,
    validate_transactions,
)

__all__ = [
    "MESS_KINDS",
    "SCENARIOS",
    "TRANSACTION_COLUMNS",
    "FraudSimulation",
    "FraudSimulatorConfig",
    "MessReport",
    "TimeSplit",
    "ValidationResult",
    "clean_and_validate",
    "load_transactions",
    "make_messy",
    "save_transactions",
    "simulate_transactions",
    "standardize_transactions",
    "time_split",
    "transaction_schema",
    "validate_transactions",
]
