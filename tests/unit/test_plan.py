"""runtime/plan.py: what a rule compiles to — steps, the split of each where, aggregates, windows."""

from __future__ import annotations

from fraudrules.lang.expr import Binary, Call, Field, Literal, parse_expr, unparse
from fraudrules.pack.loader import load_pack
from fraudrules.runtime.plan import AggregateSpec, UnlessPlan, compile_pack

NS = 1_000_000_000
HOUR = 3600 * NS
DAY = 24 * HOUR

SEQUENCE = """\
id: T-SEQ
title: call then payment
score: 10
suppress: 24h
sequence:
  within: 1h
  steps:
    - as: call
      stream: call
      key: callee
      where: duration >= 10m and direction == "in"
    - as: pay
      stream: payment
      key: payer_phone
      where: pay.amount >= 1000 and amount > call.duration and is_new(payee_account, 3d, where=amount > 0)
  unless:
    stream: sms
    key: receiver
    where: direction == "in"
explain: "{pay.amount} after {minutes(pay.ts - call.ts)} min, {pay.count(1d)} payments today"
"""


def plan_of(load_rule, rule_text: str):
    (rp,) = compile_pack(load_rule(rule_text)).rules
    return rp


def text(expr) -> str | None:
    return None if expr is None else unparse(expr)


def test_a_sequence_compiles_to_its_steps_windows_and_unless(load_rule):
    rp = plan_of(load_rule, SEQUENCE)
    assert [(sp.alias, sp.stream, sp.key, sp.follows) for sp in rp.steps] == [
        ("call", "call", "callee", None), ("pay", "payment", "payer_phone", None)]
    assert (rp.within_ns, rp.suppress_ns) == (HOUR, DAY)
    assert rp.unless == UnlessPlan("sms", "receiver", parse_expr('direction == "in"'), on=0)


def test_each_where_splits_into_own_record_and_cross_step_conjuncts(load_rule):
    call, pay = plan_of(load_rule, SEQUENCE).steps
    assert (text(call.local), text(call.cross)) == ('duration >= 10m and direction == "in"', None)
    # pay.amount inside step pay is its own amount; only call.duration needs the chain
    assert text(pay.local) == "amount >= 1000 and is_new(payee_account, 3d, where=amount > 0)"
    assert text(pay.cross) == "amount > call.duration"


def test_a_top_level_or_stays_one_conjunct(load_rule):
    rule = SEQUENCE.replace("where: duration >= 10m and direction", "where: duration >= 10m or direction")
    call = plan_of(load_rule, rule).steps[0]
    assert text(call.local) == 'duration >= 10m or direction == "in"'
    assert [c.text for c in plan_of(load_rule, rule).conditions if c.step == "call"] == [
        'duration >= 10m or direction == "in"']


def test_aggregates_are_recorded_with_their_stream_key_and_window(load_rule):
    rp = plan_of(load_rule, SEQUENCE)
    (call, spec), = rp.steps[1].aggregates.items()
    assert isinstance(call, Call) and call.name == "is_new"
    assert spec == AggregateSpec("is_new", "payment", "payer_phone", 3 * DAY, Field("payee_account"),
                                 Binary(">", Field("amount"), Literal(0, "number")))
    assert rp.steps[0].aggregates == {}
    # an aggregate only the explanation uses (pay.count) is computed at its step, here the last
    (explain_spec,) = rp.explain_aggregates.values()
    assert explain_spec == AggregateSpec("count", "payment", "payer_phone", DAY, None, None)
    assert rp.steps[1].kept == (spec, explain_spec) and rp.steps[0].kept == ()


def test_an_earlier_steps_aggregate_is_kept_by_that_step_and_read_across(load_rule):
    rule = SEQUENCE.replace("amount > call.duration and", "amount > call.duration and call.count(1h) >= 2 and"
                            ).replace("{pay.count(1d)}", "{call.max(duration, 2h)}")
    rp = plan_of(load_rule, rule)
    call, pay = rp.steps
    spec = AggregateSpec("count", "call", "callee", HOUR, None, None)  # the call step's stream and key
    assert text(pay.cross) == "amount > call.duration and call.count(1h) >= 2"  # reads the chain: cross
    assert pay.aggregates[parse_expr("call.count(1h)")] == spec
    explain_spec = AggregateSpec("max", "call", "callee", 2 * HOUR, Field("duration"), None)
    assert list(rp.explain_aggregates.values()) == [explain_spec]
    # the call step's record takes both, though its own where reads neither
    assert call.kept == (spec, explain_spec) and call.aggregates == {}
    assert "count" not in [s.func for s in pay.kept]


def test_the_plan_lists_every_window_once(pack_dir):
    count_rule = "id: {id}\ntitle: t\nscore: 10\nstream: payment\nkey: payer_account\nwhere: count(1h) >= {n}\n"
    pack = load_pack(pack_dir({"a": count_rule.format(id="T-A", n=3), "b": count_rule.format(id="T-B", n=5),
                               "seq": SEQUENCE}))
    plan = compile_pack(pack)
    assert sorted((s.func, s.stream, s.key, s.window_ns) for s in plan.aggregates()) == [
        ("count", "payment", "payer_account", HOUR),  # two rules, one window
        ("count", "payment", "payer_phone", DAY),
        ("is_new", "payment", "payer_phone", 3 * DAY),
    ]
    assert plan.streams() == {"call", "payment", "sms"}


def test_conditions_keep_the_source_text_and_show_values(load_rule):
    rp = plan_of(load_rule, SEQUENCE)
    assert [(c.step, c.text) for c in rp.conditions] == [
        ("call", "duration >= 10m"), ("call", 'direction == "in"'),
        ("pay", "pay.amount >= 1000"), ("pay", "amount > call.duration"),
        ("pay", "is_new(payee_account, 3d, where=amount > 0)"),
    ]
    leaves = {c.text: [leaf.text for leaf in c.leaves] for c in rp.conditions}
    assert leaves["amount > call.duration"] == ["amount", "call.duration"]
    assert leaves["is_new(payee_account, 3d, where=amount > 0)"] == [
        "is_new(payee_account, 3d, where=amount > 0)"]  # an aggregate is shown whole


def test_evidence_fields_are_those_the_rule_reads_and_the_parties_in_schema_order(load_rule):
    call, pay = plan_of(load_rule, SEQUENCE).steps
    # caller, and payer_account, are parties of their streams (rules/streams.yaml): shown though unread
    assert call.fields == ("id", "ts", "caller", "callee", "direction", "duration")
    assert pay.fields == ("id", "ts", "payer_account", "payer_phone", "payee_account", "amount")


def test_macros_are_expanded_before_splitting(load_rule):
    rule = ("id: T-M\ntitle: t\nscore: 10\nstream: payment\nkey: payer_account\n"
            "where: large_transfer() and count(1h, where=large_transfer()) >= 2\n")
    rp = plan_of(load_rule, rule)
    assert text(rp.steps[0].local) == "amount >= 10000 and count(1h, where=amount >= 10000) >= 2"
    (spec,) = rp.steps[0].aggregates.values()
    assert text(spec.where) == "amount >= 10000"
    assert [c.text for c in rp.conditions] == ["large_transfer()", "count(1h, where=large_transfer()) >= 2"]


def test_follows_joins_on_a_field_of_an_earlier_step(load_rule):
    rule = """\
id: T-F
title: t
score: 10
sequence:
  within: 1h
  steps:
    - as: inflow
      stream: payment
      key: payee_account
      where: amount >= 5000
    - as: out
      stream: payment
      key: payer_account
      follows: inflow.payee_account
      where: amount >= 0.9 * inflow.amount
"""
    inflow, out = plan_of(load_rule, rule).steps
    assert out.follows == ("inflow", "payee_account")
    assert (text(out.local), text(out.cross)) == (None, "amount >= 0.9 * inflow.amount")
    assert inflow.fields == ("id", "ts", "payer_account", "payer_phone", "payee_account", "amount")  # + parties


def test_compile_pack_orders_by_id_and_selects(pack_dir):
    rule = "id: {id}\ntitle: t\nscore: 10\nstatus: {status}\nstream: payment\nkey: payer_account\nwhere: amount > 1\n"
    pack = load_pack(pack_dir({"z": rule.format(id="T-Z", status="stable"),
                               "a": rule.format(id="T-A", status="experimental"),
                               "old": rule.format(id="T-OLD", status="deprecated")}))
    assert [rp.id for rp in compile_pack(pack).rules] == ["T-A", "T-Z"]  # deprecated rules are left out
    assert [rp.id for rp in compile_pack(pack, rule_ids={"T-Z"}).rules] == ["T-Z"]
