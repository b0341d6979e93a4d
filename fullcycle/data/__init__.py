"""Data: the fraud simulator, messiness, loaders, parsers, quarantine mechanics and time splits."""

from fullcycle.data.fraud import (
    SCENARIOS,
    TRANSACTION_COLUMNS,
    FraudSimulation,
    FraudSimulatorConfig,
    simulate_transactions,
)
from fullcycle.data.loaders import (
    load_transactions,
    read_raw,
    save_transactions,
    typed_transactions,
)
from fullcycle.data.messiness import MESS_KINDS, MessReport, make_messy
from fullcycle.data.parsing import Parsed, parse_amounts, parse_integers, parse_timestamps
from fullcycle.data.quarantine import REASON_COLUMN, ValidationResult, schema_reasons
from fullcycle.data.splits import TimeSplit, time_split

__all__ = [
    "MESS_KINDS",
    "REASON_COLUMN",
    "SCENARIOS",
    "TRANSACTION_COLUMNS",
    "FraudSimulation",
    "FraudSimulatorConfig",
    "MessReport",
    "Parsed",
    "TimeSplit",
    "ValidationResult",
    "load_transactions",
    "make_messy",
    "parse_amounts",
    "parse_integers",
    "parse_timestamps",
    "read_raw",
    "save_transactions",
    "schema_reasons",
    "simulate_transactions",
    "time_split",
    "typed_transactions",
]
