"""Absence (``sequence: absent:``, issue #10 item 5; docs/design.md §5 "Absence", §8).

A chain alerts at its deadline D = ts(last step) + T when no absent record of its join value lies
after the last step with ts <= D, and only once event time has passed D. Checked here: the
checker's errors, the alert itself (ts, key, order in the file, score), the stream executor
against batch with lateness, in micro-batches and from a checkpoint taken while a deadline is
pending, and runs and chunks (a later run fires what an earlier one could not know, once).
tests/test_properties.py checks batch against the reference model (P-ABSENT, P-ABSENT1 and the
boundary cases), tests/test_stream.py stream against batch on the props pack.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudrules.errors import RuleErrors
from fraudrules.executors.stream import StreamExecutor
from fraudrules.io.records import parse_inputs, records_from_dicts
from fraudrules.jobs.score import score_job, score_records
from fraudrules.runtime.alerts import alert_line
from fraudrules.runtime.plan import compile_pack
from tests.helpers import cut_by_ts, input_ts, sliced_results
from tests.test_history import REPO, write_slices
from tests.test_properties import PLAN as PROPS_PLAN
from tests.test_properties import record_lists
from tests.test_stream import PACK, PLAN, batch_lines, stream_lines

SUB, CALLER = "+8613800000001", "+85523900111"
BASE = dt.datetime(2026, 3, 1, 2, 0, tzinfo=dt.timezone.utc)

RULE = """\
id: T-ABS
title: t
score: 10
sequence:
{sequence}
"""
ABSENT = """\
  absent:
    as: back
    stream: call
    key: caller
    within: 30m
    where: callee in @bank_hotlines
"""
TWO_STEPS = """\
  within: 1h
  steps:
    - as: call
      stream: call
      key: callee
      where: direction == "in"
    - as: pay
      stream: payment
      key: payer_phone
      where: amount >= 100
"""


def rec(stream: str, rid: str, minute: float, **fields) -> dict:
    return {"stream": stream, "id": rid, "ts": (BASE + dt.timedelta(minutes=minute)).isoformat(), **fields}


def errors(load_rule, text: str) -> list[str]:
    with pytest.raises(RuleErrors) as info:
        load_rule(text, {"bank_hotlines": "kind: exact\nvalues: ['95588']\n"})
    return [str(e)[str(e).index("rule.yaml"):] for e in info.value.errors]


# --- the checker -------------------------------------------------------------------------------

@pytest.mark.parametrize("sequence, error", [
    (TWO_STEPS + ABSENT.replace("    within: 30m\n", ""),
     "rule.yaml:16:5: error: absent needs 'within': how long after the last step the record must not come (e.g. 30m)"),
    (TWO_STEPS + ABSENT.replace("within: 30m", "within: 0s"),
     "rule.yaml:19:13: error: absent: within must be longer than 0"),
    (TWO_STEPS + ABSENT.replace("stream: call", "stream: calls"),
     "rule.yaml:17:13: error: absent: unknown stream 'calls' (streams: call, sms, sim_event, payment)"),
    (TWO_STEPS + ABSENT.replace("key: caller", "key: imsi"),
     "rule.yaml:18:10: error: step 'back': key imsi (string) joins the previous step's key 'pay' payer_phone (phone): "
     "these never hold equal values, so the rule can never match (join a phone field to a phone field, e.g. "
     "payer_phone)"),
    (TWO_STEPS + ABSENT.replace("as: back", "as: pay"), "rule.yaml:16:5: error: alias 'pay' is used twice"),
    (TWO_STEPS + ABSENT.replace("where: callee in @bank_hotlines", "where: callee == pay.payer_phone"),
     "rule.yaml:20:22: error: the absent step's where reads its own fields only, not pay.payer_phone: it is "
     "matched by its key (or follows:), not by other steps"),
    (TWO_STEPS + ABSENT.replace("where: callee in @bank_hotlines", "where: count(1h) > 1"),
     "rule.yaml:20:12: error: aggregate count() is not allowed in absent"),
    (TWO_STEPS + ABSENT + "    follows: pay.amout\n",
     "rule.yaml:21:14: error: absent: follows: stream 'payment' has no field 'amout'"),
    (TWO_STEPS + ABSENT + "    follows: cal.callee\n",
     "rule.yaml:21:14: error: absent: follows: unknown alias 'cal' (steps: call, pay)"),
    (TWO_STEPS + ABSENT + "    on: pay\n",
     "rule.yaml:21:5: error: unknown key 'on' in absent (allowed: as, follows, key, stream, where, within)"),
    ("  within: 1h\n  steps:\n    - {as: pay, stream: payment, key: payer_phone, where: amount >= 100}\n" + ABSENT,
     "rule.yaml:5:3: error: within bounds the positive steps, and this sequence has one: remove it "
     "(the absence has its own within)"),
    ("  steps:\n    - {as: pay, stream: payment, key: payer_phone, where: amount >= 100}\n",
     "rule.yaml:5:3: error: a sequence needs 'within' (e.g. within: 1h)"),
    ("  steps:\n    - {as: pay, stream: payment, key: payer_phone, where: amount >= 100}\n"
     "  unless: {stream: call, key: caller}\n" + ABSENT,
     "rule.yaml:7:11: error: unless needs two positive steps (it cancels a chain between its first and last step); "
     "with one step, fold the condition into its where"),
])
def test_checker_errors_say_where(load_rule, sequence, error):
    assert error in errors(load_rule, RULE.format(sequence=sequence))


def test_an_absence_with_one_step_and_follows_loads(load_rule):
    text = RULE.format(sequence="  steps:\n    - {as: pay, stream: payment, key: payer_account}\n"
                       "  absent: {as: out, stream: payment, key: payer_account, follows: pay.payee_account, "
                       "within: 1h}\n")
    pack = load_rule(text)
    rp = compile_pack(pack).rules[0]
    assert rp.absent.source == (0, "payee_account") and rp.absent.within_ns == 3600 * 10**9
    assert "payee_account" in rp.steps[0].fields  # the alert shows the value it waited for


# --- the alert ---------------------------------------------------------------------------------

CASE = [
    rec("call", "c1", 0, caller=CALLER, callee=SUB, direction="in", duration=600),
    rec("payment", "p1", 20, payer_phone=SUB, payer_account="A1", payee_account="B9", amount=48000, currency="CNY"),
    rec("payment", "p9", 50, payer_phone="+8613900000009", payer_account="Z1", payee_account="Z2", amount=5,
        currency="CNY"),
    rec("sms", "s1", 50.5, sender="+8613900000009", receiver="+8613900000010", direction="out"),
]


def test_the_alert_is_at_its_deadline_after_every_record_of_that_ts():
    lines = batch_lines(PLAN, CASE)
    alerts = [json.loads(line) for line in lines]
    ours = [a for a in alerts if a["rule_id"] == "TF-NOCALLBACK-001"]
    assert len(ours) == 1
    a = ours[0]
    assert a["ts"] == "2026-03-01T02:50:00Z" and a["record_id"] == "p1" and a["key"] == SUB
    assert a["conditions"][-1] == {"step": "callback", "expr": "no call record where callee in @bank_hotlines "
                                   "within 30m", "values": {}, "absent": True}
    assert [e["id"] for e in a["evidence"]] == ["c1", "p1"]
    # a shadow rule: no record's score, the rule's own weight is 0
    assert (a["risk_score"], a["decision"]) == (0, "allow")
    # placed after p9 (ts == D) and before s1 (the first record past D), whatever rules fire there
    assert stream_lines(PLAN, CASE)[0] == lines


def test_no_alert_while_event_time_has_not_passed_the_deadline():
    assert not any("TF-NOCALLBACK-001" in line for line in batch_lines(PLAN, CASE[:3]))
    got, ex = stream_lines(PLAN, CASE[:3], lateness=0)
    assert not any("TF-NOCALLBACK-001" in line for line in got)
    assert ex.stats["by_rule"]["TF-NOCALLBACK-001"]["matches"] == 0


def test_absence_alerts_score_no_record():
    rs = records_from_dicts(CASE, PACK.schema, region="CN")
    result = score_records(PLAN, rs)
    assert result.matches["TF-NOCALLBACK-001"] == 1
    assert "TF-NOCALLBACK-001" not in " ".join(result.scored["rules"].astype(str))


# --- stream against batch ----------------------------------------------------------------------

@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(records=record_lists(), lateness=st.sampled_from([0, 180, 900]), chunk=st.sampled_from([1, 3, 50]))
def test_stream_with_lateness_equals_batch(records, lateness, chunk):
    """Records arrive up to ``lateness`` out of order: timers fire when the watermark passes D, and the
    alert file is the batch's, byte for byte (the props pack: P-ABSENT, P-ABSENT1 and the rest)."""
    want = batch_lines(PROPS_PLAN, records)
    arrival = tie_keeping_jitter(records, lateness, seed=len(records))
    got, ex = stream_lines(PROPS_PLAN, arrival, lateness=lateness, chunk=chunk)
    assert not ex.late_records
    assert got == want


def test_a_deadline_waits_for_the_watermark_not_the_newest_record():
    """With lateness, records newer than the watermark are held, not yet processed: a deadline between the
    watermark and the newest ts must wait, or a callback that arrives late but in time is missed."""
    callback = rec("call", "c2", 35, caller=SUB, callee="95588", direction="out", duration=60)
    later = rec("sms", "s9", 60, sender="+8613900000009", receiver="+8613900000010", direction="out")
    records = [*CASE[:2], callback, later]
    assert not any("TF-NOCALLBACK-001" in line for line in batch_lines(PLAN, records))
    arrival = [*CASE[:2], later, callback]  # the callback 25 minutes behind the newest record
    for chunk in (1, 4):
        got, ex = stream_lines(PLAN, arrival, lateness=30 * 60, chunk=chunk)
        assert not ex.late_records
        assert got == batch_lines(PLAN, records), chunk


def tie_keeping_jitter(records: list[dict], lateness_s: float, seed: int) -> list[dict]:
    """An arrival order at most ``lateness_s`` behind the newest ts, in which records of one ts keep
    their input order (the stream orders ties by arrival, batch by input position)."""
    ts = input_ts(records, PACK.schema)
    rnd = random.Random(seed)
    delay = {v: rnd.uniform(0, lateness_s * 1e9) for v in sorted(set(ts.values()))}
    return [records[i] for i in sorted(range(len(records)), key=lambda i: (ts[i] + delay[ts[i]], i))]


def _deadline_pending(ex: StreamExecutor) -> bool:
    return any(r.waiting for r in ex._absent_rules)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(records=record_lists(), cut=st.integers(0, 60), lateness=st.sampled_from([0, 300]))
def test_checkpoint_carries_pending_deadlines(records, cut, lateness):
    """A stream stopped anywhere and resumed from its JSON checkpoint gives the uninterrupted alerts."""
    arrival = tie_keeping_jitter(records, lateness, seed=cut)
    want, _ = stream_lines(PROPS_PLAN, arrival, lateness=lateness, chunk=5)
    cut = min(cut, len(arrival))
    ex = StreamExecutor(PROPS_PLAN, lateness=lateness)
    out = [a for i in range(0, cut, 5) for a in ex.feed_many(arrival[i: min(i + 5, cut)])]
    state = json.loads(json.dumps(ex.state_dict(), allow_nan=False))
    ex2 = StreamExecutor(PROPS_PLAN, lateness=lateness)
    ex2.load_state(state)
    assert sum(len(r.waiting) for r in ex2._absent_rules) == sum(len(r.waiting) for r in ex._absent_rules)
    for i in range(cut, len(arrival), 5):
        out.extend(ex2.feed_many(arrival[i: i + 5]))
    out.extend(ex2.flush())
    assert [alert_line(a) for a in out] == want


def test_checkpoint_with_a_pending_deadline_explicitly():
    ex = StreamExecutor(PLAN, lateness=0)
    out = ex.feed_many(CASE[:2])  # TF-APP-001 alerts at p1; the absence waits
    assert _deadline_pending(ex)
    state = json.loads(json.dumps(ex.state_dict()))
    assert any(r["timers"] for r in state["rule_state"])
    ex2 = StreamExecutor(PLAN, lateness=0)
    ex2.load_state(state)
    out += ex2.feed_many(CASE[2:]) + ex2.flush()
    assert [alert_line(a) for a in out] == batch_lines(PLAN, CASE)
    assert not _deadline_pending(ex2)


BOUNDED_AT_THE_LAST_STEP = """\
  within: 1h
  steps:
    - as: swap
      stream: sim_event
      key: msisdn
      where: event == "swap"
    - as: pay
      stream: payment
      key: payer_phone
      where: count(3m, where=ts > swap.ts) >= 2
  absent:
    as: back
    stream: call
    key: caller
    within: 5m
    where: callee in @bank_hotlines
explain: "{pay.count(3m, where=ts > swap.ts)} payments since the swap"
"""


def test_a_window_from_an_earlier_step_is_read_at_the_deadline_whatever_expired(load_rule):
    """An absence's alert is built at its deadline, ``within`` after its last step, and a window bounded by an
    earlier step (``where=ts > swap.ts``) is read from its entries then. They must outlive their own window
    by that much: the stream's alert once said 0 payments here, fed the five records at once or resumed
    from a checkpoint, as the state let go of the payments once their 3m had passed (found by
    tests/test_random_rules.py)."""
    pack = load_rule(RULE.format(sequence=BOUNDED_AT_THE_LAST_STEP),
                     {"bank_hotlines": "kind: exact\nvalues: ['95588']\n"})
    plan = compile_pack(pack, "CN")
    records = [rec("sim_event", "s1", 0, msisdn=SUB, event="swap"),
               rec("payment", "p1", 1, payer_phone=SUB, amount=100),
               rec("payment", "p2", 2, payer_phone=SUB, amount=100),  # the trigger: D at minute 7
               rec("payment", "p3", 6, payer_phone=CALLER, amount=1),  # p1 and p2 are out of the 3m window
               rec("sms", "x1", 30, sender=CALLER, receiver=SUB)]  # event time passes D
    want = batch_lines(plan, records)
    assert [json.loads(line)["explain"] for line in want] == ["2 payments since the swap"]
    for chunk in (1, 5):
        assert stream_lines(plan, records, lateness=0, chunk=chunk)[0] == want, chunk
    ex = StreamExecutor(plan, lateness=0)
    out = ex.feed_many(records[:3]) + ex.feed_many(records[3:4])
    ex2 = StreamExecutor(plan, lateness=0)
    ex2.load_state(json.loads(json.dumps(ex.state_dict())))
    assert [alert_line(a) for a in out + ex2.feed_many(records[4:]) + ex2.flush()] == want


def test_end_of_input_fires_up_to_the_largest_ts_only():
    ex = StreamExecutor(PLAN, lateness=math.inf)
    out = ex.feed_many(CASE[:3]) + ex.flush()  # the largest ts is D itself: not passed
    assert not any(a["rule_id"] == "TF-NOCALLBACK-001" for a in out)
    assert _deadline_pending(ex)


# --- runs and chunks (docs/design.md §8) -------------------------------------------------------

def _split_lines(records: list[dict], bound: int) -> list[str]:
    """Alert lines of ``records`` scored as two slices, the second continuing the first's Context."""
    parts = cut_by_ts(records, PROPS_PLAN.schema, [bound])
    return [alert_line(a) for result in sliced_results(PROPS_PLAN, parts) for a in result.alerts]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(records=record_lists(), bound=st.integers(0, 40))
def test_two_slices_equal_one_run(records, bound):
    """An absence whose chain lies in the first slice and whose deadline passes in the second fires
    there, once: the alert bytes of one run, however the records are cut."""
    assert _split_lines(records, bound) == batch_lines(PROPS_PLAN, records)


def test_two_slices_where_every_asked_key_is_null():
    """Found by the property above: the second slice's only records with a count over another stream
    (calls counted by caller over sms by sender) have neither a caller nor a sender; the narrowed
    index of asked keys was then empty and indexing it failed."""
    records = [
        {"stream": "sms", "ts": "2026-03-01T18:27:00+08:00", "sender": None, "receiver": "+88213000123",
         "direction": "out", "id": "sm2"},
        {"stream": "call", "ts": "2026-03-01T09:57:00+00:00", "caller": "13800000002", "callee": "13800000001",
         "direction": "in", "duration": 0, "id": "ca10"},
        {"stream": "call", "ts": "2026-03-01T18:27:00+08:00", "callee": "13800000001", "direction": "out",
         "duration": 0, "answered": None, "id": "ca13"},
        {"stream": "call", "ts": "2026-03-01T09:18:00+00:00", "caller": "+88213000123",
         "callee": "+86 138 0000 0001", "direction": "in", "duration": 0, "answered": True, "id": "ca17"},
        {"stream": "call", "ts": "2026-03-01T09:09:00+00:00", "caller": "95588", "callee": "+8613800000001",
         "direction": "in", "duration": 0, "answered": True, "id": "ca18"},
    ]
    assert _split_lines(records, 10) == batch_lines(PROPS_PLAN, records)


def test_a_chain_a_whole_within_back_is_kept_for_its_deadline(load_rule):
    """The store keeps an absence's first step for the sequence's within plus the absence's: the call (minute 0)
    and the transfer (minute 50, within 1h) are in the first slice, whose newest record is at minute 55; the
    deadline (minute 80) passes in the second slice, which must still hold the call, 55 minutes back, to write
    the chain. A horizon of within minus the absence's 30m would have dropped it."""
    pack = load_rule(RULE.format(sequence=TWO_STEPS + ABSENT), {"bank_hotlines": "kind: exact\nvalues: ['95588']\n"})
    plan = compile_pack(pack, "CN")
    other = "+8613800000009"
    records = [rec("call", "c1", 0, caller=CALLER, callee=SUB, direction="in", duration=60),
               rec("payment", "p1", 50, payer_phone=SUB, payer_account="A1", amount=500),
               rec("payment", "p2", 55, payer_phone=other, payer_account="A2", amount=1),
               rec("payment", "p3", 100, payer_phone=other, payer_account="A2", amount=1)]
    want = batch_lines(plan, records)
    assert [[e["id"] for e in json.loads(line)["evidence"]] for line in want] == [["c1", "p1"]]
    assert [alert_line(a) for r in sliced_results(plan, [records[:3], records[3:]]) for a in r.alerts] == want


def test_runs_cut_between_a_transfer_and_its_deadline(tmp_path):
    """Samples in two runs with a store, cut at 16:00 on 1 March: TF-NOCALLBACK-001's transfer
    p000000737 (15:40:53) is in the first run, its deadline (16:10:53) passes in the second."""
    from tests.test_history import score_slices

    pack = PACK
    sample_frames = {s.stream: pd.read_csv(s.path, dtype=str, keep_default_na=False)
                     for s in parse_inputs([str(REPO / "samples")], pack.schema)}

    specs = parse_inputs([str(REPO / "samples")], pack.schema)
    _, paths = score_job(REPO / "rules", specs, tmp_path / "one", pack=pack)
    want = paths["alerts"].read_text(encoding="utf-8").splitlines()
    folders = write_slices(sample_frames, [pd.Timestamp("2026-03-01T16:00:00", tz="UTC")], tmp_path / "runs")
    first = score_job(REPO / "rules", parse_inputs([str(folders[0])], pack.schema), tmp_path / "o0", pack=pack,
                      history=tmp_path / "h0")[1]["alerts"].read_text(encoding="utf-8")
    assert "p000000737" not in first
    alerts, _ = score_slices(pack, folders, tmp_path / "hist", tmp_path)
    assert alerts == want
    assert sum('"record_id":"p000000737"' in a and "TF-NOCALLBACK-001" in a for a in alerts) == 1


# --- the example of docs/rules.md --------------------------------------------------------------

def _simbox_records(sms_at_day: float | None, last_day: float) -> list[dict]:
    start = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.timezone.utc)
    out = [{"stream": "call", "id": f"c{i + 1}", "ts": (start + dt.timedelta(minutes=10 * i)).isoformat(),
            "caller": "+8617000000001", "callee": f"+86139{i:08d}", "direction": "out", "duration": 30}
           for i in range(50)]
    t50 = start + dt.timedelta(minutes=490)
    if sms_at_day is not None:
        out.append({"stream": "sms", "id": "s1", "ts": (t50 + dt.timedelta(days=sms_at_day)).isoformat(),
                    "sender": "+8617000000001", "receiver": "+8613900000002", "direction": "out"})
    out.append({"stream": "payment", "id": "p-late", "ts": (t50 + dt.timedelta(days=last_day)).isoformat(),
                "payer_account": "Z9", "amount": 1})
    return out


def test_the_rules_md_example_runs_on_both_executors(tmp_path):
    import re
    import shutil

    from fraudrules.pack.loader import load_pack

    guide = (REPO / "docs" / "rules.md").read_text()
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", guide, re.S) if b.startswith("id: EX-SIMBOX-QUIET")]
    shutil.copy(REPO / "rules" / "streams.yaml", tmp_path / "streams.yaml")
    (tmp_path / "example.yaml").write_text(block)
    plan = compile_pack(load_pack(tmp_path))
    cases = [((None, 7.5), ["c50"]), ((7, 7.5), []), ((7.001, 7.5), ["c50"]), ((None, 7), [])]
    for (sms_at, last), want in cases:
        records = _simbox_records(sms_at, last)
        lines = batch_lines(plan, records)
        assert stream_lines(plan, records)[0] == lines
        alerts = [json.loads(line) for line in lines]
        assert [a["record_id"] for a in alerts] == want, (sms_at, last)
        if want:  # one alert for the key: each later call's deadline is suppressed (30d)
            assert alerts[0]["explain"] == ("+8617000000001 made 50 calls in a day and sent no SMS in the "
                                            "7 days after")


def test_watch_from_a_history_cut_between_a_transfer_and_its_deadline(tmp_path):
    """Batch over the records before 16:00 on 1 March into a store, then watch the rest from it: the
    transfer's deadline passes in the stream, which fires it once, and the alerts are one run's."""
    import subprocess

    from fraudrules.jobs.watch import ordered_records
    from tests.test_history import CLI

    specs = parse_inputs([str(REPO / "samples")], PACK.schema)
    want = score_job(REPO / "rules", specs, tmp_path / "one", pack=PACK)[1]["alerts"].read_text().splitlines()
    frames = {s.stream: pd.read_csv(s.path, dtype=str, keep_default_na=False) for s in specs}
    first, second = write_slices(frames, [pd.Timestamp("2026-03-01T16:00:00", tz="UTC")], tmp_path / "runs")
    batch = score_job(REPO / "rules", parse_inputs([str(first)], PACK.schema), tmp_path / "batch", pack=PACK,
                      history=tmp_path / "hist")[1]["alerts"].read_text().splitlines()
    feed = tmp_path / "rest.jsonl"
    feed.write_text("".join(json.dumps(r) + "\n"
                            for r in ordered_records(parse_inputs([str(second)], PACK.schema), PACK.schema)))
    proc = subprocess.run([*CLI, "watch", str(feed), "--out", str(tmp_path / "stream.jsonl"), "--history",
                           str(tmp_path / "hist"), "--stats-every", "0"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    stream = (tmp_path / "stream.jsonl").read_text().splitlines()
    assert sum('"record_id":"p000000737"' in a and "TF-NOCALLBACK-001" in a for a in stream) == 1
    assert batch + stream == want
