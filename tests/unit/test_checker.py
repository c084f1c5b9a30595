"""pack/checker.py: types, fields and aggregates of rule expressions, each error at file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fraudrules.columns.types import LogicalType
from fraudrules.errors import RuleErrors, SourceLocation
from fraudrules.lang.expr import parse_expr
from fraudrules.lang.functions import FUNCTIONS
from fraudrules.pack.checker import Checker, Scope
from fraudrules.pack.model import ExprSource
from fraudrules.pack.source import Node
from fraudrules.pack.streams import load_schema

SINGLE = """\
id: T-1
title: t
score: 10
stream: payment
key: payer_account
where: {where}
"""


def errors(load_rule, rule_text: str) -> list[str]:
    """The load errors of one rule file, as ``rule.yaml:line:col: error: message``."""
    with pytest.raises(RuleErrors) as info:
        load_rule(rule_text)
    return [str(e)[str(e).index("rule.yaml"):] for e in info.value.errors]


@pytest.mark.parametrize("where, error", [
    ('amount > "abc"', "rule.yaml:6:8: error: cannot compare float with string"),
    ('is_new(payee_account, 1h) > 1', "rule.yaml:6:8: error: cannot compare bool with float"),
    ('lower(amount) == "x"', "rule.yaml:6:14: error: lower(): argument 1 must be a string, not float"),
    ('count(1h) > 1 and amount', "rule.yaml:6:26: error: 'and' needs true/false on both sides, not float"),
    ('amount + 1', "rule.yaml:6:8: error: the where of step 'payment' must be true/false, not float"),
])
def test_type_errors_carry_file_line_col(load_rule, where, error):
    assert errors(load_rule, SINGLE.format(where=where)) == [error]


@pytest.mark.parametrize("literal, why", [
    ('"2026-03-01T00:id:00+08:00"', "the text is not a timestamp"),
    ('"2026-13-01T00:00:00Z"', "the text is not a timestamp"),
    ('"2262-05-01T00:00:00Z"', "the instant is out of range (int64 nanoseconds hold 1677-09-21 to 2262-04-11)"),
])
def test_a_timestamp_literal_that_never_parses_is_an_error_at_it(load_rule, literal, why):
    """It would be null at every record: each comparison with it false, and the rule silent."""
    assert errors(load_rule, SINGLE.format(where=f"ts >= timestamp({literal})")) == [
        f"rule.yaml:6:24: error: timestamp({literal}) is null at every record: {why}; write an ISO 8601 instant, "
        f'e.g. "2026-03-01T00:00:00+08:00"']


@pytest.mark.parametrize("literal", ['"2026-03-01T00:00:00+08:00"', '"2026-03-01"', '"2026-03-01 10:00:00"',
                                     '"2262-04-10T00:00:00Z"'])
def test_a_timestamp_literal_that_parses_loads(load_rule, literal):
    assert load_rule(SINGLE.format(where=f"ts >= timestamp({literal})")) is not None


@pytest.mark.parametrize("where, col, text, e164", [
    ('payer_phone == "13800138000"', 23, "13800138000", "+8613800138000"),
    ("'\"+86 138-0013-8002\" != payer_phone'", 9, "+86 138-0013-8002", "+8613800138002"),  # YAML-quoted
    ('payer_phone in ["+8613800138000", "138 0013 8001"]', 42, "138 0013 8001", "+8613800138001"),
    ('payer_phone == "008613800138000"', 23, "008613800138000", "+8613800138000"),
])
def test_a_phone_literal_the_reader_would_rewrite_is_an_error_at_it(load_rule, where, col, text, e164):
    """A phone field holds a valid number in E.164 whatever way the record wrote it: the rule would never match."""
    assert errors(load_rule, SINGLE.format(where=where)) == [
        f"rule.yaml:6:{col}: error: phone fields hold valid numbers in E.164, so {text!r} never equals one; "
        f"write {e164!r} (read in region CN)"]


@pytest.mark.parametrize("where", ['payer_phone == "+8613800138000"', 'payer_phone == "95588"',
                                   'payer_phone in ["+8613800138000", "10086"]', 'payer_account == "13800138000"'])
def test_phone_literals_in_the_form_records_hold_load(load_rule, where):
    """E.164 itself, a short code (not a valid number: records keep it as written), and text fields."""
    assert load_rule(SINGLE.format(where=where)) is not None


def test_phone_literals_are_checked_in_the_region_the_run_reads_numbers_in(load_rule):
    """--region US: a Chinese mobile written without +86 is no valid US number, so records keep it as written and
    the literal can equal one; a US national number is what the reader rewrites there."""
    kept = load_rule(SINGLE.format(where='payer_phone == "13800138000"'), region="US")
    assert kept.region == "US"
    with pytest.raises(RuleErrors) as caught:
        load_rule(SINGLE.format(where='payer_phone == "2025550123"'), region="US")
    assert [str(e)[str(e).index("rule.yaml"):] for e in caught.value.errors] == [
        "rule.yaml:6:23: error: phone fields hold valid numbers in E.164, so '2025550123' never equals one; "
        "write '+12025550123' (read in region US)"]


NIGHT = 'hour(ts, "Asia/Shanghai")'


@pytest.mark.parametrize("where, col, first, second", [
    (f"'{NIGHT} >= 22 and {NIGHT} < 6'", 45, f"{NIGHT} >= 22", f"{NIGHT} < 6"),
    ("amount > 100 and amount <= 100", 25, "amount > 100", "amount <= 100"),
    ("amount == 5 and channel == \"web\" and 5 < amount", 45, "amount == 5", "5 < amount"),
    ("(amount > 10 and amount < 5) or amount > 1", 25, "amount > 10", "amount < 5"),
    ("not (duration_ok and amount >= 1e6 and amount < 1e3)", 0, "", ""),
])
def test_an_and_that_no_value_meets_is_an_error_at_its_second_bound(load_rule, where, col, first, second):
    """A night window written as an 'and' (22h to 6h) or any empty range: the rule would never fire."""
    if not col:  # an unknown field: only the type error, not a second one about the range
        assert [e for e in errors(load_rule, SINGLE.format(where=where)) if "never hold" in e] == []
        return
    message = (f"rule.yaml:6:{col}: error: '{first}' and '{second}' never hold together, so the condition is "
               f"never true and the rule never fires")
    if "hour" in first:
        message += f"; a range that wraps around (22h to 6h) is an 'or': ({NIGHT} >= 22 or {NIGHT} < 6)"
    assert errors(load_rule, SINGLE.format(where=where)) == [message]


@pytest.mark.parametrize("where", ["amount >= 100 and amount <= 100", "amount > 10 and amount < 20 and amount > 15",
                                   f"'{NIGHT} >= 22 or {NIGHT} < 6'", "amount > 10 and amount != 10",
                                   "amount > 10 and balance_before < 5", "amount > 10 or amount < 5"])
def test_ranges_that_some_value_meets_load(load_rule, where):
    assert load_rule(SINGLE.format(where=where)) is not None


_PAYMENT = load_schema(Path(__file__).resolve().parents[2] / "rules" / "streams.yaml").streams["payment"]
_OPS = {"<": lambda x, c: x < c, "<=": lambda x, c: x <= c, ">": lambda x, c: x > c, ">=": lambda x, c: x >= c,
        "==": lambda x, c: x == c, "!=": lambda x, c: x != c}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(sorted(_OPS)), st.integers(-3, 3), st.booleans()), min_size=1, max_size=5))
# a strict bound, then an inclusive one at the same value, must stay strict (a mutation pass found 300 draws miss it)
@example([(">", 1, False), (">=", 1, False), ("<=", 1, False)])
@example([("<", 1, False), ("<=", 1, True), (">=", 1, False)])
def test_the_empty_range_error_agrees_with_values_tried_one_by_one(comparisons):
    """Oracle: ``amount op c and ...`` holds for no value exactly when it holds at none of the literals, the points
    between and beyond them (each comparison changes its answer only at its literal). The check errs then, and
    only then; ``mirrored`` writes the literal on the left (``3 > amount``)."""
    mirror = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
    text = " and ".join(f"{c} {mirror[op]} amount" if left else f"amount {op} {c}" for op, c, left in comparisons)
    edges = sorted({c for _, c, _ in comparisons})
    tries = [edges[0] - 1, edges[-1] + 1, *edges, *((a + b) / 2 for a, b in zip(edges, edges[1:]))]
    empty = not any(all(_OPS[op](x, c) for op, c, _ in comparisons) for x in tries)
    checker = Checker(None)
    src = ExprSource(text, parse_expr(text), Node(text, SourceLocation("t.yaml", 1, 1), raw=text))
    checker.check(src, Scope(_PAYMENT))
    assert [("never hold together" in str(e)) for e in checker.errors] == ([True] if empty else []), text


def test_an_error_in_a_folded_block_points_into_its_line(load_rule):
    rule = SINGLE.format(where=">-\n  amount >= 10\n  and amout > 1")
    assert errors(load_rule, rule) == [
        "rule.yaml:8:7: error: unknown field 'amout' in stream 'payment'; did you mean 'amount'?"]


def test_an_unknown_field_without_a_close_name_gets_no_suggestion(load_rule):
    assert errors(load_rule, SINGLE.format(where="zzz > 1")) == [
        "rule.yaml:6:8: error: unknown field 'zzz' in stream 'payment'"]


def test_a_comparison_with_an_unknown_side_is_still_true_or_false(load_rule):
    """One error for the unknown field, none made up from it; but a comparison is a bool whatever its sides, so
    using it as a number is an error of its own."""
    assert errors(load_rule, SINGLE.format(where="zzz > 1 and not (zzz < 2)")) == [
        "rule.yaml:6:8: error: unknown field 'zzz' in stream 'payment'",
        "rule.yaml:6:25: error: unknown field 'zzz' in stream 'payment'"]
    assert errors(load_rule, SINGLE.format(where="abs(zzz > 1) > 0")) == [
        "rule.yaml:6:12: error: abs(): argument 1 must be a number or duration, not bool",
        "rule.yaml:6:12: error: unknown field 'zzz' in stream 'payment'"]


SEQUENCE = """\
id: T-2
title: t
score: 10
sequence:
  within: 1h
  steps:
    - as: call
      stream: {stream}
      key: callee
    - as: pay
      stream: payment
      key: {key}
      {follows}
  unless:
    stream: call
    key: {unless_key}
    on: {on}
"""
FINE = {"stream": "call", "key": "payer_phone", "follows": "", "unless_key": "caller", "on": "call"}


@pytest.mark.parametrize("change, error", [
    ({"key": "payer_acount"}, "rule.yaml:12:12: error: stream 'payment' has no key field 'payer_acount'; "
                              "did you mean 'payer_account'?"),
    ({"key": "payer_account"}, "rule.yaml:12:12: error: step 'pay': key payer_account (string) joins the previous "
                               "step's key 'call' callee (phone)"),
    ({"stream": "calls"}, "rule.yaml:8:15: error: unknown stream 'calls' (streams: call, sms, sim_event, payment)"),
    ({"follows": "follows: call.calee"}, "rule.yaml:13:16: error: follows: stream 'call' has no field 'calee'"),
    ({"follows": "follows: cal.callee"}, "rule.yaml:13:16: error: follows: unknown alias 'cal'"),
    ({"unless_key": "calee"}, "rule.yaml:16:10: error: unless: stream 'call' has no key field 'calee'"),
    ({"on": "cal"}, "rule.yaml:17:9: error: unless: 'on' names an unknown alias 'cal'"),
])
def test_errors_about_a_steps_stream_key_or_follows_point_at_that_value(load_rule, change, error):
    """Not at the step (or, for a single-stream rule, at the rule's first line): at the value to fix."""
    found = errors(load_rule, SEQUENCE.format(**{**FINE, **change}))
    assert any(e.startswith(error) for e in found), found


def test_a_single_stream_rules_key_error_points_at_its_key(load_rule):
    assert errors(load_rule, SINGLE.format(where="amount > 1").replace("payer_account", "payer_acount")) == [
        "rule.yaml:5:6: error: stream 'payment' has no key field 'payer_acount'; did you mean 'payer_account'?"]


@pytest.mark.parametrize("where, error", [
    ("count(amount, 1h) > 1", "6:8: error: count() takes 1 argument(s): count(window), optional where=..."),
    ("sum(1h) > 1", "6:8: error: sum() takes 2 argument(s): sum(x, window), optional where=..."),
    ("is_new(1h)", "6:8: error: is_new() takes 2 argument(s): is_new(x, window), optional where=..."),
    ("sum(payee_account, 1h) > 1", "6:12: error: sum() needs a number, not string"),
    ("min(ts, 1h) > 1", "6:12: error: min() needs a number, not timestamp"),
    ("count(5) > 1", "6:14: error: the window of count() must be a duration literal such as 1h or 7d"),
    ("count(500d) > 1", "6:14: error: window beyond the retention limit of 400d"),
    ("count(1h, where=amount) > 1", "6:24: error: where= must be true/false, not float"),
    ("count(1h, hello=1) > 1", "6:8: error: count(): unknown keyword 'hello' (where=, stream=, key=)"),
    ("sum(count(1h), 1h) > 1", "6:12: error: aggregates cannot be nested"),
])
def test_aggregate_calls(load_rule, where, error):
    assert errors(load_rule, SINGLE.format(where=where)) == [f"rule.yaml:{error}"]


def test_aggregates_read_only_their_own_record_and_not_in_unless(load_rule):
    rule = """\
id: T-2
title: t
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
      where: amount >= call.duration and sum(call.duration, 1h) > 1
  unless:
    stream: sms
    key: receiver
    where: count(1h) > 1
"""
    assert errors(load_rule, rule) == [
        "rule.yaml:14:46: error: an aggregate can only use fields of its own record, not of other steps",
        "rule.yaml:18:12: error: aggregate count() is not allowed in unless",
    ]


@pytest.fixture(scope="module")
def type_of(shipped_pack):
    """``type_of(expr, stream="payment")``: the type the checker infers (with ``call.`` fields and
    aggregates in scope); fails on any error."""
    streams = shipped_pack.schema.streams

    def infer(text: str, stream: str = "payment") -> LogicalType:
        checker = Checker(shipped_pack)
        src = ExprSource(text, parse_expr(text), Node(text, SourceLocation("t.yaml", 1, 1), raw=text))
        t = checker.check(src, Scope(streams[stream], {"call": streams["call"]}, allow_aggregates=True),
                          want_bool=False)
        assert not checker.errors, [str(e) for e in checker.errors]
        return t

    return infer


@pytest.mark.parametrize("expr, stream, expected", [
    ("count(1h)", "payment", LogicalType.FLOAT),
    ("sum(amount, 1h)", "payment", LogicalType.FLOAT),
    ("sum(duration, 1h)", "call", LogicalType.DURATION),
    ("avg(duration, 1h)", "call", LogicalType.DURATION),
    ("max(duration, 1h)", "call", LogicalType.DURATION),
    ("distinct(callee, 1h)", "call", LogicalType.FLOAT),
    ("is_new(payee_account, 7d)", "payment", LogicalType.BOOL),
    ("ts - call.ts", "payment", LogicalType.DURATION),
    ("ts + 1h", "payment", LogicalType.TIMESTAMP),
    ("ts - 1h", "payment", LogicalType.TIMESTAMP),
    ("1h / 1m", "payment", LogicalType.FLOAT),
    ("call.duration * 2", "payment", LogicalType.DURATION),
    ("least(ts, call.ts)", "payment", LogicalType.TIMESTAMP),
    ("coalesce(null, amount)", "payment", LogicalType.FLOAT),
    ("country(payer_phone)", "payment", LogicalType.STRING),
    ("null", "payment", LogicalType.NULL),
    ("payer_phone", "payment", LogicalType.PHONE),
    ("amount if amount > 1 else null", "payment", LogicalType.FLOAT),
    ("median(amount, 1h)", "payment", LogicalType.FLOAT),
    ("median(duration, 1h)", "call", LogicalType.DURATION),
    ("call.median(duration, 1h)", "payment", LogicalType.DURATION),
    ("call.count(1h, where=direction == \"in\")", "payment", LogicalType.FLOAT),
])
def test_inferred_types(type_of, expr, stream, expected):
    t = type_of(expr, stream)
    assert t is expected  # a member of the vocabulary, not only text that equals one


def test_type_names_print_as_rule_authors_write_them():
    assert f"{LogicalType.DURATION}" == str(LogicalType.DURATION) == "duration"
    assert LogicalType.INT == "int" and {"int": 1}[LogicalType.INT] == 1


STEPS = """\
id: T-3
title: t
score: 10
sequence:
  within: 1h
  steps:
    - as: fanin
      stream: payment
      key: payee_account
      where: {first}
    - as: out
      stream: payment
      key: payer_account
      follows: fanin.payee_account
      where: {second}
explain: "{explain}"
"""


@pytest.mark.parametrize("first, second, explain, error", [
    ("out.count(1h) > 1", "amount > 1", "x", "10:14: error: out.count(): step 'out' comes later; a step reads "
                                              "only its own and earlier steps' aggregates (here: fanin)"),
    ("amount > 1", "fanout.sum(amount, 1h) > 1", "x",
     "15:14: error: unknown alias 'fanout' in fanout.sum() (steps here: fanin, out)"),
    ("amount > 1", "fanin.sum(duration, 1h) > 1", "x", "15:24: error: unknown field 'duration' in stream 'payment'"),
    ("amount > 1", "fanin.sum(payer_account, 1h) > 1", "x", "15:24: error: sum() needs a number, not string"),
    ("amount > 1", "fanin.cuont(1h) > 1", "x", "15:14: error: fanin.cuont(): unknown aggregate 'cuont'; did you "
                                               "mean 'count'?"),
    ("amount > 1", "fanin.lower(channel) == 'x'", "x",
     "15:14: error: fanin.lower(): only a window aggregate can be read from a step (count, sum, avg, min, max, "
     "distinct, is_new, stddev, median, since_prev); lower() is a function, so write lower(fanin.field, ...)"),
    ("amount > 1", "count(1h, where=fanin.count(1h) > 1) > 1", "x",
     "15:30: error: aggregates cannot be nested; inside where= only is_new(x, w) may be used, not fanin.count()"),
    ("amount > 1", "amount > 1", "{count(1h, where=amount > 5)} payments",
     "16:12: error: in a sequence's explain, say which step's record count() is evaluated at: write "
     "out.count(1h, where=amount > 5) for the last step, or fanin.count(...) for the first (docs/rules.md §3)"),
])
def test_an_earlier_steps_aggregate_is_checked_at_its_place(load_rule, first, second, explain, error):
    rule = STEPS.format(first=first, second=second, explain=explain)
    assert errors(load_rule, rule) == [f"rule.yaml:{error}"]


def test_step_aggregates_and_named_explain_aggregates_load(load_rule):
    rule = STEPS.format(first="fanin.count(1h) > 1", second="amount >= 0.8 * fanin.sum(amount, 24h)",
                        explain="{fanin.distinct(payer_account, 24h)} payers; {out.median(amount, 1h)}")
    assert load_rule(rule).rules[0].id == "T-3"


@pytest.mark.parametrize("first, second, explain, error", [
    # only is_new nests, and not inside another is_new
    ("amount > 1", "count(1h, where=sum(amount, 1h) > 5) > 1", "x",
     "15:30: error: aggregates cannot be nested; inside where= only is_new(x, w) may be used, not sum()"),
    ("amount > 1", "count(1h, where=is_new(payee_account, 1d, where=is_new(payer_account, 1d))) > 1", "x",
     "15:62: error: aggregates cannot be nested"),
    # the one cross-step read inside where= is a bound on ts; anything else says so
    ("amount > 1", "count(1h, where=amount > fanin.amount) > 1", "x",
     "15:39: error: an aggregate can only use fields of its own record, not of other steps; the one read of "
     "another step inside where= is a bound on the window's start, a conjunct `ts > alias.ts` or "
     "`ts >= alias.ts` (alias: an earlier step)"),
    ("amount > 1", "count(1h, where=ts > fanin.ts or amount > 1) > 1", "x",
     "15:35: error: an aggregate can only use fields of its own record, not of other steps; the one read of "
     "another step inside where= is a bound on the window's start, a conjunct `ts > alias.ts` or "
     "`ts >= alias.ts` (alias: an earlier step)"),
    ("amount > 1", "count(1h, where=ts < fanin.ts) > 1", "x",
     "15:35: error: an aggregate can only use fields of its own record, not of other steps; the one read of "
     "another step inside where= is a bound on the window's start, a conjunct `ts > alias.ts` or "
     "`ts >= alias.ts` (alias: an earlier step)"),
    # where the bound may stand, and by which step
    ("count(1h, where=ts > out.ts) > 1", "amount > 1", "x",
     "10:30: error: count(): step 'out' comes later (steps that may bound this window: none here)"),
    ("amount > 1", "count(1h, where=ts > out.ts) > 1", "x",
     "15:30: error: count(): step 'out' is the step the aggregate is evaluated at, not an earlier one (steps "
     "that may bound this window: fanin)"),
    ("amount > 1", "count(1h, where=ts > swap.ts) > 1", "x",
     "15:30: error: count(): unknown alias 'swap' (steps that may bound this window: fanin)"),
    ("amount > 1", "fanin.count(1h, where=ts > out.ts) > 1", "x",
     "15:36: error: count(): fanin.count() is evaluated at step 'fanin', the first step: no earlier step "
     "can bound its window (steps that may bound this window: none here)"),
    ("amount > 1", "count(1h, where=ts > fanin.ts and ts >= fanin.ts) > 1", "x",
     "15:48: error: count(): one bound on the window's start only (ts > alias.ts)"),
    ("amount > 1", "is_new(payee_account, 1h, where=ts > fanin.ts)", "x",
     "15:46: error: is_new() cannot start at an earlier step: it asks whether the value was seen in the whole "
     "window; bound the aggregate around it instead, e.g. count(1h, where=ts > swap.ts and "
     "is_new(payee_account, 180d))"),
    ("amount > 1", "amount > 1", "{fanin.count(1h, where=ts > fanin.ts)}",
     "16:34: error: count(): fanin.count() is evaluated at step 'fanin', the first step: no earlier step "
     "can bound its window (steps that may bound this window: none here)"),
])
def test_bounded_and_nested_aggregates_are_checked(load_rule, first, second, explain, error):
    rule = STEPS.format(first=first, second=second, explain=explain)
    assert errors(load_rule, rule) == [f"rule.yaml:{error}"]


def test_a_bound_outside_a_sequence_says_where_it_may_stand(load_rule):
    assert errors(load_rule, SINGLE.format(where="count(1h, where=ts > pay.ts) > 1")) == [
        "rule.yaml:6:24: error: count(): a window can start at an earlier step (ts > alias.ts) only in a sequence, "
        "in a step after the first (steps that may bound this window: none here)"]


def test_bounded_and_nested_aggregates_load(load_rule):
    rule = STEPS.format(first="count(1h, where=is_new(payee_account, 1d)) > 1",
                        second="distinct(payee_account, 1h, where=ts > fanin.ts and is_new(payee_account, 1d)) > 1 "
                               "and out.sum(amount, 1h, where=fanin.ts <= ts) > 5",
                        explain="{out.count(1h, where=ts >= fanin.ts)} since")
    assert load_rule(rule).rules[0].id == "T-3"


# Each function's arguments as docs/design.md ("Functions") and docs/rules.md write them: the least and the most.
DOCUMENTED_ARITY = {
    "abs": (1, 1), "coalesce": (2, 2), "concat": (1, 16), "contains": (2, 2), "country": (1, 1), "endswith": (2, 2),
    "greatest": (2, 2), "hour": (1, 2), "is_null": (1, 1), "is_round": (2, 2), "least": (2, 2), "length": (1, 1),
    "lower": (1, 1), "matches": (2, 2), "minutes": (1, 1), "number": (1, 1), "number_type": (1, 1),
    "parse_time": (2, 2), "startswith": (2, 2), "string": (1, 1), "timestamp": (1, 1), "upper": (1, 1),
    "weekday": (1, 2),
}


def test_every_function_has_its_documented_arity():
    assert set(DOCUMENTED_ARITY) == set(FUNCTIONS)


@pytest.mark.parametrize("name", sorted(DOCUMENTED_ARITY))
def test_a_call_with_too_few_or_too_many_arguments_is_an_error_at_it(load_rule, name):
    """One argument fewer than the least, or one more than the most, is refused at the call with how many it
    takes; the counts in between pass the arity check (their types are another matter)."""
    least, most = DOCUMENTED_ARITY[name]
    takes = least if least == most else f"{least} to {most}"

    def arity_errors(n: int) -> list[str]:
        call = f"{name}({', '.join(['amount'] * n)})"
        try:
            load_rule(SINGLE.format(where=f"is_null({call})"))
        except RuleErrors as exc:
            return [str(e)[str(e).index("rule.yaml"):] for e in exc.errors if "argument(s)" in str(e)]
        return []

    for n in (least - 1, most + 1):
        if n >= 0:
            assert arity_errors(n) == [f"rule.yaml:6:16: error: {name}() takes {takes} argument(s), got {n}"]
    for n in {least, most}:
        assert arity_errors(n) == []
