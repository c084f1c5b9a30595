"""fraudrules serve: auth, limits, rejects, decisions equal to batch, hot reload, kill -9 durability.

FastAPI, uvicorn and httpx are in the ``test`` extra: if they are missing these
tests fail (an ImportError), they are never skipped. Network: 127.0.0.1 only.
Every wait is bounded; every server started here is killed in ``finally``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fraudrules.io.records import parse_inputs, records_from_dicts
from fraudrules.jobs.score import score_records
from fraudrules.jobs.watch import ordered_records
from fraudrules.pack.loader import load_pack
from fraudrules.runtime.alerts import alert_line
from fraudrules.runtime.plan import compile_pack
from fraudrules.serve.app import create_app
from fraudrules.serve.service import DecisionService, ServeOptions
from fraudrules.serve.wal import encode_entry, read_log

with warnings.catch_warnings():  # starlette's TestClient warns about httpx itself, at import
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from tests.helpers import REPO, RULES, in_event_time_order, make_pack
from tests.rulegen import dense_record_lists, rule_packs, written_pack

TOKEN = "t0k3n-for-tests-only-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

COUNT_RULE = """\
id: T-COUNT-001
title: Fourth payment of an account within an hour
severity: medium
score: 40
stream: payment
key: payer_account
where: count(1h) >= 4
explain: "{payer_account}: {count(1h)} payments in an hour"
"""


def pay(i: int, account: str = "A1", minute: int | None = None) -> dict:
    """Payment ``p<i>`` of ``account``, ``minute`` (default ``i``) minutes after 2026-03-01 10:00 +08:00."""
    start = dt.datetime(2026, 3, 1, 10, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    ts = start + dt.timedelta(minutes=i if minute is None else minute)
    return {"stream": "payment", "id": f"p{i}", "ts": ts.isoformat(), "payer_account": account, "amount": 100 + i}


@pytest.fixture(scope="module")
def samples_records() -> list[dict]:
    pack = load_pack(RULES)
    return ordered_records(parse_inputs([str(REPO / "samples")], pack.schema), pack.schema)


@pytest.fixture(scope="module")
def batch_scored(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("score")
    subprocess.run([sys.executable, "-m", "fraudrules", "score", str(REPO / "samples"), "--rules", str(RULES),
                    "--out", str(out), "-q"], check=True, capture_output=True, timeout=300)
    scored = {}
    for line in (out / "scored.jsonl").read_text().splitlines():
        j = json.loads(line)
        scored[(j["stream"], j["id"])] = (j["risk_score"], j["decision"], j["rules"])
    return scored


def client(tmp: Path, rules: Path = RULES, **kw) -> tuple[TestClient, DecisionService]:
    svc = DecisionService(ServeOptions(rules=rules, state_dir=tmp / "state", **kw), log=lambda m: None)
    svc.open()
    return TestClient(create_app(svc, TOKEN)), svc


def same_as_batch(results: list[dict], scored: dict) -> None:
    for r in results:
        assert r["status"] == "decided", r
        assert (r["risk_score"], r["decision"], ",".join(r["rules"])) == scored[(r["stream"], r["id"])], r


# --- in process --------------------------------------------------------------------------------


def test_token_required_401_and_wrong_token_403(tmp_path):
    c, _ = client(tmp_path)
    with c:
        assert c.get("/healthz").status_code == 200  # probes need no token
        for path, method in (("/v1/records", "post"), ("/metrics", "get"), ("/v1/admin/reload", "post")):
            r = getattr(c, method)(path)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", path
            r = getattr(c, method)(path, headers={"Authorization": "Bearer not-the-token"})
            assert r.status_code == 403, path
            r = getattr(c, method)(path, headers={"Authorization": f"Basic {TOKEN}"})
            assert r.status_code == 401, path


def test_a_short_token_is_refused():
    with pytest.raises(ValueError, match="at least"):
        create_app(None, "short")  # type: ignore[arg-type]


def test_serve_refuses_to_start_without_a_token(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "FRAUDRULES_TOKEN"}
    proc = subprocess.run([sys.executable, "-m", "fraudrules", "serve", "--state-dir", str(tmp_path / "s")],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2 and "token is required" in proc.stderr


def test_oversize_body_413_and_long_batch_413(tmp_path):
    svc = DecisionService(ServeOptions(rules=RULES, state_dir=tmp_path / "s", max_batch=3), log=lambda m: None)
    svc.open()
    with TestClient(create_app(svc, TOKEN, max_body=4096)) as c:
        big = {"records": [pay(i) | {"payee_account": "x" * 100} for i in range(40)]}
        assert c.post("/v1/records", json=big, headers=AUTH).status_code == 413
        r = c.post("/v1/records", json={"records": [pay(i) for i in range(4)]}, headers=AUTH)
        assert r.status_code == 413 and "at most 3" in r.json()["detail"]
        assert c.post("/v1/records", json={"records": [pay(i) for i in range(3)]}, headers=AUTH).status_code == 200


def test_bad_records_422_with_the_rejects_reason_and_counted(tmp_path):
    c, svc = client(tmp_path)
    with c:
        r = c.post("/v1/records", json=pay(1) | {"amount": "12,5"}, headers=AUTH)
        assert r.status_code == 422
        assert r.json()["errors"] == [{"index": 0, "id": "p1", "reason": "amount: '12,5' is not a number"}]
        # a batch with one bad record is refused whole: nothing of it is applied
        r = c.post("/v1/records", json={"records": [pay(2), pay(3) | {"ts": "yesterday"}, {"stream": "fax"}]},
                   headers=AUTH)
        assert r.status_code == 422
        assert [e["index"] for e in r.json()["errors"]] == [1, 2]
        assert r.json()["errors"][0]["reason"] == "ts: bad timestamp 'yesterday'"
        assert "unknown or missing stream 'fax'" in r.json()["errors"][1]["reason"]
        assert c.post("/v1/records", content=b"{not json", headers=AUTH).status_code == 400
        # nesting deeper than Python's parser recurses: bad JSON like any other, not a 500
        r = c.post("/v1/records", content=b"[" * 100_000, headers=AUTH)
        assert r.status_code == 400 and r.json() == {"detail": "invalid JSON: nested too deeply"}
        r = c.post("/v1/records", content=b'{"records": {"stream": "payment"}}', headers=AUTH)
        assert r.status_code == 422
        assert r.json()["errors"] == [{"index": 0, "id": None, "reason": "records is an object"}]
        assert svc.next_seq == 0
        metrics = c.get("/metrics", headers=AUTH).text
        assert "fraudrules_rejects_total 4" in metrics
        assert 'fraudrules_http_requests_total{endpoint="records",code="422"} 3' in metrics
        assert 'fraudrules_http_requests_total{endpoint="records",code="400"} 2' in metrics


def test_decisions_equal_batch_score_on_the_samples(tmp_path, samples_records, batch_scored):
    c, _ = client(tmp_path)
    results = []
    with c:
        for i in range(0, len(samples_records), 500):
            r = c.post("/v1/records", json={"records": samples_records[i: i + 500]}, headers=AUTH)
            assert r.status_code == 200
            results.extend(r.json()["results"])
        one = c.post("/v1/records", json=samples_records[-1] | {"id": "again"}, headers=AUTH).json()
        metrics = c.get("/metrics", headers=AUTH).text
    assert len(results) == len(samples_records) == len(batch_scored)
    same_as_batch(results, batch_scored)
    alerts = [a for r in results for a in r["alerts"]]
    golden = [json.loads(line) for line in (REPO / "samples/expected/alerts.jsonl").read_text().splitlines()]
    assert alerts == golden  # the full alert dicts, in order
    assert one["status"] == "decided" and "risk_score" in one  # a single record gets one object back
    app_alerts = sum(a["rule_id"] == "TF-APP-001" for a in golden)
    assert f'fraudrules_alerts_total{{rule="TF-APP-001"}} {app_alerts}' in metrics
    assert "fraudrules_request_seconds_bucket" in metrics and "fraudrules_wal_fsyncs_total" in metrics


def test_a_record_behind_the_watermark_is_answered_late_and_counted(tmp_path):
    c, _ = client(tmp_path)
    with c:
        assert c.post("/v1/records", json=pay(1, minute=30), headers=AUTH).json()["status"] == "decided"
        r = c.post("/v1/records", json=pay(2, minute=10), headers=AUTH).json()
        assert r["status"] == "late" and r["decision"] is None and "1200s behind" in r["reason"]
        assert "fraudrules_late_records_total 1" in c.get("/metrics", headers=AUTH).text


def test_a_retried_record_gets_its_answer_again_and_is_never_applied_twice(tmp_path, monkeypatch):
    """A record sent again (a client's retry after a lost answer) gets the answer it had, marked replayed, and is
    neither applied nor logged again, at the watermark or behind it. A record sent twice in one request, or the same
    id with other fields, or a retry whose answer is no longer kept, is the duplicate id ``score`` rejects at the
    watermark's ts (422 with the reason rejects.csv gives), and late behind it. The count rule sees each payment
    once, and fires at the fourth distinct one, as batch does on the same records."""
    from fraudrules.serve import service as service_module

    pack = make_pack(tmp_path, {"count": COUNT_RULE})
    c, svc = client(tmp_path, rules=pack)
    dup = "id: duplicate id 'p1' (an earlier record of stream 'payment' has it)"
    with c:
        assert c.post("/v1/records", json=pay(0), headers=AUTH).json()["rules"] == []
        first = c.post("/v1/records", json=pay(1), headers=AUTH).json()
        again = c.post("/v1/records", json=dict(reversed(list(pay(1).items()))), headers=AUTH)  # keys reordered
        assert again.status_code == 200 and again.json() == first | {"replayed": True} and svc.next_seq == 2
        r = c.post("/v1/records", json=pay(1) | {"amount": 999}, headers=AUTH)  # the same id, another record
        assert r.status_code == 422 and r.json()["errors"] == [{"index": 0, "id": "p1", "reason": dup}]
        r = c.post("/v1/records", json={"records": [pay(2), pay(2)]}, headers=AUTH)
        assert r.status_code == 422 and [e["index"] for e in r.json()["errors"]] == [1]
        assert "duplicate id 'p2'" in r.json()["errors"][0]["reason"] and svc.next_seq == 2
        assert c.post("/v1/records", json=pay(2), headers=AUTH).json()["rules"] == []
        # p2 came since: p1 is behind the watermark, and its retry still gets its answer
        r = c.post("/v1/records", json={"records": [pay(1), pay(0)]}, headers=AUTH).json()["results"]
        assert r[0] == first | {"replayed": True} and r[1]["status"] == "decided" and r[1]["replayed"]
        late = c.post("/v1/records", json=pay(1) | {"amount": 999}, headers=AUTH).json()
        assert late["status"] == "late" and late["decision"] is None and "replayed" not in late
        assert svc.next_seq == 4  # the late record is logged (applied to nothing); the retries are not
        # same id, same ts, another stream: another record
        assert c.post("/v1/records", json={"stream": "sms", "id": "p2", "ts": pay(2)["ts"], "sender": "+8613800000001",
                                           "receiver": "+8613800000002"}, headers=AUTH).json()["status"] == "decided"
        fourth = c.post("/v1/records", json=pay(3), headers=AUTH).json()
        assert fourth["rules"] == ["T-COUNT-001"] and fourth["alerts"][0]["explain"] == "A1: 4 payments in an hour"
        # answers no longer kept: the retry at the watermark's ts is refused, not applied
        monkeypatch.setattr(service_module, "ANSWERS_KEPT", 1)
        assert c.post("/v1/records", json=pay(4, minute=3) | {"id": "p4"}, headers=AUTH).json()["status"] == "decided"
        r = c.post("/v1/records", json=pay(3), headers=AUTH)
        assert r.status_code == 422 and "duplicate id 'p3'" in r.json()["errors"][0]["reason"]
        metrics = c.get("/metrics", headers=AUTH).text
        assert 'fraudrules_records_total{stream="payment",status="replayed"} 3' in metrics
        assert "fraudrules_rejects_total 3" in metrics


def test_hot_reload_failure_keeps_the_old_pack_and_success_swaps(tmp_path):
    pack = make_pack(tmp_path, {"count": COUNT_RULE})
    c, svc = client(tmp_path, rules=pack)
    with c:
        for i in range(3):
            assert c.post("/v1/records", json=pay(i), headers=AUTH).json()["rules"] == []
        old = svc.plan.digest
        (pack / "broken.yaml").write_text("id: T-BROKEN\ntitle: x\nseverity: low\nscore: 1\nstream: payment\n"
                                          "key: payer_account\nwhere: amount >= \n")
        r = c.post("/v1/admin/reload", headers=AUTH)
        assert r.status_code == 422 and not r.json()["reloaded"]
        assert any("broken.yaml:7:" in e for e in r.json()["errors"]), r.json()
        assert svc.plan.digest == old
        r3 = c.post("/v1/records", json=pay(3), headers=AUTH).json()  # the old pack still decides, windows intact
        assert r3["rules"] == ["T-COUNT-001"] and r3["risk_score"] == 40
        (pack / "broken.yaml").unlink()
        (pack / "count.yaml").write_text(COUNT_RULE.replace("score: 40", "score: 75"))
        started = time.perf_counter()
        r = c.post("/v1/admin/reload", headers=AUTH)
        took = time.perf_counter() - started
        assert r.status_code == 200 and r.json()["reloaded"] and r.json()["replayed"] == 4
        assert 0 <= r.json()["seconds"] <= round(took, 3) + 0.001  # the rebuild's own time, within the request's
        assert svc.plan.digest != old
        r4 = c.post("/v1/records", json=pay(4), headers=AUTH).json()  # the new pack sees the earlier records
        assert r4["rules"] == ["T-COUNT-001"] and r4["risk_score"] == 75 and r4["decision"] == "block"
        metrics = c.get("/metrics", headers=AUTH).text
        assert 'fraudrules_reloads_total{result="failed"} 1' in metrics
        assert 'fraudrules_reloads_total{result="ok"} 1' in metrics
        assert "\nfraudrules_checkpoints_total 2\n" in metrics  # at the start (recovery done) and the reload's
        entries = svc.ex.stats["state_entries"]
        assert entries > 0 and f"\nfraudrules_state_entries {entries}\n" in metrics  # the 1h window's five payments


def test_a_reload_frees_the_durable_rules_memory_of_the_pack_it_replaces(tmp_path, samples_records, monkeypatch):
    """durable-rules never frees a ruleset or its sessions: each reload kept the old pack's sequence facts in C
    memory until the process ended. The old executor's host frees them once it is garbage, the refused
    reload's at once."""
    import gc
    import shutil

    from fraudrules.executors.stream import durable as durable_mod

    freed: list[int] = []
    engine = durable_mod.durable_rules_engine
    real = engine.delete_ruleset
    monkeypatch.setattr(engine, "delete_ruleset", lambda handle: (freed.append(handle), real(handle))[1])
    pack = tmp_path / "pack"
    shutil.copytree(RULES, pack)
    gc.collect()  # the executors of earlier tests, freed before this one counts
    freed.clear()
    c, svc = client(tmp_path, rules=pack)
    with c:
        for i in range(0, 3000, 250):  # within the batch limit
            batch = {"records": samples_records[i:i + 250]}
            assert c.post("/v1/records", json=batch, headers=AUTH).status_code == 200
        first = svc.ex._host.get_ruleset("fraudrules")._handle
        assert svc.ex.durable_fact_count() > 0
        rule = pack / "payments" / "drain.yaml"
        rule.write_text(rule.read_text().replace("score: 30", "score: 31"))
        assert c.post("/v1/admin/reload", headers=AUTH).json()["reloaded"]
        gc.collect()
        assert first in freed
        second = svc.ex._host.get_ruleset("fraudrules")._handle
        monkeypatch.setattr(DecisionService, "_replay", lambda self, ex, items: (_ for _ in ()).throw(
            OSError("the log is gone")))
        rule.write_text(rule.read_text().replace("score: 31", "score: 32"))
        before = len(freed)
        gc.disable()  # the refused executor is freed by the reload itself
        try:
            r = c.post("/v1/admin/reload", headers=AUTH)
        finally:
            gc.enable()
        assert r.status_code == 422 and "the log is gone" in r.json()["errors"][0]
        assert len(freed) == before + 1 and second not in freed
        assert c.post("/v1/records", json=samples_records[3000], headers=AUTH).json()["status"] == "decided"


def _aggregates(svc: DecisionService) -> list:
    """The window entries of a service's executor (what a reload rebuilds) that a record at its watermark can
    still read: expiry runs every so many records, so older ones may or may not be there yet."""
    floor = svc.ex.max_ts - 3600 * 10**9  # the count rule's hour
    return [[sig, [[k, live] for k, entries in keys if (live := [e for e in entries if e[0] > floor])]]
            for sig, keys in svc.ex.state_dict()["aggregates"]]


def _fed_in_order(pack: Path, state: Path, recs: list[dict]) -> list:
    """The window state of a fresh service that was given ``recs`` one request each, in order."""
    c, svc = client(state, rules=pack)
    with c:
        for rec in recs:
            assert c.post("/v1/records", json=rec, headers=AUTH).status_code == 200
        return _aggregates(svc)


def test_a_reload_rebuilds_from_the_retained_records_read_back_from_the_log(tmp_path):
    """Payments over three hours (the pack's horizon and so the retention: 1h), over several log segments (each
    reload checkpoints and starts a new one), one of them late: a reload feeds the new pack the records of the
    last hour that were applied, read back from the log, and a restart then a reload gives the same. The service
    keeps their ids and event times in memory, not the records; the state equals the new pack's fed the
    retained records in order."""
    pack = make_pack(tmp_path / "pack", {"count": COUNT_RULE})
    recs = [pay(i, f"A{i % 2}", minute=10 * i) for i in range(18)]  # 10:00 to 12:50
    late = pay(99, "A0", minute=10 * 12 - 5)  # 11:55, sent after 12:50: answered late, applied to nothing
    c, svc = client(tmp_path / "live", rules=pack)
    with c:
        for k, rec in enumerate(recs):
            assert c.post("/v1/records", json=rec, headers=AUTH).json()["status"] == "decided"
            if k in (5, 11):  # a new pack, a checkpoint, a new log segment
                score = 41 + k
                (pack / "count.yaml").write_text(COUNT_RULE.replace("score: 40", f"score: {score}"))
                assert c.post("/v1/admin/reload", headers=AUTH).json()["reloaded"]
        assert c.post("/v1/records", json=late, headers=AUTH).json()["status"] == "late"
        assert len(svc.wal.segments) >= 3
        assert all(type(ts) is int and type(key) is tuple for ts, key in svc.retained)
        retained = [r for r in recs if r["ts"] >= recs[-1]["ts"].replace("12:50", "11:50")]
        assert len(retained) == 7 and len(svc.retained) == 7
        (pack / "count.yaml").write_text(COUNT_RULE.replace("score: 40", "score: 90"))
        r = c.post("/v1/admin/reload", headers=AUTH).json()
        assert r["reloaded"] and r["replayed"] == 7
        live = _aggregates(svc)
    assert live == _fed_in_order(pack, tmp_path / "oracle", retained)
    (pack / "count.yaml").write_text(COUNT_RULE.replace("score: 40", "score: 91"))
    c, svc = client(tmp_path / "live", rules=pack)  # the checkpoint is of another pack: rebuilt from the log
    with c:
        assert len(svc.retained) == 7
        (pack / "count.yaml").write_text(COUNT_RULE.replace("score: 40", "score: 92"))
        r = c.post("/v1/admin/reload", headers=AUTH).json()
        assert r["reloaded"] and r["replayed"] == 7
        assert _aggregates(svc) == live


def test_a_reload_whose_records_cannot_be_read_back_keeps_the_running_pack(tmp_path):
    """A log segment that a reload must read back is corrupt (a flipped byte): the reload is refused with why
    (422), the running pack and its windows stay, and the failure is counted."""
    pack = make_pack(tmp_path / "pack", {"count": COUNT_RULE})
    c, svc = client(tmp_path, rules=pack)
    with c:
        for i in range(3):
            assert c.post("/v1/records", json=pay(i), headers=AUTH).json()["rules"] == []
        (pack / "count.yaml").write_text(COUNT_RULE.replace("score: 40", "score: 50"))
        assert c.post("/v1/admin/reload", headers=AUTH).json()["reloaded"]  # checkpoint: a new segment
        first = svc.wal.segments[0].path
        data = bytearray(first.read_bytes())
        data[len(data) // 2] ^= 1
        first.write_bytes(bytes(data))
        running = svc.plan.digest
        (pack / "count.yaml").write_text(COUNT_RULE.replace("score: 40", "score: 60"))
        r = c.post("/v1/admin/reload", headers=AUTH)
        assert r.status_code == 422 and not r.json()["reloaded"]
        (error,) = r.json()["errors"]
        assert "could not be rebuilt from the log" in error and "corrupt write-ahead log entry" in error, error
        assert svc.plan.digest == running
        r3 = c.post("/v1/records", json=pay(3), headers=AUTH).json()
        assert r3["rules"] == ["T-COUNT-001"] and r3["risk_score"] == 50
        assert 'fraudrules_reloads_total{result="failed"} 1' in c.get("/metrics", headers=AUTH).text


def test_a_reload_when_the_log_has_failed_keeps_the_running_pack(tmp_path):
    """The log failed (its disk): the reload cannot have the retained records on disk, so it is refused with the
    log's error, and the running pack stays."""
    pack = make_pack(tmp_path / "pack", {"count": COUNT_RULE})
    c, svc = client(tmp_path, rules=pack)
    with c:
        assert c.post("/v1/records", json=pay(0), headers=AUTH).status_code == 200
        running = svc.plan.digest
        (pack / "count.yaml").write_text(COUNT_RULE.replace("score: 40", "score: 60"))
        svc.wal._error, svc.wal._queued = OSError("no space left on device"), svc.wal._queued + 1  # one not written
        try:
            r = c.post("/v1/admin/reload", headers=AUTH)
        finally:
            svc.wal._error, svc.wal._queued = None, svc.wal._queued - 1
        assert r.status_code == 422 and not r.json()["reloaded"]
        (error,) = r.json()["errors"]
        assert "could not be rebuilt from the log" in error and "no space left on device" in error, error
        assert svc.plan.digest == running


def test_a_reload_while_requests_arrive_loses_and_repeats_none(tmp_path):
    """Requests already decided when a reload starts, and requests that arrive during it: the reload reads the
    log back once every record applied is on disk, and the requests that come meanwhile wait, then go to the new
    pack. Its window state then equals the new pack's fed every record in order: none left out of the rebuild
    (decided but not yet written when the reload began) and none fed twice."""
    pack = make_pack(tmp_path / "pack", {"count": COUNT_RULE})
    recs = [pay(i, f"A{i % 3}") for i in range(40)]

    async def run() -> tuple[dict, list, list]:
        svc = DecisionService(ServeOptions(rules=pack, state_dir=tmp_path / "live"), log=lambda m: None)
        svc.open()
        await svc.start()
        try:
            for rec in recs[:20]:
                await svc.submit([rec])
            (pack / "count.yaml").write_text(COUNT_RULE.replace("score: 40", "score: 70"))
            before = [asyncio.create_task(svc.submit([rec])) for rec in recs[20:30]]
            reload = asyncio.create_task(svc.reload())
            during = [asyncio.create_task(svc.submit([rec])) for rec in recs[30:]]
            answers = await asyncio.gather(*before, *during)
            return await reload, answers, _aggregates(svc)
        finally:
            await svc.stop()

    result, answers, live = asyncio.run(run())
    assert result["reloaded"] and result["replayed"] == 30
    assert [a[0]["status"] for a in answers] == ["decided"] * 20
    assert {a[0]["risk_score"] for a in answers[10:]} == {70}  # count(1h) >= 4 at every one: the new score
    assert live == _fed_in_order(pack, tmp_path / "oracle", recs)


def test_an_id_reused_within_the_retention_is_refused_and_event_time_alone_decides(tmp_path):
    """A record whose id an applied record of its stream has, at most the retention (here the pack's horizon,
    1h) before it, is refused as ``score`` refuses it; one further back is applied (serve remembers the ids of
    the records it retains, not every id). One record per request and one request give the same answers."""
    pack = make_pack(tmp_path, {"count": COUNT_RULE})
    first = pay(0)  # 10:00
    within = pay(1, minute=59) | {"id": "p0"}  # 10:59: 59 minutes later
    beyond = pay(2) | {"id": "p0", "ts": "2026-03-01T11:01:00+08:00"}  # 61 minutes later
    dup = "id: duplicate id 'p0' (an earlier record of stream 'payment' has it)"
    c, svc = client(tmp_path / "one", rules=pack)
    assert svc.retain_ns == 3600 * 10**9
    with c:
        assert c.post("/v1/records", json=first, headers=AUTH).json()["status"] == "decided"
        r = c.post("/v1/records", json=within, headers=AUTH)
        assert r.status_code == 422 and r.json()["errors"] == [{"index": 0, "id": "p0", "reason": dup}]
        assert c.post("/v1/records", json=beyond, headers=AUTH).json()["status"] == "decided"
        r = c.post("/v1/records", json=beyond | {"id": "p9"}, headers=AUTH)
        assert r.json()["status"] == "decided" and r.json()["rules"] == []  # 10:00 left the hour: 2 payments
    c, svc = client(tmp_path / "batch", rules=pack)
    with c:
        r = c.post("/v1/records", json={"records": [first, within]}, headers=AUTH)
        assert r.status_code == 422 and r.json()["errors"] == [{"index": 1, "id": "p0", "reason": dup}]
        r = c.post("/v1/records", json={"records": [first, beyond]}, headers=AUTH)
        assert [a["status"] for a in r.json()["results"]] == ["decided", "decided"]
        assert svc.next_seq == 2 and list(svc.retained_ids) == [("payment", "p0")]


def _outcome(answer: dict) -> tuple:
    return answer["status"], answer["risk_score"], tuple(answer["rules"])


def _one_by_one(c: TestClient, recs: list[dict]) -> list[tuple]:
    out = []
    for rec in recs:
        r = c.post("/v1/records", json=rec, headers=AUTH)
        out.append(("duplicate id",) if r.status_code == 422 and "duplicate id" in r.text else _outcome(r.json()))
    return out


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 45)), min_size=1, max_size=20),
       cuts=st.lists(st.integers(1, 5), min_size=20, max_size=20))
def test_duplicate_ids_and_decisions_do_not_depend_on_how_records_are_grouped(tmp_path_factory, steps, cuts):
    """Payments with ids from a pool of five, minutes apart (the retention is the count rule's hour), sent one
    per request and in requests of 1-5: every record gets the same outcome (refused as a duplicate id, or its
    status, score and rules). A request refused whole is sent again one record at a time, as a client does."""
    pack = make_pack(tmp_path_factory.mktemp("pack"), {"count": COUNT_RULE})
    start = dt.datetime(2026, 3, 1, 10, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    recs, minute = [], 0
    for n, (pid, gap) in enumerate(steps):
        minute += gap
        recs.append({"stream": "payment", "id": f"p{pid}", "ts": (start + dt.timedelta(minutes=minute)).isoformat(),
                     "payer_account": "A1", "amount": 100 + n})  # no two alike: a retry is another test's
    c, _ = client(tmp_path_factory.mktemp("one"), rules=pack)
    with c:
        alone = _one_by_one(c, recs)
    c, _ = client(tmp_path_factory.mktemp("grouped"), rules=pack)
    grouped: list[tuple] = []
    with c:
        i = k = 0
        while i < len(recs):
            chunk, i, k = recs[i: i + cuts[k]], i + cuts[k], k + 1
            r = c.post("/v1/records", json={"records": chunk}, headers=AUTH)
            grouped += [_outcome(a) for a in r.json()["results"]] if r.status_code == 200 else _one_by_one(c, chunk)
    assert grouped == alone


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(texts=rule_packs(), records=dense_record_lists(), cut=st.floats(0, 1), size=st.sampled_from([1, 7, 50]))
def test_random_rules_served_across_a_crash_answer_as_batch_scores(texts, records, cut, size):
    """Rules drawn by tests/rulegen.py, records in event-time order in requests of ``size``; at ``cut`` the
    state folder is copied as a kill -9 would leave it (every answered record logged, the checkpoint the
    one taken at start), and a second service on the copy decides the rest from its log. Every record
    gets batch's risk score, decision and rules, and the answers' alerts are batch's, in its order."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "pack").mkdir()
        pack = written_pack(texts, root / "pack")
        assume(pack is not None)
        plan = compile_pack(pack, "CN")
        ordered = in_event_time_order(records)
        batch = score_records(plan, records_from_dicts(ordered, plan.schema))
        scored = {(r.stream, r.id): (r.risk_score, r.decision, r.rules) for r in batch.scored.itertuples()}
        k = int(cut * len(ordered))
        results: list[dict] = []

        def send(c: TestClient, part: list[dict]) -> None:
            for i in range(0, len(part), size):
                answer = c.post("/v1/records", json={"records": part[i: i + size]}, headers=AUTH)
                results.extend(answer.json()["results"])

        c, _ = client(root / "first", rules=root / "pack")
        with c:
            send(c, ordered[:k])
            shutil.copytree(root / "first" / "state", root / "after" / "state")  # the crash image
        c, _ = client(root / "after", rules=root / "pack")
        with c:
            send(c, ordered[k:])
        assert len(results) == len(ordered)
        same_as_batch(results, scored)
        assert [alert_line(a) for r in results for a in r["alerts"]] == [alert_line(a) for a in batch.alerts]


def test_a_record_is_typed_once_and_decided_as_before(tmp_path, monkeypatch):
    """check() types each record (the intake's convert), and deciding hands that row to the executor instead of
    typing it twice more; the count rule still fires at the fourth payment."""
    from fraudrules.executors.stream.intake import ScalarIntake

    typed: list = []
    convert = ScalarIntake.convert
    monkeypatch.setattr(ScalarIntake, "convert", lambda self, rec: typed.append(rec.get("id")) or convert(self, rec))
    pack = make_pack(tmp_path, {"count": COUNT_RULE})
    c, svc = client(tmp_path, rules=pack)
    with c:
        r = c.post("/v1/records", json={"records": [pay(i) for i in range(4)]}, headers=AUTH).json()["results"]
        one = c.post("/v1/records", json=pay(4), headers=AUTH).json()
    assert [a["rules"] for a in r] == [[], [], [], ["T-COUNT-001"]] and one["rules"] == ["T-COUNT-001"]
    assert typed == ["p0", "p1", "p2", "p3", "p4"]


def test_kept_answers_survive_a_restart_and_a_log_without_answers_still_opens(tmp_path, monkeypatch):
    """The answers kept at a clean stop come back from the checkpoint, the newest ANSWERS_KEPT of them, and a
    retry gets its answer after the restart; an older retry is behind the watermark (late, applied to nothing).
    A log written before answers were logged opens, and a retry then is refused as a duplicate, as before."""
    from fraudrules.serve import service as service_module

    pack = make_pack(tmp_path, {"count": COUNT_RULE})
    c, svc = client(tmp_path, rules=pack)
    with c:  # leaving it stops the service: a checkpoint with the answers
        answers = [c.post("/v1/records", json=pay(i), headers=AUTH).json() for i in range(4)]
    assert answers[3]["rules"] == ["T-COUNT-001"]
    _, entries = read_log(tmp_path / "state")
    assert [e["ans"] for e in entries] == answers  # each logged with its record
    monkeypatch.setattr(service_module, "ANSWERS_KEPT", 2)
    c, svc = client(tmp_path, rules=pack)
    assert list(svc.answers) == [("payment", "p2"), ("payment", "p3")]
    with c:
        assert c.post("/v1/records", json=pay(3), headers=AUTH).json() == answers[3] | {"replayed": True}
        assert c.post("/v1/records", json=pay(1), headers=AUTH).json()["status"] == "late"
        assert c.post("/v1/records", json=pay(4), headers=AUTH).json()["rules"] == ["T-COUNT-001"]  # p3 once
    old = tmp_path / "old" / "state"
    old.mkdir(parents=True)
    (old / "wal-0000000000000000.log").write_bytes(b"".join(encode_entry(e["seq"], e["ts"], e["rec"])
                                                            for e in entries))
    c, svc = client(tmp_path / "old", rules=pack)
    assert not svc.answers and svc.next_seq == 4
    with c:
        r = c.post("/v1/records", json=pay(3), headers=AUTH)
        assert r.status_code == 422 and "duplicate id 'p3'" in r.json()["errors"][0]["reason"]
    # a crash before the first checkpoint leaves the log alone: every answer in it is kept, the first one too
    crashed = tmp_path / "crashed" / "state"
    crashed.mkdir(parents=True)
    (crashed / "wal-0000000000000000.log").write_bytes(b"".join(encode_entry(e["seq"], e["ts"], e["rec"], e["ans"])
                                                                for e in entries))
    monkeypatch.setattr(service_module, "ANSWERS_KEPT", 10)
    c, svc = client(tmp_path / "crashed", rules=pack)
    assert list(svc.answers) == [("payment", f"p{i}") for i in range(4)] and svc.next_seq == 4
    with c:
        assert c.post("/v1/records", json=pay(0), headers=AUTH).json() == answers[0] | {"replayed": True}


def test_wal_torn_tail_is_cut_and_corruption_elsewhere_refused(tmp_path):
    folder = tmp_path / "w"
    folder.mkdir()
    seg = folder / "wal-0000000000000000.log"
    seg.write_bytes(encode_entry(0, 5, {"a": 1}) + encode_entry(1, 6, {"a": 2})[:-7])
    _, entries = read_log(folder)
    assert [e["seq"] for e in entries] == [0] and seg.read_bytes() == encode_entry(0, 5, {"a": 1})
    bad = bytearray(encode_entry(1, 6, {"a": 2}))
    bad[-3] ^= 1  # one flipped bit: the crc no longer matches
    seg.write_bytes(encode_entry(0, 5, {"a": 1}) + bytes(bad))
    (folder / "wal-0000000000000002.log").write_bytes(encode_entry(2, 7, {"a": 3}))
    with pytest.raises(Exception, match="corrupt"):
        read_log(folder)


# --- a real server, killed with SIGKILL ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, rules: Path, state: Path, *extra: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, FRAUDRULES_TOKEN=TOKEN)
        self.log = state.parent / f"serve-{self.port}.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "fraudrules", "serve", "--rules", str(rules), "--state-dir", str(state),
                 "--port", str(self.port), *extra], env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited: {self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("serve did not come up within 60 s")
            time.sleep(0.1)
        self.http = httpx.Client(base_url=self.url, headers=AUTH, timeout=30)

    def post(self, obj: dict) -> dict:
        r = self.http.post("/v1/records", json=obj)
        assert r.status_code == 200, r.text
        return r.json()

    def wait_log(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log.read_text():
            assert time.monotonic() < deadline, f"{text!r} not logged within {timeout} s: {self.log.read_text()}"
            time.sleep(0.1)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def refused_as_duplicate(srv: Server, rec: dict) -> bool:
    r = srv.http.post("/v1/records", json=rec)
    return r.status_code == 422 and f"duplicate id '{rec['id']}'" in r.json()["errors"][0]["reason"]


def head_status(port: int, header_bytes: int) -> bytes:
    """The status line that answers a GET /healthz carrying one header of ``header_bytes``, or b"" when the
    server closed the connection without one."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Pad: " + b"a" * header_bytes + b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):  # closed while we were still sending
            return b""
        try:
            return s.recv(4096).split(b"\r\n", 1)[0]
        except ConnectionResetError:
            return b""


def test_the_server_bounds_the_request_head(tmp_path):
    """The real server (uvicorn, as ``serve`` runs it): a request head far past MAX_HEAD is answered 400 (or cut
    off) before it is read whole, and the server goes on serving; one under the bound is answered. h11 checks
    the bound while a head is incomplete after a read, so a head that arrives whole in one socket read (asyncio
    reads up to 256 KB) is still parsed: what a head can hold in memory is bounded, not exactly MAX_HEAD."""
    from fraudrules.serve.app import MAX_HEAD

    srv = Server(RULES, tmp_path / "state")
    try:
        assert head_status(srv.port, MAX_HEAD // 2) == b"HTTP/1.1 200 OK"
        for size in (1 << 20, 8 << 20):
            assert head_status(srv.port, size) in (b"HTTP/1.1 400 Bad Request", b""), size
        assert srv.http.get("/healthz").status_code == 200
    finally:
        srv.kill()


def test_kill_9_loses_no_acknowledged_record_windows_resume(tmp_path):
    """Two payments, kill -9 (no checkpoint since: the log alone carries them), restart, two more:
    the count rule fires at the fourth exactly as it does without a crash. A retry of the last record
    before each restart gets the answer it had, from the log and then from the checkpoint, and is not
    counted twice; the same id with other fields is refused as a duplicate (the ids come back too)."""
    pack = make_pack(tmp_path, {"count": COUNT_RULE})
    state = tmp_path / "state"
    srv = Server(pack, state, "--checkpoint-every", "1h")
    try:
        first = [srv.post(pay(i)) for i in range(2)]
    finally:
        srv.kill()
    assert [a["rules"] for a in first] == [[], []]
    srv = Server(pack, state, "--checkpoint-every", "1h")
    try:
        assert [srv.post(pay(i)) for i in range(2)] == [a | {"replayed": True} for a in first]
        assert refused_as_duplicate(srv, pay(1) | {"amount": 999})
        third = srv.post(pay(2))
        fourth = srv.post(pay(3))
        other = srv.post(pay(4, account="B2"))
    finally:
        srv.kill(signal.SIGTERM)  # a clean stop: final checkpoint
    assert third["rules"] == [] and fourth["rules"] == ["T-COUNT-001"] and other["rules"] == []
    assert fourth["alerts"][0]["explain"] == "A1: 4 payments in an hour"
    assert (state / "checkpoint.json").exists()
    srv = Server(pack, state, "--checkpoint-every", "1h")
    try:  # restarted from the checkpoint this time (the log after it is empty)
        assert srv.post(pay(3)) == fourth | {"replayed": True}
        assert srv.post(pay(4, account="B2")) == other | {"replayed": True}
        assert refused_as_duplicate(srv, pay(4, account="B2") | {"amount": 999})
        assert srv.post(pay(5))["rules"] == ["T-COUNT-001"]
    finally:
        srv.kill()


def test_kill_9_mid_stream_on_the_samples_equals_batch(tmp_path, samples_records, batch_scored):
    """The samples over HTTP in batches, with checkpoints every 0.3 s, kill -9 part-way, restart,
    the rest: every acknowledged decision equals batch score, and so do those after the restart."""
    state = tmp_path / "state"
    results: list[dict] = []
    cut = len(samples_records) * 3 // 5
    srv = Server(RULES, state, "--checkpoint-every", "0.3s")
    try:
        for i in range(0, cut, 200):
            results.extend(srv.post({"records": samples_records[i: min(i + 200, cut)]})["results"])
    finally:
        srv.kill()
    assert (state / "checkpoint.json").exists()
    srv = Server(RULES, state, "--checkpoint-every", "0.3s")
    try:
        for i in range(cut, len(samples_records), 200):
            results.extend(srv.post({"records": samples_records[i: i + 200]})["results"])
    finally:
        srv.kill()
    assert len(results) == len(samples_records)
    same_as_batch(results, batch_scored)
    golden = [json.loads(line) for line in (REPO / "samples/expected/alerts.jsonl").read_text().splitlines()]
    assert [a for r in results for a in r["alerts"]] == golden


def test_sighup_reloads_and_a_broken_pack_keeps_serving(tmp_path):
    pack = make_pack(tmp_path, {"count": COUNT_RULE})
    srv = Server(pack, tmp_path / "state")
    try:
        first = srv.http.get("/healthz").json()["rule_pack"]
        (pack / "count.yaml").write_text(COUNT_RULE.replace("where: count(1h) >= 4", "where: count(1h) >="))
        srv.proc.send_signal(signal.SIGHUP)
        srv.wait_log("reload refused")
        assert "count.yaml:7:" in srv.log.read_text()  # file:line:col of the error
        assert [bool(srv.post(pay(i))["rules"]) for i in range(4)] == [False, False, False, True]  # old pack
        (pack / "count.yaml").write_text(COUNT_RULE.replace("count(1h) >= 4", "count(1h) >= 2")
                                         .replace("score: 40", "score: 80"))
        srv.proc.send_signal(signal.SIGHUP)
        srv.wait_log("serve: reloaded")
        assert srv.http.get("/healthz").json()["rule_pack"] != first
        r = srv.post(pay(5))
        assert r["rules"] == ["T-COUNT-001"] and r["decision"] == "block"
        assert srv.post(pay(6, account="Z9"))["rules"] == []  # count 1 < 2: the new threshold
    finally:
        srv.kill()


def test_the_core_imports_without_the_serve_and_nats_extras():
    code = ("import sys; sys.modules.update(fastapi=None, uvicorn=None, starlette=None, nats=None)\n"
            "import fraudrules.cli, fraudrules.serve.service, fraudrules.jobs.nats_source\n"
            "from fraudrules.cli import main\n"
            "main(['serve', '--state-dir', sys.argv[1]])\n")
    proc = subprocess.run([sys.executable, "-c", code, "x"], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, FRAUDRULES_TOKEN=TOKEN))
    assert proc.returncode == 2 and "needs the 'serve' extra" in proc.stderr, proc.stderr


def test_the_default_retention_reaches_back_a_chain_and_the_wait_for_its_absence(load_rule):
    """A reload rebuilds the new pack's state from the records the log retains: for a sequence with an absence,
    its steps' within and then the absence's (a chain started 1h30m back can still alert), by default."""
    from fraudrules.serve.service import horizon_ns
    from tests.test_absent import ABSENT, RULE, TWO_STEPS

    pack = load_rule(RULE.format(sequence=TWO_STEPS + ABSENT), {"bank_hotlines": "kind: exact\nvalues: ['95588']\n"})
    assert horizon_ns(compile_pack(pack)) == (3600 + 1800) * 10**9
    longer = load_rule(RULE.format(sequence=TWO_STEPS.replace("within: 1h", "within: 3h") + ABSENT),
                       {"bank_hotlines": "kind: exact\nvalues: ['95588']\n"})
    assert horizon_ns(compile_pack(longer)) == (3 * 3600 + 1800) * 10**9
