"""The stream executor's fast paths against plain oracles (issue #14).

- window states (executors/stream/aggregates.py) are lazy: records that count are appended, values
  are computed when read, in any order, with old entries trimmed per release; checked against a
  brute-force window over the same entries;
- the intake's positional timestamp reader equals the full ISO pattern;
- the durable glue's hand-made JSON equals ``json.dumps(..., ensure_ascii=False)``.

Alerts of the whole executor against batch are in tests/test_stream.py.
"""

from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudrules.executors.stream.aggregates import STATE_CLASSES
from fraudrules.executors.stream.durable import encode_message
from fraudrules.executors.stream.intake import _timestamp_ns_full, timestamp_ns
from fraudrules.runtime.plan import AggregateSpec
from fraudrules.runtime.windows import SUM_SCALE, median_of, stddev_of

LAZY = ["count", "sum", "avg", "min", "max", "distinct", "stddev", "median"]
W = 50


def _units(v: float) -> int:
    return int(round(v * SUM_SCALE))


def oracle(func: str, entries: list[tuple[int, int, object]], ts: int, q: int) -> tuple[object, bool]:
    """The value at (ts, q) from the entries (ts, q, value) of one key, by brute force."""
    vals = [v for t, p, v in entries if ts - W < t <= ts and p <= q]
    if func == "count":
        return float(len(vals)), False
    if func == "distinct":
        return float(len(set(vals))), False
    if func == "sum":
        return float(sum(_units(v) for v in vals)) / SUM_SCALE, False
    if not vals:
        return 0.0, True
    if func == "avg":
        return float(sum(_units(v) for v in vals)) / SUM_SCALE / float(len(vals)), False
    if func in ("min", "max"):
        return (min if func == "min" else max)(vals), False
    if func == "median":
        return median_of(sorted(vals)), False
    sd = stddev_of(len(vals), sum(_units(v) for v in vals), sum(_units(v) ** 2 for v in vals))
    return (0.0, True) if sd is None else (sd, False)


@pytest.mark.parametrize("func", LAZY)
@pytest.mark.parametrize("seed", range(6))
def test_lazy_state_reads_in_any_order_equal_a_brute_force_window(func, seed):
    rng = random.Random(seed)
    state = STATE_CLASSES[func](AggregateSpec(func, "s", "k", W, None, None))
    assert state.lazy
    kept: dict[str, list] = {"a": [], "b": []}  # every entry ever added, per key (the oracle's view)
    t = 0
    q = 0
    for _release in range(12):
        rows = []
        for _ in range(rng.randint(1, 25)):
            t += rng.choice([0, 0, 1, 3, 7, 20])
            rows.append((rng.choice("ab"), t, q, rng.choice([0.1, 0.2, 2.5, -3.0, 1e6])))
            q += 1
        state.trim_lo = rows[0][1] - W  # as the executor sets it: every row of the release still reads
        for key, ts, p, v in rows:
            if rng.random() < 0.8:  # the row counts
                x = f"r{p}" if func == "count" else (str(v) if func == "distinct" else v)
                counts, payload = state.entry(True, x, f"r{p}")
                if func in ("sum", "avg", "stddev"):
                    counts, payload = state.entry(True, v, None)
                assert counts
                state.add(key, ts, p, payload)
                kept[key].append((ts, p, x if func in ("count", "distinct") else v))
        # reads: some rows in order, then some out of order (they recompute from the entries)
        reads = [r for r in rows if rng.random() < 0.6]
        reads += rng.sample(rows, k=min(len(rows), 3))
        for key, ts, p, _ in reads:
            got = state.at(key, ts, p)
            want = oracle(func, kept[key], ts, p)
            if func == "count":
                want = (float(len([e for e in kept[key] if ts - W < e[0] <= ts and e[1] <= p])), False)
            assert got[1] == want[1], (func, key, ts, p)
            if not got[1]:
                assert got[0] == pytest.approx(want[0], rel=0, abs=0) or (
                    func in ("sum", "avg", "stddev", "median") and math.isclose(got[0], want[0], rel_tol=1e-12))
        state.expire(rows[-1][1])
    # trimming bounded what is held: nothing at or before the last trim bound but the newest entries
    held = state.entries()
    assert held <= sum(len(v) for v in kept.values())


@pytest.mark.parametrize("func", LAZY)
@pytest.mark.parametrize("gap", [1, 7])
def test_a_busy_key_drops_its_front_in_bunches_and_holds_a_bounded_list(func, gap):
    """A key that takes an entry at every tick of a long stream (a busy key) keeps its window and at most 31
    entries more, or a third of what the window holds, whichever is more; and it drops them in bunches, not one
    at each add: a drop at every add would shift the whole list each time. Each add checks, before appending,
    that fewer than 32 entries, and fewer than a quarter of the list, lie at or before the trim bound."""
    state = STATE_CLASSES[func](AggregateSpec(func, "s", "k", W, None, None))
    drops = []
    state._trimming = lambda key, ent, k: drops.append(k)  # type: ignore[method-assign]
    for q in range(3000):
        ts = q * gap
        state.trim_lo = ts - W  # a release of one record: every entry at or before ts - W is out
        payload = state.entry(True, str(q % 5) if func == "distinct" else float(q % 9), f"r{q}")[1]
        state.add("k", ts, q, payload)
        ent = state.keys["k"]
        out = sum(1 for e in ent[:-1] if e[0] <= state.trim_lo)
        assert out < 32 and 4 * out < len(ent) - 1 or len(ent) == 1, (q, out, len(ent))
    in_window = W // gap + (1 if W % gap else 0)
    assert len(state.keys["k"]) <= max(in_window + 32, in_window * 4 // 3 + 2)
    assert drops and min(drops) >= min(32, (in_window + 3) // 4)  # a bunch at a time
    assert state.at("k", 2999 * gap, 2999) == oracle(
        func, [(q * gap, q, str(q % 5) if func == "distinct" else float(q % 9)) for q in range(3000)],
        2999 * gap, 2999)


@pytest.mark.parametrize("func", ["min", "max", "distinct", "median"])
def test_a_key_read_then_expired_then_back_is_read_afresh(func):
    """A cursor state keeps a cursor per key read; when the key's entries all leave (expire), its cursor goes
    too, so the key's next entries are read from their own start."""
    state = STATE_CLASSES[func](AggregateSpec(func, "s", "k", W, None, None))
    first, later = [(0, 5.0), (1, 7.0), (2, 5.0), (3, 9.0)], [(100, 1.0), (101, 2.0)]
    for p, (ts, v) in enumerate(first):
        state.add("k", ts, p, state.entry(True, str(v) if func == "distinct" else v, None)[1])
    assert state.at("k", 3, 3) == oracle(func, [(t, p, str(v) if func == "distinct" else v)
                                                for p, (t, v) in enumerate(first)], 3, 3)
    state.expire(3 + W)  # the newest entry, at 3, is out of every window from here
    assert state.entries() == 0 and not state.cursors
    entries = []
    for p, (ts, v) in enumerate(later, start=len(first)):
        x = str(v) if func == "distinct" else v
        state.add("k", ts, p, state.entry(True, x, None)[1])
        entries.append((ts, p, x))
    assert state.at("k", 101, 5) == oracle(func, entries, 101, 5)


@pytest.mark.parametrize("func", ["count", "distinct"])
def test_members_list_what_the_window_counted_after_later_entries(func):
    state = STATE_CLASSES[func](AggregateSpec(func, "s", "k", W, None, None))
    for p, (ts, v) in enumerate([(0, "x"), (10, "y"), (20, "x"), (60, "z"), (61, "w")]):
        _, payload = state.entry(True, v, f"id{p}")
        state.add("k", ts, p, payload)
    # at the record at position 2 (ts 20), after entries 3 and 4 were added
    total, first = state.members("k", 20, 2, 10)
    assert (total, first) == ((3, ["id0", "id1", "id2"]) if func == "count" else (2, ["x", "y"]))
    total, first = state.members("k", 61, 4, 10)  # ts 0 and 10 have left (61 - 50 = 11)
    assert (total, first) == ((3, ["id2", "id3", "id4"]) if func == "count" else (3, ["x", "z", "w"]))


@pytest.mark.parametrize("func", LAZY)
def test_dump_and_load_keep_the_values_still_to_come(func):
    spec = AggregateSpec(func, "s", "k", W, None, None)
    a, b = STATE_CLASSES[func](spec), STATE_CLASSES[func](spec)
    rng = random.Random(3)
    rows = [(rng.choice("ab"), 2 * i, i, rng.choice([1.0, 2.0, 3.5])) for i in range(60)]

    def add(state, key, ts, p, v):
        x = str(v) if func == "distinct" else v
        counts, payload = state.entry(True, x, f"r{p}")
        state.add(key, ts, p, payload)

    for row in rows[:40]:
        add(a, *row)
        a.at(row[0], row[1], row[2])
    a.expire(rows[39][1])
    b.load(json.loads(json.dumps(a.dump())))
    for row in rows[40:]:
        add(a, *row)
        add(b, *row)
        assert a.at(row[0], row[1], row[2]) == b.at(row[0], row[1], row[2])


def _iso_like() -> st.SearchStrategy[str]:
    digits = st.text("0123456789", min_size=1, max_size=4)
    part = st.sampled_from(["2026", "1899", "2201", "2024", "0000", "12", "02", "29", "30", "31", "00", "23", "24",
                            "59", "60", "-", ":", "T", " ", "Z", "+08:00", "-0530", "+08", "+24:00", "+08:60",
                            ".123", ".", "\u0663", "\t"])
    shaped = st.builds(lambda y, mo, d, sep, h, mi, s, off: f"{y}-{mo}-{d}{sep}{h}:{mi}:{s}{off}",
                       st.sampled_from(["2026", "2024", "1900", "2200", "1899", "2023"]),
                       st.sampled_from(["01", "02", "12", "13", "00"]),
                       st.sampled_from(["01", "28", "29", "30", "31", "00"]),
                       st.sampled_from(["T", " ", "t"]),
                       st.sampled_from(["00", "23", "24"]), st.sampled_from(["00", "59", "60"]),
                       st.sampled_from(["00", "59", "60"]),
                       st.sampled_from(["", "Z", "+08:00", "-05:30", "+0800", "+08", "+24:00", "+08:60", " ", ".5Z",
                                        "z", "+8:00"]))
    return st.one_of(shaped, st.lists(st.one_of(part, digits), max_size=10).map("".join))


@settings(max_examples=800, deadline=None)
@given(_iso_like())
def test_positional_timestamps_equal_the_full_pattern(text):
    assert timestamp_ns(text) == _timestamp_ns_full(text)


_values = st.one_of(st.text(), st.integers(min_value=-(2**70), max_value=2**70), st.booleans())


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(), _values, max_size=8))
def test_durable_messages_are_json_dumps_text(msg):
    assert encode_message(msg) == json.dumps(msg, ensure_ascii=False)
