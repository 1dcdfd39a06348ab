"""Tests for ``stratagem.data.importer.read_bars``: round trips, layouts and every error class.

Error tests check what a user relies on to fix a file: the message names the file, the
exact line (CSV, as a text editor numbers it) or row (Parquet) and the column, and
``details`` carries the same as structured fields.
"""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stratagem.data.importer import MAX_REPORTED, read_bars
from stratagem.data.store import MarketData, build_store, iso_to_day
from stratagem.errors import BadInput, NotFound

HEADER = "date,open,high,low,close,adj_close,volume"
GOOD_ROWS = [
    "2024-01-02,10.5,11.25,10.125,11,10.8,1000",
    "2024-01-03,11,11.5,10.75,11.375,11.2,1500",
    "2024-01-04,11.375,12,11.25,11.9,11.7,0",
]


def write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def problems(path: Path) -> BadInput:
    with pytest.raises(BadInput) as info:
        read_bars(path)
    return info.value


def details(err: BadInput) -> list[dict]:
    assert isinstance(err.details, list)
    return err.details


def assert_problem(err: BadInput, file: Path | str, row: int | None, column: str | None, *words: str) -> dict:
    """One listed problem has this file/row/column, in ``details`` and in the message text."""
    hits = [d for d in details(err) if d["file"] == str(file) and d["row"] == row and d["column"] == column]
    assert hits, f"no problem at {file}:{row}:{column} in {details(err)}"
    d = hits[0]
    for w in words:
        assert w in d["message"], (w, d["message"])
    line = next(ln for ln in str(err).splitlines()[1:] if d["message"] in ln and (column is None or repr(column) in ln))
    assert str(file) in line
    if row is not None:
        assert f" {row}," in line or f" {row}:" in line
    if column is not None:
        assert repr(column) in line
    return d


def only_problem(err: BadInput, file: Path, row: int | None, column: str | None, *words: str) -> dict:
    assert len(details(err)) == 1, details(err)
    assert str(err).splitlines()[0] == f"{file}: 1 problem, nothing imported:"
    return assert_problem(err, file, row, column, *words)


# --------------------------------------------------------------------------- good input


def test_per_symbol_csv_round_trips_exact_values(tmp_path: Path) -> None:
    p = write(tmp_path / "aapl.csv", "Date,Open,High,Low,Close,Adj Close,Volume",
              "2024-01-02,185.6400146484375,188.44000244140625,183.88999938964844,185.63999938964844,184.93,82488700",
              "2024-01-03,184.22000122070312,185.8800048828125,183.42999267578125,184.25,183.55,58414500")
    bars = read_bars(p)
    assert list(bars) == ["AAPL"]
    b = bars["AAPL"]
    assert b.symbol == "AAPL"
    assert b.dates.dtype == np.int64 and b.dates.tolist() == [iso_to_day("2024-01-02"), iso_to_day("2024-01-03")]
    for arr in (b.open, b.high, b.low, b.close, b.volume, b.adj_close):
        assert arr is not None and arr.dtype == np.float64
    assert b.open.tolist() == [185.6400146484375, 184.22000122070312]
    assert b.high.tolist() == [188.44000244140625, 185.8800048828125]
    assert b.low.tolist() == [183.88999938964844, 183.42999267578125]
    assert b.close.tolist() == [185.63999938964844, 184.25]
    assert b.adj_close is not None and b.adj_close.tolist() == [184.93, 183.55]
    assert b.volume.tolist() == [82488700.0, 58414500.0]


def test_missing_adj_close_gives_none_and_extra_columns_are_ignored(tmp_path: Path) -> None:
    p = write(tmp_path / "brk.b.csv", "date,open,high,low,close,volume,dividends,notes",
              "2024-01-02,10,11,9,10.5,100,0,hello", "2024-01-03,10.5,11,10,10.75,200,0.1,")
    b = read_bars(p)["BRK.B"]
    assert b.adj_close is None
    assert b.close.tolist() == [10.5, 10.75]


def test_long_csv_with_interleaved_symbols(tmp_path: Path) -> None:
    p = write(tmp_path / "prices.csv", "Ticker,Date,Open,High,Low,Close,Volume,AdjClose",
              "msft,2024-01-02,370,375,366,370.87,25258600,368.0",
              "AAPL,2024-01-02,187.15,188.44,183.89,185.64,82488700,184.9",
              "MSFT,2024-01-03,369.01,373.26,368.51,370.6,23083500,367.8",
              " aapl ,2024-01-03,184.22,185.88,183.43,184.25,58414500,183.5",
              "^GSPC,2024-01-03,4725.07,4729.29,4699.71,4704.81,3950760000,4704.81")
    bars = read_bars(p)
    assert sorted(bars) == ["AAPL", "MSFT", "^GSPC"]
    assert bars["MSFT"].close.tolist() == [370.87, 370.6]
    assert bars["MSFT"].adj_close is not None and bars["MSFT"].adj_close.tolist() == [368.0, 367.8]
    assert bars["AAPL"].dates.tolist() == [iso_to_day("2024-01-02"), iso_to_day("2024-01-03")]
    assert bars["AAPL"].open.tolist() == [187.15, 184.22]
    assert bars["^GSPC"].volume.tolist() == [3950760000.0]


@pytest.mark.parametrize("header", [
    "Date,Open,High,Low,Close,Adj Close,Volume",
    "date,open,high,low,close,adj close,volume",
    "DATE,OPEN,HIGH,LOW,CLOSE,ADJCLOSE,VOLUME",
    "Date,Open,High,Low,Close,Adj_Close,Volume",
    " date , open , high , low , close , adj_close , volume ",
])
def test_header_spellings(tmp_path: Path, header: str) -> None:
    p = write(tmp_path / "x.csv", header, *GOOD_ROWS)
    b = read_bars(p)["X"]
    assert b.adj_close is not None and b.adj_close.tolist() == [10.8, 11.2, 11.7]


def test_symbol_header_spellings(tmp_path: Path) -> None:
    for i, col in enumerate(["Symbol", "SYMBOL", "ticker", "Ticker"]):
        p = write(tmp_path / f"t{i}.csv", f"{col},{HEADER}", *(f"abc,{r}" for r in GOOD_ROWS))
        assert list(read_bars(p)) == ["ABC"]


def test_midnight_datetimes_are_dates(tmp_path: Path) -> None:
    p = write(tmp_path / "x.csv", "date,open,high,low,close,volume",
              "2024-01-02 00:00:00,1,1,1,1,1", "2024-01-03T00:00:00,1,1,1,1,1", "2024-01-04T00:00:00Z,1,1,1,1,1")
    assert read_bars(p)["X"].dates.tolist() == [iso_to_day(d) for d in ("2024-01-02", "2024-01-03", "2024-01-04")]


def test_gzip_csv(tmp_path: Path) -> None:
    p = tmp_path / "spy.csv.gz"
    p.write_bytes(gzip.compress(("\n".join([HEADER, *GOOD_ROWS]) + "\n").encode()))
    b = read_bars(p)["SPY"]
    assert b.close.tolist() == [11.0, 11.375, 11.9]


def test_bom_crlf_and_trailing_blank_lines(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_bytes(b"\xef\xbb\xbf" + "\r\n".join([HEADER, *GOOD_ROWS]).encode() + b"\r\n\r\n\r\n")
    assert read_bars(p)["X"].volume.tolist() == [1000.0, 1500.0, 0.0]


def _parquet(path: Path, **cols: object) -> Path:
    pq.write_table(pa.table(cols), path)
    return path


def test_parquet_round_trip_date32(tmp_path: Path) -> None:
    days = [dt.date(2024, 1, 2), dt.date(2024, 1, 3)]
    p = _parquet(tmp_path / "long.parquet",
                 Symbol=["aapl", "aapl"], Date=pa.array(days, pa.date32()),
                 Open=[185.64, 184.22], High=[188.44, 185.88], Low=[183.89, 183.43],
                 Close=[185.64, 184.25], **{"Adj Close": [184.93, 183.55]},
                 Volume=pa.array([82488700, 58414500], pa.int64()))
    b = read_bars(p)["AAPL"]
    assert b.dates.dtype == np.int64 and b.dates.tolist() == [iso_to_day("2024-01-02"), iso_to_day("2024-01-03")]
    assert b.close.tolist() == [185.64, 184.25]
    assert b.adj_close is not None and b.adj_close.tolist() == [184.93, 183.55]
    assert b.volume.dtype == np.float64 and b.volume.tolist() == [82488700.0, 58414500.0]


@pytest.mark.parametrize("dates", [
    pa.array([dt.datetime(2024, 1, 2), dt.datetime(2024, 1, 3)], pa.timestamp("ns")),
    pa.array([dt.datetime(2024, 1, 2), dt.datetime(2024, 1, 3)], pa.timestamp("ms")),
    # tz-aware midnights are stored as 05:00 UTC; they are still those dates
    pa.array([dt.datetime(2024, 1, 2, 5), dt.datetime(2024, 1, 3, 5)], pa.timestamp("us", tz="America/New_York")),
    pa.array(["2024-01-02", "2024-01-03"]),
    pa.array([dt.date(2024, 1, 2), dt.date(2024, 1, 3)], pa.date64()),
])
def test_parquet_date_types(tmp_path: Path, dates: pa.Array) -> None:
    p = _parquet(tmp_path / "ibm.pq", date=dates, open=[1.0, 2.0], high=[1.0, 2.0], low=[1.0, 2.0],
                 close=[1.0, 2.0], volume=[1.0, 2.0])
    assert read_bars(p)["IBM"].dates.tolist() == [iso_to_day("2024-01-02"), iso_to_day("2024-01-03")]


def test_directory_with_two_files(tmp_path: Path) -> None:
    d = tmp_path / "data"
    d.mkdir()
    write(d / "aapl.csv", HEADER, *GOOD_ROWS)
    _parquet(d / "more.parquet", ticker=["MSFT", "GOOG", "MSFT"],
             date=pa.array([dt.date(2024, 1, 2)] * 2 + [dt.date(2024, 1, 3)], pa.date32()),
             open=[1.0, 2.0, 3.0], high=[1.0, 2.0, 3.0], low=[1.0, 2.0, 3.0], close=[1.0, 2.0, 3.0],
             volume=[5.0, 6.0, 7.0])
    write(d / "README.txt", "not data")
    write(d / ".hidden.csv", "garbage")
    (d / "sub").mkdir()
    write(d / "sub" / "zzz.csv", "garbage")
    bars = read_bars(d)
    assert sorted(bars) == ["AAPL", "GOOG", "MSFT"]
    assert bars["AAPL"].adj_close is not None
    assert bars["MSFT"].adj_close is None
    assert bars["MSFT"].close.tolist() == [1.0, 3.0]


def test_build_store_accepts_result(tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    write(d / "aapl.csv", HEADER, *GOOD_ROWS)
    write(d / "long.csv", "symbol,date,open,high,low,close,volume",
          "MSFT,2024-01-02,1,2,0.5,1.5,10", "IBM,2024-01-02,1,2,0.5,1.5,10", "MSFT,2024-01-03,1,2,0.5,1.5,10")
    build_store(read_bars(d), tmp_path / "ds", source="test")
    md = MarketData(tmp_path / "ds")
    assert md.symbols == ["AAPL", "IBM", "MSFT"]
    info = md.info()["symbols"]
    assert {s: v["bars"] for s, v in info.items()} == {"AAPL": 3, "IBM": 1, "MSFT": 2}
    assert md.meta["has_adj_close"] == {"AAPL": True, "IBM": False, "MSFT": False}


# --------------------------------------------------------------------------- errors: CSV


def bad_csv(tmp_path: Path, *rows: str, header: str = HEADER, name: str = "aapl.csv") -> tuple[Path, BadInput]:
    p = write(tmp_path / name, header, *rows)
    return p, problems(p)


def test_missing_required_columns(tmp_path: Path) -> None:
    p, err = bad_csv(tmp_path, "2024-01-02,1,1,1", header="Date,Open,High,Adj Close")
    d = only_problem(err, p, 1, "low, close, volume", "missing low, close, volume", "'Date'", "'Adj Close'")
    assert "expected columns date, open, high, low, close, volume" in d["message"]


def test_semicolon_header_hint(tmp_path: Path) -> None:
    p, err = bad_csv(tmp_path, "2024-01-02;1;1;1;1;1", header="date;open;high;low;close;volume")
    only_problem(err, p, 1, "date, open, high, low, close, volume", "separated by semicolons")


def test_duplicate_header_field(tmp_path: Path) -> None:
    p, err = bad_csv(tmp_path, "2024-01-02,2024-01-02,1,1,1,1,1", header="Date,date,open,high,low,close,volume")
    only_problem(err, p, 1, "date", "both 'Date' and 'date'")


@pytest.mark.parametrize(("cell", "words"), [
    ("01/02/2024", ("expected a date like 2024-01-31", "'01/02/2024'")),
    ("2024/01/02", ("expected a date", "'2024/01/02'")),
    ("20240102", ("expected a date", "'20240102'")),
    ("2024-02-30", ("expected a valid calendar date", "'2024-02-30'")),
    ("2024-01-02 09:30:00", ("time of day", "'2024-01-02 09:30:00'")),
    ("", ("expected a date", "empty cell")),
])
def test_bad_date(tmp_path: Path, cell: str, words: tuple[str, ...]) -> None:
    p, err = bad_csv(tmp_path, GOOD_ROWS[0], cell + GOOD_ROWS[1][10:])
    only_problem(err, p, 3, "date", *words)


@pytest.mark.parametrize("column", ["open", "high", "low", "close", "adj_close", "volume"])
def test_unparsable_number(tmp_path: Path, column: str) -> None:
    cells = GOOD_ROWS[1].split(",")
    cells[HEADER.split(",").index(column)] = "1,5"  # quoted below: a decimal comma
    row = ",".join(c if c != "1,5" else '"1,5"' for c in cells)
    p, err = bad_csv(tmp_path, GOOD_ROWS[0], row, GOOD_ROWS[2])
    only_problem(err, p, 3, column, "expected a number", "'1,5'")


@pytest.mark.parametrize("column", ["open", "close", "volume", "adj_close"])
def test_empty_cell(tmp_path: Path, column: str) -> None:
    cells = GOOD_ROWS[2].split(",")
    cells[HEADER.split(",").index(column)] = "  "
    p, err = bad_csv(tmp_path, GOOD_ROWS[0], GOOD_ROWS[1], ",".join(cells))
    only_problem(err, p, 4, column, "expected a number", "empty cell")


@pytest.mark.parametrize("value", ["0", "-1.5"])
@pytest.mark.parametrize("column", ["open", "high", "low", "close", "adj_close"])
def test_non_positive_price(tmp_path: Path, column: str, value: str) -> None:
    cells = GOOD_ROWS[1].split(",")
    cells[HEADER.split(",").index(column)] = value
    p, err = bad_csv(tmp_path, GOOD_ROWS[0], ",".join(cells))
    # Only the price itself is reported: the OHLC test skips rows with an unusable price.
    only_problem(err, p, 3, column, "expected a price > 0", f"found {value}")


def test_negative_volume(tmp_path: Path) -> None:
    p, err = bad_csv(tmp_path, GOOD_ROWS[0], "2024-01-03,11,11.5,10.75,11.375,11.2,-1500")
    only_problem(err, p, 3, "volume", "expected a volume >= 0", "found -1500")


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-Infinity"])
@pytest.mark.parametrize("column", ["close", "volume"])
def test_nan_and_inf(tmp_path: Path, column: str, value: str) -> None:
    cells = GOOD_ROWS[0].split(",")
    cells[HEADER.split(",").index(column)] = value
    p, err = bad_csv(tmp_path, ",".join(cells))
    only_problem(err, p, 2, column, "expected a finite number")


def test_high_below_low(tmp_path: Path) -> None:
    p, err = bad_csv(tmp_path, GOOD_ROWS[0], GOOD_ROWS[1], "2024-01-04,11.5,11,12,11.5,11.7,10")
    only_problem(err, p, 4, "high", "expected high >= low", "high 11 < low 12")


@pytest.mark.parametrize(("row", "column", "words"), [
    ("2024-01-03,12,11.5,10.75,11.375,11.2,1", "high", ("expected high >= open", "high 11.5 < open 12")),
    ("2024-01-03,11,11.5,10.75,11.6,11.2,1", "high", ("expected high >= close", "high 11.5 < close 11.6")),
    ("2024-01-03,10.5,11.5,10.75,11,11.2,1", "low", ("expected low <= open", "low 10.75 > open 10.5")),
    ("2024-01-03,11,11.5,10.75,10.7,11.2,1", "low", ("expected low <= close", "low 10.75 > close 10.7")),
])
def test_ohlc_inconsistency(tmp_path: Path, row: str, column: str, words: tuple[str, ...]) -> None:
    p, err = bad_csv(tmp_path, GOOD_ROWS[0], row)
    only_problem(err, p, 3, column, *words)


def test_ohlc_tolerance(tmp_path: Path) -> None:
    close = repr(11.5 * (1 + 1e-12))  # vendor rounding noise above the high: accepted
    p = write(tmp_path / "x.csv", HEADER, f"2024-01-03,11,11.5,10.75,{close},11.2,1")
    assert read_bars(p)["X"].close.tolist() == [float(close)]
    p = write(tmp_path / "y.csv", HEADER, f"2024-01-03,11,11.5,10.75,{11.5 * (1 + 1e-8)!r},11.2,1")
    only_problem(problems(p), p, 2, "high", "expected high >= close")


def test_duplicate_dates_name_both_rows(tmp_path: Path) -> None:
    p, err = bad_csv(tmp_path, GOOD_ROWS[0], GOOD_ROWS[1], GOOD_ROWS[1].replace("1500", "1600"), GOOD_ROWS[2])
    only_problem(err, p, 4, "date", "2024-01-03", "line 3", "one row per date")


def test_unsorted_rows(tmp_path: Path) -> None:
    p, err = bad_csv(tmp_path, GOOD_ROWS[0], GOOD_ROWS[2], GOOD_ROWS[1])
    only_problem(err, p, 4, "date", "increasing order", "2024-01-03 after 2024-01-04 on line 3")


def test_newest_first_is_one_problem(tmp_path: Path) -> None:
    p, err = bad_csv(tmp_path, *reversed(GOOD_ROWS))
    only_problem(err, p, 3, "date", "oldest first", "sort the rows by date ascending")


def test_dates_are_checked_per_symbol_in_long_tables(tmp_path: Path) -> None:
    p, err = bad_csv(tmp_path, "A,2024-01-03,1,1,1,1,1", "B,2024-01-02,1,1,1,1,1", "A,2024-01-03,1,1,1,1,1",
                     "B,2024-01-01,1,1,1,1,1", "A,2024-01-04,1,1,1,1,1",
                     header="symbol,date,open,high,low,close,volume", name="long.csv")
    assert len(details(err)) == 2
    assert_problem(err, p, 4, "date", "for A", "first on line 2")
    assert_problem(err, p, 5, "date", "for B", "after 2024-01-02 on line 3")


def test_header_without_rows(tmp_path: Path) -> None:
    p, err = bad_csv(tmp_path)
    only_problem(err, p, None, None, "expected data rows", "found none")


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "aapl.csv"
    p.write_text("")
    only_problem(problems(p), p, None, None, "found an empty file")


@pytest.mark.parametrize(("cell", "words"), [
    ("BRK B", ("expected a symbol", "'BRK B'")),
    ("AAPL$", ("expected a symbol", "'AAPL$'")),
    ("", ("expected a symbol", "empty cell")),
])
def test_bad_symbol_values(tmp_path: Path, cell: str, words: tuple[str, ...]) -> None:
    p, err = bad_csv(tmp_path, "MSFT,2024-01-02,1,1,1,1,1", f"{cell},2024-01-02,1,1,1,1,1",
                     header="Ticker,date,open,high,low,close,volume", name="long.csv")
    only_problem(err, p, 3, "Ticker", *words)


def test_bad_symbol_from_file_name(tmp_path: Path) -> None:
    p, err = bad_csv(tmp_path, GOOD_ROWS[0], name="my prices.csv")
    only_problem(err, p, None, None, "symbol/ticker column", "'my prices'")


def test_short_and_long_rows(tmp_path: Path) -> None:
    p, err = bad_csv(tmp_path, GOOD_ROWS[0], "2024-01-03,11,11.5,10.75,11.375", GOOD_ROWS[2] + ",5,6",
                     "2024-01-05,12,12,12,12,12,1,,")  # trailing empty cells are fine
    assert len(details(err)) == 3
    assert_problem(err, p, 3, "adj_close", "no cell")
    assert_problem(err, p, 3, "volume", "no cell")
    assert_problem(err, p, 4, None, "expected 7 fields", "found 9")


def test_message_uses_the_files_own_column_names(tmp_path: Path) -> None:
    p, err = bad_csv(tmp_path, "2024-01-02,1,1,1,1,0,1", header="Date,Open,High,Low,Close,Adj Close,Volume")
    only_problem(err, p, 2, "Adj Close", "expected a price > 0")


def test_line_numbers_survive_blank_lines_and_quoted_newlines(tmp_path: Path) -> None:
    p = tmp_path / "aapl.csv"
    p.write_text("\n".join([
        "date,open,high,low,close,volume,note",
        "2024-01-02,1,1,1,1,1,plain",
        "",
        '2024-01-03,1,1,1,1,1,"two',
        'lines"',
        "2024-01-04,1,1,1,-1,1,x",  # line 6
        "",
        "2024-01-05,1,1,1,1,x,y",  # line 8
    ]) + "\n")
    err = problems(p)
    assert len(details(err)) == 2
    assert_problem(err, p, 6, "close", "price > 0")
    assert_problem(err, p, 8, "volume", "expected a number")


def test_blank_lines_only_keep_exact_line_numbers(tmp_path: Path) -> None:
    p = write(tmp_path / "aapl.csv", HEADER, GOOD_ROWS[0], "", "", GOOD_ROWS[1].replace("1500", "-3"))
    only_problem(problems(p), p, 5, "volume", "volume >= 0")
    # and the same data without the problem imports identically to a file without blanks
    q = write(tmp_path / "q.csv", HEADER, GOOD_ROWS[0], "", "", GOOD_ROWS[1])
    r = write(tmp_path / "r.csv", HEADER, GOOD_ROWS[0], GOOD_ROWS[1])
    a, b = read_bars(q)["Q"], read_bars(r)["R"]
    for f in ("dates", "open", "high", "low", "close", "volume", "adj_close"):
        assert np.array_equal(getattr(a, f), getattr(b, f))


def test_not_utf8(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_bytes((HEADER + "\n" + GOOD_ROWS[0] + ",caf\xe9\n").encode("latin-1"))
    err = problems(p)
    assert_problem(err, p, 2, None, "expected UTF-8", "0xe9")


def test_summary_and_details_for_several_problems(tmp_path: Path) -> None:
    p, err = bad_csv(tmp_path, "2024-01-02,x,11,10,10.5,10,1", "2024-01-03,10,11,10,10.5,10,-1",
                     "bad,10,11,10,10.5,10,1")
    lines = str(err).splitlines()
    assert lines[0] == f"{p}: 3 problems, nothing imported:"
    assert len(lines) == 4
    assert [(d["row"], d["column"]) for d in details(err)] == [(2, "open"), (3, "volume"), (4, "date")]
    assert all(set(d) == {"file", "row", "column", "message"} for d in details(err))
    assert all("expected" in d["message"] and "found" in d["message"] for d in details(err))


def test_collection_stops_at_twenty(tmp_path: Path) -> None:
    rows = [f"2024-02-{d:02d},10,11,9,10,10,-{d}" for d in range(1, 29)]  # 28 negative volumes
    rows += ["2024-03-01,x,11,9,10,10,1"]
    p, err = bad_csv(tmp_path, *rows)
    assert len(details(err)) == MAX_REPORTED == 20
    lines = str(err).splitlines()
    assert lines[0] == f"{p}: 29 problems, nothing imported (first 20 listed):"
    assert len(lines) == 21
    assert [d["row"] for d in details(err)] == list(range(2, 22))


# --------------------------------------------------------------------------- errors: Parquet


def test_parquet_errors_name_rows(tmp_path: Path) -> None:
    p = _parquet(tmp_path / "x.parquet",
                 date=pa.array([dt.date(2024, 1, d) for d in (2, 3, 4, 4)], pa.date32()),
                 open=[1.0, 1.0, 1.0, 1.0], high=[1.0, 1.0, 1.0, 1.0], low=[1.0, 1.0, 1.0, 1.0],
                 close=pa.array([1.0, None, 1.0, 1.0]), volume=[1.0, 1.0, -5.0, 1.0])
    err = problems(p)
    assert len(details(err)) == 3
    assert_problem(err, p, 2, "close", "expected a number", "empty cell")
    assert_problem(err, p, 3, "volume", "volume >= 0")
    assert_problem(err, p, 4, "date", "one row per date", "first on row 3")
    assert "x.parquet: row 3, column 'volume':" in str(err)


def test_parquet_intraday_timestamps_and_bad_types(tmp_path: Path) -> None:
    p = _parquet(tmp_path / "x.parquet",
                 date=pa.array([dt.datetime(2024, 1, 2), dt.datetime(2024, 1, 3, 9, 30)], pa.timestamp("s")),
                 open=[1.0, 1.0], high=[1.0, 1.0], low=[1.0, 1.0], close=[1.0, 1.0], volume=[1.0, 1.0])
    only_problem(problems(p), p, 2, "date", "time of day", "09:30")
    q = _parquet(tmp_path / "q.parquet", date=[1, 2], open=[True, False], high=[1.0, 1.0], low=[1.0, 1.0],
                 close=[1.0, 1.0], volume=[1.0, 1.0])
    err = problems(q)
    assert_problem(err, q, None, "date", "found type int64")
    assert_problem(err, q, None, "open", "expected a numeric column", "found type bool")


def test_parquet_missing_column_and_no_rows(tmp_path: Path) -> None:
    p = _parquet(tmp_path / "x.parquet", date=pa.array([], pa.date32()), open=pa.array([], pa.float64()))
    only_problem(problems(p), p, None, "high, low, close, volume", "missing high, low, close, volume", "'open'")
    q = _parquet(tmp_path / "q.parquet", **{c: pa.array([], pa.float64()) for c in HEADER.split(",")})
    only_problem(problems(q), q, None, None, "expected data rows")


def test_not_a_parquet_file(tmp_path: Path) -> None:
    p = tmp_path / "x.parquet"
    p.write_text("date,open\n")
    only_problem(problems(p), p, None, None, "expected a Parquet file")


# --------------------------------------------------------------------------- errors: directories


def test_duplicate_symbol_across_files_names_both(tmp_path: Path) -> None:
    d = tmp_path / "data"
    d.mkdir()
    write(d / "aapl.csv", HEADER, *GOOD_ROWS)
    write(d / "b_long.csv", "symbol,date,open,high,low,close,volume",
          "MSFT,2024-01-02,1,1,1,1,1", "AAPL,2024-01-05,1,1,1,1,1")
    write(d / "c.csv", HEADER, *GOOD_ROWS)
    write(d / "msft.csv", HEADER, *GOOD_ROWS)
    err = problems(d)
    assert len(details(err)) == 2
    assert_problem(err, d / "b_long.csv", 3, "symbol", "AAPL also in " + str(d / "aapl.csv"))
    assert_problem(err, d / "msft.csv", None, None, "MSFT also in " + str(d / "b_long.csv"))
    assert str(err).splitlines()[0] == f"{d}: 2 problems in 2 files, nothing imported:"


def test_one_bad_file_imports_nothing(tmp_path: Path) -> None:
    d = tmp_path / "data"
    d.mkdir()
    write(d / "aapl.csv", HEADER, *GOOD_ROWS)
    write(d / "msft.csv", HEADER, GOOD_ROWS[0], GOOD_ROWS[1].replace("11.375", "abc"))
    err = problems(d)
    assert str(err).splitlines()[0] == f"{d / 'msft.csv'}: 1 problem, nothing imported:"
    assert_problem(err, d / "msft.csv", 3, "close", "'abc'")


def test_problem_cap_spans_files(tmp_path: Path) -> None:
    d = tmp_path / "data"
    d.mkdir()
    for name in ("a.csv", "b.csv"):
        write(d / name, HEADER, *(f"2024-02-{k:02d},10,11,9,10,10,-1" for k in range(1, 16)))
    err = problems(d)
    assert str(err).splitlines()[0] == f"{d}: 30 problems in 2 files, nothing imported (first 20 listed):"
    assert [d_["file"] for d_ in details(err)] == [str(d / "a.csv")] * 15 + [str(d / "b.csv")] * 5


def test_missing_path_wrong_suffix_and_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no such file"):
        read_bars(tmp_path / "nope.csv")
    txt = write(tmp_path / "prices.txt", HEADER)
    with pytest.raises(BadInput, match=r"expected a \.csv"):
        read_bars(txt)
    empty = tmp_path / "empty"
    empty.mkdir()
    write(empty / "notes.md", "hi")
    with pytest.raises(BadInput, match=r"expected CSV or Parquet files.*found notes\.md"):
        read_bars(empty)


def test_corrupt_gzip(tmp_path: Path) -> None:
    p = tmp_path / "x.csv.gz"
    p.write_bytes(b"not gzip at all")
    only_problem(problems(p), p, None, None, "expected a readable gzip file")


# --------------------------------------------------------------------------- speed


@pytest.mark.slow
def test_ten_years_of_500_symbols_imports_exactly(tmp_path: Path) -> None:
    """~1.25M rows in one long CSV: every value survives (speed is measured in bench/, not here)."""
    import pyarrow.csv as pa_csv

    n_days, n_sym = 2520, 500
    rng = np.random.default_rng(7)
    close = np.round(rng.uniform(10, 500, n_days * n_sym), 4)
    day0 = np.datetime64("2014-01-02")
    table = pa.table({
        "date": pa.array(np.repeat(day0 + np.arange(n_days), n_sym).astype("datetime64[D]")).cast(pa.string()),
        "symbol": pa.array(np.tile([f"S{i:03d}" for i in range(n_sym)], n_days)),
        "open": close, "high": np.round(close * 1.01, 4), "low": np.round(close * 0.99, 4), "close": close,
        "adj_close": np.round(close * 0.9, 4), "volume": np.round(close * 1000),
    })
    p = tmp_path / "big.csv"
    pa_csv.write_csv(table, p)
    bars = read_bars(p)
    assert len(bars) == n_sym and all(len(b) == n_days for b in bars.values())
    assert bars["S007"].close.tolist() == close[7::n_sym].tolist()
