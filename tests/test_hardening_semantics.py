"""Semantics that contradicted the docs (#12): is_round is exact for decimal units, each list of an
`or` reports its own entry, non-geographic numbers have no country, and the small points (count(0s),
a lower-case z, enum values off by case or spaces) are decided as docs/rules.md says. Where an alert
is built, the batch and stream executors are both run and must agree."""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction

import numpy as np
import phonenumbers
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fraudrules.columns.phones import country_one, type_one
from fraudrules.columns.vec import Vec
from fraudrules.errors import RuleError, RuleErrors
from fraudrules.io.records import parse_inputs, read_inputs, records_from_dicts
from fraudrules.jobs.score import evaluate
from fraudrules.lang.functions import FUNCTIONS, is_round_one
from fraudrules.pack.loader import load_pack
from fraudrules.runtime.alerts import alert_line
from fraudrules.runtime.plan import compile_pack
from tests.helpers import make_pack
from tests.test_stream import stream_lines


def is_round(xs: list, units: list) -> list[bool]:
    def vec(vals):
        return Vec(np.array([0.0 if v is None else v for v in vals]), np.array([v is None for v in vals]))

    return FUNCTIONS["is_round"].apply([vec(xs), vec(units)], None).values.tolist()


def test_is_round_is_exact_for_decimal_units():
    xs = [12.34, 12.345, 100.0, 7.0, 0.07, 0.1 + 0.2, -3.5, 1e15, 1e15 + 0.5, 999999999999999.9, 250.0, None, 5.0]
    us = [0.01, 0.01, 0.01, 0.01, 0.01, 0.1, 0.5, 0.01, 1.0, 0.1, 0.0, 0.01, None]
    assert is_round(xs, us) == [True, False, True, True, True, False, True, True, False, True, False, False, False]


def test_is_round_of_a_quotient_longer_than_decimals_context_is_an_answer_not_a_crash():
    # Decimal's remainder raised DivisionImpossible here (a 27-digit quotient beyond its 28-digit context)
    assert is_round([2.7e16, 1e308, 2.7e16], [0.0273, 1e-300, 0.01]) == [False, True, True]
    assert is_round_one(2.7e16, 0.0273) is False and is_round_one(1e308, 1e-300) is True


@settings(max_examples=300, deadline=None)
@given(st.integers(-10**13, 10**13), st.integers(1, 10**6), st.integers(0, 4))
def test_is_round_agrees_with_decimal_arithmetic(x_units, u_units, places):
    """x and unit written with up to four decimals: is_round is exactly Decimal's remainder test."""
    x = Decimal(x_units).scaleb(-places)
    u = Decimal(u_units).scaleb(-places)
    assert is_round([float(x)], [float(u)]) == [x % u == 0] == [is_round_one(float(x), float(u))]



def _multiple_as_printed(x: float, u: float) -> bool:
    """The documented answer, exactly: both numbers as the decimals they print as, as fractions."""
    return Fraction(Decimal(repr(x))) % Fraction(Decimal(repr(u))) == 0


@settings(max_examples=400, deadline=None)
@given(st.integers(2**44, 2**56) | st.integers(-(2**56), 2**56), st.sampled_from([1, 2, 3, 5, 7, 25]),
       st.integers(0, 15))
@example(3591223391355505, 5, 2)  # 35912233913555.05 by 0.05
@example(4219693051537543, 1, 12)  # 4219.693051537543 by 1e-12
@example(4413751678032175, 1, 4)  # 441375167803.2175 by 0.0001
def test_is_round_agrees_with_exact_arithmetic_where_the_scaled_value_nears_float_precision(scaled, u_units, places):
    """x with up to 15 decimals, whose value in units of its last decimal lies near 2^53: the float shortcut
    (x times 10^decimals, rounded) is off by one there, so is_round must not trust it; both bodies give the
    exact answer."""
    x = float(Decimal(scaled).scaleb(-places))
    u = float(Decimal(u_units).scaleb(-places))
    want = _multiple_as_printed(x, u)
    assert is_round([x], [u]) == [want] == [is_round_one(x, u)], (x, u)

def _both(pack, records: list[dict]) -> list[dict]:
    """The alerts of both executors, which must be equal line for line."""
    plan = compile_pack(pack, "CN")
    rs = records_from_dicts(records, pack.schema, region="CN")
    batch = [alert_line(a) for a in evaluate(plan, rs)[0]]
    stream, _ = stream_lines(plan, records)
    assert stream == batch
    return [json.loads(line) for line in batch]


LISTS_RULE = """
id: T-LISTS
title: a payee on either list
severity: low
score: 1
stream: payment
key: payer_account
where: payee_account in @watch_a or payee_account in @watch_b
"""
LISTS = {"watch_a": "kind: exact\nvalues: [A1, AB]\n", "watch_b": "kind: prefix\nvalues: [B, XB]\n"}


def test_each_list_of_an_or_reports_its_own_entry(tmp_path):
    pack = load_pack(make_pack(tmp_path, {"r": LISTS_RULE}, LISTS))
    recs = [{"stream": "payment", "id": f"p{i}", "ts": f"2026-03-01T00:00:0{i}Z", "payer_account": "P",
             "payee_account": payee} for i, payee in enumerate(["B77", "A1", "AB", "C1"])]
    got = {a["record_id"]: a["conditions"][0] for a in _both(pack, recs)}
    assert set(got) == {"p0", "p1", "p2"}
    assert (got["p0"]["list"], got["p0"]["list_entry"]) == ("watch_b", "B")  # only b matched: b, not a
    assert got["p0"]["lists"] == [{"list": "watch_a", "entry": None}, {"list": "watch_b", "entry": "B"}]
    assert (got["p1"]["list"], got["p1"]["list_entry"]) == ("watch_a", "A1")
    assert got["p2"]["lists"] == [{"list": "watch_a", "entry": "AB"}, {"list": "watch_b", "entry": None}]
    assert got["p0"]["values"] == {"payee_account": "B77"}  # the value itself is shown once


def test_a_condition_with_one_list_keeps_the_single_list_form(tmp_path):
    rule = LISTS_RULE.replace(" or payee_account in @watch_b", "")
    pack = load_pack(make_pack(tmp_path, {"r": rule}, LISTS))
    (alert,) = _both(pack, [{"stream": "payment", "id": "p1", "ts": "2026-03-01T00:00:00Z", "payer_account": "P",
                             "payee_account": "A1"}])
    cond = alert["conditions"][0]
    assert (cond["list"], cond["list_entry"]) == ("watch_a", "A1") and "lists" not in cond


@pytest.mark.parametrize("code", [800, 808, 870, 878, 881, 882, 883, 888, 979])
def test_non_geographic_numbers_have_no_country_but_a_type(code):
    example = phonenumbers.example_number_for_non_geo_entity(code)
    text = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    assert phonenumbers.is_valid_number(example)
    assert country_one(text) is None
    assert type_one(text) is not None  # what the number is: toll_free, voip, mobile, ...


def test_country_is_still_the_iso_code_of_geographic_numbers():
    assert [country_one(t) for t in ("+8613800138000", "+14155552671", "+442079460000", "+23272944814")] == [
        "CN", "US", "GB", "SL"]


def _load_error(tmp_path, where: str) -> str:
    rule = LISTS_RULE.replace("where: payee_account in @watch_a or payee_account in @watch_b", f"where: {where}")
    with pytest.raises((RuleErrors, RuleError)) as info:
        load_pack(make_pack(tmp_path, {"r": rule}, LISTS))
    return str(info.value)


def test_a_zero_window_says_so(tmp_path):
    msg = _load_error(tmp_path, "count(0s) > 1")
    assert "must be longer than 0s" in msg and "duration literal" not in msg
    assert "must be a duration literal" in _load_error(tmp_path / "b", "count(5) > 1")


CALL_RULE = """
id: T-DIR
title: calls one way
severity: low
score: 1
stream: call
key: caller
where: {where}
"""


def test_an_enum_value_off_by_case_or_spaces_gets_a_hint_in_rules_and_records(tmp_path):
    for i, written in enumerate(('"OUT"', '" out"', '"Out "')):
        with pytest.raises((RuleErrors, RuleError)) as info:
            load_pack(make_pack(tmp_path / str(i), {"r": CALL_RULE.format(where=f"direction == {written}")}))
        assert "did you mean 'out'? enum values match exactly: case and spaces count" in str(info.value)
    with pytest.raises((RuleErrors, RuleError)) as info:
        load_pack(make_pack(tmp_path / "x", {"r": CALL_RULE.format(where='direction == "sideways"')}))
    assert "is not a value of direction (in, out)" in str(info.value) and "did you mean" not in str(info.value)
    src = tmp_path / "call.csv"
    src.write_text("id,ts,caller,callee,direction\nc1,2026-03-01T00:00:00Z,+8613800138000,+8613800138001,OUT\n"
                   "c2,2026-03-01T00:00:01Z,+8613800138000,+8613800138001,sideways\n"
                   "c3,2026-03-01T00:00:02Z,+8613800138000,+8613800138001,in\n")
    schema = load_pack(make_pack(tmp_path / "p", {"r": CALL_RULE.format(where='direction == "in"')})).schema
    rs = read_inputs(parse_inputs([str(src)], schema), schema)
    reasons = {r.line: r.reason for r in rs.rejects}
    assert reasons[2] == ("direction: 'OUT' is not one of in, out; did you mean 'out'? enum values match exactly: "
                          "case and spaces count")
    assert reasons[3] == "direction: 'sideways' is not one of in, out"
    assert rs.tables["call"].columns["id"].values.tolist() == ["c3"]


def test_a_lower_case_z_and_t_read_as_utc_everywhere(tmp_path):
    schema = load_pack(make_pack(tmp_path, {"r": LISTS_RULE}, LISTS)).schema
    written = ["2026-03-01T00:00:00Z", "2026-03-01T00:00:01z", "2026-03-01t00:00:02z", "2026-03-01 00:00:03z",
               "2026-03-01T00:00:04.5z"]
    want = [1772323200 * 10**9 + s for s in (0, 10**9, 2 * 10**9, 3 * 10**9, 4_500_000_000)]
    csv = tmp_path / "payment.csv"
    csv.write_text("id,ts\n" + "".join(f"p{i},{t}\n" for i, t in enumerate(written)))
    jsonl = tmp_path / "payment.jsonl"
    jsonl.write_text("".join(json.dumps({"id": f"p{i}", "ts": t}) + "\n" for i, t in enumerate(written)))
    for path in (csv, jsonl):
        rs = read_inputs(parse_inputs([f"payment={path}"], schema), schema)
        assert not rs.rejects and rs.tables["payment"].columns["ts"].values.tolist() == want, path
    rs = records_from_dicts([{"stream": "payment", "id": f"p{i}", "ts": t} for i, t in enumerate(written)], schema)
    assert rs.tables["payment"].columns["ts"].values.tolist() == want
