"""BatchExecutor.prepare on threads makes the caches a serial prepare makes, and the rules then give
the same matches (engine/executors/batch.py)."""

from __future__ import annotations

import numpy as np
import pytest

from fraudrules.executors.batch import BatchExecutor
from fraudrules.io.records import parse_inputs, read_inputs
from fraudrules.pack.loader import load_pack
from fraudrules.runtime.plan import compile_pack
from tests.helpers import REPO


@pytest.fixture(scope="module")
def prepared():
    pack = load_pack(REPO / "rules")
    plan = compile_pack(pack, "CN")
    records = read_inputs(parse_inputs([str(REPO / "samples")], pack.schema), pack.schema)
    out = {}
    for threads in (1, 3):
        ex = BatchExecutor(plan, records)
        ex.prepare(threads)
        out[threads] = ex
    return out


def _same(a, b) -> bool:
    if isinstance(a, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return np.array_equal(a, b)


def test_threads_make_the_caches_of_a_serial_prepare(prepared) -> None:
    serial, threaded = prepared[1], prepared[3]
    assert set(serial.tables._codes) == set(threaded.tables._codes) != set()
    for k, codes in serial.tables._codes.items():
        assert np.array_equal(codes.codes, threaded.tables._codes[k].codes), k
    assert set(serial.tables._joint) == set(threaded.tables._joint) != set()
    for k, pair in serial.tables._joint.items():
        assert _same(pair, threaded.tables._joint[k]), k
    assert set(serial.store._groups) == set(threaded.store._groups) != set()
    for k, g in serial.store._groups.items():
        assert np.array_equal(g.order, threaded.store._groups[k].order), k
    assert set(serial.store._starts) == set(threaded.store._starts) != set()
    for k, starts in serial.store._starts.items():
        assert np.array_equal(starts, threaded.store._starts[k]), k
    assert set(serial.store._foreign_index) == set(threaded.store._foreign_index) != set()
    for k, fi in serial.store._foreign_index.items():
        other = threaded.store._foreign_index[k]
        assert np.array_equal(fi.source_row, other.source_row) and np.array_equal(fi.query_pos, other.query_pos)


def test_rules_match_the_same_after_a_threaded_prepare(prepared) -> None:
    serial, threaded = prepared[1], prepared[3]
    fired = 0
    for rp in serial.plan.rules:
        a, b = serial.run_rule(rp), threaded.run_rule(rp)
        assert a.n == b.n and all(np.array_equal(x, y) for x, y in zip(a.rows, b.rows)), rp.id
        fired += a.n > 0
    assert fired > 10
