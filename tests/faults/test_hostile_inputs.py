"""Hostile inputs to every parser a user feeds: the keeper config, the users file, the
network files, the strategy config, SENTINEL_ variables, price CSV and Parquet files,
the backtest command's options, addresses, amounts and durations.

The property everywhere: an input is either accepted, or refused with the parser's own
error whose message is one line naming the field (or file and line); any other
exception (a traceback for the user) fails the test. The backtest command writes no
report folder before its inputs pass. Examples are modest in `make test` and larger
under the `long` marker."""

from __future__ import annotations

import copy
import shutil
import string
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from fixtures_backtest import backtest_cli
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from keepers import PROJECT_ROOT
from keepers.base.errors import SentinelError
from keepers.settings.keeper import load_keeper_config, load_users
from keepers.settings.network import load_network_spec, parse_address
from strategies.config import StrategyConfigError, load_strategy_config
from strategies.data import DataError, load_prices

EXAMPLES = {"short": 40, "long": 600}
RUNS = [pytest.param("short"), pytest.param("long", marks=pytest.mark.long)]


def examples(run: str):
    """Hypothesis settings for a run; tmp_path is reused across examples on purpose."""
    return settings(max_examples=EXAMPLES[run], deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def one_line(error: Exception, *names: str) -> None:
    """Checks the message of ``error``: one line that names one of ``names``."""
    message = str(error)
    assert message and "\n" not in message, message
    assert any(name in message for name in names), (message, names)


def load_or_refuse(load, path: Path, error_type: type[Exception], *names: str) -> None:
    """``load(path)`` accepts the file, or refuses it with ``error_type`` in one line
    naming one of ``names`` (by default the file)."""
    try:
        load(path)
    except error_type as error:
        one_line(error, *(names or (str(path),)))


# YAML-like values a hostile file can hold: scalars of every kind, nested a little.
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
           | st.sampled_from(["", "-1", "1e999", "NaN", "P1D", "-P1D", "0x" + "ab" * 20, "0x12", "*"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=10), inner, max_size=3), max_leaves=8)


def write(path: Path, document) -> Path:
    path.write_text(yaml.safe_dump(document) if not isinstance(document, (str, bytes)) else document)
    return path


# ------------------------------------------------------------------ whole files
SETTINGS_LOADERS = [
    ("keeper config", lambda path: load_keeper_config(path, environ={}), SentinelError),
    ("users file", load_users, SentinelError),
    ("network file", load_network_spec, SentinelError),
    ("strategy config", load_strategy_config, StrategyConfigError),
]


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize(("kind", "load", "error_type"), SETTINGS_LOADERS, ids=[k for k, *_ in SETTINGS_LOADERS])
def test_any_bytes_as_a_settings_file(tmp_path, run, kind, load, error_type):
    text = st.text(alphabet=string.printable + "[]{}:-*&!|>'\"#%@`\u00e9\u2028", max_size=200)

    @examples(run)
    @example(content=b"[" * 1000)  # deeper than the YAML parser can recurse
    @given(content=st.binary(max_size=200) | text.map(str.encode))
    def check(content):
        path = tmp_path / "settings.yaml"
        path.write_bytes(content)
        load_or_refuse(load, path, error_type)

    check()


def settings_key_and_value():
    keys = st.sampled_from(["cycle_interval_seconds", "rotation", "timeframe_seconds", "dry_run", "store_url",
                            "log_level", "lease_seconds", "dead_man_intervals", "keeper_account", "keeper_id",
                            "tolerance_bps", "tx_timeout_seconds", "price_series", "no_such_setting"])
    return st.tuples(keys, VALUES)


@pytest.mark.parametrize("run", RUNS)
def test_keeper_settings_and_their_variables(tmp_path, run):
    @examples(run)
    @given(setting=settings_key_and_value(), as_variable=st.booleans(), raw_text=st.text(max_size=20))
    def check(setting, as_variable, raw_text):
        name, value = setting
        variable = "SENTINEL_" + name.upper()
        path = tmp_path / "keeper.yaml"
        try:
            if as_variable:
                write(path, {})
                load_keeper_config(path, environ={variable: raw_text})
            else:
                load_keeper_config(write(path, {name: value}), environ={})
        except SentinelError as error:
            one_line(error, variable if as_variable else name)

    check()


def mutations(document: dict):
    """(path of keys, hostile value) pairs for a document: one field replaced at a time."""
    paths = []

    def walk(node, prefix):
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in items:
            paths.append((*prefix, key))
            walk(child, (*prefix, key))

    walk(document, ())
    return st.tuples(st.sampled_from(paths), VALUES)


def mutated(document: dict, path: tuple, value) -> dict:
    changed = copy.deepcopy(document)
    node = changed
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return changed


def field_names(path: tuple) -> list[str]:
    """What an error about the field at ``path`` may name: the field or one of its parents."""
    return [str(key) for key in path if isinstance(key, str)] + ["(top level)", "users["]


USERS = yaml.safe_load((PROJECT_ROOT / "data" / "config" / "users.yaml").read_text())
NETWORKS = {name: yaml.safe_load((PROJECT_ROOT / "data" / "networks" / f"{name}.yaml").read_text())
            for name in ("local", "sepolia")}


@pytest.mark.parametrize("run", RUNS)
def test_one_hostile_field_in_the_users_file_is_named(tmp_path, run):
    @examples(run)
    @given(change=mutations(USERS))
    def check(change):
        load_or_refuse(load_users, write(tmp_path / "users.yaml", mutated(USERS, *change)), SentinelError,
                       *field_names(change[0]))

    check()


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("network", sorted(NETWORKS))
def test_one_hostile_field_in_a_network_file_is_named(tmp_path, run, network):
    @examples(run)
    @given(change=mutations(NETWORKS[network]))
    def check(change):
        load_or_refuse(load_network_spec, write(tmp_path / f"{network}.yaml", mutated(NETWORKS[network], *change)),
                       SentinelError, *field_names(change[0]), "tokens.", "quote.")

    check()


# ---------------------------------------------------------------- addresses
@pytest.mark.parametrize("run", RUNS)
def test_addresses(run):
    hex_address = st.text("0123456789abcdefABCDEF", min_size=40, max_size=40).map(lambda h: "0x" + h)

    @examples(run)
    @given(value=hex_address | st.text(max_size=50))
    def check(value):
        try:
            address = parse_address(value, "router")
        except SentinelError as error:
            one_line(error, "router")
        else:
            assert address.lower() == value.lower()

    check()


# --------------------------------------------------------------- price files
CELLS = st.one_of(st.text(max_size=12), st.floats().map(str), st.integers().map(str),
                  st.sampled_from(["2024-01-01", "2024-01-02T00:00:00Z", "2024-01-03+05:00", "NaT", "", "1e999",
                                   "-1", "0", "nan", "ETH"]))
COLUMNS = st.lists(st.sampled_from(["timestamp", "Timestamp", "close", "open", "high", "low", "volume", "token",
                                    "extra", ""]), min_size=1, max_size=6)


@st.composite
def csv_documents(draw) -> str:
    header = draw(COLUMNS)
    rows = draw(st.lists(st.lists(CELLS, min_size=len(header), max_size=len(header)), max_size=6))
    lines = [",".join(header), *(",".join(cell.replace(",", ";").replace("\n", " ") for cell in row)
                                 for row in rows)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("run", RUNS)
def test_price_csv_files(tmp_path, run):
    @examples(run)
    @given(document=csv_documents().map(str.encode) | st.binary(max_size=100))
    def check(document):
        path = tmp_path / "prices.csv"
        path.write_bytes(document)
        load_or_refuse(load_prices, path, DataError)

    check()


@pytest.mark.parametrize("run", RUNS)
def test_price_parquet_files(tmp_path, run):
    column_values = st.lists(st.one_of(st.none(), st.floats(), st.text(max_size=12), st.sampled_from(
        ["2024-01-01", "2024-01-02", "NaT"])), min_size=1, max_size=5)

    @examples(run)
    @given(columns=st.dictionaries(st.sampled_from(["timestamp", "close", "open", "token", "volume"]), column_values,
                                   min_size=1, max_size=4), garbage=st.booleans())
    def check(columns, garbage):
        path = tmp_path / "prices.parquet"
        if garbage:
            path.write_bytes(b"PAR1" + str(columns).encode()[:100])
        else:
            size = min(len(values) for values in columns.values())
            frame = pd.DataFrame({name: pd.Series(values[:size], dtype=object) for name, values in columns.items()})
            frame.astype({name: "string" for name in frame.columns}).to_parquet(path)
        load_or_refuse(load_prices, path, DataError)

    check()


# ------------------------------------------------------ the backtest command
BACKTEST = backtest_cli()
OPTIONS = {
    "--trade-size": st.text(max_size=8) | st.sampled_from(["0", "-5%", "101%", "1e999", "nan", "inf", "%"]),
    "--fee-bps": st.text(max_size=6) | st.sampled_from(["-1", "nan", "inf", "1e999", "10001"]),
    "--slippage-bps": st.sampled_from(["-1", "nan", "inf", "abc", "20000"]),
    "--initial-balance": st.sampled_from(["0", "-1", "nan", "inf", "x"]),
    "--pool-depth": st.sampled_from(["0", "-1", "nan", "inf"]),
    "--gas": st.sampled_from(["-1", "nan", "inf"]),
    "--risk": st.tuples(st.sampled_from(["cooldown", "max_trades", "max_trades_window", "max_daily_loss_quote",
                                         "loss_pause", "nonsense"]),
                        st.text(max_size=8) | st.sampled_from(["-P1D", "PT0S", "-5", "P1D", "none", "1e999"])
                        ).map("=".join),
    "--param": st.tuples(st.sampled_from(["period", "nbdev", "min_bandwidth", "nope"]),
                         st.text(max_size=6) | st.sampled_from(["-1", "0", "nan", "1e9"])).map("=".join),
    "--grid": st.tuples(st.sampled_from(["period", "nbdev"]), st.text(max_size=8)).map("=".join),
    "--fill-at": st.text(max_size=6),
    "--workers": st.sampled_from(["0", "-1", "x"]),
    "--token": st.text(max_size=6),
}


@pytest.mark.parametrize("run", RUNS)
def test_backtest_options_fail_in_one_line_and_write_nothing(tmp_path, run):
    # A year of the sample's ETH closes: an accepted run stays quick.
    data = tmp_path / "eth.csv"
    sample = pd.read_csv(PROJECT_ROOT / "data" / "sample_prices.csv")
    sample[sample["token"] == "ETH"].head(365).to_csv(data, index=False)

    @examples(run)
    @given(option=st.sampled_from(sorted(OPTIONS)).flatmap(lambda name: st.tuples(st.just(name), OPTIONS[name])))
    def check(option):
        out = tmp_path / "report"
        result = CliRunner().invoke(BACKTEST, ["--strategy", "bollinger", "--data", str(data), *option,
                                               "--out", str(out)])
        if result.exit_code == 0:
            assert (out / "stats.json").is_file()
            shutil.rmtree(out)
            return
        assert isinstance(result.exception, SystemExit), result.output  # a click error, not a crash
        errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and "Traceback" not in result.output, result.output
        field = option[0].removeprefix("--").replace("-", "_")  # the library's name of the option
        assert any(name in errors[0] for name in (option[0], field, option[1].split("=")[0], str(data))), errors
        assert not out.exists(), result.output

    check()
