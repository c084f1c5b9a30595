"""watch --source nats://: a REAL nats-server with JetStream, the consumer killed with SIGKILL mid-stream.

nats-server (Debian package ``nats-server``, installed by .ci/run) and nats-py
(the ``test`` extra) are required: without them these tests fail, never skip.
The server listens on 127.0.0.1 only, on a free port, with its store in a
temporary folder, and is killed in teardown; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import nats
import pytest
from nats.js.api import StreamConfig

from fraudrules.io.records import parse_inputs
from fraudrules.jobs.watch import ordered_records
from fraudrules.pack.loader import load_pack
from tests.helpers import REPO, RULES

GOLDEN = REPO / "samples" / "expected" / "alerts.jsonl"


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


async def _setup(url: str, records: list[dict]) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="RECORDS", subjects=["records.>"]))
    await js.add_stream(StreamConfig(name="ALERTS", subjects=["alerts"], duplicate_window=600))
    for rec in records:  # plain publishes, in order; the stream stores them in that order
        await nc.publish(f"records.{rec['stream']}", json.dumps(rec).encode())
    await nc.flush(timeout=30)
    deadline = time.monotonic() + 30
    while (await js.stream_info("RECORDS")).state.messages < len(records):
        assert time.monotonic() < deadline, "JetStream did not store every record within 30 s"
        await asyncio.sleep(0.05)
    await nc.close()


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


def consumer(url: str, out: Path, state: Path, log: Path, every: str = "0.2s") -> subprocess.Popen:
    cmd = [sys.executable, "-m", "fraudrules", "watch", "--rules", str(RULES), "--source", url,
           "--subject", "records.>", "--durable", "fraud", "--alerts-subject", "alerts", "--out", str(out),
           "--state", str(state), "--checkpoint-every", every, "--stop-when-idle", "3s"]
    with open(log, "ab") as fh:
        return subprocess.Popen(cmd, stdout=fh, stderr=fh)


def test_nats_consumer_killed_mid_stream_equals_batch_none_lost_none_duplicated(nats_server, tmp_path):
    pack = load_pack(RULES)
    records = ordered_records(parse_inputs([str(REPO / "samples")], pack.schema), pack.schema)
    asyncio.run(_setup(nats_server, records))
    out, state, log = tmp_path / "alerts.jsonl", tmp_path / "nats.state", tmp_path / "consumer.log"

    proc = consumer(nats_server, out, state, log, "1s")
    try:  # kill -9 past the first records, with alerts in the file that the last checkpoint does not cover
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "no checkpoint past record 1500 within 120 s"
            try:
                ckpt = json.loads(state.read_text())
            except (OSError, ValueError):
                ckpt = {"stream_seq": 0, "alerts_bytes": 0}
            if ckpt["stream_seq"] >= 1500 and out.stat().st_size > ckpt["alerts_bytes"]:
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    ckpt = json.loads(state.read_text())
    assert ckpt["stream_seq"] < len(records), "the consumer finished before it was killed: not a mid-stream crash"
    before = out.read_bytes()
    past_checkpoint = before[ckpt["alerts_bytes"]:].count(b"\n")  # alerts the restart will produce again
    assert past_checkpoint > 0

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
    assert summary["alerts_already_written"] == past_checkpoint  # produced again, not written again

    # the alert file is batch score's golden file, byte for byte: nothing lost, nothing twice
    assert out.read_bytes() == GOLDEN.read_bytes()
    assert GOLDEN.read_bytes().startswith(before[: before.rfind(b"\n") + 1])  # nothing was rewritten
    golden_ids = [json.loads(line)["alert_id"] for line in GOLDEN.read_text().splitlines()]
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
