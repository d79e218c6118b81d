"""data/config/strategies.yaml: the shipped file loads; every bad config is one clear line."""

from __future__ import annotations

import copy
import textwrap

import pytest

from strategies.bollinger import BollingerStrategy
from strategies.config import (
    DEFAULT_PATH,
    StrategyConfigError,
    load_strategy_config,
    parse_strategy_config,
)
from strategies.macd import MacdStrategy
from strategies.rsi_sma import RsiSmaStrategy

GOOD = {
    "defaults": {
        "enabled": ["rsi_sma", "macd"],
        "params": {"rsi_sma": {"sma_period": 100}, "bollinger": {"period": 30}},
    },
    "tokens": {
        "ETH": {"params": {"rsi_sma": {"oversold": 5}}},
        "LTC": {"enabled": [2, "macd"], "params": {"macd": {"confirm_bars": 1}}},
        "WBTC": None,
    },
}


def names(strategies) -> list[str]:
    return [strategy.name for strategy in strategies]


def test_the_shipped_config_loads():
    config = load_strategy_config()
    assert DEFAULT_PATH.name == "strategies.yaml" and DEFAULT_PATH.parent.name == "config"
    assert names(config.strategies_for("BTC")) == ["rsi_sma", "bollinger", "macd"]
    assert config.strategies_for("ETH")[1].params.nbdev == 2.5
    assert names(config.strategies_for("LTC")) == ["bollinger", "macd"]


def test_blocks_merge_over_the_defaults():
    config = parse_strategy_config(GOOD)
    assert names(config.defaults) == ["rsi_sma", "macd"]
    assert config.defaults[0].params == RsiSmaStrategy(sma_period=100).params
    eth = config.strategies_for("eth")
    assert names(eth) == ["rsi_sma", "macd"]
    assert eth[0].params == RsiSmaStrategy(sma_period=100, oversold=5).params
    ltc = config.strategies_for("ltc")
    assert ltc[0].params == BollingerStrategy(period=30).params
    assert ltc[1].params == MacdStrategy(confirm_bars=1).params
    assert names(config.strategies_for("WBTC")) == ["rsi_sma", "macd"]
    assert config.strategies_for("DOGE") == config.defaults
    assert set(config.tokens) == {"ETH", "LTC", "WBTC"}


def test_an_empty_enabled_list_turns_a_token_off():
    config = parse_strategy_config({**GOOD, "tokens": {"USDC": {"enabled": []}}})
    assert config.strategies_for("USDC") == ()


def with_change(path: tuple, value) -> dict:
    """A copy of ``GOOD`` with the entry at ``path`` set to ``value`` (removed if ...)."""
    document = copy.deepcopy(GOOD)
    node = document
    for key in path[:-1]:
        node = node[key]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return document


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ("token",),
            {},
            "token: unknown key (did you mean 'tokens'?); allowed here: defaults, tokens",
        ),
        (
            ("defaults", "enabeld"),
            ["macd"],
            "defaults.enabeld: unknown key (did you mean 'enabled'?); "
            "allowed here: enabled, params",
        ),
        (
            ("defaults",),
            ...,
            "defaults: missing; add it (see data/config/strategies.yaml for the layout)",
        ),
        (
            ("defaults", "enabled"),
            ...,
            "defaults.enabled: missing; list strategy names, e.g. [rsi_sma]",
        ),
        (
            ("defaults", "enabled"),
            "rsi_sma",
            "defaults.enabled: Input should be a valid list (got 'rsi_sma')",
        ),
        (
            ("defaults", "enabled"),
            ["rsi_sma", "bolinger"],
            "defaults.enabled[1]: unknown strategy 'bolinger' (did you mean 'bollinger'?); "
            "known: 1 rsi_sma, 2 bollinger, 3 macd",
        ),
        (
            ("defaults", "enabled"),
            ["macd", None],
            "defaults.enabled[1]: unknown strategy None; known: 1 rsi_sma, 2 bollinger, 3 macd",
        ),
        (
            ("tokens", 5),
            {},
            "tokens.5 (the key): Input should be a valid string (got 5)",
        ),
        (
            ("defaults", "params", "macd"),
            3,
            "defaults.params.macd: Input should be a valid dictionary (got 3)",
        ),
        (
            ("defaults", "enabled"),
            ["macd", 3],
            "defaults.enabled[1]: macd is enabled twice; drop one",
        ),
        (
            ("defaults", "params", "macd"),
            {"fast": 40},
            "defaults.params.macd: fast (40) must be below slow (26)",
        ),
        (
            ("defaults", "params", "bollinger"),
            {"period": 1},
            "defaults.params.bollinger.period: Input should be greater than or equal to 2 (got 1)",
        ),
        (
            ("defaults", "params", "rsi_smaa"),
            {},
            "defaults.params.rsi_smaa: unknown strategy 'rsi_smaa' (did you mean 'rsi_sma'?)",
        ),
        (
            ("tokens", "ETH"),
            {"params": {"rsi_sma": {"oversld": 5}}},
            "tokens.ETH.params.rsi_sma.oversld: unknown parameter (did you mean 'oversold'?)",
        ),
        (
            ("tokens", "ETH"),
            {"params": {"rsi_sma": {"oversold": 95}}},
            "tokens.ETH.params.rsi_sma: oversold (95) must be below overbought (90)",
        ),
        (
            ("tokens", "ETH"),
            {"params": {"bollinger": {"nbdev": 3}}},
            "tokens.ETH.params.bollinger: bollinger is not enabled for ETH; "
            "add it to tokens.ETH.enabled or remove these parameters",
        ),
        (
            ("tokens", "eth"),
            {},
            "tokens.eth: ETH is listed twice; merge the two blocks",
        ),
        (
            ("tokens", " "),
            {},
            "tokens: a token symbol is empty; use e.g. 'ETH'",
        ),
        (
            ("tokens", "ETH"),
            ["rsi_sma"],
            "tokens.ETH: should be a mapping with 'enabled' and/or 'params' (got ['rsi_sma'])",
        ),
    ],
)
def test_bad_configs_name_the_field_and_the_fix(path, value, message):
    with pytest.raises(StrategyConfigError) as caught:
        parse_strategy_config(with_change(path, value))
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def write(tmp_path, text: str):
    path = tmp_path / "strategies.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_load_prefixes_the_file(tmp_path):
    path = write(tmp_path, "defaults:\n  enabled: [macd]\n  params: {macd: {signal: 1}}\n")
    with pytest.raises(StrategyConfigError) as caught:
        load_strategy_config(path)
    assert str(caught.value) == (
        f"{path}: defaults.params.macd.signal: "
        "Input should be greater than or equal to 2 (got 1)"
    )


def test_invalid_yaml_names_the_line(tmp_path):
    path = write(tmp_path, "defaults:\n  enabled: [macd\n  params: {}\n")
    with pytest.raises(StrategyConfigError, match=rf"^{path}: not valid YAML at line \d+: "):
        load_strategy_config(path)


@pytest.mark.parametrize("text", ["", "- rsi_sma\n", "just a string\n"])
def test_a_document_that_is_not_a_mapping_is_rejected(tmp_path, text):
    path = write(tmp_path, text)
    expected = "the config must be a mapping with a 'defaults' block"
    with pytest.raises(StrategyConfigError, match=expected):
        load_strategy_config(path)


def test_a_missing_file_is_one_line(tmp_path):
    path = tmp_path / "nope.yaml"
    expected = rf"^{path}: cannot read \(No such file or directory\)$"
    with pytest.raises(StrategyConfigError, match=expected):
        load_strategy_config(path)
