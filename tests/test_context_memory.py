"""What a chunk holds per carried record (issue #8, "beyond memory"): the context rows' ids stay in Arrow
until an alert shows one (io.arrow.TextAfterArrow), and a window over several key fields read only at
triggers indexes the context rows as counted records, not as queries (BatchExecutor._trigger_queries).
Both must give the alerts of one run over everything, however the records are cut."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudrules.columns.types import LogicalType
from fraudrules.columns.vec import Vec
from fraudrules.executors import batch
from fraudrules.io.arrow import TextAfterArrow, arrow_to_vec
from fraudrules.io.records import records_from_dicts
from fraudrules.jobs.score import score_records
from fraudrules.pack.loader import load_pack
from fraudrules.runtime.plan import compile_pack
from fraudrules.store.context import Context
from fraudrules.store.horizon import plan_horizon

texts = st.one_of(st.none(), st.text(max_size=4))


@settings(max_examples=200, deadline=None)
@given(head=st.lists(texts, max_size=12), tail=st.lists(texts, max_size=6), data=st.data())
def test_ids_taken_from_arrow_equal_the_eager_column(head, tail, data):
    """take (positions or a mask) and values give what arrow_to_vec of the whole column gives."""
    ltype = LogicalType.STRING
    eager_head = arrow_to_vec(pa.chunked_array([pa.array(head, pa.string())], pa.string()), ltype)
    tail_vec = arrow_to_vec(pa.array(tail, pa.string()), ltype)
    eager = Vec(np.concatenate([eager_head.values, tail_vec.values]), np.concatenate([eager_head.null, tail_vec.null]))
    lazy = TextAfterArrow(pa.chunked_array([pa.array(head, pa.string())], pa.string()), tail_vec)
    n = len(head) + len(tail)
    assert len(lazy) == n
    if n:
        index = np.array(data.draw(st.lists(st.integers(0, n - 1), max_size=10)), dtype=np.int64)
        mask = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
        for ix in (index, mask):
            got, want = lazy.take(ix), eager.take(ix)
            assert got.values.tolist() == want.values.tolist() and got.null.tolist() == want.null.tolist()
    assert lazy.values.tolist() == eager.values.tolist() and lazy.null.tolist() == eager.null.tolist()


ANY = """\
id: T-ANY
title: An account in three payments, as payer or payee
score: 50
stream: payment
key: payer_account
where: count(3h, key=[payer_account, payee_account]) >= 3
explain: "{count(3h, key=[payer_account, payee_account])} payments"
"""

SEQ = """\
id: T-SEQ
title: Paid in, then paid out
score: 40
sequence:
  within: 3h
  steps:
    - as: fanin
      stream: payment
      key: payee_account
      where: amount >= 100
    - as: out
      stream: payment
      key: payer_account
      where: count(3h, key=[payer_account, payee_account]) >= 2
"""


def _records() -> list[dict]:
    rng = np.random.default_rng(7)
    out = []
    for i in range(60):
        minute = 7 * i + int(rng.integers(0, 5))
        ts = f"2026-03-01T{minute // 60:02d}:{minute % 60:02d}:00Z"
        out.append({"stream": "payment", "id": f"p{i:03d}", "ts": ts,
                    "payer_account": f"A{rng.integers(0, 4)}", "payee_account": f"A{rng.integers(0, 5)}",
                    "amount": float(rng.choice([50, 150, 500]))})
    return out


def _alerts(pack, records: list[dict], cuts: list[int]) -> tuple[list[dict], int]:
    """Alerts of scoring ``records`` in parts at ``cuts``, each part after the context of the ones before;
    and how many foreign indexes were built for trigger rows alone."""
    plan = compile_pack(pack, "CN")
    ctx = Context(plan_horizon(plan))
    alerts: list[dict] = []
    restricted = 0
    seen = batch.AggregateStore.foreign_index

    def spy(self, spec):
        nonlocal restricted
        restricted += bool(self.query_rows)
        return seen(self, spec)

    batch.AggregateStore.foreign_index = spy
    try:
        for lo, hi in zip([0, *cuts], [*cuts, len(records)]):
            res = score_records(plan, records_from_dicts(records[lo:hi], pack.schema), context=ctx)
            ctx = res.context_after
            alerts += res.alerts
    finally:
        batch.AggregateStore.foreign_index = seen
    return alerts, restricted


@pytest.mark.parametrize("cuts", [[20], [35], [10, 30, 50], list(range(5, 60, 5))])
def test_chunks_with_lazy_ids_and_trigger_queries_equal_one_run(pack_dir, cuts, monkeypatch):
    """The counted records of an alert and a sequence's first step lie in the context; cut anywhere, the
    alerts are those of one run, and those of the executor indexing every row as a query."""
    pack = load_pack(pack_dir({"any": ANY, "seq": SEQ}))
    records = _records()
    one = [a for a in score_records(compile_pack(pack, "CN"), records_from_dicts(records, pack.schema)).alerts]
    assert {a["rule_id"] for a in one} == {"T-ANY", "T-SEQ"}
    shown = [c for a in one for c in a["conditions"] if "behind" in c]
    assert shown  # the counted records' ids are in the alerts
    split, restricted = _alerts(pack, records, cuts)
    assert restricted  # the trigger-only index was used
    assert split == one
    monkeypatch.setattr(batch.BatchExecutor, "_trigger_queries", lambda self: {})
    every, restricted = _alerts(pack, records, cuts)
    assert not restricted
    assert every == one
