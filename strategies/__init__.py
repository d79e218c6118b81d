"""Trading strategies on close prices: indicators, the ``Strategy`` interface, the registry.

Pure Python and numpy: nothing in this package touches a chain, so it never imports
ape, web3 or keepers.
"""

from strategies.base import Action, Signal, SignalFrame, Strategy, StrategyParams
from strategies.registry import (
    StrategyRegistryError,
    build_strategy,
    describe_strategies,
    list_strategies,
    strategy_class,
)

__all__ = [
    "Action",
    "Signal",
    "SignalFrame",
    "Strategy",
    "StrategyParams",
    "StrategyRegistryError",
    "build_strategy",
    "describe_strategies",
    "list_strategies",
    "strategy_class",
]
