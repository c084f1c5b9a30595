"""Keys of several fields: ``key: [payer_account, device_id]`` (#10 item 3, second half).

The key is the tuple of the fields' values; a null in any of them: no key (docs/design.md §5). Windows,
``is_new``, suppression, ``unless``, sequences and absences are per tuple. The alert's key text joins the
values with ``|``, each with ``\\`` and ``|`` escaped. Random records are covered by tests/packs/props
(P-MULTIKEY, P-MULTIKEY-SEQ, P-MULTIKEY-ABSENT: test_properties.py against the reference model,
test_stream.py against batch); these cases pin what an analyst reads.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudrules.columns.vec import Vec
from fraudrules.errors import RuleErrors
from fraudrules.io.records import parse_inputs
from fraudrules.jobs.score import score_job
from fraudrules.pack.loader import load_pack
from fraudrules.runtime.keys import key_column, key_text
from fraudrules.runtime.plan import compile_pack
from fraudrules.store.horizon import plan_horizon
from tests.helpers import alerts_of_both_executors, assert_resume_is_uninterrupted, make_pack
from tests.test_properties import PACK as PROPS_PACK
from tests.test_properties import record_lists

RULE = """\
id: T-PAIR
title: One account on one device pays three payees
score: 50
stream: payment
key: [payer_account, device_id]
where: distinct(payee_account, 1h) >= 3
suppress: 30m
explain: "{payer_account} on {device_id}: {distinct(payee_account, 1h)} payees"
"""


def pay(rid: str, minute: float, payer: str | None = "A1", device: str | None = "d1", payee: str = "B1",
        **kw) -> dict:
    s = round(minute * 60)
    rec = {"stream": "payment", "id": rid, "ts": f"2026-03-01T{10 + s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z",
           "payee_account": payee, "amount": 100, **kw}
    if payer is not None:
        rec["payer_account"] = payer
    if device is not None:
        rec["device_id"] = device
    return rec


def both(load_rule, rule: str, records: list[dict]) -> list[dict]:
    return alerts_of_both_executors(load_rule(rule), records)


# --- the key text ------------------------------------------------------------------------------------

@pytest.mark.parametrize("a, b", [
    (("a|b", "c"), ("a", "b|c")),
    (("a\\", "b"), ("a", "\\b")),
    (("a\\|", "b"), ("a", "|b")),
    (("a\\", "|b"), ("a\\|", "b")),
    (("", "a|"), ("|a", "")),
])
def test_two_different_tuples_never_give_the_same_key_text(a, b):
    assert key_text(a) != key_text(b)


def test_the_key_text_escapes_backslash_and_bar():
    assert key_text(("a|b", "c")) == "a\\|b|c"
    assert key_text(("a", "b|c")) == "a|b\\|c"
    assert key_text(("x\\y", "z")) == "x\\\\y|z"
    assert key_text(("a", None)) is None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text("ab|\\", max_size=4), st.integers(-3, 3), st.floats(allow_nan=False)),
                min_size=1, max_size=3))
def test_the_key_text_skips_escaping_only_where_no_part_needs_it(parts):
    from fraudrules.runtime.keys import escape_part

    assert key_text(parts) == "|".join(escape_part(str(v)) for v in parts)  # every part escaped: the reference


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.text("ab|\\", max_size=4)),
                          st.one_of(st.none(), st.text("ab|\\", max_size=4))), max_size=20))
def test_the_key_column_is_the_key_text_of_each_row_and_injective(rows):
    cols = {}
    for i, name in enumerate(("f0", "f1")):
        vals = [r[i] for r in rows]
        cols[name] = Vec(np.array(["" if v is None else v for v in vals] or [], dtype=object),
                         np.array([v is None for v in vals], dtype=bool))
    got = key_column(cols, ("f0", "f1"))
    for r, v, null in zip(rows, got.values.tolist(), got.null.tolist()):
        want = key_text(r)
        assert null == (want is None) and (null or v == want)
    texts = {}
    for r in rows:  # injective: equal texts only for equal tuples
        if None not in r:
            assert texts.setdefault(key_text(r), r) == r



def _key_column_per_row(columns, parts):
    """The key column as it was built before (numpy string ufuncs over every row): the reference."""
    sdt = np.dtypes.StringDType()
    null = np.zeros(len(columns[parts[0]]), dtype=bool)
    out = None
    for i, name in enumerate(parts):
        col = columns[name]
        null |= col.null
        text = np.strings.replace(np.strings.replace(col.values.astype(sdt), "\\", "\\\\"), "|", "\\|")
        out = text if i == 0 else np.strings.add(np.strings.add(out, "|"), text)
    values = out.astype(object)
    values[null] = ""
    return values, null


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b|", "\\", "", "a|b"]), st.sampled_from([0.0, -0.0, 1.5, 2.0, 1e20]),
                          st.integers(-3, 3), st.booleans(), st.booleans()), max_size=30))
def test_the_key_column_of_text_numbers_and_several_fields_is_the_per_row_one(rows):
    cols = {
        "t": Vec(np.array([r[0] for r in rows] or [], dtype=object), np.array([r[3] for r in rows], dtype=bool)),
        "x": Vec(np.array([r[1] for r in rows], dtype=np.float64), np.array([r[4] for r in rows], dtype=bool)),
        "i": Vec(np.array([r[2] for r in rows], dtype=np.int64), np.zeros(len(rows), dtype=bool)),
    }
    for parts in (("t",), ("x", "t"), ("t", "i", "x"), ("i", "i")):
        got = key_column(cols, parts)
        values, null = _key_column_per_row(cols, parts)
        assert got.values.tolist() == values.tolist() and got.null.tolist() == null.tolist()


# --- semantics on both executors ---------------------------------------------------------------------

def test_the_pair_alerts_with_its_key_text(load_rule):
    (alert,) = both(load_rule, RULE, [pay("p1", 0, payee="B1"), pay("p2", 1, payee="B2"), pay("p3", 2, payee="B3")])
    assert alert["record_id"] == "p3"
    assert alert["key"] == "A1|d1"
    assert alert["explain"] == "A1 on d1: 3 payees"
    # the evidence shows each field of the key
    assert alert["evidence"][0]["fields"]["device_id"] == "d1"


def test_other_pairs_are_other_windows(load_rule):
    recs = [pay("p1", 0, payee="B1"), pay("p2", 1, device="d2", payee="B2"), pay("p3", 2, payer="A2", payee="B3"),
            pay("p4", 3, payee="B4")]
    assert both(load_rule, RULE, recs) == []


@pytest.mark.parametrize("hole", [{"payer": None}, {"device": None}, {"payer": None, "device": None}])
def test_a_null_in_any_field_is_no_key(load_rule, hole):
    # the records with a hole are never evaluated and are in no window: p5 sees two payees, not three
    recs = [pay("p1", 0, payee="B1"), pay("p2", 1, payee="B2", **hole), pay("p3", 2, payee="B3", **hole),
            pay("p4", 3, payee="B1"), pay("p5", 4, payee="B2")]
    assert both(load_rule, RULE, recs) == []
    assert [a["record_id"] for a in both(load_rule, RULE, recs + [pay("p6", 5, payee="B3")])] == ["p6"]


def test_an_empty_text_is_typed_null_so_no_key(load_rule):
    # the readers type an empty value as null (docs/design.md §3), so a pair with an empty device has no key
    recs = [pay("p1", 0, device="", payee="B1"), pay("p2", 1, device="", payee="B2"),
            pay("p3", 2, device="", payee="B3")]
    assert both(load_rule, RULE, recs) == []


def test_bars_in_values_keep_pairs_apart(load_rule):
    # ("A|x", "y") and ("A", "x|y") are two pairs; joined without escaping they would be one, with 3 payees
    recs = [pay("p1", 0, payer="A|x", device="y", payee="B1"), pay("p2", 1, payer="A", device="x|y", payee="B2"),
            pay("p3", 2, payer="A|x", device="y", payee="B3")]
    assert both(load_rule, RULE, recs) == []
    (alert,) = both(load_rule, RULE, recs + [pay("p4", 3, payer="A|x", device="y", payee="B4")])
    assert alert["key"] == "A\\|x|y"


def test_suppression_is_per_pair(load_rule):
    recs = [pay(f"p{i}", i, payee=f"B{i}") for i in range(4)]
    recs += [pay(f"q{i}", 10 + i, device="d2", payee=f"B{i}") for i in range(3)]
    assert [a["record_id"] for a in both(load_rule, RULE, recs)] == ["p2", "q2"]  # p3 suppressed, q2 another pair


SEQ = """\
id: T-PAIR-SEQ
title: A login from a new device, then a payment from the same account on it
score: 50
sequence:
  within: 30m
  steps:
    - as: a
      stream: payment
      key: [payer_account, device_id]
      where: amount < 10
    - as: b
      stream: payment
      key: [payer_account, device_id]
      where: amount >= 100 and is_new(payee_account, 1h)
  unless:
    stream: payment
    key: [payer_account, device_id]
    on: a
    where: channel == "branch"
"""


def test_a_sequence_joins_the_pair(load_rule):
    recs = [pay("t1", 0, amount=1), pay("x1", 1, device="d2"), pay("x2", 2, payer="A2"), pay("p1", 3, payee="B2")]
    (alert,) = both(load_rule, SEQ, recs)
    assert [e["id"] for e in alert["evidence"] if "id" in e] == ["t1", "p1"]
    # another device's or another account's record joins nothing
    assert both(load_rule, SEQ, [pay("t1", 0, amount=1, device="d2"), pay("p1", 3)]) == []
    assert both(load_rule, SEQ, [pay("t1", 0, amount=1, payer="A2"), pay("p1", 3)]) == []


def test_unless_is_per_pair(load_rule):
    base = [pay("t1", 0, amount=1)]
    cancel = pay("u1", 1, channel="branch", amount=50)
    other = pay("u2", 1, channel="branch", amount=50, device="d2")
    assert both(load_rule, SEQ, base + [cancel, pay("p1", 3, payee="B2")]) == []
    assert len(both(load_rule, SEQ, base + [other, pay("p1", 3, payee="B2")])) == 1


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(records=record_lists(), cut=st.floats(0, 1))
def test_a_checkpoint_keeps_the_pairs_state(records, cut):
    """Rows carry their derived keys into state_dict / load_state: a run stopped anywhere and resumed writes
    the alerts of an uninterrupted one (and of batch)."""
    plan = compile_pack(PROPS_PACK, "CN", {"P-MULTIKEY", "P-MULTIKEY-SEQ", "P-MULTIKEY-ABSENT"})
    assert_resume_is_uninterrupted(plan, records, cut)


# --- the checker: each error says file:line:col -------------------------------------------------------

ONE = """\
id: T-1
title: t
score: 10
stream: payment
key: {key}
where: amount > 0
"""


@pytest.mark.parametrize("key, col, message", [
    ("[payer_account]", 6, "a key of several fields lists 2 to 4 fields (got 1)"),
    ("[payer_account, device_id, ip, payee_account, payee_bank]", 6, "lists 2 to 4 fields (got 5)"),
    ("[payer_account, payer_account]", 22, "key: field 'payer_account' is listed twice"),
    ("[payer_account, 3]", 22, "key: each entry of a key of several fields is a field name"),
    ("[payer_account, device]", 6, "key [payer_account, device]: stream 'payment' has no field 'device'; "
                                   "did you mean 'device_id'?"),
    ("[payer_account, amount]", 6, "key [payer_account, amount]: field 'amount' is float; a key of several "
                                   "fields is made of text or phone fields"),
])
def test_key_errors_carry_file_line_col(tmp_path, key, col, message):
    pack = make_pack(tmp_path, {"r": ONE.format(key=key)})
    with pytest.raises(RuleErrors) as info:
        load_pack(pack)
    errors = [str(e) for e in info.value.errors]
    at = f"r.yaml:5:{col}: error:"  # the key's value, not the rule
    assert any(at in e and message in e for e in errors), errors


TWO = """\
id: T-2
title: t
score: 10
sequence:
  within: 1h
  steps:
    - as: a
      stream: payment
      key: {a}
    - as: b
      stream: {b_stream}
      key: {b}
{more}"""


@pytest.mark.parametrize("a, b_stream, b, more, message", [
    ("[payer_account, device_id]", "payment", "payer_account", "",
     "key payer_account (1 field(s)) joins the previous step's key 'a' [payer_account, device_id] (2 field(s)): "
     "keys that join have the same number of fields"),
    ("[payer_account, device_id]", "payment", "[payer_account, device_id, ip]", "",
     "keys that join have the same number of fields"),
    ("[payer_phone, device_id]", "payment", "[payer_account, device_id]", "",
     "key payer_account (string) joins the previous step's key 'a' payer_phone (phone)"),
    ("[payer_account, device_id]", "payment", "[payer_account, device_id]", "      follows: a.payee_account\n",
     "follows with a key of several fields ([payer_account, device_id]) is not supported"),
    ("[payer_account, device_id]", "payment", "[payer_account, device_id]",
     "  unless:\n    stream: payment\n    key: payer_account\n",
     "step 'unless': key payer_account (1 field(s)) is matched against the key of step 'a'"),
    ("[payer_account, device_id]", "payment", "[payer_account, device_id]",
     "  absent:\n    as: c\n    stream: payment\n    key: [device_id, payer_phone]\n    within: 1h\n",
     "step 'c': key payer_phone (phone) joins the previous step's key 'b' device_id (string)"),
    ("[payer_account, device_id]", "payment", "[payer_account, device_id]",
     "  absent:\n    as: c\n    stream: payment\n    key: [payer_account, device_id]\n    follows: a.payee_account\n"
     "    within: 1h\n",
     "step 'c': follows with a key of several fields"),
])
def test_join_errors(tmp_path, a, b_stream, b, more, message):
    pack = make_pack(tmp_path, {"r": TWO.format(a=a, b_stream=b_stream, b=b, more=more)})
    with pytest.raises(RuleErrors) as info:
        load_pack(pack)
    errors = [str(e) for e in info.value.errors]
    assert any("r.yaml:" in e and message in e for e in errors), errors


def test_a_plain_follows_field_of_a_pair_step_is_fine(load_rule):
    rule = TWO.format(a="[payer_account, device_id]", b_stream="payment", b="payer_account",
                      more="      follows: a.payee_account\n")
    (alert,) = both(load_rule, rule, [pay("p1", 0, payee="B7"), pay("p2", 1, payer="B7", device=None)])
    assert alert["key"] == "B7"


def test_a_window_over_another_stream_at_a_pair_step_is_refused(tmp_path):
    rule = ONE.format(key="[payer_account, device_id]").replace("amount > 0", "count(1h, key=payee_account) > 0")
    with pytest.raises(RuleErrors) as info:
        load_pack(make_pack(tmp_path, {"r": rule}))
    errors = [str(e) for e in info.value.errors]
    assert any("r.yaml:6:8: error:" in e and "this step's key has several fields ([payer_account, device_id])" in e
               for e in errors), errors


# --- history (docs/design.md §8) -----------------------------------------------------------------------

def test_the_store_keeps_the_fields_of_the_key_not_the_key():
    pack_rules = {"P-MULTIKEY"}
    h = plan_horizon(compile_pack(PROPS_PACK, "CN", pack_rules))
    assert {"payer_account", "device_id"} <= set(h.columns("payment"))
    assert not any("|" in c for c in h.columns("payment"))


def _day_folders(tmp_path: Path, rows: list[tuple], columns: list[str]) -> list[Path]:
    """One folder per day (1 and 2 March) with that day's payments, amount 10 each."""
    folders = []
    for day in ("01", "02"):
        folder = tmp_path / f"d{day}"
        folder.mkdir()
        pd.DataFrame([r for r in rows if r[1].startswith(f"2026-03-{day}")], columns=columns).assign(
            amount="10").to_csv(folder / "payment.csv", index=False)
        folders.append(folder)
    return folders


def _alert_lines(root: Path, folder_sets: list[list[Path]], history: Path | None, out: Path, **kw) -> list[str]:
    """The alert lines of one score run per folder set, one after another (with ``history``, one store)."""
    pack = load_pack(root)
    lines = []
    for i, folders in enumerate(folder_sets):
        specs = parse_inputs([str(f) for f in folders], pack.schema)
        _, paths = score_job(root, specs, out / str(i), pack=pack, history=history, **kw)
        lines += paths["alerts"].read_text(encoding="utf-8").splitlines()
    return lines


def test_day_by_day_with_a_store_equals_one_run(pack_dir, tmp_path: Path):
    """The pair's window crosses the day: day 2 reads day 1's payments from the store, which keeps the
    key's fields and derives the key again; scoring day 2 blind differs."""
    root = pack_dir({"rule": RULE.replace("1h", "1d").replace("30m", "1m")})
    rows = [("p1", "2026-03-01T22:00:00Z", "A1", "d1", "B1"), ("x1", "2026-03-01T22:30:00Z", "A1", "d2", "B2"),
            ("p2", "2026-03-01T23:00:00Z", "A1", "d1", "B2"), ("p3", "2026-03-02T01:00:00Z", "A1", "d1", "B3"),
            ("x2", "2026-03-02T02:00:00Z", "A1", "d2", "B3"), ("p4", "2026-03-02T03:00:00Z", "A1", "", "B4")]
    folders = _day_folders(tmp_path, rows, ["id", "ts", "payer_account", "device_id", "payee_account"])

    def alerts(folder_sets: list[list[Path]], history: Path | None, tag: str, **kw) -> list[str]:
        return _alert_lines(root, folder_sets, history, tmp_path / f"out-{tag}", **kw)

    one = alerts([folders], None, "one")
    assert [(json.loads(a)["record_id"], json.loads(a)["key"]) for a in one] == [("p3", "A1|d1")]
    assert alerts([[f] for f in folders], tmp_path / "hist", "days") == one
    assert alerts([folders], None, "chunks", memory_rows=2, chunk_rows=1) == one
    assert alerts([[folders[1]]], None, "blind") == []


# --- B. a window over several key fields at once: count(24h, key=[payer_account, payee_account]) -----

ANY = """\
id: T-ANY
title: An account in three payments, as payer or payee
score: 50
stream: payment
key: payer_account
where: count(1h, key=[payer_account, payee_account]) >= 3
explain: >-
  {count(1h, key=[payer_account, payee_account])} payments, {sum(amount, 1h, key=[payer_account, payee_account])}
  in all, {distinct(payee_account, 1h, key=[payer_account, payee_account])} payees
"""


def test_any_of_the_fields_counts_and_each_record_once(load_rule):
    # A1 pays B1, receives from C1, pays itself (once, not twice): three payments hold A1
    recs = [pay("p1", 0, payer="A1", payee="B1"), pay("p2", 1, payer="C1", payee="A1"),
            pay("x1", 1.5, payer="C1", payee="B1"), pay("p3", 2, payer="A1", payee="A1")]
    (alert,) = both(load_rule, ANY, recs)
    assert alert["record_id"] == "p3"
    assert alert["explain"] == "3 payments, 300 in all, 2 payees"
    behind = alert["conditions"][0]["behind"]["count(1h, key=[payer_account, payee_account])"]
    assert behind == {"total": 3, "records": ["p1", "p2", "p3"]}
    # two payments to oneself are two records: count 2 at p2, not 4
    assert both(load_rule, ANY, [pay("p1", 0, payer="A1", payee="A1"), pay("p2", 1, payer="A1", payee="A1")]) == []


def test_another_streams_records_by_either_field(load_rule):
    rule = """\
id: T-ANY-SMS
title: A payer in two SMS, sent or received
score: 50
stream: payment
key: payer_phone
where: count(1h, stream=sms, key=[sender, receiver]) >= 2
"""
    a, b = "+8613800000001", "+8613800000002"

    def sms(rid, minute, sender, receiver):
        return {"stream": "sms", "id": rid, "ts": f"2026-03-01T10:{minute:02d}:00Z", "sender": sender,
                "receiver": receiver, "direction": "out"}

    payment = {**pay("p1", 3), "payer_phone": a}
    assert len(both(load_rule, rule, [sms("s1", 0, a, b), sms("s2", 1, b, a), payment])) == 1
    assert both(load_rule, rule, [sms("s1", 0, a, a), payment]) == []  # to oneself: one SMS


@pytest.mark.parametrize("where, message", [
    ("count(1h, key=[payer_account]) > 0", "key=[...] lists 2 to 4 different fields"),
    ("count(1h, key=[payer_account, payer_account]) > 0", "key=[...] lists 2 to 4 different fields"),
    ("count(1h, key=[payer_account, payee_account, ip, device_id, payee_bank]) > 0", "lists 2 to 4"),
    ("count(1h, key=[payer_account, payee]) > 0", "stream 'payment' has no field 'payee'; did you mean"),
    ("count(1h, key=[payer_account, payer_phone]) > 0", "key payment.payer_phone (phone) is matched against the "
                                                        "step's key payer_account (string)"),
    ("is_new(payee_account, 1h, key=[payer_account, payee_account])", "is_new() reads only earlier records"),
])
def test_any_key_errors(tmp_path, where, message):
    rule = ONE.format(key="payer_account").replace("amount > 0", where)
    with pytest.raises(RuleErrors) as info:
        load_pack(make_pack(tmp_path, {"r": rule}))
    errors = [str(e) for e in info.value.errors]
    assert any("r.yaml:6:" in e and message in e for e in errors), errors


def test_any_key_is_kept_in_history_and_routed_by_each_field(load_rule):
    from fraudrules.executors.spark.routing import plan_routing

    plan = compile_pack(load_rule(ANY), "CN")
    assert {"payer_account", "payee_account", "amount"} <= set(plan_horizon(plan).columns("payment"))
    (family,) = [f for f in plan_routing(plan).families if "T-ANY" in f.rules]
    assert set(family.roles_of("T-ANY")) == {("payment", "payer_account"), ("payment", "payee_account")}


def test_any_key_day_by_day_with_a_store_equals_one_run(pack_dir, tmp_path: Path):
    root = pack_dir({"rule": ANY.replace("1h", "1d")})
    rows = [("p1", "2026-03-01T22:00:00Z", "A1", "B1"), ("p2", "2026-03-01T23:00:00Z", "C1", "A1"),
            ("p3", "2026-03-02T01:00:00Z", "A1", "A1"), ("p4", "2026-03-02T02:00:00Z", "C1", "B1")]
    folders = _day_folders(tmp_path, rows, ["id", "ts", "payer_account", "payee_account"])

    def alerts(folder_sets: list[list[Path]], history: Path | None, tag: str, **kw) -> list[str]:
        lines = _alert_lines(root, folder_sets, history, tmp_path / f"out-{tag}", **kw)
        return [json.loads(a)["record_id"] for a in lines]

    one = alerts([folders], None, "one")
    assert one == ["p3"]  # C1 at p4: p2 and p4, two
    assert alerts([[f] for f in folders], tmp_path / "hist", "days") == one
    assert alerts([folders], None, "chunks", memory_rows=2, chunk_rows=1) == one
    assert alerts([[folders[1]]], None, "blind") == []


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(records=record_lists(), cut=st.floats(0, 1))
def test_a_checkpoint_keeps_the_any_key_windows(records, cut):
    plan = compile_pack(PROPS_PACK, "CN", {"P-ANYKEY", "P-ANYKEY-SEQ"})
    assert_resume_is_uninterrupted(plan, records, cut)


RUNS = """\
id: T-PAIR-RUN
title: A small payment, then three payments to different payees from the same account and device
score: 50
sequence:
  within: 1h
  steps:
    - as: probe
      stream: payment
      key: [payer_account, device_id]
      where: amount < 10
    - as: burst
      stream: payment
      key: [payer_account, device_id]
      runs: 3
      distinct: payee_account
"""


def test_a_repeated_step_runs_per_pair(load_rule):
    recs = [pay("t1", 0, amount=1), pay("p1", 1, payee="B1"), pay("x1", 2, device="d2", payee="B2"),
            pay("p2", 3, payee="B2"), pay("p3", 4, payee="B3")]
    (alert,) = both(load_rule, RUNS, recs)
    assert alert["record_id"] == "p3"
    assert [r["id"] for r in alert["evidence"][1]["run"]] == ["p1", "p2", "p3"]
    assert both(load_rule, RUNS, [r for r in recs if r["id"] != "p2"] + [pay("p4", 5, device="d2", payee="B4")]) == []
