"""Reject reasons formatted a column at a time give the text the per-row formatting gives.

A run that rejects every row (a wrong file or mapping) formats its reasons over arrays
(convert.shown_values, Problems.reasons, RejectLog); these tests hold them to the per-row
definitions they replace: show_value of each value, "; ".join of each row's problems in order, and
the reasons of a column equal to those of its rows converted one at a time.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.io.convert import ManyReasons, Problems, convert_column, show_value, shown_values
from engine.io.records import RejectLog
from engine.io.tables import Reject, Rejects
from engine.pack.streams import FieldSpec

TEXT = st.one_of(
    st.text(max_size=90),  # any code point: quotes, backslashes, controls, surrogates excluded by st.text
    st.text(alphabet="0123456789-:T+Z .'\"\\,", max_size=90),
    st.sampled_from(["", "x" * 57, "x" * 60, "x" * 61, "y" * 200, "it's", 'say "hi"', "a\\b", "日本", "\t"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), TEXT), min_size=1, max_size=40), st.data())
def test_shown_values_equal_show_value_row_by_row(values, data):
    arr = pa.array(values, pa.string())
    rows = np.array(data.draw(st.lists(st.integers(0, len(values) - 1), max_size=60)), dtype=np.int64)
    got = shown_values(arr, rows)
    assert got.dtype == object
    assert got.tolist() == [show_value(values[i]) for i in rows.tolist()]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 30), st.data())
def test_problems_join_each_rows_reasons_in_order(n, data):
    """Strings, per-row callables and ManyReasons, masks overlapping at random: each row's text is
    its problems' texts joined with "; " in the order they were added."""
    problems = Problems(n)
    added = []
    for k in range(data.draw(st.integers(0, 4))):
        mask = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
        kind = data.draw(st.sampled_from(["str", "row", "many"]))
        per_row = {"str": f"problem {k}".format, "row": f"p{k} at {{}}".format, "many": f"m{k}:{{}}".format}[kind]
        reason = {"str": f"problem {k}", "row": per_row,
                  "many": ManyReasons(lambda rows, f=per_row: np.array([f(i) for i in rows.tolist()], dtype=object))
                  }[kind]
        problems.add(mask, reason)
        if mask.any():
            added.append((mask, per_row))
    rows = np.flatnonzero(problems.any())
    want = ["; ".join(fn(int(i)) for mask, fn in added if mask[i]) for i in rows]
    assert problems.reasons(rows).tolist() == want
    assert [problems.reason(int(i)) for i in rows] == want


def _reasons(conv, n: int) -> dict[int, str]:
    """The reject reason of each bad row of a converted column, by row, as a run formats them."""
    problems = Problems(n)
    problems.add(conv.bad, conv.reason)
    bad = np.flatnonzero(conv.bad)
    return dict(zip(bad.tolist(), problems.reasons(bad).tolist()))


CELL = st.one_of(st.none(), st.sampled_from(["", "  ", "2026-03-01T00:00:35+08:00", "2026-02-28 16:00:35",
                                            "1772294435", "now", "9999-01-01T00:00:00Z", "12", "1.5", "1e16",
                                            "nan", "yes", "x'y", "true"]), st.text(max_size=12))


@settings(max_examples=150, deadline=None)
@given(st.lists(CELL, min_size=1, max_size=120), st.sampled_from(["timestamp", "int", "float", "bool"]))
def test_a_column_rejects_what_its_rows_reject_alone(values, ftype):
    """The column at once (the cast tried on its first rows, then on all; reasons over arrays) gives
    each row the value, the verdict and the reason that row gets converted on its own."""
    spec = FieldSpec("f", ftype)
    whole = convert_column(pa.array(values, pa.string()), spec, "CN")
    reasons = _reasons(whole, len(values))
    for i, value in enumerate(values):
        alone = convert_column(pa.array([value], pa.string()), spec, "CN")
        assert bool(alone.bad[0]) == bool(whole.bad[i]), (i, value)
        assert bool(alone.vec.null[0]) == bool(whole.vec.null[i]), (i, value)
        if not alone.vec.null[0]:
            assert alone.vec.values[0] == whole.vec.values[i], (i, value)
        if alone.bad[0]:
            one = Problems(1)
            one.add(alone.bad, alone.reason)
            assert reasons[i] == one.reason(0), (i, value)


def test_reject_log_sorts_by_line_then_reason_like_the_pairs():
    log = RejectLog()
    log.extend([(7, "b"), (3, "z")])
    log.add(np.array([7, 1], dtype=np.int64), np.array(["a", "q"], dtype=object))
    lines, reasons = log.sorted()
    assert list(zip(lines.tolist(), reasons.tolist())) == sorted([(7, "b"), (3, "z"), (7, "a"), (1, "q")])
    assert len(log) == 4
    rejects = log.of_input("in.csv")
    assert rejects == [Reject("in.csv", 1, "q"), Reject("in.csv", 3, "z"), Reject("in.csv", 7, "a"),
                       Reject("in.csv", 7, "b")]


def test_rejects_read_as_a_sequence_of_reject():
    rows = [Reject("a.csv", 2, "x"), Reject("b.csv", 5, "y; z")]
    rejects = Rejects.of(rows)
    assert len(rejects) == 2 and bool(rejects) and not Rejects()
    assert rejects[1] == rows[1] and rejects[:1] == rows[:1] and list(rejects) == rows
    assert rejects == rows and rejects != rows[:1] and Rejects() == []
    joined = Rejects.joined([Rejects(), rejects, Rejects.of(rows[:1])])
    assert list(joined) == rows + rows[:1]


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_typed_timestamps_take_every_instant_int64_nanoseconds_hold_and_reject_the_rest(unit):
    """A Parquet or JSON reader's typed timestamps and dates: an instant int64 nanoseconds can hold is its
    nanoseconds since 1970 (the standard library's calendar says which), one beyond is rejected with why."""
    epoch = dt.datetime(1970, 1, 1)
    instants = [dt.datetime(2026, 3, 1, 10, 0, 35), dt.datetime(1970, 1, 1), dt.datetime(1677, 9, 22),
                dt.datetime(2262, 4, 11), dt.datetime(2262, 4, 12), dt.datetime(2300, 1, 1),
                dt.datetime(1600, 6, 1), dt.datetime(1677, 9, 21), None]
    if unit == "ns":  # an ns column holds no instant beyond int64 nanoseconds
        instants = [x for x in instants if x is None or dt.datetime(1677, 9, 22) <= x <= dt.datetime(2262, 4, 11)]
    spec = FieldSpec("ts", "timestamp")
    columns = {"timestamp": pa.array(instants, pa.timestamp(unit))}
    if unit == "s":
        columns["date32"] = pa.array([None if x is None else x.date() for x in instants], pa.date32())
        columns["date64"] = pa.array([None if x is None else x.date() for x in instants], pa.date64())
    for kind, arr in columns.items():
        conv = convert_column(arr, spec, "CN")
        reasons = _reasons(conv, len(instants))
        for i, x in enumerate(instants):
            if x is None:
                assert conv.vec.null[i] and not conv.bad[i]
                continue
            if kind != "timestamp":
                x = dt.datetime(x.year, x.month, x.day)
            ns = (x - epoch) // dt.timedelta(microseconds=1) * 1000
            fits = -(2**63) <= ns <= 2**63 - 1
            assert bool(conv.bad[i]) == (not fits), (kind, x)
            if fits:
                assert not conv.vec.null[i] and int(conv.vec.values[i]) == ns, (kind, x)
            else:
                assert conv.vec.null[i] and reasons[i].startswith("ts: timestamp out of range"), (kind, reasons[i])


@pytest.mark.parametrize("ftype, want", [("string", "text"), ("phone", "text"), ("enum", "text"),
                                         ("float", "a number"), ("int", "a number"), ("bool", "true/false")])
def test_typed_timestamps_in_a_field_of_another_type_are_rejected(ftype, want):
    arr = pa.array([dt.datetime(2026, 3, 1), None], pa.timestamp("s"))
    conv = convert_column(arr, FieldSpec("f", ftype, ("a", "b") if ftype == "enum" else None), "CN")
    assert conv.bad.tolist() == [True, False] and conv.vec.null.tolist() == [True, True]
    assert _reasons(conv, 2)[0].startswith(f"f: expected {want}, got a timestamp"), _reasons(conv, 2)
