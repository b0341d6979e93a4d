"""Data: the fraud and interaction simulators, messiness, loaders, parsers, quarantine and splits."""

from fullcycle.data.fraud import (
    SCENARIOS,
    TRANSACTION_COLUMNS,
    FraudSimulation,
    FraudSimulatorConfig,
    simulate_transactions,
)
from fullcycle.data.interactions import (
    CATEGORIES,
    DRIFTS,
    EVENT_TYPES,
    INTERACTION_COLUMNS,
    INTERACTION_MESS_KINDS,
    ITEM_COLUMNS,
    InteractionMessReport,
    InteractionSimulation,
    InteractionSimulatorConfig,
    make_messy_interactions,
    simulate_interactions,
)
from fullcycle.data.loaders import (
    load_transactions,
    read_raw,
    save_transactions,
    typed_transactions,
)
from fullcycle.data.messiness import MESS_KINDS, MessReport, make_messy
from fullcycle.data.movielens import MOVIELENS_FILES, load_movielens
from fullcycle.data.parsing import Parsed, parse_amounts, parse_integers, parse_timestamps
from fullcycle.data.protocols import InteractionSplit, interaction_time_split, stratified_split
from fullcycle.data.quarantine import REASON_COLUMN, ValidationResult, schema_reasons
from fullcycle.data.splits import TimeSplit, time_split

__all__ = [
    "InteractionSplit",
    "interaction_time_split",
    "stratified_split",
    "CATEGORIES",
    "DRIFTS",
    "EVENT_TYPES",
    "INTERACTION_COLUMNS",
    "INTERACTION_MESS_KINDS",
    "ITEM_COLUMNS",
    "MESS_KINDS",
    "MOVIELENS_FILES",
    "REASON_COLUMN",
    "SCENARIOS",
    "TRANSACTION_COLUMNS",
    "FraudSimulation",
    "FraudSimulatorConfig",
    "InteractionMessReport",
    "InteractionSimulation",
    "InteractionSimulatorConfig",
    "MessReport",
    "Parsed",
    "TimeSplit",
    "ValidationResult",
    "load_movielens",
    "load_transactions",
    "make_messy",
    "make_messy_interactions",
    "parse_amounts",
    "parse_integers",
    "parse_timestamps",
    "read_raw",
    "save_transactions",
    "schema_reasons",
    "simulate_interactions",
    "simulate_transactions",
    "time_split",
    "typed_transactions",
]
