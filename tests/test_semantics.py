"""docs/design.md §5 semantics, one behaviour per test, on the batch executor."""

from __future__ import annotations

COUNT_RULE = """
id: T-COUNT
title: three payments in an hour
score: 10
stream: payment
key: payer_account
where: count(1h) >= 3
"""


def pay(i, ts, account="A1", **kw):
    return {"stream": "payment", "id": i, "ts": ts, "payer_account": account, "payee_account": "B",
            "amount": kw.pop("amount", 100), **kw}


def test_window_boundary_exactly_w_apart_is_outside(run_rule):
    records = [pay("p1", "2026-03-01T10:00:00Z"), pay("p2", "2026-03-01T10:30:00Z"),
               pay("p3", "2026-03-01T11:00:00Z"), pay("p4", "2026-03-01T11:00:01Z")]
    m = run_rule(COUNT_RULE, records)
    # at p3 the window (10:00, 11:00] excludes p1; at p4 it holds p2, p3, p4
    assert m.ids() == ["p4"]


def test_just_inside_the_window_counts(run_rule):
    records = [pay("p1", "2026-03-01T10:00:00.001Z"), pay("p2", "2026-03-01T10:30:00Z"),
               pay("p3", "2026-03-01T11:00:00Z")]
    assert run_rule(COUNT_RULE, records).ids() == ["p3"]


def test_ties_in_ts_follow_input_order(run_rule):
    # all at the same instant: the third in input order is the first with count 3
    records = [pay(f"p{i}", "2026-03-01T10:00:00Z") for i in (1, 2, 3, 4)]
    m = run_rule(COUNT_RULE, records)
    assert m.ids() == ["p3", "p4"]


def test_input_order_breaks_ties_even_when_ids_sort_otherwise(run_rule):
    records = [pay("z", "2026-03-01T10:00:00Z"), pay("y", "2026-03-01T10:00:00Z"), pay("x", "2026-03-01T10:00:00Z")]
    assert run_rule(COUNT_RULE, records).ids() == ["x"]


def test_records_out_of_ts_order_are_ordered_by_ts(run_rule):
    records = [pay("late", "2026-03-01T10:20:00Z"), pay("early", "2026-03-01T10:00:00Z"),
               pay("mid", "2026-03-01T10:10:00Z")]
    assert run_rule(COUNT_RULE, records).ids() == ["late"]


SEQ_RULE = """
id: T-SEQ
title: call then payment
score: 10
sequence:
  within: 1h
  steps:
    - as: call
      stream: call
      key: callee
      where: duration >= 10m
    - as: pay
      stream: payment
      key: payer_phone
      where: amount >= 1000
"""


def call(i, ts, callee="+8613800000001", duration=900, **kw):
    return {"stream": "call", "id": i, "ts": ts, "caller": "+85523900111", "callee": callee,
            "direction": "in", "duration": duration, **kw}


def payp(i, ts, phone="+8613800000001", amount=5000):
    return {"stream": "payment", "id": i, "ts": ts, "payer_phone": phone, "payer_account": "A1",
            "payee_account": "B9", "amount": amount}


def test_sequence_order_payment_before_call_does_not_match(run_rule):
    records = [payp("p1", "2026-03-01T09:59:00Z"), call("c1", "2026-03-01T10:00:00Z")]
    assert run_rule(SEQ_RULE, records).ids() == []


def test_sequence_same_ts_uses_input_order(run_rule):
    before = [call("c1", "2026-03-01T10:00:00Z"), payp("p1", "2026-03-01T10:00:00Z")]
    after = [payp("p1", "2026-03-01T10:00:00Z"), call("c1", "2026-03-01T10:00:00Z")]
    assert run_rule(SEQ_RULE, before).ids() == ["p1"]
    assert run_rule(SEQ_RULE, after).ids() == []


def test_within_is_inclusive(run_rule):
    at = [call("c1", "2026-03-01T10:00:00Z"), payp("p1", "2026-03-01T11:00:00Z")]
    past = [call("c1", "2026-03-01T10:00:00Z"), payp("p1", "2026-03-01T11:00:00.001Z")]
    assert run_rule(SEQ_RULE, at).ids() == ["p1"]
    assert run_rule(SEQ_RULE, past).ids() == []


def test_evidence_is_the_latest_chain(run_rule):
    records = [call("c1", "2026-03-01T10:00:00Z"), call("c2", "2026-03-01T10:05:00Z"),
               call("c3", "2026-03-01T10:06:00Z", duration=30), payp("p1", "2026-03-01T10:30:00Z")]
    m = run_rule(SEQ_RULE, records)
    assert m.ids() == ["p1"]
    assert m.ids(step=0) == ["c2"]  # c3 is later but fails its where


def test_numbers_written_differently_join_as_one_subscriber(run_rule):
    records = [call("c1", "2026-03-01T10:00:00Z", callee="138 0000 0001"),
               payp("p1", "2026-03-01T10:20:00Z", phone="+86 138-0000-0001"),
               payp("p2", "2026-03-01T10:25:00Z", phone="008613800000001")]
    assert run_rule(SEQ_RULE, records).ids() == ["p1", "p2"]


FOLLOWS_RULE = """
id: T-FOLLOW
title: pass-through
score: 10
sequence:
  within: 2h
  steps:
    - as: inflow
      stream: payment
      key: payee_account
    - as: out
      stream: payment
      key: payer_account
      follows: inflow.payee_account
      where: amount >= 0.9 * inflow.amount
"""


def transfer(i, ts, payer, payee, amount):
    return {"stream": "payment", "id": i, "ts": ts, "payer_account": payer, "payee_account": payee, "amount": amount}


def test_follows_joins_payee_to_next_payer(run_rule):
    records = [transfer("t1", "2026-03-01T10:00:00Z", "V", "M", 1000),
               transfer("t2", "2026-03-01T10:30:00Z", "X", "Y", 1000),  # unrelated payer
               transfer("t3", "2026-03-01T11:00:00Z", "M", "N", 950),
               transfer("t4", "2026-03-01T11:10:00Z", "M", "N", 500)]  # below 90%
    m = run_rule(FOLLOWS_RULE, records)
    assert m.ids() == ["t3"]
    assert m.ids(step=0) == ["t1"]


UNLESS_RULE = SEQ_RULE.replace("T-SEQ", "T-UNLESS") + """
  unless:
    stream: call
    key: caller
    where: callee == "95588"
"""


def test_unless_strictly_between_cancels(run_rule):
    base = [call("c1", "2026-03-01T10:00:00Z"), payp("p1", "2026-03-01T10:30:00Z")]
    verify = {"stream": "call", "id": "v1", "caller": "+8613800000001", "callee": "95588", "direction": "out",
              "duration": 60}
    between = base[:1] + [{**verify, "ts": "2026-03-01T10:10:00Z"}] + base[1:]
    before = [{**verify, "ts": "2026-03-01T09:50:00Z"}] + base
    other = base[:1] + [{**verify, "ts": "2026-03-01T10:10:00Z", "caller": "+8613800000002"}] + base[1:]
    assert run_rule(UNLESS_RULE, between).ids() == []
    assert run_rule(UNLESS_RULE, before).ids() == ["p1"]
    assert run_rule(UNLESS_RULE, other).ids() == ["p1"]


def test_unless_at_the_same_instant_but_after_the_last_step_does_not_cancel(run_rule):
    verify = {"stream": "call", "id": "v1", "ts": "2026-03-01T10:30:00Z", "caller": "+8613800000001",
              "callee": "95588", "direction": "out", "duration": 60}
    records = [call("c1", "2026-03-01T10:00:00Z"), payp("p1", "2026-03-01T10:30:00Z"), verify]
    assert run_rule(UNLESS_RULE, records).ids() == ["p1"]


SUPPRESS_RULE = """
id: T-SUP
title: any large payment
score: 10
stream: payment
key: payer_account
where: amount >= 1000
suppress: 1h
"""


def test_suppression_counts_from_the_last_emitted_alert(run_rule):
    records = [pay("p1", "2026-03-01T10:00:00Z", amount=2000), pay("p2", "2026-03-01T10:59:59Z", amount=2000),
               pay("p3", "2026-03-01T11:00:00Z", amount=2000), pay("p4", "2026-03-01T11:30:00Z", amount=2000),
               pay("q1", "2026-03-01T10:10:00Z", account="A2", amount=2000)]
    m = run_rule(SUPPRESS_RULE, records)
    assert m.ids() == ["p1", "q1", "p3"]  # exactly 1h later is emitted; per key
    assert m.suppressed == 2
    assert sorted(m.ids(emitted_only=False)) == ["p1", "p2", "p3", "p4", "q1"]


NULL_RULE = """
id: T-NULL
title: null logic
score: 10
stream: payment
key: payer_account
where: not (amount == 1) and is_null(payee_country) and not (payee_country == "CN")
"""


def test_nulls_are_two_valued(run_rule):
    records = [pay("p1", "2026-03-01T10:00:00Z", amount=None), pay("p2", "2026-03-01T10:01:00Z", amount=1),
               pay("p3", "2026-03-01T10:02:00Z", payee_country="CN"), pay("p4", "2026-03-01T10:03:00Z")]
    assert run_rule(NULL_RULE, records).ids() == ["p1", "p4"]


def test_null_key_is_never_evaluated(run_rule):
    records = [pay("p1", "2026-03-01T10:00:00Z", account=None) for _ in range(1)] + [
        pay(f"p{i}", "2026-03-01T10:00:00Z", account=None) for i in (2, 3)]
    assert run_rule(COUNT_RULE, records).ids() == []


NEW_RULE = """
id: T-NEW
title: new payee
score: 10
stream: payment
key: payer_account
where: is_new(payee_account, 7d, where=amount > 0)
"""


def test_is_new_looks_back_over_earlier_records_only(run_rule):
    records = [
        {**pay("p1", "2026-03-01T10:00:00Z"), "payee_account": "B1"},
        {**pay("p2", "2026-03-02T10:00:00Z"), "payee_account": "B1"},  # seen a day ago
        {**pay("p3", "2026-03-09T10:00:00Z"), "payee_account": "B1"},  # last seen exactly 7d ago: new again
        {**pay("p4", "2026-03-09T11:00:00Z", amount=0), "payee_account": "B2"},  # new; does not count later
        {**pay("p5", "2026-03-09T12:00:00Z"), "payee_account": "B2"},  # B2's only earlier record fails where=
        {**pay("p6", "2026-03-09T12:00:00Z", account="A2"), "payee_account": "B1"},  # other key
    ]
    assert run_rule(NEW_RULE, records).ids() == ["p1", "p3", "p4", "p5", "p6"]


HOUR_RULE = """
id: T-HOUR
title: night in Beijing
score: 10
stream: payment
key: payer_account
where: hour(ts, "Asia/Shanghai") < 5 and weekday(ts, "Asia/Shanghai") == 7
"""


def test_time_zone_in_hour_and_weekday(run_rule):
    records = [pay("p1", "2026-03-07T19:30:00Z"),  # Sunday 03:30 in Beijing, Saturday in UTC
               pay("p2", "2026-03-08T03:30:00Z"),  # Sunday 11:30 in Beijing
               pay("p3", "2026-03-08T03:30:00+08:00")]  # Sunday 03:30 in Beijing, given with an offset
    assert run_rule(HOUR_RULE, records).ids() == ["p1", "p3"]


AGG_RULE = """
id: T-AGG
title: aggregates
score: 10
stream: payment
key: payer_account
where: >-
  sum(amount, 1h, where=amount < 1000) == 900 and avg(amount, 1h) == 450
  and min(amount, 1h) == 100 and max(amount, 1h) == 800 and distinct(payee_account, 1h) == 2
"""


def test_sum_avg_min_max_distinct_with_where(run_rule):
    records = [{**pay("p1", "2026-03-01T10:00:00Z", amount=100), "payee_account": "B1"},
               {**pay("p2", "2026-03-01T10:10:00Z", amount=800), "payee_account": "B2"},
               {**pay("p3", "2026-03-01T10:20:00Z", amount=None), "payee_account": "B1"}]
    # at p3: amounts 100, 800 and a null -> sum 900, avg 450 (nulls ignored), 2 distinct payees
    assert run_rule(AGG_RULE, records).ids() == ["p2", "p3"]


def test_sums_are_exact_in_decimal(run_rule):
    rule = COUNT_RULE.replace("count(1h) >= 3", "sum(amount, 1h) == 0.3").replace("T-COUNT", "T-EXACT")
    records = [pay("p1", "2026-03-01T10:00:00Z", amount=0.1), pay("p2", "2026-03-01T10:00:01Z", amount=0.2)]
    assert run_rule(rule, records).ids() == ["p2"]


LIST_RULE = """
id: T-LIST
title: prefix list
score: 10
stream: call
key: caller
where: callee in @ranges and caller not in @vip
"""
LISTS = {
    "ranges": "kind: prefix\nvalues: ['+88213', '+882135']\n",
    "vip": "kind: exact\nvalues: ['13800000009']\n",  # written locally: matches the E.164 form
}


def test_lists_prefix_and_exact(run_rule):
    records = [call("c1", "2026-03-01T10:00:00Z", callee="+88213512345") | {"caller": "+8613800000001"},
               call("c2", "2026-03-01T10:01:00Z", callee="+88216000000") | {"caller": "+8613800000001"},
               call("c3", "2026-03-01T10:02:00Z", callee="+88213000000") | {"caller": "+8613800000009"}]
    m = run_rule(LIST_RULE, records, LISTS)
    assert m.ids() == ["c1"]


DISTINCT_RULE = """
id: T-DISTINCT
title: distinct per key
score: 10
stream: call
key: caller
where: distinct(callee, 1h) >= 2 or not is_new(callee, 1h)
"""


def test_distinct_and_is_new_keep_keys_apart_when_interleaved(run_rule):
    # regression: values were once permuted twice, mixing records of other keys
    records = [{"stream": "call", "id": "x1", "ts": "2026-03-01T10:00:00Z", "caller": "+8613800000001",
                "callee": "+8613900000001"},
               {"stream": "call", "id": "y1", "ts": "2026-03-01T10:01:00Z", "caller": "+8613800000002",
                "callee": "+8613900000002"},
               {"stream": "call", "id": "x2", "ts": "2026-03-01T10:02:00Z", "caller": "+8613800000001",
                "callee": "+8613900000001"}]
    # x2 repeats x1's callee: one distinct value, and not new
    assert run_rule(DISTINCT_RULE, records).ids() == ["x2"]
    no_repeat = DISTINCT_RULE.replace(" or not is_new(callee, 1h)", "")
    assert run_rule(no_repeat, records).ids() == []
