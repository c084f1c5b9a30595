"""watch --source nats://: a REAL nats-server with JetStream, the consumer killed with SIGKILL mid-stream.

nats-server (Debian package ``nats-server``, installed by .ci/run) and nats-py
(the ``test`` extra) are required: without them these tests fail, never skip.
The server listens on 127.0.0.1 only, on a free port, with its store in a
temporary folder, and is killed in teardown; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import nats
import pytest
from nats.js.api import StreamConfig

from fraudrules.errors import FraudRulesError
from fraudrules.io.records import parse_inputs
from fraudrules.jobs import nats_source
from fraudrules.jobs.watch import ordered_records, read_checkpoint
from fraudrules.pack.loader import load_pack
from tests.helpers import REPO, RULES
from tests.test_stream import PLAN, batch_lines


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def nats_server(tmp_path):
    exe = shutil.which("nats-server")
    assert exe, "nats-server is not installed (Debian package nats-server; .ci/run installs it)"
    port = free_port()
    store = tmp_path / "jetstream"
    proc = subprocess.Popen([exe, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, "nats-server exited at start"
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                assert time.monotonic() < deadline, "nats-server did not listen within 20 s"
                time.sleep(0.05)
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait(timeout=10)


async def _setup(url: str, records: list[dict | bytes]) -> None:
    """The streams, then the records published in order (bytes as they are: poison messages)."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="RECORDS", subjects=["records.>"]))
    await js.add_stream(StreamConfig(name="ALERTS", subjects=["alerts"], duplicate_window=600))
    for rec in records:  # plain publishes, in order; the stream stores them in that order
        if isinstance(rec, bytes):
            await nc.publish("records.raw", rec)
        else:
            await nc.publish(f"records.{rec['stream']}", json.dumps(rec).encode())
    await nc.flush(timeout=30)
    deadline = time.monotonic() + 30
    while (await js.stream_info("RECORDS")).state.messages < len(records):
        assert time.monotonic() < deadline, "JetStream did not store every record within 30 s"
        await asyncio.sleep(0.05)
    await nc.close()


async def _publish_paced(url: str, records: list[dict], per_batch: int, gap: float) -> None:
    """``records`` published in order, ``per_batch`` at a time with ``gap`` seconds between batches: the
    stream then lasts as long as the publishing, however fast the consumer is."""
    nc = await nats.connect(url)
    for i in range(0, len(records), per_batch):
        for rec in records[i: i + per_batch]:
            await nc.publish(f"records.{rec['stream']}", json.dumps(rec).encode())
        await nc.flush(timeout=30)
        await asyncio.sleep(gap)
    await nc.close()


def paced_publisher(url: str, records: list[dict], per_batch: int = 500, gap: float = 0.4) -> threading.Thread:
    thread = threading.Thread(target=lambda: asyncio.run(_publish_paced(url, records, per_batch, gap)),
                              name="paced-publisher", daemon=True)
    thread.start()
    return thread


async def _published_alerts(url: str) -> tuple[list[str], int]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    n = (await js.stream_info("ALERTS")).state.messages
    sub = await js.pull_subscribe("alerts", durable="check", stream="ALERTS")
    ids: list[str] = []
    deadline = time.monotonic() + 30
    while len(ids) < n and time.monotonic() < deadline:
        for m in await sub.fetch(min(500, n - len(ids)), timeout=5):
            ids.append(json.loads(m.data)["alert_id"])
            await m.ack()
    ci = await js.consumer_info("RECORDS", "fraud")
    await nc.close()
    return ids, ci.num_ack_pending


def nats_checkpoint(path: Path) -> dict:
    return read_checkpoint(path, nats_source.STATE_KIND, nats_source.STATE_VERSION, nats_source._state_problem)


def consumer(url: str, out: Path, state: Path, log: Path, every: str = "0.2s", *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "fraudrules", "watch", "--rules", str(RULES), "--source", url,
           "--subject", "records.>", "--durable", "fraud", "--alerts-subject", "alerts", "--out", str(out),
           "--state", str(state), "--checkpoint-every", every, "--stop-when-idle", "3s", *extra]
    with open(log, "ab") as fh:
        return subprocess.Popen(cmd, stdout=fh, stderr=fh)


def test_nats_consumer_killed_mid_stream_equals_batch_none_lost_none_duplicated(nats_server, tmp_path):
    pack = load_pack(RULES)
    records = ordered_records(parse_inputs([str(REPO / "samples")], pack.schema), pack.schema)
    # the first records at once, the rest paced (~8 s), so that the consumer is still mid-stream when
    # the kill below comes, however fast it has become or however loaded the machine is
    asyncio.run(_setup(nats_server, records[:2000]))
    publisher = paced_publisher(nats_server, records[2000:])
    out, state, log = tmp_path / "alerts.jsonl", tmp_path / "nats.state", tmp_path / "consumer.log"

    # kill -9 past the first records, with alerts in the file that the last checkpoint does not cover. A
    # checkpoint can still land between the check and the signal (an empty fetch under load writes one at
    # once); then the kill was a clean crash that proves less, so restart (it resumes) and kill again
    for _attempt in range(4):  # bounded: four crashes at most
        proc = consumer(nats_server, out, state, log, "2s")
        try:
            deadline = time.monotonic() + 120
            while True:
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "no checkpoint past record 1500 within 120 s"
                written = state.stat().st_mtime if state.exists() else None
                try:
                    ckpt = nats_checkpoint(state)
                except FraudRulesError:  # not written yet
                    ckpt = {"stream_seq": 0, "outputs": {"alerts": {"length": 0}}}
                # kill well before the next checkpoint is due (every 2 s), once alerts follow the one just read
                fresh = (written is not None and state.stat().st_mtime == written
                         and time.time() - written < 1.4)
                if (fresh and ckpt["stream_seq"] >= 1500
                        and out.stat().st_size > ckpt["outputs"]["alerts"]["length"]):
                    break
                time.sleep(0.005)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        ckpt = nats_checkpoint(state)
        assert ckpt["stream_seq"] < len(records), "the consumer finished before it was killed: not a mid-stream crash"
        before = out.read_bytes()
        covered = ckpt["outputs"]["alerts"]["length"]
        past_checkpoint = before[covered:].count(b"\n")  # alerts the restart cuts and writes again
        if past_checkpoint:
            break
    assert past_checkpoint > 0
    publisher.join(timeout=120)
    assert not publisher.is_alive(), "the paced publisher did not finish within 120 s"

    proc = consumer(nats_server, out, state, log)
    try:
        proc.wait(timeout=300)  # --stop-when-idle ends it once the stream is drained
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0, log.read_text()
    summary = json.loads(log.read_text().strip().splitlines()[-1])
    assert summary["resumed"] and summary["stream_seq"] == len(records)
    # the file was cut back to the checkpoint and everything after it written again, once
    want = "".join(line + "\n" for line in batch_lines(PLAN, records)).encode("utf-8")  # batch score's alerts
    assert summary["alerts_written"] == len(want.splitlines()) - before[:covered].count(b"\n")

    # the alert file is batch score's alerts, byte for byte: nothing lost, nothing twice
    assert out.read_bytes() == want
    assert want.startswith(before[: before.rfind(b"\n") + 1])  # nothing was rewritten otherwise
    golden_ids = [json.loads(line)["alert_id"] for line in want.splitlines()]
    published, ack_pending = asyncio.run(_published_alerts(nats_server))
    assert sorted(published) == sorted(golden_ids)  # repeats after the crash dropped by Nats-Msg-Id
    assert ack_pending == 0  # every record acknowledged, after its checkpoint


def test_nats_source_usage_errors(tmp_path):
    base = [sys.executable, "-m", "fraudrules", "watch", "--out", str(tmp_path / "a.jsonl")]
    env = dict(os.environ)
    proc = subprocess.run(base + ["--source", "nats://127.0.0.1:1", "--subject", "r.>"], capture_output=True,
                          text=True, env=env, timeout=60)
    assert proc.returncode == 2 and "--durable, --state" in proc.stderr
    proc = subprocess.run(base + ["--source", "http://x", "--subject", "r", "--durable", "d", "--state",
                                  str(tmp_path / "s")], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2 and "NATS URL" in proc.stderr


# -- what the file watch checks, on the NATS source (#12) ---------------------------------------------


def _records() -> list[dict]:
    pack = load_pack(RULES)
    return ordered_records(parse_inputs([str(REPO / "samples")], pack.schema), pack.schema)


def _run(proc: subprocess.Popen, log: Path, timeout: float = 300) -> subprocess.Popen:
    try:
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    return proc


def _poison(pay: dict) -> list[tuple[bytes, str]]:
    """Messages that are not records, each with (a part of) the reason its reject must give."""
    def msg(**change) -> bytes:
        return json.dumps(dict(pay, **change)).encode()

    return [
        (b'{"stream": "payment", "id": ', "invalid JSON"),
        (b"\xff\xfe{}", "invalid UTF-8"),
        (msg(id="x-lone", payer_account="\ud800"), "lone surrogate"),
        (b"[" * 1000 + b"]" * 1000, "nested too deeply"),
        (msg(id="x-list", stream=["payment"]), "unknown or missing stream"),
        (msg(id="x-year", ts="9999-12-31T00:00:00Z"), "timestamp out of range"),
        (msg(id="x-big", amount=1e305), "out of range"),
        (msg(id="x-now", ts="now"), "wall clock"),
        (msg(id="x-today", ts="today"), "wall clock"),
        (msg(id="x-future", ts="2099-01-01T00:00:00Z"), "(max-future)"),
        (json.dumps(pay).encode(), "duplicate id"),  # the very record again, later
        (b"", "an empty message"),
        (b"[1, 2]", "not a JSON object"),
    ]


def test_nats_poison_messages_are_rejects_terminated_never_redelivered_and_a_bad_state_is_refused(nats_server,
                                                                                                   tmp_path):
    good = _records()[:1500]
    pay = next(r for r in good[:600] if r["stream"] == "payment")
    poison = _poison(pay)
    published: list = list(good[:600])
    where = {}  # stream sequence -> the reason a poison message must get
    for i, (data, reason) in enumerate(poison):  # spread over the rest of the records
        published.append(data)
        where[len(published)] = reason
        published.extend(good[600 + i * 60: 600 + (i + 1) * 60])
    published.extend(good[600 + len(poison) * 60:])
    asyncio.run(_setup(nats_server, published))
    out, state, log, rejects = tmp_path / "alerts.jsonl", tmp_path / "nats.state", tmp_path / "c.log", \
        tmp_path / "rejects.jsonl"
    started = time.monotonic()
    proc = _run(consumer(nats_server, out, state, log, "0.2s", "--rejects", str(rejects)), log)
    took = time.monotonic() - started
    assert proc.returncode == 0, log.read_text()
    summary = json.loads(log.read_text().strip().splitlines()[-1])
    assert summary["stream_seq"] == len(published) and summary["reconciles"]
    assert 0 < summary["seconds"] <= took  # the consumer's own time, inside the process's
    assert summary["rejected"] == summary["terminated"] == len(poison)

    lines = [json.loads(line) for line in rejects.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["stream_seq"] for r in lines) == sorted(where)
    for r in lines:
        assert where[r["stream_seq"]] in r["reason"], r
    # the records around them: batch score's alerts, as if the poison had never been published
    assert out.read_text(encoding="utf-8").splitlines() == batch_lines(PLAN, good)

    async def consumer_info():
        nc = await nats.connect(nats_server)
        try:
            return await nc.jetstream().consumer_info("RECORDS", "fraud")
        finally:
            await nc.close()

    info = asyncio.run(consumer_info())
    assert info.num_ack_pending == 0 and info.num_redelivered == 0

    # a restart meets none of them again: nothing is redelivered, nothing is written
    before = (out.read_bytes(), rejects.read_bytes())
    proc = _run(consumer(nats_server, out, state, log, "0.2s", "--rejects", str(rejects)), log)
    assert proc.returncode == 0, log.read_text()
    again = json.loads(log.read_text().strip().splitlines()[-1])
    assert again["resumed"] and again["stream_seq"] == summary["stream_seq"]
    assert (again["records"], again["rejected"]) == (summary["records"], summary["rejected"])  # the same counts
    assert again["redelivered_skipped"] == again["terminated"] == again["alerts_written"] == 0
    assert (out.read_bytes(), rejects.read_bytes()) == before

    # a damaged checkpoint is refused with exit 2 before any file is touched
    good_state = state.read_bytes()
    head, body = good_state.split(b"\n", 1)
    damaged = [head + b"\n" + body.replace(b'"stream_seq":', b'"stream_seq": ', 1),  # the SHA-256 no longer fits
               b"\x00" * 40]
    header = json.loads(head)
    bad_body = json.dumps(dict(json.loads(body), stream_seq=-1)).encode()
    header.update(bytes=len(bad_body), sha256=hashlib.sha256(bad_body).hexdigest())
    damaged.append(json.dumps(header).encode() + b"\n" + bad_body)  # checksum fine, schema not
    for data, why in zip(damaged, ("SHA-256", "no checkpoint header", "stream_seq: expected a count")):
        state.write_bytes(data)
        proc = _run(consumer(nats_server, out, state, log, "0.2s", "--rejects", str(rejects)), log, 120)
        assert proc.returncode == 2, log.read_text()
        assert "not a valid watch checkpoint" in log.read_text() and why in log.read_text().splitlines()[-1]
        assert (out.read_bytes(), rejects.read_bytes()) == before and state.read_bytes() == data


def test_nats_two_consumers_on_one_state_the_second_is_refused_and_sigint_exits_130(nats_server, tmp_path):
    asyncio.run(_setup(nats_server, _records()[:300]))
    out, state, log = tmp_path / "alerts.jsonl", tmp_path / "nats.state", tmp_path / "first.log"
    first = consumer(nats_server, out, state, log, "0.2s", "--stop-when-idle", "120s")
    try:
        deadline = time.monotonic() + 120
        while True:  # running: its first checkpoint is on disk
            assert first.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            try:
                if nats_checkpoint(state)["stream_seq"] == 300:
                    break
            except FraudRulesError:
                pass
            time.sleep(0.05)
        before = out.read_bytes()
        second_log = tmp_path / "second.log"
        second = _run(consumer(nats_server, out, state, second_log), second_log, 120)
        assert second.returncode == 2, second_log.read_text()
        assert "locked by another running watch" in second_log.read_text()
        assert out.read_bytes() == before
        # another state but the same alert file: refused too
        third = _run(consumer(nats_server, out, tmp_path / "other.state", second_log), second_log, 120)
        assert third.returncode == 2 and "alerts.jsonl is locked" in second_log.read_text()
        first.send_signal(signal.SIGINT)
        first.wait(timeout=60)
        assert first.returncode == 130, log.read_text()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(timeout=10)


def test_nats_a_record_whose_evaluation_raises_is_rejected_and_a_restart_goes_on(nats_server, tmp_path, monkeypatch):
    from fraudrules.executors.stream import executor as executor_mod

    records = _records()[:600]
    rid = "p000000006"  # triggers TF-PASS-001 on the samples
    assert rid in [r["id"] for r in records]
    real = executor_mod.StreamExecutor._trigger

    def trigger(self, rule, cand):
        if cand.values[0] == rid:
            raise RuntimeError("engine bug")
        return real(self, rule, cand)

    monkeypatch.setattr(executor_mod.StreamExecutor, "_trigger", trigger)
    asyncio.run(_setup(nats_server, records[:515]))  # the record is the 512th
    logged: list[str] = []

    def job() -> nats_source.NatsWatchJob:
        opts = nats_source.NatsOptions(url=nats_server, subject="records.>", durable="fraud",
                                       out=tmp_path / "alerts.jsonl", state=tmp_path / "nats.state",
                                       rejects=tmp_path / "rejects.jsonl", lateness=1e9, checkpoint_every=0.2,
                                       poll=0.2, stop_when_idle=1.0)
        return nats_source.NatsWatchJob(PLAN, opts, log=logged.append)

    first = asyncio.run(job().run())
    assert first["reconciles"]

    async def publish_rest():
        nc = await nats.connect(nats_server)
        for rec in records[515:]:
            await nc.publish(f"records.{rec['stream']}", json.dumps(rec).encode())
        await nc.flush(timeout=30)
        await nc.close()

    asyncio.run(publish_rest())
    # the first run's last checkpoint holds it in the reorder buffer (the lateness holds everything until
    # the end): the restart meets it again
    assert (tmp_path / "rejects.jsonl").read_text().count(rid) == 1
    second = asyncio.run(job().run())
    assert second["resumed"] and second["stream_seq"] == 600
    assert second["rejected"] == 1  # met again after the restart, rejected again, no crash
    rejects = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert [(r["record"]["id"], r["reason"]) for r in rejects] == [(rid, "evaluation error: RuntimeError: engine bug")]
    assert [m for m in logged if m.startswith("warning:")] != []
    want = batch_lines(PLAN, [r for r in records if r["id"] != rid])
    assert (tmp_path / "alerts.jsonl").read_text().splitlines() == want


# --- without a server ------------------------------------------------------------------------------


class _Msg:
    """What _decode reads of a JetStream message: its data and its stream sequence."""

    def __init__(self, seq: int, rid: str):
        from types import SimpleNamespace

        self.metadata = SimpleNamespace(sequence=SimpleNamespace(stream=seq))
        self.data = json.dumps({"stream": "payment", "id": rid, "ts": f"2026-03-01T10:00:{seq:02d}Z",
                                "payer_account": "A", "amount": 1}).encode()


def test_a_message_at_or_before_the_last_sequence_fed_is_a_redelivery_and_skipped(tmp_path):
    """JetStream redelivers a message whose ack wait expired while the consumer runs: the one just fed (the
    same sequence) as well as older ones. Fed again, it would be rejected as a duplicate id."""
    job = nats_source.NatsWatchJob(PLAN, nats_source.NatsOptions(
        url="nats://127.0.0.1:1", subject="records.>", durable="d", out=tmp_path / "a.jsonl",
        state=tmp_path / "state.json"), log=lambda msg: None)
    held: list = []
    records, _ = job._decode([_Msg(1, "p1"), _Msg(2, "p2"), _Msg(2, "p2"), _Msg(1, "p1"), _Msg(3, "p3")], held)
    assert [r["id"] for r in records] == ["p1", "p2", "p3"]
    assert (job.duplicates, job.last_seq, len(held)) == (2, 3, 5)  # every message held, to be acknowledged


@pytest.mark.parametrize("seq, problem", [(0, None), (7, None), (-1, "stream_seq: expected a count"),
                                          (True, "stream_seq: expected a count"), (1.0, "stream_seq: expected")])
def test_a_checkpoint_taken_before_any_message_is_a_valid_checkpoint(tmp_path, seq, problem):
    """A consumer stopped before the first record arrived checkpoints stream_seq 0, and starts from it again."""
    job = nats_source.NatsWatchJob(PLAN, nats_source.NatsOptions(
        url="nats://127.0.0.1:1", subject="records.>", durable="d", out=tmp_path / "a.jsonl",
        state=tmp_path / "state.json"), log=lambda msg: None)
    job.checkpoint()
    state = read_checkpoint(tmp_path / "state.json", nats_source.STATE_KIND, nats_source.STATE_VERSION,
                            nats_source._state_problem)
    assert state["stream_seq"] == 0
    got = nats_source._state_problem(state | {"stream_seq": seq})
    assert (got is None) if problem is None else got.startswith(problem), got
