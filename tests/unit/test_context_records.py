"""store/context.Context.records_in_order: the rows a stream executor is primed with (``watch --history``)."""

from __future__ import annotations

import pyarrow as pa

from fraudrules.io.arrow import TS_TYPE
from fraudrules.store.context import ORDER, Context

T0 = 1_772_359_200_000_000_000  # 2026-03-01T10:00:00Z


def _table(ids: list[str], ts: list[int], order: list[int], **fields: list) -> pa.Table:
    return pa.table({"id": ids, "ts": pa.array(ts, pa.int64()).cast(TS_TYPE), **fields,
                     ORDER: pa.array(order, pa.int64())})


def test_every_row_of_every_stream_in_the_total_order_and_nulls_left_out():
    payments = _table(["p0", "p2"], [T0, T0 + 2_000_000], [0, 2], amount=[1.5, None])
    calls = _table(["c1"], [T0 + 1_000_000], [1], callee=["+8613800000001"])  # a stream of one row
    empty = _table([], [], [], content=pa.array([], pa.string()))
    context = Context(None, {"payment": payments, "call": calls, "sms": empty})
    assert context.records_in_order() == [
        {"stream": "payment", "ts": "2026-03-01T10:00:00Z", "id": "p0", "amount": 1.5},
        {"stream": "call", "ts": "2026-03-01T10:00:00.001Z", "id": "c1", "callee": "+8613800000001"},
        {"stream": "payment", "ts": "2026-03-01T10:00:00.002Z", "id": "p2"},
    ]


def test_advance_takes_the_high_water_mark_given_when_no_row_is_kept():
    """Spark collects only the rows a later run can reach, and passes the slice's largest ts: with no row to
    keep (no rule looks back), the mark still moves to it, so the next run finds this slice's records late."""
    from fraudrules.io.tables import RecordSet
    from fraudrules.store.horizon import Horizon

    context = Context(Horizon({}, 0), high_water=T0, next_order=5)
    after = context.advance(RecordSet({}, [], []), [], None, 3, high_water=T0 + 60 * 10**9)
    assert (after.high_water, after.next_order, after.rows) == (T0 + 60 * 10**9, 8, 0)
    assert context.advance(RecordSet({}, [], []), [], None, 0).high_water == T0  # nothing scored: unchanged
    first = Context(Horizon({}, 0)).advance(RecordSet({}, [], []), [], None, 3, high_water=T0)  # the first run
    assert (first.high_water, first.next_order) == (T0, 3)


def test_rejects_of_several_parts_are_joined_in_input_then_line_order():
    """The read's rejects and the ids a history store already had (KnownIds), as rejects.csv lists them."""
    import numpy as np

    from fraudrules.io.tables import Rejects
    from fraudrules.store.context import _in_order

    def rejects(*rows: tuple[str, int]) -> Rejects:
        return Rejects(np.array([r[0] for r in rows], dtype=object), np.array([r[1] for r in rows], dtype=np.int64),
                       np.array([f"{r[0]}:{r[1]}" for r in rows], dtype=object))

    read = rejects(("a.csv", 7), ("b.csv", 2))
    known = rejects(("a.csv", 9), ("b.csv", 1), ("a.csv", 3))
    joined = _in_order([read, known], ["a.csv", "b.csv"])
    assert [(r.input, r.line) for r in joined] == [("a.csv", 3), ("a.csv", 7), ("a.csv", 9), ("b.csv", 1),
                                                   ("b.csv", 2)]
    assert [r.reason for r in joined] == [f"{r.input}:{r.line}" for r in joined]
