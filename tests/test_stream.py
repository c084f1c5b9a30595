"""The stream executor (engine/stream.py) and ``fraudrules watch`` against the batch executor.

The contract (docs/design.md §5): fed the batch's total order, the stream executor
emits the batch's alerts byte for byte; out-of-order input within the allowed
lateness gives the alerts of the batch over the same arrival order; records
behind the watermark are late, counted and reported; a killed ``watch``
resumed from its checkpoint ends with the uninterrupted run's alert file.
No timings here (bench/bench_stream.py measures).
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudrules.executors.stream import StreamExecutor
from fraudrules.executors.stream.aggregates import spec_signature
from fraudrules.executors.stream.durable import MAX_SIDS, RULESET, fact_id, fnv1a32
from fraudrules.io.records import parse_inputs, read_inputs, records_from_dicts
from fraudrules.jobs.rule_tests import run_rule_tests
from fraudrules.jobs.score import evaluate
from fraudrules.jobs.watch import ordered_records
from fraudrules.pack.loader import load_pack
from fraudrules.runtime.alerts import alert_line
from fraudrules.runtime.plan import compile_pack
from fraudrules.synth.generate import generate
from tests.helpers import assert_resume_is_uninterrupted, input_ts, make_pack
from tests.test_properties import PLAN as PROPS_PLAN
from tests.test_properties import record_lists

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "rules"
SAMPLES = REPO / "samples"
PACK = load_pack(RULES)
PLAN = compile_pack(PACK, "CN")
NS_MIN = 60 * 10**9


def batch_lines(plan, records: list[dict]) -> list[str]:
    """The batch executor's alert lines for records listed in arrival order."""
    rs = records_from_dicts(records, plan.schema, region="CN")
    assert not rs.rejects, rs.rejects[:3]
    alerts, *_ = evaluate(plan, rs)
    return [alert_line(a) for a in alerts]


def batch_lines_of_dir(path: Path) -> list[str]:
    specs = parse_inputs([str(path)], PACK.schema)
    alerts, *_ = evaluate(PLAN, read_inputs(specs, PACK.schema))
    return [alert_line(a) for a in alerts]


def stream_lines(plan, records: list[dict], *, lateness: float = 0.0, chunk: int = 2000, shards: int = 256,
                 **kw) -> tuple[list[str], StreamExecutor]:
    ex = StreamExecutor(plan, lateness=lateness, shards=shards, **kw)
    out = []
    for i in range(0, len(records), chunk):
        out.extend(ex.feed_many(records[i: i + chunk]))
    out.extend(ex.flush())
    return [alert_line(a) for a in out], ex


def jittered(records: list[dict], lateness_s: float, seed: int = 7) -> list[dict]:
    """An arrival order in which every record is at most ``lateness_s`` behind the newest ts seen."""
    ts = input_ts(records, PACK.schema)
    rnd = random.Random(seed)
    keyed = sorted(range(len(records)), key=lambda i: (ts[i] + rnd.uniform(0, lateness_s * 1e9), i))
    return [records[i] for i in keyed]


@pytest.fixture(scope="module")
def samples_records() -> list[dict]:
    return ordered_records(parse_inputs([str(SAMPLES)], PACK.schema), PACK.schema)


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen")
    generate(out, customers=2000, days=7, seed=5)
    return out


@pytest.fixture(scope="module")
def generated_records(generated) -> list[dict]:
    return ordered_records(parse_inputs([str(generated)], PACK.schema), PACK.schema)


# --- same alerts as batch ---------------------------------------------------------------------


def test_inline_rule_tests_pass_on_both_executors_and_agree():
    report = run_rule_tests(PACK, executors=["batch", "stream"])
    assert not report.failed, [(r.rule.id, r.case.name, r.executor, r.actual, r.error) for r in report.failed]
    assert not report.disagreements
    assert {r.executor for r in report.results} == {"batch", "stream"}


@pytest.mark.parametrize("scalar_max", [None, 0, 10**9], ids=["default", "columns", "records"])
def test_samples_stream_equals_batch_byte_for_byte(samples_records, scalar_max):
    """Both evaluation paths (runtime/scalar.py record by record, runtime/evaluate.py over
    columns), each alone and as the release size picks them."""
    want = batch_lines_of_dir(SAMPLES)
    assert want, "the samples should produce alerts"
    kw = {} if scalar_max is None else {"scalar_max": scalar_max}
    got, ex = stream_lines(PLAN, samples_records, **kw)
    assert got == want
    s = ex.stats
    assert s["records_in"] == s["processed"] == len(samples_records) and s["late"] == 0


def test_samples_with_typed_json_values_equal_batch(samples_records):
    """The samples as a producer that types its values sends them (JSON numbers and booleans, timestamps in
    UTC with Z: bench_stream --values json), in micro-batches whose columns of such values are typed at once
    (intake._json_numbers, the numpy timestamps): the alert lines of the samples' CSV in batch."""
    from bench.bench_stream import json_values

    typed = json_values(samples_records, PACK.schema)
    assert any(isinstance(r.get("amount"), float) for r in typed) and all(r["ts"].endswith("Z") for r in typed)
    got, ex = stream_lines(PLAN, typed, chunk=1000)
    assert got == batch_lines_of_dir(SAMPLES)
    assert ex.stats["processed"] == len(typed)


def test_samples_one_record_at_a_time(samples_records):
    """feed() per record, lateness 0: each record is processed as it arrives."""
    want = batch_lines_of_dir(SAMPLES)
    ex = StreamExecutor(PLAN)
    got = []
    for r in samples_records[:1500]:
        got.extend(alert_line(a) for a in ex.feed(r))
        assert ex.stats["pending"] == 0
    got.extend(alert_line(a) for a in ex.flush())
    assert got == batch_lines(PLAN, samples_records[:1500])
    assert len(want) >= len(got)


@pytest.mark.slow
def test_generated_100k_records_10k_keys_stream_equals_batch(generated, generated_records):
    assert len(generated_records) >= 100_000
    keys = set()
    for rp in PLAN.rules:
        for sp in rp.steps:
            keys.update(r[sp.key] for r in generated_records if r["stream"] == sp.stream and sp.key in r)
    assert len(keys) >= 10_000
    want = batch_lines_of_dir(generated)
    got, ex = stream_lines(PLAN, generated_records, chunk=5000)
    assert len(want) > 20
    assert got == want
    s = ex.stats
    assert s["alerts"] == len(want) and s["rejected"] == 0 and s["late"] == 0
    assert 0 < s["sids"] <= 256


def test_the_second_pack_streams_as_batch_scores(tmp_path):
    """bench/packs/other, the pack the engine was not tuned for (median, stddev, min/max over one IMEI,
    since_prev, is_new inside count's where=, a sum over another stream, several aggregate conjuncts in one
    check), on generated records with many fraud cases: the stream's alerts equal batch's, one record a call
    (the single-record path), 13 and 1,000 a call."""
    plan = compile_pack(load_pack(REPO / "bench" / "packs" / "other"), "CN")
    generate(tmp_path, customers=300, days=4, seed=3, case_rate=0.02)
    recs = ordered_records(parse_inputs([str(tmp_path)], plan.schema), plan.schema)
    want = batch_lines(plan, recs)
    assert len({json.loads(line)["rule_id"] for line in want}) >= 8, "too few rules fire to compare"
    for chunk in (1, 13, 1000):
        got, _ = stream_lines(plan, recs, chunk=chunk)
        assert got == want, chunk


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(records=record_lists())
def test_random_records_every_rule_kind(records):
    """tests/packs/props covers every rule kind: aggregates with where=, is_new, 2-4 step
    sequences, follows of a non-key field (unsharded), unless, suppression. Both evaluation
    paths: record by record (runtime/scalar.py) and over columns (runtime/evaluate.py)."""
    want = batch_lines(PROPS_PLAN, records)
    for scalar_max in (10**9, 0):
        got, _ = stream_lines(PROPS_PLAN, records, lateness=math.inf, chunk=7, shards=3,  # ts order from the buffer
                              scalar_max=scalar_max)
        assert got == want, scalar_max


def test_a_release_of_everything_buffered_in_parts_equals_batch(samples_records, monkeypatch):
    """With infinite lateness every record waits for the flush, which releases the whole buffer sorted at
    once (executor._release_upto) in parts of MAX_RELEASE records; the parts, taken in that order, are the
    batch's alerts. With lateness 300 s the buffer is drained by heappop up to the watermark instead."""
    from fraudrules.executors.stream import executor as ex_module

    monkeypatch.setattr(ex_module, "MAX_RELEASE", 97)
    arrival = jittered(samples_records, 300)
    want = batch_lines(PLAN, arrival)
    for lateness in (math.inf, 300):
        got, ex = stream_lines(PLAN, arrival, lateness=lateness, chunk=250)
        assert got == want, lateness
        assert ex.stats["pending"] == 0 and ex.stats["processed"] == len(arrival)


# --- time: lateness, late records, state release ------------------------------------------------


def test_out_of_order_within_lateness_gives_the_same_alerts(samples_records):
    arrival = jittered(samples_records, 300)
    assert arrival != samples_records
    want = batch_lines(PLAN, arrival)  # batch over the same arrival order (ties in ts keep it)
    got, ex = stream_lines(PLAN, arrival, lateness=300, chunk=500)
    assert ex.stats["late"] == 0
    assert got == want
    # and the same alerts, whatever the micro-batching
    got1, _ = stream_lines(PLAN, arrival[:800], lateness=300, chunk=1)
    assert got1 == batch_lines(PLAN, arrival[:800])


def test_records_beyond_lateness_go_to_the_late_output_counted():
    late: list[tuple[dict, dict]] = []
    ex = StreamExecutor(PLAN, lateness=60, on_late=lambda rec, info: late.append((rec, info)))
    base = [{"stream": "payment", "id": f"p{i}", "ts": f"2026-03-01T10:{i:02d}:00Z", "payer_account": "A1",
             "payee_account": "MULE-0001", "amount": 5000, "currency": "CNY"} for i in range(10)]
    for r in base:
        ex.feed(r)
    old = {"stream": "payment", "id": "old", "ts": "2026-03-01T10:07:59Z", "payer_account": "A2",
           "payee_account": "MULE-0001", "amount": 5000, "currency": "CNY"}
    edge = {**old, "id": "edge", "ts": "2026-03-01T10:08:00Z"}  # exactly at the watermark: not late
    alerts = ex.feed(old) + ex.feed(edge) + ex.flush()
    assert [r["id"] for r, _ in late] == ["old"]
    assert late[0][1]["behind_s"] == 1.0
    assert all(a["record_id"] != "old" for a in alerts)
    s = ex.stats
    assert s["late"] == 1 and s["records_in"] == 12
    assert s["records_in"] == s["processed"] + s["late"] + s["rejected"] + s["pending"]
    # after flush, anything older than what was processed is late too
    ex.feed({**old, "id": "after", "ts": "2026-03-01T10:08:30Z"})
    assert [r["id"] for r, _ in late] == ["old", "after"]


def test_rejected_records_are_reported_not_dropped():
    rejects: list = []
    ex = StreamExecutor(PLAN, on_reject=lambda rec, reason: rejects.append(reason))
    ex.feed_many([{"stream": "call", "id": "c1", "ts": "not a time"}, {"stream": "fax", "id": "x", "ts": "2026"},
                  ["not", "a", "record"], {"stream": "call", "id": "c2", "ts": "2026-03-01T10:00:00Z"}])
    assert len(rejects) == 3
    assert any("fax" in r for r in rejects) and any("ts" in r for r in rejects) and "not a JSON object" in rejects
    assert ex.stats["rejected"] == 3 and ex.stats["processed"] == 1


def test_records_the_fast_intake_declines_keep_their_place_in_the_feed(samples_records):
    """A timestamp with a space before its offset is not typed by the per-record intake, but the batch converters
    read it: such records go through them and come back to their place in the feed. Every fifth sample record is
    written so, and some are sent again right after, in the other form: the copy, not the first, is the
    duplicate id (unique_ids), and the alerts are batch's over the records without the copies."""
    recs, firsts, copies = [], [], []
    for i, rec in enumerate(samples_records):
        spaced = {**rec, "ts": rec["ts"][:19] + " " + rec["ts"][19:]}
        first = spaced if i % 5 == 0 else rec
        recs.append(first)
        firsts.append(first)
        if i % 40 == 0:
            copies.append(rec if i % 5 == 0 else spaced)
            recs.append(copies[-1])
    want = batch_lines(PLAN, firsts)
    for chunk in (3, 1000):  # under COLUMN_INTAKE_MIN a record at a time, over it a column at a time
        ex = StreamExecutor(PLAN, unique_ids=True)
        got = [alert_line(a) for i in range(0, len(recs), chunk) for a in ex.feed_many(recs[i: i + chunk])]
        assert got + [alert_line(a) for a in ex.flush()] == want, chunk
        assert [(rec["id"], rec["ts"]) for rec, _ in ex.rejected_records] == [(c["id"], c["ts"]) for c in copies]
        assert all("duplicate id" in reason for _, reason in ex.rejected_records)


def test_state_is_released_after_the_largest_window(samples_records):
    ex = StreamExecutor(PLAN)
    for i in range(0, len(samples_records), 1000):
        ex.feed_many(samples_records[i: i + 1000])
    before = ex.stats
    assert before["live_keys"] > 100 and before["state_entries"] > 100
    largest = max([s.window_ns for s in PLAN.aggregates()] + [rp.within_ns or 0 for rp in PLAN.rules]
                  + [rp.suppress_ns for rp in PLAN.rules])
    far = ex.max_ts + largest + 10**9
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(far // 10**9))
    ex.feed({"stream": "sms", "id": "tick", "ts": iso, "sender": "+8613800000001", "receiver": "+8613800000002"})
    ex.feed({"stream": "call", "id": "tick2", "ts": iso, "caller": "+8613800000001", "callee": "+8613800000002"})
    after = ex.stats
    assert after["live_facts"] == 0 and ex.durable_fact_count() == 0
    assert after["state_entries"] <= 5 and after["live_keys"] <= 5


# --- durable-rules limits: sids, id collisions ------------------------------------------------------


def test_sid_cap_is_enforced_and_never_exceeded(samples_records):
    for bad in (0, MAX_SIDS + 1):
        with pytest.raises(ValueError):
            StreamExecutor(PLAN, shards=bad)
    got, ex = stream_lines(PLAN, samples_records, shards=4)
    assert got == batch_lines_of_dir(SAMPLES)
    assert ex.sids_used <= {"0", "1", "2", "3"}
    assert ex.durable_fact_count() == ex.stats["live_facts"]
    # every sid string of a full pool is distinct under durable's own 32-bit hash
    assert len({fnv1a32(str(i)) for i in range(MAX_SIDS)}) == MAX_SIDS


COLLIDE_RULE = """
id: T-COLLIDE
title: Long inbound call, then a payment by the callee
severity: high
score: 50
sequence:
  within: 1h
  steps:
    - as: call
      stream: call
      key: callee
      where: duration >= 600
    - as: pay
      stream: payment
      key: payer_phone
      where: amount >= 100
explain: "{pay.amount} after call {call.id}"
"""


def _colliding_ids(prefix: str) -> tuple[str, str]:
    seen: dict[int, str] = {}
    n = 0
    while True:
        rid = f"{prefix}{n}"
        h = fnv1a32(fact_id(rid, 0, 0))
        if h in seen:
            return seen[h], rid
        seen[h] = rid
        n += 1


def test_message_observed_collision_is_retried_and_loses_no_record(tmp_path):
    assert fnv1a32("call-46469") == fnv1a32("call-253384")  # FINDINGS §4, the engine's own hash
    a, b = _colliding_ids("call-")
    plan = compile_pack(load_pack(make_pack(tmp_path, {"rule": COLLIDE_RULE})), "CN")
    one, two = "+8613800000001", "+8613800000002"
    recs = [
        {"stream": "call", "id": a, "ts": "2026-03-01T10:00:00Z", "caller": "+85523900111", "callee": one,
         "duration": 900},
        {"stream": "call", "id": b, "ts": "2026-03-01T10:05:00Z", "caller": "+85523900111", "callee": two,
         "duration": 900},
        {"stream": "payment", "id": "p1", "ts": "2026-03-01T10:30:00Z", "payer_phone": one, "amount": 500},
        {"stream": "payment", "id": "p2", "ts": "2026-03-01T10:31:00Z", "payer_phone": two, "amount": 500},
    ]
    got, ex = stream_lines(plan, recs, shards=1)  # one sid: the two ids meet in one message index
    assert ex.stats["id_collisions"] >= 1
    assert got == batch_lines(plan, recs)
    # each call is asserted when the first payment of its callee comes: a at p1, then b at p2, refused at
    # first (a is still held) and stored under a nonce id; both alert
    assert [json.loads(x)["evidence"][0]["id"] for x in got] == [a, b]
    assert ex.durable_fact_count() == 2 == ex.stats["live_facts"]
    assert sorted(f["id"] for f in ex._host.get_facts(RULESET, "0")) == sorted([fact_id(a, 0, 0),
                                                                                fact_id(b, 0, 0) + "#1"])


CHAIN3_RULE = """
id: T-CHAIN3
title: Long inbound call, an SMS, then a payment, all to one phone
severity: high
score: 50
sequence:
  within: 1h
  steps:
    - as: call
      stream: call
      key: callee
      where: duration >= 600
    - as: text
      stream: sms
      key: receiver
    - as: pay
      stream: payment
      key: payer_phone
      where: amount >= 100
explain: "{pay.amount} after call {call.id}"
"""


def test_durable_rules_gets_only_the_facts_a_join_can_use(tmp_path):
    """A step (or trigger) whose join value no held fact of the step before has cannot end a chain now or
    later: it is neither asserted nor sent. A held fact of a step that the next step joins is asserted only
    when a record of that next step joins its value, and is asserted or triggers itself. The alerts still equal
    batch's."""
    plan = compile_pack(load_pack(make_pack(tmp_path, {"rule": CHAIN3_RULE})), "CN")
    a, b = "+8613800000001", "+8613800000002"

    def at(minute: int) -> str:
        return f"2026-03-01T10:{minute:02d}:00Z"

    recs = [
        {"stream": "sms", "id": "s0", "ts": at(0), "sender": "+8613900000009", "receiver": a},  # no call yet
        {"stream": "payment", "id": "p0", "ts": at(1), "payer_phone": a, "amount": 500},  # no sms after a call
        {"stream": "call", "id": "c1", "ts": at(2), "caller": "+85523900111", "callee": a, "duration": 900},
        {"stream": "sms", "id": "s1", "ts": at(3), "sender": "+8613900000009", "receiver": b},  # b: no call
        {"stream": "payment", "id": "p1", "ts": at(4), "payer_phone": a, "amount": 500},  # a: no sms after c1
        {"stream": "sms", "id": "s2", "ts": at(5), "sender": "+8613900000009", "receiver": a},
        {"stream": "payment", "id": "p2", "ts": at(6), "payer_phone": a, "amount": 500},  # c1, s2, p2
        {"stream": "payment", "id": "p3", "ts": at(7), "payer_phone": b, "amount": 500},  # b: nothing held
    ]
    ex = StreamExecutor(plan)
    got, facts = [], []
    for r in recs:
        got.extend(alert_line(x) for x in ex.feed(r))
        facts.append(ex.stats["live_facts"])
    got.extend(alert_line(x) for x in ex.flush())
    assert got == batch_lines(plan, recs) and len(got) == 1
    assert [json.loads(x)["record_id"] for x in got] == ["p2"]
    # in durable-rules: c1 and s2 from the seventh record on (p2 joins s2, which joins c1); s0, s1 never,
    # nor any payment (a trigger leaves at once)
    assert facts == [0, 0, 0, 0, 0, 0, 2, 2]
    assert ex.durable_fact_count() == 2


CYCLE_RULES = {
    # step c joins b through b's payee, not b's key: the rule cannot be sharded, so all its facts share one sid
    "cycle": """
id: T-CYCLE
title: money back to its first payer through two other accounts
severity: high
score: 50
sequence:
  within: 3d
  steps:
    - as: a
      stream: payment
      key: payee_account
    - as: b
      stream: payment
      key: payer_account
      follows: a.payee_account
      where: payee_account != a.payer_account
    - as: c
      stream: payment
      key: payer_account
      follows: b.payee_account
      where: payee_account == a.payer_account
suppress: 1h
explain: "{a.payer_account} -> {b.payer_account} -> {c.payer_account} -> {c.payee_account}"
""",
    # three steps; c joins a (an earlier step, not b): b is asserted as it comes, it waits for nothing
    "hops": """
id: T-HOPS
title: a payment on from the payee, then another from the same payee
severity: medium
score: 20
sequence:
  within: 2d
  steps:
    - as: a
      stream: payment
      key: payer_account
      where: amount >= 50
    - as: b
      stream: payment
      key: payer_account
      follows: a.payee_account
    - as: c
      stream: payment
      key: payer_account
      follows: a.payee_account
explain: "{a.id} {b.id} {c.id}"
""",
    # four steps on carried links: two middle steps wait, and held facts of step c meet newer partial chains
    "cycle4": """
id: T-CYCLE4
title: money through three other accounts and back to its first payer
severity: high
score: 60
sequence:
  within: 4d
  steps:
    - as: a
      stream: payment
      key: payee_account
    - as: b
      stream: payment
      key: payer_account
      follows: a.payee_account
    - as: c
      stream: payment
      key: payer_account
      follows: b.payee_account
    - as: d
      stream: payment
      key: payer_account
      follows: c.payee_account
      where: payee_account == a.payer_account
explain: "{a.payer_account} -> {b.payer_account} -> {c.payer_account} -> {d.payer_account} -> {d.payee_account}"
""",
}
ACCOUNTS = ["A", "B", "C", "D"]


@st.composite
def _payments(draw) -> list[dict]:
    n = draw(st.integers(3, 40))
    minutes = sorted(draw(st.lists(st.integers(0, 8 * 1440), min_size=n, max_size=n)))
    out = []
    for i, m in enumerate(minutes):
        payer = draw(st.sampled_from(ACCOUNTS))
        payee = draw(st.sampled_from([x for x in ACCOUNTS if x != payer]))
        ts = f"2026-03-{1 + m // 1440:02d}T{m % 1440 // 60:02d}:{m % 60:02d}:00Z"
        out.append({"stream": "payment", "id": f"p{i}", "ts": ts, "payer_account": payer, "payee_account": payee,
                    "amount": draw(st.sampled_from([10, 100])), "currency": "CNY"})
    return out


@pytest.fixture(scope="module")
def cycle_plan(tmp_path_factory):
    return compile_pack(load_pack(make_pack(tmp_path_factory.mktemp("cycle"), CYCLE_RULES)), "CN")


def test_a_middle_step_waits_for_the_next_step_before_durable_rules_holds_it(tmp_path):
    """A fact of a middle step goes to durable-rules only when a record of the next step joins its value (an
    unsharded rule's facts all share one sid, whose lookups slow down as it fills). One that leaves ``within``
    first never goes; the alerts equal batch's."""
    def pay(i: int, day: int, payer: str, payee: str) -> dict:
        return {"stream": "payment", "id": f"p{i}", "ts": f"2026-03-{day:02d}T10:00:{i:02d}Z",
                "payer_account": payer, "payee_account": payee, "amount": 100, "currency": "CNY"}

    recs = [pay(0, 1, "A", "B"), pay(1, 1, "B", "C"),  # a, then b: both wait (nothing pays from C yet)
            pay(2, 5, "C", "A"),  # would close p0, p1, but they left within (3d after p0): nothing is sent
            pay(3, 6, "A", "B"),  # b after a = p2: waits
            pay(4, 6, "B", "C"),  # closes p2, p3: they go to durable-rules, then p4; and p4 waits as a b
            pay(5, 7, "C", "A")]  # closes p3, p4
    plan = compile_pack(load_pack(make_pack(tmp_path, {"cycle": CYCLE_RULES["cycle"]})), "CN")
    ex = StreamExecutor(plan, lateness=0.0)
    got, facts = [], []
    for r in recs:
        got.extend(alert_line(x) for x in ex.feed(r))
        facts.append(ex.stats["live_facts"])
    got.extend(alert_line(x) for x in ex.flush())
    assert got == batch_lines(plan, recs)
    assert [json.loads(x)["record_id"] for x in got] == ["p4", "p5"]
    # had each b been asserted as it came, p1 (with p0) would have been in durable-rules from the second record
    assert facts == [0, 0, 0, 0, 2, 4]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=_payments(), cut=st.floats(0.1, 0.9), chunk=st.integers(1, 7))
def test_waiting_middle_steps_give_batchs_alerts_through_chunks_and_checkpoints(cycle_plan, records, cut, chunk):
    """Random payments among four accounts, through three-step rules on carried links (a middle step that waits
    for its next step, and one asserted as it comes because the last step joins the first): the stream executor in
    any chunking, and stopped at a checkpoint and resumed, writes batch's alerts."""
    want = batch_lines(cycle_plan, records)
    assert stream_lines(cycle_plan, records, chunk=chunk)[0] == want
    assert_resume_is_uninterrupted(cycle_plan, records, cut)


# --- checkpoints ------------------------------------------------------------------------------------------


def test_checkpoint_roundtrip_in_process(samples_records):
    arrival = jittered(samples_records, 120, seed=3)
    want, _ = stream_lines(PLAN, arrival, lateness=120)
    ex = StreamExecutor(PLAN, lateness=120)
    out = []
    cut = len(arrival) // 2
    for i in range(0, cut, 700):
        out.extend(ex.feed_many(arrival[i: min(i + 700, cut)]))
    state = json.loads(json.dumps(ex.state_dict(), allow_nan=False))  # JSON, no pickle
    assert state["pending"] and any(r["cands"] for r in state["rule_state"])
    ex2 = StreamExecutor(PLAN, lateness=120, shards=17)  # another shard layout is fine
    ex2.load_state(state)
    # held first steps go to durable-rules when a step-1 record joins them: a restore asserts none yet
    assert ex2.stats["live_facts"] == ex2.durable_fact_count() <= ex.stats["live_facts"]
    for i in range(cut, len(arrival), 700):
        out.extend(ex2.feed_many(arrival[i: i + 700]))
    out.extend(ex2.flush())
    assert [alert_line(a) for a in out] == want


def test_a_state_dict_stays_as_it_was_while_the_state_moves_on(samples_records):
    """state_dict() shares the window entries' tuples with the live state, and the guard keeps what it returns
    as it is (no JSON) to roll back to: later records that add, trim and expire entries must not change it."""
    ex = StreamExecutor(PLAN, lateness=60)
    cut = len(samples_records) // 3
    ex.feed_many(samples_records[:cut])
    snapshot = ex.state_dict()
    before = json.dumps(snapshot, allow_nan=False)
    assert any(entries for _, data in snapshot["aggregates"] for _key, entries in data if isinstance(entries, list))
    for i in range(cut, len(samples_records), 500):
        ex.feed_many(samples_records[i: i + 500])
    ex.flush()
    assert json.dumps(ex.state_dict(), allow_nan=False) != before
    assert json.dumps(snapshot, allow_nan=False) == before


def test_state_from_another_rule_pack_is_refused(samples_records, tmp_path):
    ex = StreamExecutor(PLAN)
    ex.feed_many(samples_records[:100])
    other = compile_pack(load_pack(make_pack(tmp_path, {"rule": COLLIDE_RULE})), "CN")
    from fraudrules.errors import FraudRulesError

    with pytest.raises(FraudRulesError):
        StreamExecutor(other).load_state(ex.state_dict())


# --- fraudrules watch --------------------------------------------------------------------------------------


def _write_jsonl(path: Path, records: list[dict]) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r) + "\n")
    return path


def _watch(*args: str, stdin=None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "cli.py"), "watch", *args], cwd=REPO, input=stdin,
                          capture_output=True, timeout=600, env=env)


def test_watch_cli_stdin_late_and_rejects(tmp_path, samples_records):
    arrival = jittered(samples_records, 600, seed=11)
    # three records far behind: late; two bad lines: rejected
    late_recs = [dict(arrival[100], id="late-1"), dict(arrival[200], id="late-2"), dict(arrival[300], id="late-3")]
    lines = [json.dumps(r) for r in arrival] + ["{not json", "[1, 2]"] + [json.dumps(r) for r in late_recs]
    data = ("\n".join(lines) + "\n").encode()
    out, late, rej = tmp_path / "alerts.jsonl", tmp_path / "late.jsonl", tmp_path / "rejects.jsonl"
    res = _watch("-", "--out", str(out), "--lateness", "10m", "--late", str(late), "--rejects", str(rej),
                 "--stats-every", "0", "--summary", str(tmp_path / "summary.json"), stdin=data)
    assert res.returncode == 0, res.stderr.decode()
    fresh = compile_pack(load_pack(RULES), "CN")  # the pack as the subprocess read it
    assert out.read_text().splitlines() == batch_lines(fresh, arrival)
    late_lines = [json.loads(x) for x in late.read_text().splitlines()]
    assert [x["record"]["id"] for x in late_lines] == ["late-1", "late-2", "late-3"]
    assert all(x["reason"].startswith("late:") and x["line"] for x in late_lines)
    assert len(rej.read_text().splitlines()) == 2
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["late"] == 3 and summary["rejected"] == 2 and summary["reconciles"]
    assert summary["records"] == len(lines)


def test_watch_cli_usage_errors(tmp_path):
    assert _watch("-", "--out", str(tmp_path / "a"), "--lateness", "soon", stdin=b"").returncode == 2
    assert _watch(str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "a")).returncode == 2
    assert _watch("--help").returncode == 0 and b"Examples" in _watch("--help").stdout


@pytest.mark.slow
def test_watch_killed_mid_run_resumes_without_loss_or_duplicates(tmp_path, generated, generated_records):
    """kill -9 a checkpointing watch, restart it: the alert file equals the uninterrupted run's
    (= the batch alerts, tested above), with lateness so the reorder buffer is in the checkpoint."""
    arrival = jittered(generated_records, 120, seed=5)
    src = _write_jsonl(tmp_path / "in.jsonl", arrival)
    want = batch_lines(PLAN, arrival)
    out, state = tmp_path / "alerts.jsonl", tmp_path / "watch.state"
    args = [sys.executable, str(REPO / "cli.py"), "watch", str(src), "--out", str(out), "--lateness", "2m",
            "--state", str(state), "--checkpoint-every", "1s", "--stats-every", "0"]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if state.exists() and out.exists() and len(out.read_text().splitlines()) >= len(want) // 4:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = out.read_text().splitlines()
    assert 0 < len(partial) < len(want)
    res = subprocess.run(args, cwd=REPO, capture_output=True, timeout=600)
    assert res.returncode == 0, res.stderr.decode()
    assert b"resumed from" in res.stderr
    assert out.read_text().splitlines() == batch_lines(compile_pack(load_pack(RULES), "CN"), arrival)


MAPPING = """
stream: payment
source:
  types: {amt: float}
fields:
  id: concat("x-", row)
  ts: when
  payer_account: src
  payee_account: dst
  payee_country: country
  amount: amt
  currency: '"CNY"'
where: kind != "test"
"""


def test_watch_cli_reads_through_a_mapping_like_score(tmp_path):
    rows = []
    for i in range(60):
        rows.append({"when": f"2026-03-01T10:{i:02d}:00+08:00", "src": f"S{i % 7}", "dst": f"D{i % 5}",
                     "country": ["MM", "SG", "KP"][i % 3], "amt": str(100 + i), "kind": "test" if i % 11 == 0 else "x"})
    rows.append({"when": "yesterday", "src": "S1", "dst": "D1", "country": "MM", "amt": "5", "kind": "x"})
    (tmp_path / "map.yaml").write_text(MAPPING)
    with open(tmp_path / "src.csv", "w") as fh:
        fh.write("when,src,dst,country,amt,kind\n")
        for r in rows:
            fh.write(",".join(r[c] for c in ("when", "src", "dst", "country", "amt", "kind")) + "\n")
    src = _write_jsonl(tmp_path / "src.jsonl", rows)
    res = subprocess.run([sys.executable, str(REPO / "cli.py"), "score", str(tmp_path / "src.csv"), "--map",
                          str(tmp_path / "map.yaml"), "--rule", "TF-HRJ-001", "--out", str(tmp_path / "score"), "-q"],
                         cwd=REPO, capture_output=True, timeout=300)
    assert res.returncode == 0, res.stderr.decode()
    want = (tmp_path / "score" / "alerts.jsonl").read_text().splitlines()
    assert len(want) == 40 - 4  # MM and KP rows, less the filtered ones
    res = _watch(str(src), "--map", str(tmp_path / "map.yaml"), "--rule", "TF-HRJ-001", "--out",
                 str(tmp_path / "w.jsonl"), "--rejects", str(tmp_path / "rej.jsonl"), "--stats-every", "0",
                 "--summary", str(tmp_path / "s.json"))
    assert res.returncode == 0, res.stderr.decode()
    assert (tmp_path / "w.jsonl").read_text().splitlines() == want
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["filtered"] == 6 and summary["rejected"] == 1
    assert "ts" in (tmp_path / "rej.jsonl").read_text()


SUM_RULE = """
id: T-SUM
title: Large window totals
severity: low
score: 1
stream: payment
key: payer_account
where: sum(amount, 1h) >= 0 and avg(amount, 1h, where=amount > 1) > 0 and min(amount, 1h) > -1e300
explain: "{sum(amount, 1h)} {avg(amount, 1h, where=amount > 1)} {max(amount, 1h)} {count(1h)}"
"""


def test_sums_exact_beyond_int64_and_fractions(tmp_path):
    plan = compile_pack(load_pack(make_pack(tmp_path, {"rule": SUM_RULE})), "CN")
    amounts = [0.1, 0.2, 0.3, 1e15, 9.9e14, 0.0001, 123456789.1234, 5e14, 0.7, 2.5]
    recs = [{"stream": "payment", "id": f"p{i}", "ts": f"2026-03-01T10:{i * 6:02d}:00Z", "payer_account": "A",
             "amount": a} for i, a in enumerate(amounts)]
    got, _ = stream_lines(plan, recs, chunk=3)
    assert got == batch_lines(plan, recs) and len(got) >= 5


def test_triggers_dropped_before_the_loop_change_nothing(samples_records):
    """StreamExecutor._unjoinable drops, over a release's columns of events, the triggers whose join value no
    held fact and no candidate of the step before has (most of them); the per-record loop would refuse each
    (_joinable). Alerts, matches, the held facts and durable-rules' facts are the same with it and without
    it, and it drops some: feed_many at 3 and 1,000 per call, and a release whose one call (the first step of
    TF-NOCALLBACK-001, its own stream) is what two payments join."""
    def run(recs: list[dict], batch: int, gate: bool) -> tuple:
        ex = StreamExecutor(PLAN)
        if not gate:
            ex._gated = []
        seen = []
        dropped = 0
        orig = ex._unjoinable

        def counting(ctx, rows_of):
            nonlocal dropped
            before = sum(len(e) for sb in ctx.values() for e in sb.events if e)
            orig(ctx, rows_of)
            dropped += before - sum(len(e) for sb in ctx.values() for e in sb.events if e)
        ex._unjoinable = counting
        for i in range(0, len(recs), batch):
            seen.append([json.dumps(a, sort_keys=True) for a in ex.feed_many(recs[i:i + batch])])
            seen.append((ex.live_facts, sorted(len(r.cands) for r in ex._rules)))
        seen.append([json.dumps(a, sort_keys=True) for a in ex.flush()])
        return seen, [(r.matches, r.joined, r.capped) for r in ex._rules], dict(ex.counters), dropped

    for batch in (3, 1000):
        with_gate, without = run(samples_records, batch, True), run(samples_records, batch, False)
        assert with_gate[:3] == without[:3]
        assert with_gate[3] > 0 and without[3] == 0
    pay = {"stream": "payment", "payer_phone": "+8613800000001", "payer_account": "A1", "payee_account": "B9",
           "currency": "CNY"}
    recs = [{"stream": "call", "id": "c1", "ts": "2026-03-01T10:00:00+08:00", "caller": "+85523900111",
             "callee": "+8613800000001", "direction": "in", "duration": 600},
            {**pay, "id": "p1", "ts": "2026-03-01T10:20:00+08:00", "amount": 48000},
            {**pay, "id": "p2", "ts": "2026-03-01T10:40:00+08:00", "amount": 20000},
            {"stream": "sms", "id": "s1", "ts": "2026-03-01T12:00:00+08:00", "sender": "+8613900000009",
             "receiver": "+8613900000010", "direction": "out"}]
    with_gate = run(recs, 4, True)
    assert with_gate[:3] == run(recs, 4, False)[:3]
    alerts = [json.loads(a) for a in with_gate[0][0] + with_gate[0][-1]]
    assert ("TF-NOCALLBACK-001", "p1") in [(a.get("rule_id"), a.get("record_id")) for a in alerts]


def test_a_release_leaves_no_reference_cycle_of_the_engines_own(samples_records):
    # What a release builds must be freed by reference counting: a cycle lives until a collection, and a
    # settled process (runtime/heap.py) may freeze it with the survivors. A batch's StreamBatch and its Env
    # were one, holding the release's rows and columns, and distinct_values made a ctypes type per length.
    # durable-rules' own action closures (Closure, Promise) are its cycles, not ours.
    import gc

    ex = StreamExecutor(PLAN)
    ex.feed_many(samples_records[:3000])  # warm: lazily built plans, caches and memos
    gc.collect()
    flags = gc.get_debug()
    gc.disable()
    try:
        gc.set_debug(gc.DEBUG_SAVEALL)
        alerts = []
        for i in range(3000, 9000, 1000):
            alerts += ex.feed_many(samples_records[i:i + 1000])
        gc.collect()
        ours = sorted({type(o).__name__ for o in gc.garbage
                       if type(o).__module__.startswith(("fraudrules", "_ctypes", "ctypes"))
                       or type(o).__name__ in ("PyCArrayType", "StgDict")})
    finally:
        gc.set_debug(flags)
        gc.garbage.clear()
        gc.enable()
    assert ex.counters["processed"] > 0 and ex.counters["records_in"] == 9000  # the releases did run
    assert ours == [], f"a release left cycles of {ours}"


FLOOR_RULES = {
    "distinct": """\
id: T-FLOOR-D
title: Three payees in an hour
score: 50
stream: payment
key: payer_account
where: distinct(payee_account, 1h) >= 3
explain: "{payer_account}: {distinct(payee_account, 1h)} payees"
""",
    "count": """\
id: T-FLOOR-C
title: More than two payments in an hour, read mirrored, and exactly two of 100 in ten minutes
score: 50
stream: payment
key: payer_account
where: 2 < count(1h) and count(10m, where=amount == 100) == 2
""",
    "sum": """\
id: T-FLOOR-S
title: A sum is no count, so it takes no floor
score: 10
stream: payment
key: payer_account
where: sum(amount, 1h) >= 250
""",
}


def test_a_key_holding_fewer_entries_than_a_check_needs_is_not_read(tmp_path):
    """rows.py step 3: before reading ``distinct(...) >= 3`` or ``2 < count(...)`` at a record, the entries its key
    holds must reach the bound, as no window counts more than that: such records are not read (the payer with
    two payments never is), the alerts equal batch's at every micro-batch size, and the payer with exactly three
    payees still alerts (the bound is inclusive). A sum takes no bound: 3 x 100 >= 250 at three entries."""
    plan = compile_pack(load_pack(make_pack(tmp_path, {n: r for n, r in FLOOR_RULES.items()})), "CN")
    pay = _payment
    recs = ([pay(f"a{i}", i, "A", f"B{i}") for i in range(3)]  # three payees: distinct reaches 3 at a2
            + [pay(f"b{i}", 10 + i, "Z", "B1") for i in range(2)]  # two payments: under every bound
            + [pay(f"c{i}", 20 + i, "C", "B1", 100 if i < 2 else 7) for i in range(4)])
    want = batch_lines(plan, recs)
    rules = {json.loads(line)["rule_id"] for line in want}
    assert {"T-FLOOR-D", "T-FLOOR-C", "T-FLOOR-S"} <= rules
    for chunk in (2, 3, 1000):
        got, read = _fed_counting_reads(plan, recs, chunk)
        assert got == want, chunk
        if chunk == 1000:  # one release: every entry is in before the bounds are read
            assert read and ("distinct", "Z") not in read and ("count", "Z") not in read, read


def _payment(rid: str, minute: int, payer: str, payee: str, amount: float = 100) -> dict:
    return {"stream": "payment", "id": rid, "ts": f"2026-03-01T10:{minute:02d}:00Z", "payer_account": payer,
            "payee_account": payee, "amount": amount, "currency": "CNY"}


def _fed_counting_reads(plan, recs: list[dict], chunk: int) -> tuple[list[str], list[tuple[str, object]]]:
    """The alert lines of ``recs`` fed ``chunk`` at a time, and (function, key) of every read of a window state."""
    ex = StreamExecutor(plan)
    read: list[tuple[str, object]] = []
    for spec, state in ex._aggs.items():
        def at(key, ts, q, _at=state.at, _func=spec.func, _read=read):
            _read.append((_func, key))
            return _at(key, ts, q)
        state.at = at
    got = []
    for i in range(0, len(recs), chunk):
        got.extend(ex.feed_many(recs[i:i + chunk]))
    got.extend(ex.flush())
    return [alert_line(a) for a in got], read


STAGED_RULES = {
    "first": """\
id: T-STAGE-A
title: Three payees in an hour, none of them paid 500 or more
score: 50
stream: payment
key: payer_account
where: distinct(payee_account, 1h) >= 3 and max(amount, 1h) < 500
explain: "{payer_account}: {distinct(payee_account, 1h)} payees, largest {max(amount, 1h)}"
""",
    "second": """\
id: T-STAGE-B
title: The same max read first, by another rule
score: 20
stream: payment
key: payer_account
where: max(amount, 1h) >= 50 and count(1h) >= 2
""",
}


STAGED_IDS = {"first": "T-STAGE-A", "second": "T-STAGE-B"}


def test_a_conjunct_is_read_only_where_the_conjuncts_before_it_hold(tmp_path):
    """rows.py step 4 (and _one): the conjuncts that read aggregates go one after the other. With T-STAGE-A alone,
    its max is read only at the records whose distinct passed: never at Z's, whose two payees fail it, and at A's
    from the third payee on. With T-STAGE-B too, the same max state is read by B's first conjunct and A's second,
    at records behind the cursor the other moved. The alerts equal batch's at every micro-batch size, both ways."""
    pay = _payment
    recs = ([pay(f"a{i}", i, "A", f"B{i}") for i in range(4)]  # distinct reaches 3 at a2, max 100 < 500: alerts
            + [pay(f"z{i}", 10 + i, "Z", f"B{i % 2}") for i in range(5)]  # two payees: A's max is never read here
            + [pay(f"c{i}", 20 + i, "C", f"B{i}", 600 if i == 0 else 60) for i in range(4)])  # max 600: fails A
    for names in (["first"], ["first", "second"]):
        plan = compile_pack(load_pack(make_pack(tmp_path / "-".join(names),
                                                {n: STAGED_RULES[n] for n in names})), "CN")
        want = batch_lines(plan, recs)
        assert {json.loads(line)["rule_id"] for line in want} == {STAGED_IDS[n] for n in names}
        assert {json.loads(line)["key"] for line in want if json.loads(line)["rule_id"] == "T-STAGE-A"} == {"A"}
        for chunk in (1, 2, 3, 1000):
            got, read = _fed_counting_reads(plan, recs, chunk)
            assert got == want, (names, chunk)
            if names == ["first"] and chunk in (1, 1000):  # one release of all (batch()), or one a record (_one())
                assert read.count(("distinct", "Z")) == 5 and ("max", "Z") not in read, (chunk, read)
                assert read.count(("max", "A")) == 2 and read.count(("max", "C")) == 2, (chunk, read)


SHARED_RULES = {
    "counts": """\
id: T-SHARE-C
title: A burst in ten minutes or many in an hour
score: 40
stream: payment
key: payer_account
where: count(10m) >= 3 or count(1h) >= 5
explain: "{payer_account}: {count(10m)} in 10m, {count(1h)} in 1h"
""",
    "sums": """\
id: T-SHARE-S
title: Much in half an hour, little on average over two hours
score: 30
stream: payment
key: payer_account
where: sum(amount, 30m) >= 500 and avg(amount, 2h) < 300
""",
    "other": """\
id: T-SHARE-W
title: Large payments in an hour (another where, so entries of its own)
score: 20
stream: payment
key: payer_account
where: count(1h, where=amount >= 200) >= 2
""",
}


def _fed_up_to(plan, recs: list[dict], cut: int, step: int) -> tuple[list[dict], dict]:
    """The alerts of ``recs[:cut]`` fed ``step`` at a time, and the executor's checkpoint after them (through JSON)."""
    ex = StreamExecutor(plan)
    out = []
    for i in range(0, cut, step):
        out.extend(ex.feed_many(recs[i:min(i + step, cut)]))
    return out, json.loads(json.dumps(ex.state_dict()))


def test_windows_of_the_same_entries_share_them(tmp_path):
    """aggregates.share_entries: count(10m) reads count(1h)'s entries, sum(30m) and avg(2h) one list, a
    count with another where= its own. The alerts equal batch's at every micro-batch size and one record
    at a time (the reader after the adder, rows.py), and across a checkpoint taken mid-stream; the shared
    entries are kept as long as the longest window needs them (payments spread over three hours)."""
    plan = compile_pack(load_pack(make_pack(tmp_path, SHARED_RULES)), "CN")
    rng = random.Random(5)
    recs = []
    for i in range(160):
        minute = i * 180 // 160 + rng.randrange(3)
        ts = f"2026-03-01T{10 + minute // 60:02d}:{minute % 60:02d}:00Z"
        recs.append({"stream": "payment", "id": f"p{i}", "ts": ts,
                     "payer_account": rng.choice("ABC"), "payee_account": f"B{rng.randrange(9)}",
                     "amount": rng.choice([50, 100, 150, 250, 400]), "currency": "CNY"})
    recs.sort(key=lambda r: r["ts"])
    want = batch_lines(plan, recs)
    assert {json.loads(line)["rule_id"] for line in want} == {"T-SHARE-C", "T-SHARE-S", "T-SHARE-W"}
    ex = StreamExecutor(plan)
    leaders = {(spec.func, spec.window_ns // NS_MIN): state.leader for spec, state in ex._aggs.items()}
    by_window = {(spec.func, spec.window_ns // NS_MIN, spec.where is None): state for spec, state in ex._aggs.items()}
    assert leaders[("count", 10)] is by_window[("count", 60, True)]
    assert by_window[("count", 60, False)].leader is None  # where=amount >= 200: its own entries
    assert leaders[("sum", 30)] is by_window[("avg", 120, True)]
    for chunk in (1, 3, 1000):
        got, _ = stream_lines(plan, recs, chunk=chunk)
        assert got == want, chunk
    out, state = _fed_up_to(plan, recs, 80, 7)
    # a follower's checkpoint holds its own window's entries, not its leader's: what the last release
    # (records 77-79) and later ones may still read
    oldest = {}
    for spec in ex._aggs:
        if spec.func == "count" and spec.where is None:
            data = dict(state["aggregates"])[spec_signature(spec)]
            oldest[spec.window_ns // NS_MIN] = min(e[0] for _, entries in data for e in entries)
    first = input_ts(recs, plan.schema)[77]
    assert oldest[10] > first - 10 * NS_MIN >= oldest[60]
    ex2 = StreamExecutor(plan)
    ex2.load_state(state)
    count_of = {(s.window_ns // NS_MIN, s.where is None): state for s, state in ex2._aggs.items() if s.func == "count"}
    assert count_of[(10, True)].keys is count_of[(60, True)].keys  # linked again to the loaded entries
    for i in range(80, len(recs), 7):
        out.extend(ex2.feed_many(recs[i:i + 7]))
    out.extend(ex2.flush())
    assert [alert_line(a) for a in out] == want


CURSOR_SHARED_RULES = {
    "spread": """\
id: T-SHARE-X
title: Amounts far apart in an hour, or a high median in half an hour
score: 40
stream: payment
key: payer_account
where: max(amount, 1h) - min(amount, 1h) >= 300 or median(amount, 30m) >= 300
explain: "{payer_account}: {min(amount, 1h)} to {max(amount, 1h)}, median {median(amount, 30m)}"
""",
    "payees": """\
id: T-SHARE-D
title: Many payees in ten minutes or in two hours
score: 30
stream: payment
key: payer_account
where: distinct(payee_account, 10m) >= 3 or distinct(payee_account, 2h) >= 7
""",
    "stddev": """\
id: T-SHARE-V
title: Amounts that vary over two hours, small on average in the last hour
score: 20
stream: payment
key: payer_account
where: stddev(amount, 2h) > 120 and avg(amount, 1h) < 250
""",
    "stddev_short": """\
id: T-SHARE-W
title: Amounts that vary in half an hour, with much paid in over two hours
score: 20
stream: payment
key: payee_account
where: stddev(amount, 30m) > 150 and avg(amount, 10m) >= 300 and sum(amount, 2h) >= 4000
""",
}


def test_cursor_windows_of_the_same_entries_share_them(tmp_path):
    """share_entries for the states that keep a cursor per key: min(1h) and median(30m) read max(1h)'s
    entries, distinct(10m) reads distinct(2h)'s, and avg(1h) reads stddev(2h)'s. A stddev(30m) keeps its own
    entries, apart from a longer sum(2h) of its key, whose entries lack the squares (avg(10m) reads the sum's).
    The leader trims and drops entries and keys under the followers' cursors, so the records run six hours with
    keys that go quiet longer than every window and come back: the alerts equal batch's at every micro-batch
    size, one record at a time, and across a checkpoint taken mid-stream."""
    plan = compile_pack(load_pack(make_pack(tmp_path, CURSOR_SHARED_RULES)), "CN")
    rng = random.Random(11)
    recs = []
    for i in range(700):
        minute = i * 360 // 700
        payer = rng.choice("AB" if 150 <= minute < 290 else "ABCD")  # C and D: quiet for over two hours
        ts = f"2026-03-01T{8 + minute // 60:02d}:{minute % 60:02d}:00Z"
        recs.append({"stream": "payment", "id": f"p{i}", "ts": ts,
                     "payer_account": payer, "payee_account": f"B{rng.randrange(12)}",
                     "amount": rng.choice([20, 50, 100, 150, 250, 400, 600]), "currency": "CNY"})
    want = batch_lines(plan, recs)
    assert {json.loads(line)["rule_id"] for line in want} == {"T-SHARE-X", "T-SHARE-D", "T-SHARE-V", "T-SHARE-W"}
    ex = StreamExecutor(plan)
    state_of = {(spec.func, spec.window_ns // NS_MIN): state for spec, state in ex._aggs.items()}
    assert state_of[("stddev", 30)].leader is None and state_of[("sum", 120)].leader is None
    assert state_of[("avg", 10)].leader is state_of[("sum", 120)]
    assert state_of[("min", 60)].leader is state_of[("max", 60)]
    assert state_of[("median", 30)].leader is state_of[("max", 60)]
    assert state_of[("distinct", 10)].leader is state_of[("distinct", 120)]
    assert state_of[("avg", 60)].leader is state_of[("stddev", 120)]
    for chunk in (1, 5, 64, 1000):
        got, _ = stream_lines(plan, recs, chunk=chunk)
        assert got == want, chunk
    out, state = _fed_up_to(plan, recs, 350, 9)
    ex2 = StreamExecutor(plan)
    ex2.load_state(state)
    again = {(s.func, s.window_ns // NS_MIN): st for s, st in ex2._aggs.items()}
    assert again[("min", 60)].keys is again[("max", 60)].keys  # linked again to the loaded entries
    for i in range(350, len(recs), 9):
        out.extend(ex2.feed_many(recs[i:i + 9]))
    out.extend(ex2.flush())
    assert [alert_line(a) for a in out] == want


def test_a_checkpoint_key_whose_window_holds_no_entry_loads_into_the_states_that_share_it(tmp_path):
    """A cursor state's checkpoint keeps a key's entries from its cursor's head (_dumped_lists), so a key whose
    window has moved past all of them is written with no entries. Loaded, the leader holds an empty list, and a
    follower reading it through its own window (own(): checkpoints, stats) took its first entry: an IndexError
    at the guard's next snapshot, found by test_absent's checkpoint property. The run goes on as if the key
    were absent."""
    plan = compile_pack(load_pack(make_pack(tmp_path, CURSOR_SHARED_RULES)), "CN")
    recs = [{"stream": "payment", "id": f"p{i}", "ts": f"2026-03-01T08:{i:02d}:00Z", "payer_account": "AB"[i % 2],
             "payee_account": f"B{i % 5}", "amount": 100 + 50 * (i % 7), "currency": "CNY"} for i in range(40)]
    want, _ = stream_lines(plan, recs, chunk=10)
    out, state = _fed_up_to(plan, recs, 20, 10)
    ex = StreamExecutor(plan)
    leader = next(spec_signature(s) for s, st in ex._aggs.items() if st.cursors is not None and st.leader is None
                  and any(other.leader is st for other in ex._aggs.values()))
    for sig, data in state["aggregates"]:
        if sig == leader:
            data.append(["gone", []])  # what _dumped_lists writes for a key whose cursor is past its entries
    ex.load_state(state)
    assert ex.state_dict()  # every state's own() over the shared, empty list
    for i in range(20, len(recs), 10):
        out.extend(ex.feed_many(recs[i:i + 10]))
    out.extend(ex.flush())
    assert [alert_line(a) for a in out] == want


def test_no_collection_runs_inside_a_call_and_the_callers_collector_setting_is_kept(samples_records):
    """A release's temporaries die with it, so the executor defers the collector over each call
    (runtime/heap.py::collection_deferred): with a young generation of 50 containers, a plain loop
    collects, a feed_many of the sample records does not, and afterwards the collector is as the
    caller left it -- on, or off."""
    import gc

    records = samples_records
    collections: list[int] = []

    def count(phase: str, info: dict) -> None:
        if phase == "start":
            collections.append(info["generation"])

    before = gc.get_threshold()
    gc.callbacks.append(count)
    try:
        gc.set_threshold(50, 10, 10)
        junk = [[i] for i in range(500)]  # the check of the check: this does collect
        assert collections
        ex = StreamExecutor(PLAN)
        inside, alerts = [], []
        for call, arg in ((ex.feed_many, records), (ex.intake, records[:1]), (ex.flush, None)):
            gc.collect()  # nothing pending before the call
            collections.clear()
            got = call() if arg is None else call(arg)
            inside.append(len(collections))  # read before anything here allocates (which may collect)
            alerts += got or []  # intake answers None
        assert inside == [0, 0, 0] and gc.isenabled()
        assert alerts  # it did evaluate
        gc.disable()
        StreamExecutor(PLAN).feed_many(records[:50])
        assert not gc.isenabled()  # left off, as the caller had it
        gc.enable()
        del junk
    finally:
        gc.callbacks.remove(count)
        gc.set_threshold(*before)
        gc.enable()


DISTINCT_RULE = """
id: T-DISTINCT
title: One caller reaches many numbers in an hour
severity: low
score: 10
stream: call
key: caller
where: distinct(callee, 1h) >= 12
explain: "{distinct(callee, 1h):.0f} numbers"
"""


def test_distinct_members_are_the_first_ten_in_the_window_with_its_total(tmp_path):
    """An alert's ``behind`` of a distinct lists the first MEMBERS_SHOWN values of the window in order of first
    appearance, with the window's total: the stream executor reads the window only up to the tenth value and
    takes the total from the candidate's own count (executor._members). Repeats come before the tenth value,
    and the window slides past the first numbers, so a read from the key's first entry or a total counted
    from the values shown would differ; batch is the oracle."""
    plan = compile_pack(load_pack(make_pack(tmp_path, {"rule": DISTINCT_RULE})), "CN")
    caller = "+8613800000001"
    # minute m calls number m // 2 (each twice in a row), then numbers 0-4 again at the end
    targets = [m // 2 for m in range(40)] + [0, 1, 2, 3, 4]
    recs = [{"stream": "call", "id": f"c{m:02d}", "ts": f"2026-03-01T10:{m:02d}:00Z", "caller": caller,
             "callee": f"+86139000000{n:02d}", "direction": "out", "duration": 30} for m, n in enumerate(targets)]
    recs[40:] = [{**r, "ts": f"2026-03-01T11:{20 + k:02d}:00Z"} for k, r in enumerate(recs[40:])]
    want = batch_lines(plan, recs)
    for chunk in (1, 7, 1000):
        got, _ = stream_lines(plan, recs, chunk=chunk)
        assert got == want
    behind = [json.loads(x)["conditions"][0]["behind"]["distinct(callee, 1h)"] for x in want]
    assert behind[0] == {"total": 12, "values": [f"+86139000000{n:02d}" for n in range(10)]}
    # the last alert's window, (10:24, 11:24], holds minutes 25-39 (numbers 12-19) and numbers 0-4 again
    assert behind[-1] == {"total": 13, "values": [f"+86139000000{n:02d}" for n in [*range(12, 20), 0, 1]]}
