"""Aggregates over another stream or another key field: ``count(7d, stream=sms, key=sender)`` (#10 item 3).

The window holds the records of the named stream whose named field equals the key of the record the
aggregate is read at, ts in (t - w, t] and at or before it in the total order (docs/rules.md §3). Both
executors must write the same bytes; random records are covered by tests/packs/props (test_properties.py
against the reference model, test_stream.py against batch); these cases pin what an analyst reads.
"""

from __future__ import annotations

from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fraudrules.executors.batch
from fraudrules.errors import RuleErrors
from fraudrules.executors.stream import StreamExecutor
from fraudrules.io.records import records_from_dicts
from fraudrules.jobs.score import evaluate
from fraudrules.pack.loader import load_pack
from fraudrules.runtime.alerts import alert_line
from fraudrules.runtime.plan import compile_pack
from tests.helpers import (
    alerts_of_both_executors,
    assert_resume_is_uninterrupted,
    in_event_time_order,
    make_pack,
    sliced_results,
)
from tests.test_properties import PACK as PROPS_PACK
from tests.test_properties import record_lists

RULE = """\
id: T-NOSMS
title: Calls and no SMS sent
score: 50
stream: call
key: caller
where: >-
  direction == "out" and count(1h, where=direction == "out") >= 3
  and count(1h, stream=sms, key=sender) == 0
explain: >-
  {count(1h, where=direction == "out")} calls, {count(1h, stream=sms, key=sender)} SMS sent,
  {distinct(receiver, 1h, stream=sms, key=sender)} receivers
"""

A, B = "+8613800000001", "+8613800000002"


def call(rid: str, minute: float, caller: str = A, direction: str = "out") -> dict:
    return {"stream": "call", "id": rid, "ts": _ts(minute), "caller": caller, "callee": "+8613900000009",
            "direction": direction}


def sms(rid: str, minute: float, sender: str = A, receiver: str = B) -> dict:
    return {"stream": "sms", "id": rid, "ts": _ts(minute), "sender": sender, "receiver": receiver,
            "direction": "out"}


def _ts(minute: float) -> str:
    s = round(minute * 60)
    return f"2026-03-01T{10 + s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z"


def both(load_rule, rule: str, records: list[dict]) -> list[dict]:
    return alerts_of_both_executors(load_rule(rule), records)


def test_calls_without_sms_alert(load_rule):
    (alert,) = both(load_rule, RULE, [call("c1", 0), call("c2", 1), call("c3", 2)])
    assert alert["explain"] == "3 calls, 0 SMS sent, 0 receivers"


def test_an_sms_sent_by_the_caller_in_the_window_stops_it(load_rule):
    assert both(load_rule, RULE, [call("c1", 0), sms("s1", 0.5), call("c2", 1), call("c3", 2)]) == []


def test_only_the_senders_own_sms_count(load_rule):
    # B sent one, A received one: neither is an SMS A sent
    (alert,) = both(load_rule, RULE, [call("c1", 0), sms("s1", 0.5, sender=B, receiver=A), call("c2", 1),
                                      call("c3", 2)])
    assert alert["explain"] == "3 calls, 0 SMS sent, 0 receivers"


def test_window_boundaries(load_rule):
    # an SMS exactly 1h before the third call is outside (t - w, t]; one second later it is inside; an SMS at
    # the call's own instant counts when it comes first in the total order, not when it comes after
    calls = [call("c1", 58), call("c2", 59), call("c3", 60)]
    assert len(both(load_rule, RULE, [sms("s1", 0)] + calls)) == 1
    assert both(load_rule, RULE, [sms("s1", 1 / 60)] + calls) == []
    assert both(load_rule, RULE, calls[:2] + [sms("s1", 60)] + calls[2:]) == []
    (alert,) = both(load_rule, RULE, calls + [sms("s1", 60)])
    assert alert["evidence"][0]["id"] == "c3"


def test_values_and_members(load_rule):
    rule = RULE.replace("== 0", ">= 2").replace("SMS sent,", "SMS sent, {sum(1, 1h, stream=sms, key=sender)} "
                                                         "{max(1, 1h, stream=sms, key=sender)},")
    recs = [call("c1", 0), sms("s1", 1, receiver=B), sms("s2", 2, receiver=B), sms("s3", 3, receiver="+8613800000003"),
            sms("x", 3.5, sender=B), call("c2", 4), call("c3", 5)]
    (alert,) = both(load_rule, rule, recs)
    assert alert["explain"].startswith("3 calls, 3 SMS sent, 3 1,")
    assert alert["explain"].endswith("2 receivers")
    values = alert["conditions"][-1]["values"]
    assert values["count(1h, stream=sms, key=sender)"] == 3
    # what it counted: the SMS, by id (not x, which B sent)
    assert alert["conditions"][-1]["behind"]["count(1h, stream=sms, key=sender)"] == {
        "total": 3, "records": ["s1", "s2", "s3"]}


# --- the checker: each error says file:line:col ------------------------------------------------------

GOOD = """
id: T-1
title: t
score: 10
stream: payment
key: payer_account
where: {where}
"""


@pytest.mark.parametrize("where, col, message", [
    ("count(1h, stream=smss, key=sender) > 0", 18, "unknown stream 'smss'; did you mean 'sms'?"),
    ("count(1h, stream=call) > 0", 18, "stream 'call' has no field 'payer_account' (the step's key); say which "
                                       "field with key="),
    ("count(1h, stream=sms, key=sendr) > 0", 27, "stream 'sms' has no field 'sendr'; did you mean 'sender'?"),
    ("count(1h, stream=sms, key=sender) > 0", 27, "key sms.sender (phone) is matched against the step's key "
                                                  "payer_account (string): these never hold equal values"),
    ("count(1h, key=amount) > 0", 15, "key payment.amount (float) is matched against the step's key payer_account"),
    ("count(1h, stream=\"sms\") > 0", 18, "stream= takes a stream name as written, e.g. stream=sms"),
    ("count(1h, key=x.payee_account) > 0", 15, "key= takes a field name as written, e.g. key=sender"),
    ("sum(amount, 1h, stream=sim_event, key=id_document) > 0", 5, "unknown field 'amount' in stream 'sim_event'"),
    ("sum(event, 1h, stream=sim_event, key=id_document) > 0", 5, "sum() needs a number, not enum"),
    ("count(1h, stream=sim_event, key=id_document, where=amount > 1) > 0", 52, "unknown field 'amount'"),
    ("is_new(payee_account, 1h, key=payee_account)", 1, "is_new() reads only earlier records of the record's own "
                                                        "key: it takes no stream= or key="),
    ("since_prev(1h, stream=sms, key=sender) > 1s", 1, "since_prev() reads only earlier records"),
    ("count(1h, keys=payee_account) > 0", 1, "unknown keyword 'keys' (where=, stream=, key=)"),
])
def test_checker_errors_carry_file_line_col(tmp_path, where, col, message):
    pack = make_pack(tmp_path, {"r": GOOD.format(where=where)})
    with pytest.raises(RuleErrors) as info:
        load_pack(pack)
    errors = [str(e) for e in info.value.errors]
    assert any(f"r.yaml:7:{7 + col}: error:" in e and message in e for e in errors), errors


SEQ = """
id: T-2
title: t
score: 10
sequence:
  within: 2h
  steps:
    - as: swap
      stream: sim_event
      key: msisdn
      where: event == "swap"
    - as: c
      stream: call
      key: caller
      where: {where}
"""


@pytest.mark.parametrize("rule, line, where, col, message", [
    # #10 items 2 and 3 met in the merge: neither executor builds a bound or an is_new over the joint index
    (SEQ, 15, "count(1h, stream=sms, key=sender, where=ts > swap.ts) == 0", 41,
     "count(): a window over another stream or key (stream=, key=) cannot start at an earlier step"),
    (GOOD, 7, "count(1h, key=payee_account, where=is_new(payer_account, 1d)) > 0", 36,
     "not even is_new() inside the where= of an aggregate over another stream or key"),
])
def test_other_records_refuse_a_bound_and_an_is_new_inside_where(tmp_path, rule, line, where, col, message):
    pack = make_pack(tmp_path, {"r": rule.format(where=where)})
    with pytest.raises(RuleErrors) as info:
        load_pack(pack)
    errors = [str(e) for e in info.value.errors]
    indent = len(rule.splitlines()[line - 1]) - len("{where}")
    assert any(f"r.yaml:{line}:{indent + col}: error:" in e and message in e for e in errors), errors


def test_spark_routes_the_other_stream_by_its_key_field(load_rule):
    # the group of caller X needs the SMS whose sender is X: routed by sender, not in the one-group fallback
    from fraudrules.executors.spark.routing import plan_routing

    routing = plan_routing(compile_pack(load_rule(RULE), "CN"))
    assert routing.single == []
    (family,) = [f for f in routing.families if "T-NOSMS" in f.rules]
    assert set(family.roles_of("T-NOSMS")) == {("call", "caller"), ("sms", "sender")}


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(records=record_lists(), cut=st.floats(0, 1))
def test_a_checkpoint_keeps_the_other_streams_windows(records, cut):
    """The state fed by another stream's records survives state_dict / load_state: a run stopped anywhere and
    resumed writes the alerts of an uninterrupted one (and of batch)."""
    plan = compile_pack(PROPS_PACK, "CN", {"P-OTHERSTREAM", "P-OTHERKEY", "P-OTHERSEQ"})
    assert_resume_is_uninterrupted(plan, records, cut)


def test_the_other_stream_is_kept_in_history_for_its_window(load_rule):
    from fraudrules.store.horizon import plan_horizon

    h = plan_horizon(compile_pack(load_rule(RULE), "CN"))
    assert h.span("sms") == 3600 * 10**9
    assert set(h.columns("sms")) == {"id", "ts", "sender", "receiver"}  # the key field, distinct's value
    assert "sender" not in h.columns("call") and "receiver" not in h.columns("call")


def test_an_earlier_steps_other_stream_aggregate_at_a_carried_record():
    """``pay.count(30m, stream=call, key=caller)`` is evaluated at the payment, and the payment can be
    context from an earlier run: its index must be queried at context rows too, not only at the new
    records that trigger (a hypothesis example of tests/test_absent.py found this: the alert was lost)."""
    from fraudrules.runtime.alerts import alert_line

    plan = compile_pack(PROPS_PACK, "CN", {"P-OTHERSEQ"})
    first = [
        {"stream": "call", "id": "c0", "ts": _ts(0), "caller": B, "callee": A, "direction": "in",
         "duration": 14, "answered": False},
        {"stream": "payment", "id": "p1", "ts": _ts(15), "payer_account": "B9", "payee_account": "A1",
         "payer_phone": B, "amount": 150, "currency": "CNY"},
    ]
    second = [{"stream": "call", "id": "c2", "ts": _ts(57), "caller": B, "callee": "95588", "direction": "out",
               "duration": 30, "answered": False}]

    def lines(parts: list[list[dict]]) -> list[str]:
        return [alert_line(a) for result in sliced_results(plan, parts) for a in result.alerts]

    one = lines([first + second])
    assert len(one) == 1 and '"record_id":"c2"' in one[0] and '"pay.count(30m, stream=call, key=caller)":1' in one[0]
    assert lines([first, second]) == one


# the props pack's rules with an aggregate over another stream or key field
FOREIGN_RULES = {"P-OTHERSTREAM", "P-OTHERKEY", "P-OTHERSEQ", "P-OTHERMIX", "P-ANYKEY", "P-ANYKEY-SEQ"}


def _batch_lines(plan, records: list[dict], narrow_share: int, fresh_from: float | None = None) -> list[str]:
    """Batch's alert lines, with AggregateStore.get_at computing an aggregate (foreign or over a window)
    at the rows asked alone whenever they are at most 1/``narrow_share`` of the stream's (0: always,
    10**9: never); with ``fresh_from``, the records before that share of the total order are context
    (not scored)."""
    rs = records_from_dicts(records, plan.schema, region="CN")
    fresh = None
    if fresh_from is not None:
        cut = int(fresh_from * sum(t.n for t in rs.tables.values()))
        fresh = {s: t.seq >= cut for s, t in rs.tables.items()}
    with mock.patch.object(fraudrules.executors.batch, "NARROW_SHARE", narrow_share):
        return [alert_line(a) for a in evaluate(plan, rs, fresh=fresh)[0]]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(records=record_lists())
def test_other_records_aggregates_at_the_undecided_rows_alone(records):
    """An ``and`` leaves few rows undecided, and batch then computes a foreign aggregate at those alone, over
    the source records of their keys (AggregateStore.get_at), as it does for the explain and members of
    alerts. Forced at every use, the alerts are the stream executor's, byte for byte."""
    plan = compile_pack(PROPS_PACK, "CN", FOREIGN_RULES)
    ordered = in_event_time_order(records)
    ex = StreamExecutor(plan, lateness=0.0)
    want = [alert_line(a) for a in ex.feed_many(ordered) + ex.flush()]
    assert _batch_lines(plan, ordered, 0) == want
    assert _batch_lines(plan, ordered, 10**9) == want


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(records=record_lists(), fresh_from=st.floats(0, 1))
def test_other_records_aggregates_at_few_rows_after_a_context(records, fresh_from):
    """The same with the earlier records as context: a foreign aggregate read only at new rows (query_rows)
    and computed at the undecided ones alone is null elsewhere, as when computed at every row."""
    plan = compile_pack(PROPS_PACK, "CN", FOREIGN_RULES)
    assert _batch_lines(plan, records, 0, fresh_from) == _batch_lines(plan, records, 10**9, fresh_from)


def test_an_aggregate_at_few_rows_builds_no_index_of_every_row(load_rule):
    """The point of get_at: with one call of a hundred undecided, the count over sms is computed without
    the index of every call (and the alert's explain and members come from the few rows too)."""
    calls = [call(f"c{i}", i * 0.1, caller=f"+86139000{i:05d}", direction="in") for i in range(97)]
    calls += [call("x1", 20), call("x2", 21), call("x3", 22)]
    records = calls + [sms(f"s{i}", i * 0.1, sender=f"+86139000{i:05d}") for i in range(50)]
    plan = compile_pack(load_rule(RULE), "CN")
    built = []
    real = fraudrules.executors.batch.ForeignIndex.build

    def spy(*args):
        fi = real(*args)
        built.append(len(fi.query_pos))
        return fi

    with mock.patch.object(fraudrules.executors.batch.ForeignIndex, "build", spy):
        (alert,) = evaluate(plan, records_from_dicts(records, plan.schema, region="CN"))[0]
    assert alert["explain"] == "3 calls, 0 SMS sent, 0 receivers"
    assert built and max(built) <= 3, built  # never the 100 calls
