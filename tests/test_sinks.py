"""Output writers: atomic, and the fast JSON Lines path equals pandas' output."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudrules.io.sinks import atomic_path, csv_pieces, csv_safe, jsonl_buffer, write_frame


def _pandas(frame: pd.DataFrame) -> bytes:
    """The reference: pandas' JSON Lines with "/" unescaped, as the writer promises."""
    text = frame.to_json(orient="records", lines=True, force_ascii=False).replace("\\/", "/")
    return (text if not text or text.endswith("\n") else text + "\n").encode("utf-8")


def test_fast_jsonl_is_byte_identical_to_pandas(tmp_path):
    frame = pd.DataFrame({"stream": ["call", "payment"], "id": ["c1", "p/2"], "line": np.array([2, 3]),
                          "risk_score": np.array([0, 100]), "rules": ["", "TF-A,TF-B"]})
    assert bytes(jsonl_buffer(frame)) == _pandas(frame)
    write_frame(frame, tmp_path / "s.jsonl", "jsonl")
    assert (tmp_path / "s.jsonl").read_bytes() == _pandas(frame)


def test_a_small_frame_is_written_in_two_slices_a_thread(tmp_path, monkeypatch):
    """A frame smaller than a slice is cut in two slices a thread, not rendered whole (its text, held two or three
    times over while rendered, was the peak of a 100k-record run), and its bytes stay pandas'."""
    from fraudrules.io import sinks

    monkeypatch.setattr(sinks, "JSONL_MIN_SLICE_ROWS", 10)
    sizes: list[int] = []
    real = sinks.jsonl_buffer
    monkeypatch.setattr(sinks, "jsonl_buffer", lambda part: sizes.append(len(part)) or real(part))
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(1000)], "line": np.arange(1000) + 2})
    write_frame(frame, tmp_path / "s.jsonl", "jsonl")
    assert (tmp_path / "s.jsonl").read_bytes() == _pandas(frame)
    threads = sinks.ahead_threads()
    assert len(sizes) == 2 * threads and sum(sizes) == 1000


@pytest.mark.parametrize("spread", [3, 50, 20_000, 2**62])
def test_integers_of_many_rows_few_or_many_values_match_pandas(spread):
    """Integers of more rows than a sample: coded when few distinct values, else each written as it is."""
    rng = np.random.default_rng(spread)
    values = rng.integers(-spread, spread, 20_000, dtype=np.int64)
    frame = pd.DataFrame({"line": values, "risk_score": values % 7, "id": [f"r{i}" for i in range(20_000)]})
    assert bytes(jsonl_buffer(frame)) == _pandas(frame)


@pytest.mark.parametrize("value", ['quo"te', "back\\slash", "tab\there", "nul\x00l", "a\\/b", "é中\u2028", None, 1.5])
@pytest.mark.parametrize("rows", [3, 20_000])  # few rows: every column coded; many: ids joined per row
def test_values_that_need_escaping_match_pandas(tmp_path, value, rows):
    rng = np.random.default_rng(rows)
    frame = pd.DataFrame({
        "stream": rng.choice(["call", "sms"], rows), "id": [f"r{i}" for i in range(rows)],
        "input": rng.choice(["C:\\in\\call.csv", "/data/sms.csv"], rows),
        "line": np.arange(rows) + 2, "risk_score": rng.choice([0, 40, 100], rows),
        "rules": rng.choice(["", "TF-A", "TF-A,TF-B"], rows)})
    for col in ("id", "rules"):
        bent = frame.copy()
        bent[col] = bent[col].astype(object)
        bent.loc[rows // 2, col] = value
        assert bytes(jsonl_buffer(bent)) == _pandas(bent)
        write_frame(bent, tmp_path / "s.jsonl", "jsonl")
        assert (tmp_path / "s.jsonl").read_bytes() == _pandas(bent)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=6), st.sampled_from(["a", "b/c", 'q"', "\\"]),
                          st.integers(-2**63, 2**63 - 1)), min_size=1, max_size=40))
def test_jsonl_of_any_text_and_integers_matches_pandas(rows):
    frame = pd.DataFrame(rows, columns=["free", "few", "num"])
    frame["num"] = frame["num"].astype(np.int64)
    assert bytes(jsonl_buffer(frame)) == _pandas(frame)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.text(max_size=5)), min_size=1, max_size=40),
       st.lists(st.text(max_size=6), min_size=4, max_size=4, unique=True))
def test_categorical_text_is_written_as_its_text(rows, texts):
    # the scored frame's repeated texts are categoricals (jobs.score._texts), unused categories included
    codes = np.array([c for c, _ in rows])
    coded = pd.DataFrame({"free": [t for _, t in rows],
                          "few": pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(pd.Index(texts)))})
    plain = pd.DataFrame({"free": coded["free"], "few": pd.Series(np.array(texts, dtype=object)[codes])})
    assert bytes(jsonl_buffer(coded)) == _pandas(plain)


def _pandas_csv(frame: pd.DataFrame, header: bool = True) -> bytes:
    """The reference for CSV: pandas' writer after the formula guard."""
    return csv_safe(frame).to_csv(index=False, header=header, lineterminator="\n").encode("utf-8")


def _csv(frame: pd.DataFrame, header: bool = True) -> bytes:
    return b"".join(p.encode("utf-8") if isinstance(p, str) else p.to_pybytes() for p in csv_pieces(frame, header))


# the reference is pandas' writer, which is Python's csv module: before 3.11 it cannot write a NUL ("need to
# escape"); the engine's Arrow writer can, on every version, and from 3.11 on the two are compared with it
_ANY_TEXT = st.text(max_size=8) if sys.version_info >= (3, 11) else st.text(
    st.characters(exclude_characters="\x00"), max_size=8)
CSV_TEXT = st.one_of(_ANY_TEXT, st.sampled_from(
    ["", "a,b", 'say "x"', "two\nlines", "cr\rhere", "=SUM(A1)", "@x", "+86 138", "+cmd|' /C'", "-3.5", "-x",
     "\tlead", " pad ", "é中", "'quoted'", '"', ","]))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(CSV_TEXT, st.integers(-2**63, 2**63 - 1), CSV_TEXT), min_size=1, max_size=30),
       st.booleans(), st.sampled_from([object, "str"]))
def test_csv_of_text_and_integers_is_pandas_csv(rows, header, text_dtype):
    """Rejects and late records (text and integers) are written by Arrow; the bytes are pandas'."""
    frame = pd.DataFrame(rows, columns=["input", "line", "reason"])
    frame["line"] = frame["line"].astype(np.int64)
    frame = frame.astype({"input": text_dtype, "reason": text_dtype})
    assert _csv(frame, header) == _pandas_csv(frame, header)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), CSV_TEXT), st.booleans(), CSV_TEXT), min_size=1, max_size=30),
       st.booleans(), st.sampled_from([object, "str"]))
def test_csv_of_missing_text_and_booleans_is_pandas_csv(rows, header, text_dtype):
    """Alerts have booleans (shadow) and missing text (an absence's record_id): Arrow writes them as pandas does."""
    frame = pd.DataFrame(rows, columns=["maybe", "flag", "text"]).astype({"maybe": text_dtype, "text": text_dtype})
    assert frame["flag"].dtype == bool
    assert _csv(frame, header) == _pandas_csv(frame, header)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(-1, 5), min_size=1, max_size=30), st.lists(CSV_TEXT, min_size=6, max_size=6, unique=True),
       st.booleans())
def test_csv_of_a_categorical_is_the_csv_of_its_text(codes, texts, header):
    """A categorical's cells are made from its categories (formula guard and quoting once per text) and taken
    per row; the bytes are those of its text written by pandas, unused categories and missing values (-1)
    included."""
    codes = np.array(codes)
    coded = pd.DataFrame({"line": np.arange(len(codes)),
                          "rules": pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(pd.Index(texts)))})
    plain = coded.assign(rules=pd.Series(np.array(texts + [None], dtype=object)[codes], dtype=object))
    assert _csv(coded, header) == _pandas_csv(plain, header)


@pytest.mark.parametrize("frame", [
    pd.DataFrame({"a": ["x", "y"], "b": [1.5, 2.0]}),  # floats
    pd.DataFrame({"a": ["x", "y"], "b": pd.array([1, None], dtype="Int64")}),  # a missing integer
    pd.DataFrame({"a": ["", ""]}),  # a lone column: the csv module quotes an empty row
    pd.DataFrame({"a": pd.Series([], dtype=object), "b": pd.Series([], dtype=np.int64)}),
])
def test_csv_the_fast_path_leaves_to_pandas_is_pandas_csv(frame, tmp_path):
    assert _csv(frame) == _pandas_csv(frame)
    write_frame(frame, tmp_path / "f.csv", "csv")
    assert (tmp_path / "f.csv").read_bytes() == _pandas_csv(frame)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_a_categorical_column_writes_the_file_its_text_would(tmp_path, fmt):
    texts = ["=cmd|' /C calc'!A0", "TF-A,TF-B", "", "p/2"]  # a formula: CSV must still guard it
    codes = np.array([0, 1, 1, 2, 3, 0])
    dtype = pd.CategoricalDtype(pd.Index(texts + ["unused"]))
    coded = pd.DataFrame({"line": np.arange(6), "rules": pd.Categorical.from_codes(codes, dtype=dtype)})
    plain = pd.DataFrame({"line": np.arange(6), "rules": pd.Series(texts).take(codes).reset_index(drop=True)})
    write_frame(coded, tmp_path / f"coded.{fmt}", fmt)
    write_frame(plain, tmp_path / f"plain.{fmt}", fmt)
    assert (tmp_path / f"coded.{fmt}").read_bytes() == (tmp_path / f"plain.{fmt}").read_bytes()
    if fmt == "csv":
        assert "'=cmd" in (tmp_path / "coded.csv").read_text()


def test_a_frame_written_in_slices_is_pandas_bytes_in_order(tmp_path, monkeypatch):
    from fraudrules.io import sinks

    monkeypatch.setattr(sinks, "JSONL_SLICE_ROWS", 7)  # 1,000 rows: slices of 7 rows a core, each coded on its own
    monkeypatch.setattr(sinks, "JSONL_MIN_SLICE_ROWS", 1)
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(1000)], "stream": rng.choice(["call", "sms"], 1000),
                          "line": np.arange(1000) + 2, "rules": rng.choice(["", "TF-A", 'q"uote'], 1000)})
    write_frame(frame, tmp_path / "s.jsonl", "jsonl")
    assert (tmp_path / "s.jsonl").read_bytes() == _pandas(frame)


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path):
    target = tmp_path / "alerts.jsonl"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["alerts.jsonl"]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_alerts_written_in_blocks_read_as_written_whole(tmp_path, monkeypatch, fmt):
    """The CSV and Parquet alert files are built a block of alerts at a time (an alert storm is never
    parsed whole): the same CSV bytes, and the same Parquet table, as one block."""
    import pyarrow.parquet as pq

    from fraudrules.io import sinks
    from fraudrules.io.records import parse_inputs
    from fraudrules.jobs.score import score
    from fraudrules.pack.loader import load_pack
    from fraudrules.runtime.alerts import Alerts
    from tests.helpers import REPO

    pack = load_pack(REPO / "rules")
    alerts = score(REPO / "rules", parse_inputs([str(REPO / "samples")], pack.schema), pack=pack).alerts
    assert isinstance(alerts, Alerts) and len(alerts) > 20
    for name, block in (("whole", 1 << 16), ("blocks", 7)):
        monkeypatch.setattr(sinks, "ALERT_BLOCK", block)
        sinks.write_alerts(alerts, tmp_path / f"{name}.{fmt}", fmt)
        sinks.write_alerts(Alerts(), tmp_path / f"{name}-none.{fmt}", fmt)
    for suffix in ("", "-none"):
        whole, blocks = tmp_path / f"whole{suffix}.{fmt}", tmp_path / f"blocks{suffix}.{fmt}"
        if fmt == "csv":
            assert blocks.read_bytes() == whole.read_bytes()
        else:
            assert pq.read_table(blocks).equals(pq.read_table(whole))
    if fmt == "csv":
        assert len(pd.read_csv(tmp_path / "blocks.csv")) == len(alerts)
        assert (tmp_path / "blocks-none.csv").read_text().count("\n") == 1  # the header alone
    else:
        assert pq.read_metadata(tmp_path / "blocks.parquet").num_row_groups > 1
        assert pq.read_table(tmp_path / "blocks.parquet").column("alert_id").to_pylist() == alerts.column("alert_id")


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
@pytest.mark.parametrize("rows", [0, 1, 7, 20])
def test_a_frame_written_in_slices_is_the_frame_written_whole(tmp_path, monkeypatch, fmt, rows):
    # write_frame renders a few rows at a time (a wrong file's millions of rejects); the file must not show it
    from fraudrules.io import sinks

    frame = pd.DataFrame({"input": ["a.csv"] * rows, "line": np.arange(2, rows + 2, dtype=np.int64),
                          "reason": [("=cmd|" if i % 4 == 0 else "") + f'id: "x{i}", bad, {"é" * (i % 3)}'
                                     for i in range(rows)]})
    write_frame(frame, tmp_path / f"whole.{fmt}", fmt)
    monkeypatch.setattr(sinks, "FRAME_SLICE_ROWS", 3)
    write_frame(frame, tmp_path / f"sliced.{fmt}", fmt)
    if fmt == "parquet":
        whole, sliced = pd.read_parquet(tmp_path / "whole.parquet"), pd.read_parquet(tmp_path / "sliced.parquet")
        pd.testing.assert_frame_equal(whole, sliced)
        assert list(sliced.columns) == ["input", "line", "reason"] and len(sliced) == rows
    else:
        whole = (tmp_path / f"whole.{fmt}").read_bytes()
        assert (tmp_path / f"sliced.{fmt}").read_bytes() == whole
        assert whole.count(b"\n") == rows + (fmt == "csv")  # a header, then one line per row
