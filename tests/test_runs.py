"""Repeated steps (``runs: n``, ``distinct: f``) and sequences of up to eight steps (#10 item 4).

The rules of tests/packs/runs put a run first, in the middle (with ``unless`` on it), last (with
``follows``, as the trigger), twice in one rule, and an eight-step sequence. Batch must agree with the
naive reference (tests/reference.py enumerates every run record by record, with itertools-free
recursion), the stream executor must write the same alert lines as batch, and a stream checkpoint taken
anywhere must resume to the same alerts. Explicit cases pin the boundaries of docs/design.md §5.
"""

from __future__ import annotations

import json
import pathlib
from unittest import mock

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fraudrules.executors.batch
import fraudrules.executors.stream.executor
from fraudrules.errors import FraudRulesError
from fraudrules.executors.stream import StreamExecutor
from fraudrules.io.records import records_from_dicts
from fraudrules.jobs.score import evaluate
from fraudrules.pack.lint import lint_pack
from fraudrules.pack.loader import load_pack
from fraudrules.runtime.alerts import alert_line
from fraudrules.runtime.plan import compile_pack
from tests.helpers import make_pack
from tests.reference import reference_matches
from tests.test_eval_errors import raising_hold
from tests.test_properties import engine_matches, record_lists, ts_text

PACK_DIR = pathlib.Path(__file__).parent / "packs" / "runs"
PACK = load_pack(PACK_DIR)
PLAN = compile_pack(PACK, "CN")
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def batch_lines(records: list[dict], plan=PLAN) -> list[str]:
    return [alert_line(a) for a in evaluate(plan, records_from_dicts(records, plan.schema, region="CN"))[0]]


def stream_lines(records: list[dict], plan=PLAN, chunk: int = 7, stop: int | None = None,
                 capped: list[int] | None = None) -> list[str]:
    """The stream executor's alert lines; with ``stop``, checkpointed after that many records, resumed
    in a fresh executor from the JSON of its state. ``capped`` receives the chain-cap refusals."""
    ex = StreamExecutor(plan, lateness=0)
    out = []
    for i in range(0, len(records), chunk):
        if stop is not None and i >= stop:
            if capped is not None:
                capped.append(ex.counters["chain_cap"])
            state = json.loads(json.dumps(ex.state_dict()))
            ex = StreamExecutor(plan, lateness=0)
            ex.load_state(state)
            stop = None
        out.extend(ex.feed_many(records[i: i + chunk]))
    out.extend(ex.flush())
    if capped is not None:
        capped.append(ex.counters["chain_cap"])
    return [alert_line(a) for a in out]


def ordered(records: list[dict]) -> list[dict]:
    """The records in the batch total order (ts, then input), as the stream executor must see them."""
    rs = records_from_dicts(records, PLAN.schema, region="CN")
    pos = sorted((int(t.columns["ts"].values[i]), int(t.seq[i]), int(t.line[i]))
                 for t in rs.tables.values() for i in range(t.n))
    return [records[line - 1] for _, _, line in pos]


SUBS = ["+8613800000001", "13800000001", "+8613800000002"]  # two subscribers, one written two ways
OTHERS = ["+85523900111", "+447700900123", "+88213000123"]
ACCOUNTS = ["A1", "M1", "B1", "B2"]


@st.composite
def dense(draw) -> list[dict]:
    """Records that make runs: two subscribers, few accounts and counterparts, a dense clock."""
    size = draw(st.sampled_from([4, 12, 25, 40, 50]))
    slots = draw(st.sampled_from([5, 20, 40]))
    out = []
    for i in range(size):
        stream = draw(st.sampled_from(["call", "call", "sms", "sms", "payment", "payment", "sim_event"]))
        r = {"stream": stream, "id": f"{stream[:2]}{i}", "ts": ts_text(draw(st.integers(0, slots - 1)), 0)}
        sub, other = draw(st.sampled_from(SUBS)), draw(st.sampled_from(OTHERS))
        direction = draw(st.sampled_from(["in", "in", "out"]))
        if stream == "call":
            r.update(caller=other, callee=sub, direction=direction, answered=draw(st.booleans()),
                     duration=draw(st.sampled_from([0, 4, 5, 60])))
        elif stream == "sms":
            r.update(sender=other, receiver=sub, direction=direction)
        elif stream == "payment":
            r.update(payer_phone=sub, payer_account=draw(st.sampled_from(ACCOUNTS)),
                     payee_account=draw(st.sampled_from(ACCOUNTS)), amount=draw(st.sampled_from([0, 50, 100, 5000])),
                     channel="app", currency="CNY")
        else:
            r.update(msisdn=sub, event=draw(st.sampled_from(["swap", "activation"])))
        out.append(r)
    return out


def assert_agree(records: list[dict]) -> None:
    got, want = engine_matches(records, PLAN), reference_matches(PLAN, records)
    problems = [f"{rid}: batch {got[rid]}, reference {want[rid]}" for rid in sorted(want) if got[rid] != want[rid]]
    assert not problems, "\n".join(problems)


@SETTINGS
@given(records=st.one_of(dense(), record_lists()))
def test_runs_and_eight_steps_agree_with_the_reference(records):
    assert_agree(records)


@SETTINGS
@given(records=st.one_of(dense(), record_lists()), chunk=st.sampled_from([1, 5, 50]), stop=st.integers(0, 60))
def test_stream_writes_the_batch_alerts_and_resumes_from_a_checkpoint(records, chunk, stop):
    records = ordered(records)
    want = batch_lines(records)
    capped: list[int] = []
    got = stream_lines(records, chunk=chunk, capped=capped)
    # past MAX_STREAM_CHAINS the stream refuses a step (counted) where batch still answers: the two agree
    # below that cap, and test_a_busy_key_past_the_chain_cap_is_an_error_not_a_silent_cut pins the cap itself
    assume(not any(capped))
    assert got == want
    assert stream_lines(records, chunk=chunk, stop=stop) == want


@SETTINGS
@given(records=st.one_of(dense(), record_lists()), chunk=st.sampled_from([1, 5, 50]), pick=st.integers(0, 999))
def test_a_rollback_leaves_the_stream_as_if_the_record_that_raised_never_came(records, chunk, pick):
    """One record raises once it is held as a step (its facts, runs and chain counts already changed): the guard
    reloads its snapshot, replays its journal and rejects the record, and the alerts are batch's over the other
    records. The chain cap is lowered so that a snapshot that counts chains otherwise than the run shows."""
    records = ordered(records)
    assume(records)
    rid = records[pick % len(records)]["id"]
    rest = [r for r in records if r["id"] != rid]
    with mock.patch.object(fraudrules.executors.stream.executor, "MAX_STREAM_CHAINS", 60):
        capped: list[int] = []
        want = stream_lines(rest, chunk=chunk, capped=capped)
        assume(not any(capped))
        assert want == batch_lines(rest)
        ex = StreamExecutor(PLAN, lateness=0)
        ex.on_eval_error = lambda rec, reason: None
        with mock.patch.object(fraudrules.executors.stream.executor.StreamExecutor, "_hold", raising_hold(rid)):
            got = []
            for i in range(0, len(records), chunk):
                got.extend(ex.feed_many(records[i: i + chunk]))
            got.extend(ex.flush())
    if not ex.rejected_records:  # never held as a step: it raised nowhere and counts like any record
        assert [alert_line(a) for a in got] == batch_lines(records)
        return
    assert [rec["id"] for rec, _ in ex.rejected_records] == [rid]
    assert ex.counters["chain_cap"] == 0
    assert [alert_line(a) for a in got] == want


# --- explicit boundaries -----------------------------------------------------------------------------

SUB, SUB2 = "+8613800000001", "+8613800000002"


def call(rid, minute, callee=SUB, caller="+85523900111", direction="in", answered=False, duration=0):
    return {"stream": "call", "id": rid, "ts": f"2026-03-01T10:{minute:02d}:00Z", "caller": caller,
            "callee": callee, "direction": direction, "answered": answered, "duration": duration}


def sms(rid, minute, receiver=SUB, sender="+85523900111"):
    return {"stream": "sms", "id": rid, "ts": f"2026-03-01T10:{minute:02d}:00Z", "sender": sender,
            "receiver": receiver, "direction": "in"}


def pay(rid, minute, phone=SUB, amount=100.0, payer="A1", payee="B9"):
    return {"stream": "payment", "id": rid, "ts": f"2026-03-01T10:{minute:02d}:00Z", "payer_phone": phone,
            "amount": amount, "payer_account": payer, "payee_account": payee, "channel": "app", "currency": "CNY"}


def swap(rid, minute, msisdn=SUB):
    return {"stream": "sim_event", "id": rid, "ts": f"2026-03-01T10:{minute:02d}:00Z", "msisdn": msisdn,
            "event": "swap"}


CASES = {
    "three calls then a payment": (
        [call("c1", 0), call("c2", 1), call("c3", 2), pay("p1", 5)], "R-RUN-FIRST", [("c1", "c2", "c3", "p1")]),
    "two calls (n-1) do not make a run": (
        [call("c1", 0), call("c2", 1), pay("p1", 5)], "R-RUN-FIRST", []),
    "the latest run: the three latest calls before the payment": (
        [call("c1", 0), call("c2", 1), call("c3", 2), call("c4", 3), pay("p1", 5)], "R-RUN-FIRST",
        [("c2", "c3", "c4", "p1")]),
    "within counts from the run's first record (45m inclusive)": (
        [call("c1", 0), call("c2", 10), call("c3", 20), pay("p1", 45)], "R-RUN-FIRST", [("c1", "c2", "c3", "p1")]),
    "a minute past within from the first call, though the third is close": (
        [call("c1", 0), call("c2", 10), call("c3", 20), pay("p1", 46)], "R-RUN-FIRST", []),
    "a call of another subscriber is not in the run": (
        [call("c1", 0), call("c2", 1, callee=SUB2), call("c3", 2), pay("p1", 5)], "R-RUN-FIRST", []),
    "distinct: the same sender twice counts once": (
        [swap("w1", 0), sms("s1", 1), sms("s2", 2), pay("p1", 5)], "R-RUN-MIDDLE", []),
    "distinct: two senders, the latest record of each": (
        [swap("w1", 0), sms("s1", 1, sender="+85523900111"), sms("s2", 2, sender="+447700900123"),
         sms("s3", 3, sender="+447700900123"), pay("p1", 5)], "R-RUN-MIDDLE", [("w1", "s1", "s3", "p1")]),
    "a run record before the previous step does not count": (
        [sms("s1", 0, sender="+85523900111"), swap("w1", 1), sms("s2", 2, sender="+447700900123"), pay("p1", 5)],
        "R-RUN-MIDDLE", []),
    "unless between the run's first record and the trigger cancels": (
        [swap("w1", 0), sms("s1", 1, sender="+85523900111"), call("u1", 2, direction="out"),
         sms("s2", 3, sender="+447700900123"), pay("p1", 5)], "R-RUN-MIDDLE", []),
    "unless before the run but after the first step cancels too": (
        [swap("w1", 0), call("u1", 1, direction="out"), sms("s1", 2, sender="+85523900111"),
         sms("s2", 3, sender="+447700900123"), pay("p1", 5)], "R-RUN-MIDDLE", []),
    "unless before the first step does not": (
        [call("u1", 0, direction="out"), swap("w1", 1), sms("s1", 2, sender="+85523900111"),
         sms("s2", 3, sender="+447700900123"), pay("p1", 5)], "R-RUN-MIDDLE", [("w1", "s1", "s2", "p1")]),
    "a run that triggers: three payees after the inflow": (
        [pay("i1", 0, payer="X", payee="M1"), pay("o1", 1, payer="M1", payee="B1"),
         pay("o2", 2, payer="M1", payee="B2"), pay("o3", 3, payer="M1", payee="B1"),
         pay("o4", 4, payer="M1", payee="B3")],
        "R-RUN-LAST", [("i1", "o2", "o3", "o4")]),
    "an outflow before the inflow is not in the run": (
        [pay("o1", 0, payer="M1", payee="B1"), pay("i1", 1, payer="X", payee="M1"),
         pay("o2", 2, payer="M1", payee="B2"), pay("o3", 3, payer="M1", payee="B3")],
        "R-RUN-LAST", []),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_boundaries(name):
    records, rule_id, want = CASES[name]
    assert [c for c, _ in reference_matches(PLAN, records)[rule_id]] == want
    assert [c for c, _ in engine_matches(records, PLAN)[rule_id]] == want
    lines = batch_lines(records)
    assert stream_lines(ordered(records), chunk=1) == lines


def test_a_null_distinct_value_is_in_no_run_and_leaves_no_state():
    """A candidate of a distinct run step without the value: no run, no state kept for its key (a state
    left empty once made the stream executor's release of old state raise)."""
    records = [sms("s0", 0, sender=None), sms("s1", 1), swap("w1", 2), sms("s2", 3, sender=None),
               sms("s3", 4, sender="+447700900123"), sms("s4", 5), pay("p1", 9)]
    ex = StreamExecutor(PLAN, lateness=0)
    out = []
    for r in records:
        out += ex.feed(r)
    out += ex.flush()
    assert not ex.rejected_records
    assert [alert_line(a) for a in out] == batch_lines(records)
    assert [c for c, _ in engine_matches(records, PLAN)["R-RUN-MIDDLE"]] == [("w1", "s3", "s4", "p1")]


def test_an_eight_step_sequence_fires_on_both_executors():
    records = [call("c1", 0, duration=5), call("c2", 1), call("c3", 2), sms("s1", 3), sms("s2", 4), call("c4", 5),
               call("c5", 6, duration=5), pay("p1", 7)]
    want = [("c1", "c2", "c3", "s1", "s2", "c4", "c5", "p1")]
    assert [c for c, _ in reference_matches(PLAN, records)["R-SEQ8"]] == want
    assert [c for c, _ in engine_matches(records, PLAN)["R-SEQ8"]] == want
    assert stream_lines(records, chunk=1) == batch_lines(records)
    records[6] = call("c5", 6, duration=4)  # s7.duration >= s1.duration fails
    assert engine_matches(records, PLAN)["R-SEQ8"] == []


def test_the_alert_lists_every_record_of_the_run():
    records = [swap("w1", 0), sms("s1", 1, sender="+85523900111"), sms("s2", 2, sender="+447700900123"),
               sms("s3", 3, sender="+447700900123"), pay("p1", 5)]
    lines = batch_lines(records)
    assert stream_lines(records, chunk=1) == lines
    alert = next(a for a in map(json.loads, lines) if a["rule_id"] == "R-RUN-MIDDLE")
    sms_step = next(e for e in alert["evidence"] if e["step"] == "sms")
    assert sms_step["id"] == "s3"  # the alias reads the run's last record
    assert sms_step["run"] == [
        {"id": "s1", "ts": "2026-03-01T10:01:00Z", "sender": "+85523900111"},
        {"id": "s3", "ts": "2026-03-01T10:03:00Z", "sender": "+447700900123"},
    ]
    assert all("run" not in e for e in alert["evidence"] if e["step"] != "sms")


def test_a_busy_key_past_the_chain_cap_is_an_error_not_a_silent_cut():
    """Eight steps on one key: the partial chains grow like n^j. Past the cap batch stops with an error
    naming the rule; the stream executor refuses the record as that step before durable-rules joins it,
    counts it and says why (the record stays for every other rule and step)."""
    records = [call(f"c{i}", i) for i in range(5)] + [sms(f"s{i}", 5 + i) for i in range(2)] + \
        [call(f"d{i}", 7 + i) for i in range(2)] + [pay("p1", 9)]
    with mock.patch.object(fraudrules.executors.batch, "MAX_CHAINS", 5):
        with pytest.raises(FraudRulesError, match="R-SEQ8: more than 5 partial chains at step .* on one key"):
            engine_matches(records, PLAN)
    ex = StreamExecutor(PLAN, lateness=0)
    said: list[tuple[str, str]] = []
    ex.on_chain_cap = lambda rid, reason: said.append((rid, reason))
    with mock.patch.object(fraudrules.executors.stream.executor, "MAX_STREAM_CHAINS", 5):
        for r in records:
            ex.feed(r)
        ex.flush()
    assert said, "the cap was not hit"
    assert all("R-SEQ8: more than 5 partial chains at step" in r and "on one key" in r for _, r in said), said
    assert ex.stats["chain_cap"] == len(said) == ex.stats["by_rule"]["R-SEQ8"]["chain_cap"]
    assert not ex.rejected_records  # the records stay whole: R-RUN-FIRST still sees every call
    assert ex.stats["by_rule"]["R-RUN-FIRST"]["matches"] == 1
    # under the cap both executors find the chain
    assert [c for c, _ in engine_matches(records, PLAN)["R-SEQ8"]] == [("c2", "c3", "c4", "s0", "s1", "d0", "d1", "p1")]
    assert stream_lines(records, chunk=1) == batch_lines(records)


def test_a_checkpoint_counts_the_partial_chains_as_the_run_that_wrote_it():
    """A call is a candidate of five of R-SEQ8's steps, taken as the later step first, so that it cannot chain
    with itself. A checkpoint must hold them again in that order: held as the earlier step first, each call
    counted among the partial chains its own later steps end, and a restart refused steps (past the cap) that
    the run without one took, and lost its alerts (found by hypothesis, seed 35)."""
    records = [call(f"c{i}", i) for i in range(5)] + [sms(f"s{i}", 5 + i) for i in range(2)] + \
        [call(f"d{i}", 7 + i) for i in range(2)] + [pay("p1", 9)]
    with mock.patch.object(fraudrules.executors.stream.executor, "MAX_STREAM_CHAINS", 40):
        capped: list[int] = []
        straight = stream_lines(records, chunk=1, capped=capped)
        assert capped == [0] and straight == batch_lines(records) and straight, "the cap must not bind straight"
        for stop in range(1, len(records)):
            capped = []
            assert stream_lines(records, chunk=1, stop=stop, capped=capped) == straight, stop
            assert capped[-1] == 0, (stop, capped)


# --- lint -------------------------------------------------------------------------------------------

SEQ = """
id: R-1
title: t
score: 10
status: experimental
sequence:
  within: 1h
  steps:
    - as: a
      stream: call
      key: callee
{extra}      where: direction == "in"
    - as: b
      stream: payment
      key: payer_phone
"""


def errors(tmp_path, text: str) -> list[str]:
    return [str(f) for f in lint_pack(make_pack(tmp_path, {"r": text}))]


@pytest.mark.parametrize("extra, message, where", [
    ("      runs: 0\n", "runs must be an integer in 1..100", "r.yaml:12:13"),
    ("      runs: 101\n", "runs must be an integer in 1..100", "r.yaml:12:13"),
    ("      runs: many\n", "runs must be an integer in 1..100", "r.yaml:12:13"),
    ("      distinct: caller\n", "distinct needs runs", "r.yaml:12:17"),
    ("      runs: 3\n      distinct: calller\n",
     "distinct: stream 'call' has no field 'calller'; did you mean 'caller'?", "r.yaml:13:17"),
])
def test_run_errors_are_reported_at_their_place(tmp_path, extra, message, where):
    found = errors(tmp_path, SEQ.format(extra=extra))
    assert any(message in f and where in f and "error" in f for f in found), found


def test_a_run_step_reads_only_its_own_records(tmp_path):
    text = SEQ.format(extra="").replace("""      key: payer_phone
""", """      key: payer_phone
      runs: 2
      where: amount > 0 and minutes(ts - a.ts) < 5
""")
    found = errors(tmp_path, text)
    assert any("step 'b' repeats (runs: 2): its where reads only its own records, not a.ts" in f
               and "r.yaml:17:" in f for f in found), found


def test_a_single_stream_rule_cannot_repeat_and_is_told_to_count(tmp_path):
    text = """
id: R-1
title: t
score: 10
status: experimental
stream: call
key: callee
runs: 5
where: direction == "in"
"""
    found = errors(tmp_path, text)
    assert any("'runs' repeats a step of a sequence" in f and "count(w) >= n" in f and "r.yaml:8:1" in f
               for f in found), found


def test_a_sequence_has_at_most_eight_steps(tmp_path):
    steps = "".join(f"    - {{as: s{i}, stream: call, key: callee}}\n" for i in range(9))
    text = f"id: R-1\ntitle: t\nscore: 10\nstatus: experimental\nsequence:\n  within: 1h\n  steps:\n{steps}"
    found = errors(tmp_path, text)
    assert any("a sequence has 2 to 8 steps" in f and "r.yaml:8:" in f for f in found), found
    eight = text.replace("    - {as: s8, stream: call, key: callee}\n", "")
    assert not [f for f in errors(tmp_path, eight) if "error" in f]


def test_the_guides_example_rule_passes_its_inline_cases_on_both_executors(tmp_path):
    """docs/rules.md §3 shows a whole rule with a run in the middle and its boundary cases (n-1 senders, a
    sender twice, an SMS before the swap): it loads and its cases pass on every executor."""
    import re
    import shutil

    from fraudrules.jobs.rule_tests import EXECUTORS, run_rule_tests
    from tests.helpers import REPO

    guide = (REPO / "docs" / "rules.md").read_text()
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", guide, re.S) if b.startswith("id: EX-SWAP-CODES")]
    shutil.copy(REPO / "rules" / "streams.yaml", tmp_path / "streams.yaml")
    (tmp_path / "example.yaml").write_text(block)
    pack = load_pack(tmp_path)
    report = run_rule_tests(pack)
    assert len(report.results) == 4 * len(EXECUTORS)
    assert all(r.passed for r in report.results), [(r.case.name, r.executor, r.actual) for r in report.results]
    assert not report.disagreements
