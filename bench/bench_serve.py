"""HTTP load test of ``fraudrules serve`` over 127.0.0.1 only (not a unit test).

Starts ``fraudrules serve`` as a subprocess on a free loopback port with a
fresh state folder, then posts one record per request (``--batch N``: N records a
request, as ``{"records": [...]}``) at each client
concurrency level (keep-alive connections on raw asyncio sockets), bounded by a request count and a time
limit per level, and stops the server at the end. Records are the samples
in the batch total order, replayed with their ``ts`` shifted by whole
weeks past the samples' span (and ids suffixed) so that event time only moves forward across
passes. With concurrency > 1 requests may overtake each other on the way; a
record that arrives behind the watermark is answered ``late``, and their
share is reported.

Run (20,000 requests at each level):
  python bench/bench_serve.py --requests 20000 --concurrency 1 16
Batches of 100 records a request, 2,000 requests a level:
  python bench/bench_serve.py --requests 2000 --batch 100 --concurrency 1 4
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import numpy as np  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ts(rec: dict) -> dt.datetime:
    return dt.datetime.fromisoformat(rec["ts"].replace("Z", "+00:00"))


def records_forever(base: list[dict]):
    """The samples again and again, each pass after the one before in event time: shifted by whole weeks
    past the samples' span (they reach back years), so that no pass starts behind the last one's watermark."""
    times = [_ts(rec) for rec in base]
    week = dt.timedelta(days=7)
    period = ((max(times) - min(times)) // week + 1) * week
    k = 0
    while True:
        shift = period * k
        for rec, t in zip(base, times):
            r = dict(rec)
            r["ts"] = (t + shift).isoformat()
            if k:
                r["id"] = f"{r['id']}.{k}"
            yield r
        k += 1


class Conn:
    """One keep-alive HTTP/1.1 connection on raw asyncio streams: the client adds almost nothing
    to the latency measured (httpx's async client costs a few ms per request here)."""

    def __init__(self, port: int, token: str):
        self.port = port
        self.head = (f"POST /v1/records HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
                     f"Content-Type: application/json\r\n").encode()

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def post(self, body: bytes) -> tuple[int, bytes]:
        self.writer.write(self.head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line[15:])
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def level(port: int, token: str, source, n: int, concurrency: int, limit_s: float, batch: int = 1) -> dict:
    lat: list[float] = []
    statuses: dict[str, int] = {}
    errors = 0
    sent = 0
    deadline = time.monotonic() + limit_s
    conns = [Conn(port, token) for _ in range(concurrency)]
    for c in conns:
        await c.open()

    async def worker(conn: Conn) -> None:
        nonlocal sent, errors
        while sent < n and time.monotonic() < deadline:
            sent += 1
            if batch == 1:
                body = json.dumps(next(source)).encode()
            else:
                body = json.dumps({"records": [next(source) for _ in range(batch)]}).encode()
            t0 = time.perf_counter()
            code, data = await asyncio.wait_for(conn.post(body), 30)
            lat.append(time.perf_counter() - t0)
            if code != 200:
                errors += 1
            else:
                got = json.loads(data)
                for answer in got["results"] if batch > 1 else [got]:
                    statuses[answer["status"]] = statuses.get(answer["status"], 0) + 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    secs = time.perf_counter() - t0
    for c in conns:
        c.close()
    a = np.asarray(lat)
    return {"concurrency": concurrency, "batch": batch, "requests": len(lat), "seconds": round(secs, 2),
            "req_per_s": round(len(lat) / secs), "records_per_s": round(len(lat) * batch / secs),
            "p50_ms": round(float(np.percentile(a, 50)) * 1e3, 2),
            "p99_ms": round(float(np.percentile(a, 99)) * 1e3, 2), "errors": errors, "statuses": statuses}


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=12_000, help="requests per concurrency level")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--time-limit", type=float, default=300.0, help="seconds per level at most")
    ap.add_argument("--batch", type=int, default=1, help="records a request (1: a record object; more: "
                                                         "{\"records\": [...]}, at most serve's --max-batch)")
    ap.add_argument("--rules", default=str(REPO / "rules"))
    args = ap.parse_args()
    from fraudrules.io.records import parse_inputs
    from fraudrules.jobs.watch import ordered_records
    from fraudrules.pack.loader import load_pack

    pack = load_pack(args.rules)
    base = ordered_records(parse_inputs([str(REPO / "samples")], pack.schema), pack.schema)
    source = records_forever(base)
    token = secrets.token_hex(24)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    state = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    env = dict(os.environ, FRAUDRULES_TOKEN=token)
    proc = subprocess.Popen([sys.executable, "-m", "fraudrules", "serve", "--rules", args.rules, "--state-dir",
                             str(state / "state"), "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("serve did not start")
            time.sleep(0.1)
        for c in args.concurrency:
            rows.append(asyncio.run(level(port, token, source, args.requests, c, args.time_limit, args.batch)))
            print(json.dumps(rows[-1]), flush=True)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        logged = sum(f.stat().st_size for f in (state / "state").glob("wal-*.log"))
        ckpt_bytes = _size(state / "state" / "checkpoint.json")
        shutil.rmtree(state, ignore_errors=True)  # the server has exited: nothing writes there any more
    applied = sum(r["statuses"].get(s, 0) for r in rows for s in ("decided", "late"))
    print(f"state folder at the end: write-ahead log {logged / 1e6:.1f} MB"
          + (f" ({logged / applied:.0f} bytes a record)" if applied else "")
          + (f", checkpoint {ckpt_bytes / 1e6:.1f} MB" if ckpt_bytes else ""))
    print()
    print("| client concurrency | records a request | requests | seconds | requests/s | records/s | p50 ms | p99 ms "
          "| late answers | errors |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        late = r["statuses"].get("late", 0)
        print(f"| {r['concurrency']} | {r['batch']} | {r['requests']:,} | {r['seconds']:.1f} | {r['req_per_s']:,} "
              f"| {r['records_per_s']:,} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {late:,} | {r['errors']} |")


if __name__ == "__main__":
    main()
