"""The registry: resolving strategies, building them from parameters, listing them."""

from __future__ import annotations

import pytest

from strategies.bollinger import BollingerStrategy
from strategies.macd import MacdStrategy
from strategies.registry import (
    STRATEGIES,
    StrategyRegistryError,
    build_strategy,
    describe_strategies,
    list_strategies,
    strategy_class,
)
from strategies.rsi_sma import RsiSmaStrategy


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (1, RsiSmaStrategy),
        (2, BollingerStrategy),
        (3, MacdStrategy),
        ("1", RsiSmaStrategy),
        (" 3 ", MacdStrategy),
        ("rsi_sma", RsiSmaStrategy),
        ("RSI_SMA", RsiSmaStrategy),
        ("Bollinger", BollingerStrategy),
        (" macd ", MacdStrategy),
    ],
)
def test_resolves_by_id_or_name(key, expected):
    assert strategy_class(key) is expected


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (
            "rsi-sma",
            "unknown strategy 'rsi-sma' (did you mean 'rsi_sma'?); "
            "known: 1 rsi_sma, 2 bollinger, 3 macd",
        ),
        ("bolinger", "unknown strategy 'bolinger' (did you mean 'bollinger'?)"),
        ("MACDD", "unknown strategy 'MACDD' (did you mean 'macd'?)"),
        ("momentum", "unknown strategy 'momentum'; known: 1 rsi_sma"),
        (4, "unknown strategy 4; known:"),
        ("0", "unknown strategy 0; known:"),
        (True, "unknown strategy True; known:"),
        (2.0, "unknown strategy 2.0; known:"),
        ("", "unknown strategy ''; known:"),
    ],
)
def test_unknown_strategies_are_rejected_with_a_hint(key, message):
    with pytest.raises(StrategyRegistryError) as caught:
        strategy_class(key)
    assert str(caught.value).startswith(message)
    assert caught.value.field == "" and "\n" not in str(caught.value)


def test_builds_with_parameters_over_the_defaults():
    strategy = build_strategy("rsi_sma", {"oversold": 25, "rsi_period": "3"})
    assert isinstance(strategy, RsiSmaStrategy)
    assert strategy.params.oversold == 25.0 and strategy.params.rsi_period == 3
    assert strategy.params.overbought == RsiSmaStrategy().params.overbought
    assert build_strategy(3).params == MacdStrategy().params
    assert build_strategy("2", None).params == BollingerStrategy().params


@pytest.mark.parametrize(
    ("key", "params", "field", "reason"),
    [
        (
            "rsi_sma",
            {"rsi_perod": 3},
            "rsi_sma.rsi_perod",
            "unknown parameter (did you mean 'rsi_period'?); "
            "rsi_sma takes rsi_period, sma_period, oversold, overbought",
        ),
        (
            "macd",
            {"colour": 3},
            "macd.colour",
            "unknown parameter; macd takes fast, slow, signal, confirm_bars, full_confidence_pct",
        ),
        (
            2,
            {"nbdev": -1},
            "bollinger.nbdev",
            "Input should be greater than 0 (got -1)",
        ),
        (
            "macd",
            {"slow": "x"},
            "macd.slow",
            "Input should be a valid integer, unable to parse string as an integer (got 'x')",
        ),
        (
            1,
            {"oversold": 95},
            "rsi_sma",
            "oversold (95) must be below overbought (90)",
        ),
        (
            "macd",
            {"fast": 30},
            "macd",
            "fast (30) must be below slow (26)",
        ),
    ],
)
def test_bad_parameters_give_one_line_naming_the_field(key, params, field, reason):
    with pytest.raises(StrategyRegistryError) as caught:
        build_strategy(key, params)
    assert caught.value.field == field and caught.value.reason == reason
    assert str(caught.value) == f"{field}: {reason}"


def test_registry_errors_are_value_errors():
    assert issubclass(StrategyRegistryError, ValueError)


def test_lists_every_strategy_with_its_parameters():
    infos = list_strategies()
    assert [(info.id, info.name) for info in infos] == [(cls.id, cls.name) for cls in STRATEGIES]
    for info, cls in zip(infos, STRATEGIES):
        assert info.summary == cls.__doc__.strip().splitlines()[0]
        assert [param.name for param in info.params] == list(cls.Params.model_fields)
        defaults = cls().params
        for param in info.params:
            assert param.default == getattr(defaults, param.name)
            assert param.description and param.type in {"int", "float"}
    rsi_period = list_strategies()[0].params[0]
    assert (rsi_period.name, rsi_period.type, rsi_period.constraints) == (
        "rsi_period",
        "int",
        ">= 2",
    )
    oversold = list_strategies()[0].params[2]
    assert oversold.constraints == "> 0, < 100"


def test_describe_prints_one_line_per_strategy_and_parameter():
    text = describe_strategies()
    lines = text.splitlines()
    assert len(lines) == sum(1 + len(info.params) for info in list_strategies())
    assert lines[0] == "1  rsi_sma: " + RsiSmaStrategy.__doc__.strip().splitlines()[0]
    sma_line = "     sma_period = 200  (int, >= 2)  SMA lookback in bars that defines the trend"
    assert sma_line in lines
    for cls in STRATEGIES:
        for name in cls.Params.model_fields:
            assert f" {name} = " in text
