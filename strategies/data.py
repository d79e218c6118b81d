"""Price data for the backtester: loading, schema and validation.

Schema (column names are case-insensitive):

- ``timestamp`` (required): ISO-8601, one time zone for the whole file. Offsets are
  converted to UTC; a file whose timestamps all lack an offset is read as UTC (and
  the load says so in ``notes``). Each timestamp is the bar's open time.
- ``close`` (required), ``open``, ``high``, ``low``: prices in quote units per token,
  finite and positive; ``high``/``low`` (when given) must bound ``open`` and ``close``.
- ``volume`` (optional): finite and non-negative.
- ``token`` (optional): long format, one row per token per bar. Without it the file
  holds one token, named by the caller or after the file.

Policy: every problem is rejected with one line naming the file, the line (CSV;
"row" for Parquet) and the problem, except missing bars, which ``fill_gaps=True``
repairs by carrying the last close forward at the inferred interval (open = high =
low = close = last close, volume 0), counting the bars it adds. Nothing is dropped,
sorted or guessed silently. The interval is the most common spacing of a token's
bars; every token of one load must have the same interval.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

PRICE_COLUMNS = ("open", "high", "low", "close")
SCHEMA_HINT = "required: timestamp, close; optional: token, open, high, low, volume"
_COLUMN_ORDER = ("timestamp", "token", "open", "high", "low", "close", "volume")
_OFFSET = r"(Z|[+-]\d\d:?\d\d)$"


class DataError(ValueError):
    """Price data that cannot be used as it is; the message is one line."""


@dataclass(frozen=True)
class PriceData:
    """Validated bars for one or more tokens at one bar interval.

    ``bars[token]`` is indexed by a UTC ``DatetimeIndex`` (strictly increasing, one
    bar every ``interval``) with ``close`` and whichever of open/high/low/volume the
    source had.
    """

    bars: dict[str, pd.DataFrame]
    interval: pd.Timedelta
    source: str
    sha256: str | None = None
    filled_bars: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def tokens(self) -> list[str]:
        """Token names in load order."""
        return list(self.bars)

    @property
    def has_open(self) -> bool:
        """Whether every token has an ``open`` column."""
        return all("open" in frame.columns for frame in self.bars.values())


def load_prices(
    path: str | Path, tokens: Sequence[str] | None = None, fill_gaps: bool = False
) -> PriceData:
    """Read and validate a CSV or Parquet price file.

    ``tokens`` selects tokens of a long-format file (all of them by default); for a
    file without a token column it names the one token (default: the file's stem).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.suffix.lower() in (".parquet", ".pq"):
        raw, first_line, unit = _read_parquet(path), 1, "row"
    else:
        # Row i of the frame is line i + 2 of the file (line 1 is the header).
        raw, first_line, unit = _read_csv(path), 2, "line"
    raw.index = raw.index + first_line
    if not tokens and "token" not in _normalised_columns(raw).values():
        tokens = [path.stem]
    data = validate_prices(raw, str(path), tokens, fill_gaps, unit)
    return PriceData(
        data.bars, data.interval, data.source, _sha256(path), data.filled_bars, data.notes
    )


def validate_prices(
    raw: pd.DataFrame,
    source: str = "<frame>",
    tokens: Sequence[str] | None = None,
    fill_gaps: bool = False,
    unit: str = "row",
) -> PriceData:
    """Validate a raw price table whose index holds each row's line (or row) number.

    Without a token column, ``tokens`` must name the one token the table holds.
    """
    where = _Locator(source, unit)
    names = _normalised_columns(raw)
    repeated = sorted({name for name in names.values() if list(names.values()).count(name) > 1})
    if repeated:
        raise DataError(f"{source}: column {repeated[0]!r} appears more than once (names are case-insensitive); "
                        "keep one")
    frame = raw.rename(columns=names)
    missing = [name for name in ("timestamp", "close") if name not in frame.columns]
    if missing:
        found = ", ".join(map(str, raw.columns)) or "none"
        raise DataError(
            f"{source}: missing column {', '.join(repr(m) for m in missing)} "
            f"(found: {found}; {SCHEMA_HINT})"
        )
    frame = frame[[c for c in _COLUMN_ORDER if c in frame.columns]]
    frame = _select_tokens(frame, where, tokens)
    if frame.empty:
        raise DataError(f"{source}: no rows")
    frame = _parse_numbers(frame, where)
    stamps, note = _parse_timestamps(frame["timestamp"], where)
    frame = frame.drop(columns="timestamp").assign(line=frame.index).set_axis(stamps)
    bars: dict[str, pd.DataFrame] = {}
    filled: dict[str, int] = {}
    intervals: dict[str, pd.Timedelta] = {}
    for token, rows in frame.groupby("token", sort=False):
        intervals[token] = _check_order(rows, token, where)
        bars[token], filled[token] = _check_gaps(rows, token, intervals[token], where, fill_gaps)
    if len(set(intervals.values())) > 1:
        spacing = ", ".join(f"{t}: {i}" for t, i in intervals.items())
        raise DataError(f"{source}: tokens have different bar intervals ({spacing}); load them separately")
    interval = next(iter(intervals.values()))
    return PriceData(bars, interval, source, None, filled, (note,) if note else ())


class _Locator:
    """Formats where a problem is: 'file, line N' (CSV) or 'file, row N'."""

    def __init__(self, source: str, unit: str) -> None:
        self.source = source
        self.unit = unit

    def __call__(self, line: int) -> str:
        return f"{self.source}, {self.unit} {line}"


def _read_csv(path: Path) -> pd.DataFrame:
    # Blank lines are kept (as empty rows) so that line numbers stay exact. pandas takes
    # a first column without a header as the index, which shifts every column by one
    # when rows have more fields than the header: index_col=False stops that, and the
    # warning it then gives about the extra fields is an error here.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(path, dtype={"timestamp": str, "token": str}, skip_blank_lines=False, index_col=False)
    except pd.errors.ParserWarning:
        raise DataError(f"{path}: a row has more fields than the header; fix the row or the header") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not a readable CSV file ({str(err).splitlines()[0]})") from None


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except ImportError:
        raise DataError(
            f"{path}: reading Parquet needs pyarrow, which is not installed; "
            "install pyarrow or convert the file to CSV"
        ) from None
    except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(f"{path}: not a readable Parquet file ({str(err).splitlines()[0]})") from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _normalised_columns(raw: pd.DataFrame) -> dict:
    return {column: str(column).strip().lower() for column in raw.columns}


def _select_tokens(frame: pd.DataFrame, where: _Locator, tokens: Sequence[str] | None) -> pd.DataFrame:
    if "token" not in frame.columns:
        if not tokens or len(tokens) > 1:
            raise DataError(
                f"{where.source}: has no token column, so it holds exactly one token; name it"
            )
        return frame.assign(token=tokens[0])
    empty = frame["token"].isna().to_numpy()
    if empty.any():
        raise DataError(f"{where(frame.index[empty.argmax()])}: token is empty")
    frame = frame.assign(token=frame["token"].str.strip())
    if not tokens:
        return frame
    present = list(dict.fromkeys(frame["token"]))
    unknown = [t for t in tokens if t not in present]
    if unknown:
        raise DataError(f"{where.source}: no token {', '.join(unknown)} (has: {', '.join(present)})")
    return frame[frame["token"].isin(tokens)]


def _parse_numbers(frame: pd.DataFrame, where: _Locator) -> pd.DataFrame:
    columns = {}
    for column in [c for c in (*PRICE_COLUMNS, "volume") if c in frame.columns]:
        values = frame[column]
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        text = np.isnan(numbers) & values.notna().to_numpy()
        if text.any():
            line = frame.index[text.argmax()]
            raise DataError(f"{where(line)}: {column} {values[line]!r} is not a number")
        checks = [(~np.isfinite(numbers), "is missing or not finite")]
        if column == "volume":
            checks.append((numbers < 0, "is negative"))
        else:
            checks.append((numbers <= 0, "is not positive"))
        for bad, problem in checks:
            if bad.any():
                i = bad.argmax()
                raise DataError(f"{where(frame.index[i])}: {column} {problem} ({numbers[i]})")
        columns[column] = numbers
    frame = frame.assign(**columns)
    _check_ranges(frame, where)
    return frame


def _check_ranges(frame: pd.DataFrame, where: _Locator) -> None:
    for side, outside, relation in (("high", np.less, "below"), ("low", np.greater, "above")):
        if side not in frame.columns:
            continue
        for column in [c for c in ("open", "close") if c in frame.columns]:
            bad = outside(frame[side].to_numpy(), frame[column].to_numpy())
            if bad.any():
                raise DataError(f"{where(frame.index[bad.argmax()])}: {side} is {relation} {column}")


def _parse_timestamps(column: pd.Series, where: _Locator) -> tuple[pd.DatetimeIndex, str | None]:
    text = column.astype("string").str.strip()
    empty = text.isna().to_numpy()
    if empty.any():
        raise DataError(f"{where(column.index[empty.argmax()])}: timestamp is empty")
    offsets = (
        text.str.extract(_OFFSET, expand=False)
        .str.replace(r"^([+-]\d\d)(\d\d)$", r"\1:\2", regex=True)
        .replace({"Z": "+00:00", "-00:00": "+00:00"})
    )
    aware = offsets.notna().to_numpy()
    if aware.any() and not aware.all():
        naive_line = column.index[(~aware).argmax()]
        aware_line = column.index[aware.argmax()]
        raise DataError(
            f"{where(naive_line)}: timestamp {text[naive_line]!r} has no time zone but "
            f"{where.unit} {aware_line} has one ({text[aware_line]!r}); use one time zone"
        )
    if aware.any():
        other = (offsets != offsets.iloc[0]).to_numpy()
        if other.any():
            line = column.index[other.argmax()]
            raise DataError(
                f"{where(line)}: timestamp {text[line]!r} is in time zone {offsets[line]} but "
                f"{where.unit} {column.index[0]} is in {offsets.iloc[0]}; use one time zone"
            )
    try:
        parsed = pd.to_datetime(text, format="ISO8601", utc=True)
    except (ValueError, TypeError):
        parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    invalid = parsed.isna().to_numpy()  # also text that pandas reads as "no time" ('NaT')
    if invalid.any():
        line = column.index[invalid.argmax()]
        raise DataError(f"{where(line)}: timestamp {text[line]!r} is not ISO-8601")
    note = None if aware.any() else "timestamps have no time zone; read as UTC"
    return pd.DatetimeIndex(parsed, name="timestamp"), note


def _check_order(rows: pd.DataFrame, token: str, where: _Locator) -> pd.Timedelta:
    """Reject duplicate or out-of-order timestamps; return the most common spacing."""
    if len(rows) < 2:
        raise DataError(f"{where(rows['line'].iat[0])}: {token} has only 1 bar; need at least 2")
    steps = np.diff(rows.index.asi8)
    bad = steps <= 0
    if bad.any():
        i = int(bad.argmax()) + 1
        problem = "repeats" if steps[i - 1] == 0 else "is earlier than"
        raise DataError(
            f"{where(rows['line'].iat[i])}: timestamp {rows.index[i].isoformat()} of {token} "
            f"{problem} the one on {where.unit} {rows['line'].iat[i - 1]}"
        )
    values, counts = np.unique(steps, return_counts=True)
    return pd.Timedelta(int(values[counts.argmax()]), unit="ns")


def _check_gaps(
    rows: pd.DataFrame, token: str, interval: pd.Timedelta, where: _Locator, fill_gaps: bool
) -> tuple[pd.DataFrame, int]:
    """Reject bars off the interval grid; reject or forward-fill missing bars."""
    steps = np.diff(rows.index.asi8)
    off_grid = steps % interval.value != 0
    if off_grid.any():
        i = int(off_grid.argmax()) + 1
        raise DataError(
            f"{where(rows['line'].iat[i])}: timestamp {rows.index[i].isoformat()} of {token} is "
            f"not on the {interval} grid of the bars before it"
        )
    missing_after = steps // interval.value - 1
    bars = rows.drop(columns=["token", "line"])
    bars.index.name = "timestamp"
    gaps = np.flatnonzero(missing_after)
    if len(gaps) == 0:
        return bars, 0
    if not fill_gaps:
        first = int(gaps[0])
        raise DataError(
            f"{where(rows['line'].iat[first + 1])}: {int(missing_after.sum())} bars of {token} "
            f"missing in {len(gaps)} gaps, the first {int(missing_after[first])} after "
            f"{rows.index[first].isoformat()}; --fill-gaps (fill_gaps=True) forward-fills them"
        )
    grid = pd.date_range(bars.index[0], bars.index[-1], freq=interval, name="timestamp")
    filled = bars.reindex(grid)
    added = filled["close"].isna().to_numpy()
    filled["close"] = filled["close"].ffill()
    for column in ("open", "high", "low"):
        if column in filled.columns:
            filled.loc[added, column] = filled.loc[added, "close"]
    if "volume" in filled.columns:
        filled.loc[added, "volume"] = 0.0
    return filled, int(added.sum())
