"""A record whose evaluation raises is a reject, never the end of the stream (#12; guard.py).

An evaluation function is monkeypatched to raise on one record id -- after it has
already changed state (a fact asserted in durable-rules, window entries added) --
and the run must: finish; write that record to the rejects with the reason
``evaluation error: <ExcType>: <message>``; emit exactly the alerts the *batch*
executor gives for the records without that one (so nothing of the failed
attempt stayed in the state); and do the same again after a restart from a
checkpoint taken before the record, instead of crashing. The same for the
executor in process, ``watch`` on a file and the decision service.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from fraudrules.executors.stream import StreamExecutor
from fraudrules.executors.stream import executor as executor_mod
from fraudrules.executors.stream import guard as guard_mod
from fraudrules.io.records import parse_inputs
from fraudrules.jobs.watch import WatchJob, WatchOptions, ordered_records, read_checkpoint
from fraudrules.runtime.alerts import alert_line
from tests.test_stream import PACK, PLAN, SAMPLES, batch_lines

INFLOW, OUTFLOW = "p000000005", "p000000006"  # the first TF-PASS-001 chain of the samples


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return ordered_records(parse_inputs([str(SAMPLES)], PACK.schema), PACK.schema)


def raising_hold(rid: str):
    """``StreamExecutor._hold`` that raises once record ``rid`` is held as a step (state already changed: its
    run, its join counts, the facts it lets durable-rules assert)."""
    real = executor_mod.StreamExecutor._hold

    def hold(self, rule, j, cand):
        out = real(self, rule, j, cand)
        if cand.values[0] == rid:
            raise ZeroDivisionError(f"boom on {rid}")
        return out

    return hold


def poison(monkeypatch, where: str, rid: str) -> None:
    """Make evaluation raise on record ``rid``: in ``_hold`` after the record is held as an earlier step
    (raising_hold), or in ``_trigger`` (the last step, after the windows took the record). Not in
    ``_assert_cand``: a first step is asserted only when a later record joins it, so a raise there would land
    on that record."""
    if where == "assert":
        monkeypatch.setattr(executor_mod.StreamExecutor, "_hold", raising_hold(rid))
    else:
        real = executor_mod.StreamExecutor._trigger

        def trigger(self, rule, cand):
            if cand.values[0] == rid:
                raise KeyError(f"boom on {rid}")
            return real(self, rule, cand)

        monkeypatch.setattr(executor_mod.StreamExecutor, "_trigger", trigger)


def without(records: list[dict], rid: str) -> list[dict]:
    out = [r for r in records if r["id"] != rid]
    assert len(out) == len(records) - 1
    return out


@pytest.mark.parametrize("where,rid", [("assert", INFLOW), ("trigger", OUTFLOW)])
@pytest.mark.parametrize("chunk", [1, 700, 100_000], ids=["one-by-one", "chunks", "one-release"])
def test_the_record_that_raises_is_rejected_and_the_rest_equals_batch_without_it(records, monkeypatch, where, rid,
                                                                                   chunk):
    want = batch_lines(PLAN, without(records, rid))
    assert want != batch_lines(PLAN, records)  # the record matters: its leftovers would show
    poison(monkeypatch, where, rid)
    warnings: list[tuple[dict, str]] = []
    ex = StreamExecutor(PLAN)
    ex.on_eval_error = lambda rec, reason: warnings.append((rec, reason))
    got = []
    for i in range(0, len(records), chunk):
        got.extend(ex.feed_many(records[i: i + chunk]))
    got.extend(ex.flush())
    assert [alert_line(a) for a in got] == want
    (rec, reason), = ex.rejected_records
    exc = "ZeroDivisionError" if where == "assert" else "KeyError"
    assert rec["id"] == rid and rec["stream"] == "payment" and reason.startswith(f"evaluation error: {exc}: ")
    assert f"boom on {rid}" in reason and warnings == [(rec, reason)]
    s = ex.stats
    assert s["rejected"] == 1 and s["records_in"] == s["processed"] + s["rejected"] + s["late"] + s["pending"]


def test_a_warning_line_goes_to_stderr_by_default(records, monkeypatch, capsys):
    poison(monkeypatch, "trigger", OUTFLOW)
    ex = StreamExecutor(PLAN)
    ex.feed_many(records[: [r["id"] for r in records].index(OUTFLOW) + 1])
    ex.flush()
    err = capsys.readouterr().err.splitlines()
    assert err == [f"warning: payment record '{OUTFLOW}' rejected: evaluation error: KeyError: 'boom on {OUTFLOW}'"]


def raise_in_process(monkeypatch, rid: str) -> None:
    """Every release batch that holds record ``rid`` raises (so the guard rolls back and bisects to it)."""
    real = executor_mod.StreamExecutor._process

    def process(self, batch):
        if any(e[3][0] == rid for e in batch):
            raise OverflowError("boom")
        return real(self, batch)

    monkeypatch.setattr(executor_mod.StreamExecutor, "_process", process)


def test_snapshots_taken_between_releases_roll_back_to_the_right_place(records, monkeypatch):
    """With a snapshot every few records, the rollback starts from a later snapshot plus its journal."""
    monkeypatch.setattr(guard_mod, "JOURNAL_RECORDS", 37)
    rid = records[5000]["id"]
    want = batch_lines(PLAN, without(records, rid))
    raise_in_process(monkeypatch, rid)
    ex = StreamExecutor(PLAN)
    got = []
    for i in range(0, len(records), 300):
        got.extend(ex.feed_many(records[i: i + 300]))
    got.extend(ex.flush())
    assert [alert_line(a) for a in got] == want
    assert [r["id"] for r, _ in ex.rejected_records] == [rid]
    assert ex._guard.rollbacks == 2  # the release, then the record alone: the others went through


def test_a_restored_executor_rejects_the_record_again(records, monkeypatch):
    """A checkpoint taken while the record is still buffered: the resumed run meets it again and goes on."""
    poison(monkeypatch, "trigger", OUTFLOW)
    want = batch_lines(PLAN, without(records, OUTFLOW))
    first = StreamExecutor(PLAN, lateness=3600)
    got = first.feed_many(records[:3])  # the outflow is held in the reorder buffer
    assert not first.rejected_records and first.stats["pending"] > 0
    state = json.loads(json.dumps(first.state_dict()))
    second = StreamExecutor(PLAN, lateness=3600)
    second.load_state(state)
    got += second.feed_many(records[3:]) + second.flush()
    assert [alert_line(a) for a in got] == want
    assert [r["id"] for r, _ in second.rejected_records] == [OUTFLOW]


def _watch(tmp_path: Path, src: Path, log: list | None = None, **kw) -> WatchJob:
    opts = WatchOptions(input=str(src), out=tmp_path / "alerts.jsonl", rejects=tmp_path / "rejects.jsonl",
                        state=tmp_path / "w.state", stats_every=0, checkpoint_every=0, batch_lines=256,
                        max_future=None, **kw)
    return WatchJob(PLAN, opts, log=(log if log is not None else []).append)


def test_watch_on_a_file_rejects_it_goes_on_and_a_restart_does_not_crash(records, monkeypatch, tmp_path):
    poison(monkeypatch, "assert", INFLOW)
    src = tmp_path / "in.jsonl"
    half = len(records) // 2
    src.write_text("".join(json.dumps(r) + "\n" for r in records[:half]), encoding="utf-8")
    log: list[str] = []
    summary = _watch(tmp_path, src, log, lateness=600).run()
    assert summary["rejected"] == 1 and summary["reconciles"]
    assert [m for m in log if m.startswith("warning:")] == [
        f"warning: payment record '{INFLOW}' rejected: evaluation error: ZeroDivisionError: boom on {INFLOW}"]
    rejects = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert [(r["record"]["id"], r["reason"]) for r in rejects] == [
        (INFLOW, f"evaluation error: ZeroDivisionError: boom on {INFLOW}")]
    with open(src, "a", encoding="utf-8") as fh:  # more input; the restart resumes from the checkpoint
        fh.write("".join(json.dumps(r) + "\n" for r in records[half:]))
    summary = _watch(tmp_path, src, lateness=600).run()
    assert summary["resumed"]
    assert (tmp_path / "alerts.jsonl").read_text().splitlines() == batch_lines(PLAN, without(records, INFLOW))
    assert len((tmp_path / "rejects.jsonl").read_text().splitlines()) == 1
    assert read_checkpoint(tmp_path / "w.state")["offset"] == src.stat().st_size


def test_serve_answers_rejected_in_a_batch_422_alone_and_goes_on_after_a_restart(records, monkeypatch, tmp_path):
    """serve: the record is not applied and not logged; the others are decided as batch decides them
    without it, before and after a restart."""
    pytest.importorskip("fastapi")  # the serve extra; tests/test_serve.py needs it as well
    from tests.test_serve import AUTH, client

    poison(monkeypatch, "trigger", OUTFLOW)
    cut = [r["id"] for r in records].index(OUTFLOW) + 200
    alerts, answers = [], []
    c, svc = client(tmp_path)
    with c:
        for i in range(0, cut, 300):
            r = c.post("/v1/records", json={"records": records[i: min(i + 300, cut)]}, headers=AUTH)
            assert r.status_code == 200, r.text
            answers.extend(r.json()["results"])
        metrics = c.get("/metrics", headers=AUTH).text
    (bad,) = [a for a in answers if a["status"] != "decided"]
    reason = f"evaluation error: KeyError: 'boom on {OUTFLOW}'"
    assert bad == {"id": OUTFLOW, "stream": "payment", "status": "rejected", "risk_score": None, "decision": None,
                   "rules": [], "alerts": [], "reason": reason}
    assert svc.next_seq == cut - 1  # not in the write-ahead log: a replay will not meet it
    assert "fraudrules_rejects_total 1" in metrics
    alerts.extend(a for r in answers for a in r["alerts"])

    c, svc = client(tmp_path)  # a restart: the checkpoint, then on with the rest
    with c:
        for i in range(cut, len(records), 1000):
            r = c.post("/v1/records", json={"records": records[i: i + 1000]}, headers=AUTH)
            assert r.status_code == 200, r.text
            alerts.extend(a for res in r.json()["results"] for a in res["alerts"])
    want = batch_lines(PLAN, without(records, OUTFLOW))
    assert [alert_line(a) for a in alerts] == want


def test_serve_a_request_of_only_records_that_raise_is_422(records, monkeypatch, tmp_path):
    pytest.importorskip("fastapi")
    from tests.test_serve import AUTH, client

    poison(monkeypatch, "trigger", OUTFLOW)
    upto = [r["id"] for r in records].index(OUTFLOW)
    c, svc = client(tmp_path)
    with c:
        assert c.post("/v1/records", json={"records": records[:upto]}, headers=AUTH).status_code == 200
        top = svc.ex.max_ts
        r = c.post("/v1/records", json=records[upto], headers=AUTH)
        assert r.status_code == 422
        assert r.json()["errors"] == [{"index": 0, "id": OUTFLOW,
                                       "reason": f"evaluation error: KeyError: 'boom on {OUTFLOW}'"}]
        assert svc.ex.max_ts == top and svc.next_seq == upto  # nothing of it applied, nothing logged


def test_several_records_that_raise_in_one_release_are_each_rejected(records, monkeypatch):
    golden = [json.loads(line) for line in (SAMPLES / "expected" / "alerts.jsonl").read_text().splitlines()]
    # a few triggers all over the samples; not OUTFLOW as well: its chain starts at INFLOW, one of these, so
    # with INFLOW rejected no chain ends at OUTFLOW and its trigger is never evaluated (nor raises)
    bad = {a["record_id"] for a in golden[::25]}
    assert INFLOW in bad
    real = executor_mod.StreamExecutor._trigger

    def trigger(self, rule, cand):
        if cand.values[0] in bad:
            raise ValueError(f"bad {cand.values[0]}")
        return real(self, rule, cand)

    monkeypatch.setattr(executor_mod.StreamExecutor, "_trigger", trigger)
    want = batch_lines(PLAN, [r for r in records if r["id"] not in bad])
    ex = StreamExecutor(PLAN, lateness=math.inf)  # everything in one release at the end
    got = ex.feed_many(records) + ex.flush()
    assert [alert_line(a) for a in got] == want
    assert sorted(r["id"] for r, _ in ex.rejected_records) == sorted(bad)
    assert all(reason == f"evaluation error: ValueError: bad {r['id']}" for r, reason in ex.rejected_records)


def test_serve_a_logged_record_that_raises_on_replay_is_left_out_and_the_service_starts(records, monkeypatch,
                                                                                        tmp_path):
    """The log holds a record decided by an engine that evaluated it; the engine that restarts raises on it."""
    import asyncio

    from fraudrules.serve.service import DecisionService, ServeOptions
    from tests.test_serve import RULES

    cut = [r["id"] for r in records].index(OUTFLOW) + 200
    opts = ServeOptions(rules=RULES, state_dir=tmp_path / "state", checkpoint_every=0)

    async def first() -> None:  # decided and logged, then the process "dies": no checkpoint after them
        svc = DecisionService(opts, log=lambda m: None)
        svc.open()
        await svc.start()
        await svc.submit(records[:cut])
        await svc.wal.close()

    asyncio.run(first())
    poison(monkeypatch, "trigger", OUTFLOW)
    logged: list[str] = []
    svc = DecisionService(opts, log=logged.append)
    info = svc.open()  # replays the log: the record raises now
    assert info["replayed"] == cut and svc.next_seq == cut
    assert [m for m in logged if "warning" in m] == [
        f"serve: warning: payment record '{OUTFLOW}' not applied: evaluation error: KeyError: 'boom on {OUTFLOW}'"]
    later, _ = svc.decide(svc.check(records[cut:]))
    got = [alert_line(a) for r in later for a in r["alerts"]]
    rest = {r["id"] for r in records[cut:]}
    assert got == [line for line in batch_lines(PLAN, without(records, OUTFLOW))
                   if json.loads(line)["record_id"] in rest]
