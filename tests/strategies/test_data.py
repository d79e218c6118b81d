"""Price data loading and its validation policy: reject with one line, or repair on request."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from strategies.data import DataError, load_prices

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample_prices.csv"
HEADER = "timestamp,token,open,high,low,close,volume"


def write(tmp_path: Path, lines: list[str], name: str = "prices.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def day(n: int, token: str = "ETH", close: float = 100.0, suffix: str = "Z") -> str:
    stamp = (pd.Timestamp("2024-01-01") + pd.Timedelta(days=n)).strftime("%Y-%m-%dT%H:%M:%S") + suffix
    return f"{stamp},{token},{close},{close + 1},{close - 1},{close},10"


def rejected(path: Path, match: str, **kwargs) -> str:
    with pytest.raises(DataError) as err:
        load_prices(path, **kwargs)
    message = str(err.value)
    assert "\n" not in message
    assert re.search(match, message), message
    return message


def test_sample_data_loads_with_its_hash():
    data = load_prices(SAMPLE)
    assert data.tokens == ["BTC", "ETH", "LTC"]
    assert {len(bars) for bars in data.bars.values()} == {1792}
    assert data.interval == pd.Timedelta(days=1)
    assert data.sha256 == hashlib.sha256(SAMPLE.read_bytes()).hexdigest()
    assert data.has_open and data.filled_bars == {"BTC": 0, "ETH": 0, "LTC": 0} and data.notes == ()
    eth = data.bars["ETH"]
    assert str(eth.index.tz) == "UTC" and eth.index[0] == pd.Timestamp("2020-08-28", tz="UTC")
    assert eth["close"].iloc[0] == 395.11
    assert list(eth.columns) == ["open", "high", "low", "close", "volume"]


def test_tokens_are_selected_and_unknown_ones_named():
    assert load_prices(SAMPLE, ["LTC", "BTC"]).tokens == ["BTC", "LTC"]
    rejected(SAMPLE, r"no token DOGE \(has: BTC, ETH, LTC\)", tokens=["DOGE"])


def test_single_token_close_only_file_is_named_after_the_file(tmp_path):
    path = write(tmp_path, ["Timestamp,Close", "2024-01-01T00:00:00Z,10", "2024-01-02T00:00:00Z,11"], "WBTC.csv")
    data = load_prices(path)
    assert data.tokens == ["WBTC"] and not data.has_open
    assert load_prices(path, ["BTC"]).tokens == ["BTC"]
    rejected(path, "no token column, so it holds exactly one token", tokens=["A", "B"])


def test_missing_columns_are_named_with_the_schema(tmp_path):
    path = write(tmp_path, ["date,price", "2024-01-01,1"])
    message = rejected(path, r"missing column 'timestamp', 'close'")
    assert "found: date, price" in message and "required: timestamp, close" in message


@pytest.mark.parametrize(
    "bad_row, match",
    [
        ("2024-01-03T00:00:00Z,ETH,100,101,99,,10", r"line 4: close is missing or not finite"),
        ("2024-01-03T00:00:00Z,ETH,100,101,99,abc,10", r"line 4: close 'abc' is not a number"),
        ("2024-01-03T00:00:00Z,ETH,100,101,99,0,10", r"line 4: close is not positive \(0.0\)"),
        ("2024-01-03T00:00:00Z,ETH,-5,101,99,100,10", r"line 4: open is not positive"),
        ("2024-01-03T00:00:00Z,ETH,100,101,99,100,-1", r"line 4: volume is negative"),
        ("2024-01-03T00:00:00Z,ETH,100,99.5,99,100,1", r"line 4: high is below open"),
        ("2024-01-03T00:00:00Z,ETH,100,101,100.5,100,1", r"line 4: low is above open"),
        ("2024-01-03T00:00:00Z,ETH,inf,inf,99,100,1", r"line 4: open is missing or not finite"),
        (",ETH,100,101,99,100,10", r"line 4: timestamp is empty"),
        ("2024-13-45,ETH,100,101,99,100,10", r"line 4: timestamp '2024-13-45' .*"),
        ("2024-01-02T00:00:00Z,ETH,100,101,99,100,10", r"line 4: timestamp 2024-01-02T00:00:00\+00:00 of ETH repeats the one on line 3"),
        ("2024-01-01T12:00:00Z,ETH,100,101,99,100,10", r"line 4: .* of ETH is earlier than the one on line 3"),
        ("2024-01-03T06:00:00Z,ETH,100,101,99,100,10", r"line 4: .* not on the 1 days 00:00:00 grid"),
        ("2024-01-03T00:00:00,ETH,100,101,99,100,10", r"line 4: timestamp '2024-01-03T00:00:00' has no time zone but line 2 has one"),
        ("2024-01-03T02:00:00+02:00,ETH,100,101,99,100,10", r"line 4: .* is in time zone \+02:00 but line 2 is in \+00:00"),
        (",,,,,,", r"line 4: token is empty"),
        ("", r"line 4: token is empty"),
    ],
)
def test_each_problem_is_one_line_with_file_and_line(tmp_path, bad_row, match):
    path = write(tmp_path, [HEADER, day(0), day(1), bad_row, day(3), day(4), day(5)])
    message = rejected(path, match)
    assert message.startswith(f"{path}, line 4: ")


def test_gaps_are_rejected_with_counts(tmp_path):
    path = write(tmp_path, [HEADER, day(0), day(1), day(4), day(5), day(6), day(9), day(10)])
    rejected(path, r"line 4: 4 bars of ETH missing in 2 gaps, the first 2 after 2024-01-02.*--fill-gaps")


def test_fill_gaps_carries_the_last_close_forward(tmp_path):
    lines = [HEADER, day(0), day(1, close=110), day(4, close=90), day(5), day(6), day(7), day(8), day(9, close=95),
             day(0, "BTC"), day(1, "BTC"), day(2, "BTC")]
    data = load_prices(write(tmp_path, lines), fill_gaps=True)
    assert data.filled_bars == {"ETH": 2, "BTC": 0}
    eth = data.bars["ETH"]
    assert len(eth) == 10
    filled = eth.loc["2024-01-03":"2024-01-04"]
    assert (filled[["open", "high", "low", "close"]] == 110.0).all().all()
    assert (filled["volume"] == 0).all()
    assert eth["close"].iloc[4] == 90.0


def test_offsets_convert_to_utc_and_naive_times_are_read_as_utc(tmp_path):
    offset = write(tmp_path, [HEADER, day(0, suffix="+02:00"), day(1, suffix="+02:00")], "a.csv")
    assert load_prices(offset).bars["ETH"].index[0] == pd.Timestamp("2023-12-31T22:00:00", tz="UTC")
    compact = write(tmp_path, [HEADER, day(0, suffix="+0000"), day(1, suffix="Z")], "b.csv")
    assert load_prices(compact).bars["ETH"].index[1] == pd.Timestamp("2024-01-02", tz="UTC")
    naive = write(tmp_path, ["timestamp,token,close", "2024-01-01,ETH,1", "2024-01-02,ETH,2"], "c.csv")
    data = load_prices(naive)
    assert data.notes == ("timestamps have no time zone; read as UTC",)
    assert str(data.bars["ETH"].index.tz) == "UTC"


def test_tokens_with_different_intervals_are_rejected(tmp_path):
    hourly = ["2024-01-01T00:00:00Z,BTC,1,1,1,1,1", "2024-01-01T01:00:00Z,BTC,1,1,1,1,1"]
    path = write(tmp_path, [HEADER, day(0), day(1), *hourly])
    rejected(path, r"different bar intervals \(ETH: 1 days 00:00:00, BTC: 0 days 01:00:00\)")


def test_a_token_needs_two_bars(tmp_path):
    rejected(write(tmp_path, [HEADER, day(0)]), r"line 2: ETH has only 1 bar; need at least 2")


def test_parquet_holds_the_same_bars_as_csv(tmp_path):
    path = tmp_path / "prices.parquet"
    pd.read_csv(SAMPLE).to_parquet(path)
    from_csv, from_parquet = load_prices(SAMPLE), load_prices(path)
    assert sorted(from_parquet.bars) == sorted(from_csv.bars) == ["BTC", "ETH", "LTC"]
    for token, bars in from_csv.bars.items():
        pd.testing.assert_frame_equal(from_parquet.bars[token], bars)


def test_corrupt_parquet_is_rejected(tmp_path):
    path = tmp_path / "prices.parquet"
    path.write_bytes(b"PAR1 not really")
    rejected(path, r"not a readable Parquet file")


def test_unreadable_and_missing_files(tmp_path):
    rejected(tmp_path / "nope.csv", r"no such file")
    rejected(write(tmp_path, []), r"not a readable CSV file")
    empty = write(tmp_path, [HEADER], "empty.csv")
    rejected(empty, r"no rows")


def test_loaded_bars_match_the_file(tmp_path):
    rng = np.random.default_rng(0)
    closes = 100 + rng.random(50)
    path = write(tmp_path, [HEADER] + [day(i, close=round(c, 4)) for i, c in enumerate(closes)])
    np.testing.assert_allclose(load_prices(path).bars["ETH"]["close"].to_numpy(), closes.round(4))
