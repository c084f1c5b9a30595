"""lang/aggregates.py is the one definition of each aggregate; every executor has a body for each.

Adding an aggregate is its definition, a batch body (runtime/windows.py WINDOW_BODIES), a stream
state (executors/stream/aggregates.py STATE_CLASSES), a naive reference (tests/reference.py) and
its docs (docs/rules.md, checked by tests/test_docs.py). These tests fail until all are there.
"""

from __future__ import annotations

import numpy as np
import pytest

from fraudrules.columns.types import LogicalType, PhysicalKind
from fraudrules.columns.vec import Vec
from fraudrules.executors.stream.aggregates import STATE_CLASSES
from fraudrules.lang.aggregates import AGGREGATES, Aggregate
from fraudrules.runtime.plan import AggregateSpec
from fraudrules.runtime.windows import WINDOW_BODIES
from tests.reference import REFERENCE_AGGREGATES

MIN = 60 * 1_000_000_000  # ns
BODIES = {"batch": WINDOW_BODIES, "stream": STATE_CLASSES, "reference": REFERENCE_AGGREGATES}


def missing_bodies() -> dict[str, list[str]]:
    """Per executor, the aggregates it has no body for, and the bodies of no aggregate."""
    odd = {name: sorted(set(AGGREGATES) ^ set(table)) for name, table in BODIES.items()}
    return {name: names for name, names in odd.items() if names}


def test_every_aggregate_has_a_body_in_every_executor():
    assert missing_bodies() == {}


def test_a_new_aggregate_without_bodies_is_caught(monkeypatch):
    monkeypatch.setitem(AGGREGATES, "mode", Aggregate("mode", lambda t: LogicalType.FLOAT, "the commonest value"))
    assert missing_bodies() == {"batch": ["mode"], "stream": ["mode"], "reference": ["mode"]}


@pytest.mark.parametrize("name, kind", [
    ("count", PhysicalKind.FLOAT), ("sum", PhysicalKind.FLOAT), ("avg", PhysicalKind.FLOAT),
    ("min", PhysicalKind.FLOAT), ("max", PhysicalKind.FLOAT), ("distinct", PhysicalKind.FLOAT),
    ("is_new", PhysicalKind.BOOL), ("median", PhysicalKind.FLOAT),
])
def test_result_kinds(name, kind):
    assert AGGREGATES[name].kind == kind


def stream(func: str, minutes: list[float], value: Vec | None, keys: list, where: list[bool],
           window: float) -> list:
    """The stream state fed the rows one by one (None = null, and for rows without a key)."""
    w = round(window * MIN)
    state = STATE_CLASSES[func](AggregateSpec(func, "s", "k", w, None, None))
    counts, vals = state.inputs(np.array(where, dtype=bool), value)
    out = []
    for i, (m, key) in enumerate(zip(minutes, keys)):
        result, null = state.step(key, round(m * MIN), counts[i], vals[i]) if key is not None else (None, True)
        out.append(None if null else result)
    return out


@pytest.mark.parametrize("func", sorted(AGGREGATES))
@pytest.mark.parametrize("seed", range(4))
def test_stream_state_equals_batch_body(func, seed, column, batch_window):
    rng = np.random.default_rng(100 + seed)
    n = 150
    minutes = np.sort(rng.integers(0, 200, n)).tolist()
    keys = rng.choice(["A", "B", None], n, p=[0.5, 0.4, 0.1]).tolist()
    where = (rng.random(n) < 0.7).tolist()
    values = None
    if AGGREGATES[func].takes_value:
        pool = ["x", "y", None] if func in ("distinct", "is_new") else [0.1, 0.2, 99999.9999, -3.0, None]
        values = [pool[i] for i in rng.integers(0, len(pool), n)]
    got = stream(func, minutes, None if values is None else column(values), keys, where, 25)
    want = batch_window(func, minutes, values, keys=keys, where=where, window=25)
    keyed = [i for i in range(n) if keys[i] is not None]
    assert [got[i] for i in keyed] == [want[i] for i in keyed]


@pytest.mark.parametrize("func", sorted(AGGREGATES))
def test_expiry_drops_every_key_whose_last_entry_left_the_window_and_no_other(func):
    """Keys sit in the order of their last entry, so expiry stops at the first live one: a key that took an entry
    goes to the end (else "a", first in and still live, would shield "b" behind it)."""
    w = 10 * MIN
    state = STATE_CLASSES[func](AggregateSpec(func, "s", "k", w, None, None))
    value = "v" if func in ("distinct", "is_new") else 1.0
    for key, minute in [("a", 0), ("b", 1), ("c", 2), ("a", 12), ("d", 13)]:
        counts, x = state.entry(True, value, f"{key}{minute}")
        state.step(key, minute * MIN, counts, x)
    state.expire(14 * MIN)  # the window reaches back to minute 4: b and c are out, a (minute 12) and d stay
    kept = [k[0] if isinstance(k, tuple) else k for k in state.keys]
    assert kept == ["a", "d"]
