"""Windows that start at an earlier step (``where=ts > swap.ts``) and ``is_new`` inside ``where=`` (#10 item 2).

``distinct(payee_account, 2h, where=ts > swap.ts and is_new(payee_account, 180d))`` counts the payees paid after
the chain's swap that were new at the payment (docs/rules.md §3). Random records are covered by
tests/packs/props/rules/{bounded,bounded3,is_new_where}.yaml (tests/test_properties.py against the reference
model, tests/test_stream.py against batch); these cases pin the values an analyst reads, the chain that is
chosen, and a stream checkpoint taken anywhere.
"""

from __future__ import annotations

import re
import shutil

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudrules.executors.stream import StreamExecutor
from fraudrules.io.records import records_from_dicts
from fraudrules.jobs.rule_tests import EXECUTORS, run_rule_tests
from fraudrules.jobs.score import evaluate
from fraudrules.pack.loader import load_pack
from fraudrules.runtime.alerts import alert_line
from fraudrules.runtime.plan import compile_pack
from tests.helpers import REPO, assert_resume_is_uninterrupted
from tests.test_properties import record_lists

PHONE = "+8613800000009"


def _pay(rid: str, ts: str, payee: str, amount: float = 900) -> dict:
    return {"stream": "payment", "id": rid, "ts": ts, "payer_phone": PHONE, "payer_account": "A9",
            "payee_account": payee, "amount": amount, "currency": "CNY"}


def _swap(rid: str, ts: str) -> dict:
    return {"stream": "sim_event", "id": rid, "ts": ts, "msisdn": PHONE, "event": "swap"}


def _both(plan, records: list[dict]) -> list[dict]:
    """The alerts of batch, checked equal byte for byte to the stream executor's over the same order."""
    alerts, *_ = evaluate(plan, records_from_dicts(records, plan.schema))
    ex = StreamExecutor(plan, lateness=0.0)
    assert [alert_line(a) for a in ex.feed_many(records) + ex.flush()] == [alert_line(a) for a in alerts]
    return alerts


def _shipped(rule_id: str):
    return compile_pack(load_pack(REPO / "rules"), "CN", {rule_id})


def test_tf_swap_002_shows_what_it_counted_and_the_latest_chain_that_passes():
    """Two swaps: the later one (e2) leaves two new payees after it, the earlier one (e1) four. The chain
    through e2 fails, the one through e1 passes: the evidence is e1, and the alert lists X1..X4, not X0
    (paid before e1) and not X1 twice."""
    records = [_pay("p0", "2026-03-01T07:59:00Z", "X0"), _swap("e1", "2026-03-01T08:00:00Z"),
               _pay("p1", "2026-03-01T08:10:00Z", "X1"), _pay("p2", "2026-03-01T08:20:00Z", "X2"),
               _pay("p2b", "2026-03-01T08:21:00Z", "X1"), _swap("e2", "2026-03-01T08:25:00Z"),
               _pay("p3", "2026-03-01T08:30:00Z", "X3"), _pay("p4", "2026-03-01T08:40:00Z", "X4")]
    (alert,) = _both(_shipped("TF-SWAP-002"), records)
    assert alert["record_id"] == "p4"
    assert [e["id"] for e in alert["evidence"]] == ["e1", "p4"]
    (cond,) = [c for c in alert["conditions"] if c["step"] == "pay"]
    assert list(cond["behind"].values()) == [{"total": 4, "values": ["X1", "X2", "X3", "X4"]}]
    assert alert["explain"] == f"4 new payees paid from {PHONE} in 40 min after a SIM swap"


def test_inclusive_bound_and_a_record_at_the_swap(tmp_path):
    """``ts >= swap.ts`` counts a payment at the swap's very ts (after it in input order); ``>`` does not."""
    rule = (REPO / "rules" / "payments" / "sim_swap_new_payees.yaml").read_text()
    records = [_swap("e1", "2026-03-01T08:00:00Z"), _pay("p0", "2026-03-01T08:00:00Z", "X0"),
               _pay("p1", "2026-03-01T08:10:00Z", "X1"), _pay("p2", "2026-03-01T08:20:00Z", "X2"),
               _pay("p3", "2026-03-01T08:30:00Z", "X3")]
    assert _both(_shipped("TF-SWAP-002"), records) == []
    shutil.copy(REPO / "rules" / "streams.yaml", tmp_path / "streams.yaml")
    inclusive = rule.replace("ts > swap.ts", "ts >= swap.ts")
    (tmp_path / "r.yaml").write_text(re.sub(r"\ntests:.*", "\n", inclusive, flags=re.S))
    (alert,) = _both(compile_pack(load_pack(tmp_path), "CN"), records)
    assert alert["record_id"] == "p3"


def test_the_guides_example_rule_passes_its_inline_cases_on_both_executors(tmp_path):
    guide = (REPO / "docs" / "rules.md").read_text()
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", guide, re.S) if b.startswith("id: EX-SWAP-NEW")]
    shutil.copy(REPO / "rules" / "streams.yaml", tmp_path / "streams.yaml")
    (tmp_path / "example.yaml").write_text(block)
    pack = load_pack(tmp_path)
    report = run_rule_tests(pack)
    assert len(report.results) == 3 * len(EXECUTORS)
    assert all(r.passed for r in report.results), [(r.case.name, r.executor, r.actual) for r in report.results]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(records=record_lists(), cut=st.floats(0, 1))
def test_a_checkpoint_anywhere_keeps_bounded_windows_and_nested_is_new(records, cut):
    """The entries a bounded aggregate reads (its base's) and the is_new state a where= reads survive
    state_dict / load_state: a run stopped anywhere and resumed writes the alerts of an uninterrupted one."""
    from tests.test_properties import PACK

    plan = compile_pack(PACK, "CN", {"P-BOUNDED", "P-BOUNDED3", "P-NEWWHERE"})
    assert_resume_is_uninterrupted(plan, records, cut)
