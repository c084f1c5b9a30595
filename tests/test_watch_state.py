"""`watch` state and input hardening (#12): the checkpoint is trusted only whole (schema and
checksum) and never truncates an output on a bad one; two watchers on one state or output file are
refused; a poison line is a reject and the offset moves past it; a record far in the future is a
reject that does not move the watermark; a rotated input is refused; duplicate ids follow batch's
policy; SIGINT exits 130. Each alert file is compared with the batch executor's alerts for the
records that should have been scored (tests/test_stream.py::batch_lines)."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fraudrules.io.records import parse_inputs, read_inputs
from fraudrules.jobs import watch as watch_mod
from fraudrules.jobs.watch import WatchJob, WatchOptions, read_checkpoint
from tests.test_stream import PACK, PLAN, REPO, batch_lines

CLI = [sys.executable, str(REPO / "cli.py")]


def payments(n: int, start: int = 0, accounts: int = 3) -> list[dict]:
    """Payments that make TF-VEL-001 and friends fire: a few accounts paying every 20 s."""
    return [{"stream": "payment", "id": f"p{i}", "ts": f"2026-03-01T{i // 180:02d}:{i // 3 % 60:02d}:{i % 3 * 20:02d}Z",
             "payer_account": f"A{i % accounts}", "payee_account": f"B{i % 7}", "amount": 100 + i % 50,
             "payee_country": "CN"} for i in range(start, start + n)]


def write_jsonl(path: Path, recs: list, mode: str = "w") -> Path:
    with open(path, mode, encoding="utf-8") as fh:
        for r in recs:
            fh.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return path


def watch(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "watch", *map(str, args), "--stats-every", "0"], capture_output=True, text=True,
                          cwd=REPO, timeout=300, **kw)


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def rewrite_body(state: Path, change) -> None:
    """Edit a checkpoint's body and give it a matching header: only the schema checks can refuse it."""
    body = json.loads(state.read_bytes().split(b"\n", 1)[1])
    change(body)
    data = json.dumps(body).encode()
    header = {"kind": watch_mod.STATE_KIND, "version": watch_mod.STATE_VERSION, "bytes": len(data),
              "sha256": hashlib.sha256(data).hexdigest()}
    state.write_bytes(json.dumps(header).encode() + b"\n" + data)


@pytest.fixture()
def resumable(tmp_path):
    """A finished watch with a checkpoint, on the first half of the records; the second half is appended."""
    recs = payments(600)
    src = write_jsonl(tmp_path / "in.jsonl", recs[:300])
    out, state = tmp_path / "alerts.jsonl", tmp_path / "w.state"
    proc = watch(src, "--out", out, "--state", state)
    assert proc.returncode == 0, proc.stderr
    write_jsonl(src, recs[300:], "a")
    return recs, src, out, state


def test_a_resume_equals_an_uninterrupted_run(resumable):
    recs, src, out, state = resumable
    assert read_checkpoint(state)["offset"] == sum(len(json.dumps(r)) + 1 for r in recs[:300])
    proc = watch(src, "--out", out, "--state", state)
    assert proc.returncode == 0 and "resumed from" in proc.stderr, proc.stderr
    want = batch_lines(PLAN, recs)
    assert lines(out) == want and len(want) > 3


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_bytes(p.read_bytes()[:-40]), "does not match the header"),  # torn
    (lambda p: p.write_bytes(p.read_bytes().replace(b'"length":', b'"length": ', 1)), "does not match the header"),
    (lambda p: p.write_bytes(b"\x00" * 64), "no checkpoint header"),
    (lambda p: p.write_text('{"kind": "fraudrules-watch-checkpoint", "version": 1}\n{}'), "format version 1"),
    (lambda p: rewrite_body(p, lambda b: b["outputs"]["alerts"].update(length=5)), "is not the end of a line"),
    (lambda p: rewrite_body(p, lambda b: b["outputs"].update(alerts=5)), "outputs.alerts: expected {path, length}"),
    (lambda p: rewrite_body(p, lambda b: b.update(offset=-1)), "offset: expected a count"),
    (lambda p: rewrite_body(p, lambda b: b.update(offset="12")), "offset: expected a count"),
    (lambda p: rewrite_body(p, lambda b: b["outputs"]["alerts"].update(length=10**9)), "is shorter"),
    (lambda p: rewrite_body(p, lambda b: b["outputs"]["alerts"].update(path="/elsewhere.jsonl")),
     "writing alerts to /elsewhere.jsonl"),
    (lambda p: rewrite_body(p, lambda b: b["executor"].update(pending=[[1, 2]])), "executor state is invalid"),
    (lambda p: rewrite_body(p, lambda b: b["executor"].update(rule_pack="x")), "another rule pack"),
])
def test_a_bad_checkpoint_is_refused_before_any_file_is_touched(resumable, damage, message):
    _, src, out, state = resumable
    damage(state)
    before = {p: p.read_bytes() for p in (out, state)}
    proc = watch(src, "--out", out, "--state", state)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    assert {p: p.read_bytes() for p in (out, state)} == before  # the alert file was not truncated


def test_a_rotated_or_rewritten_input_is_refused(resumable):
    recs, src, out, state = resumable
    rotated = src.read_bytes()
    src.rename(src.with_suffix(".1"))  # logrotate: a new file at the same path, longer than the offset
    write_jsonl(src, payments(700, start=1000))
    proc = watch(src, "--out", out, "--state", state)
    assert proc.returncode == 2 and "rotated or replaced" in proc.stderr, proc.stderr
    with open(src, "r+b") as fh:  # copytruncate then regrowth: the same inode, other first bytes
        fh.truncate(0)
        fh.write(rotated.replace(b'"p0"', b'"x0"', 1))
    proc = watch(src, "--out", out, "--state", state)
    assert proc.returncode == 2 and "rotated or replaced" in proc.stderr, proc.stderr
    src.with_suffix(".1").replace(src)  # the file the checkpoint read, back in place: accepted
    proc = watch(src, "--out", out, "--state", state)
    assert proc.returncode == 0, proc.stderr
    assert lines(out) == batch_lines(PLAN, recs)


def _follow(src: Path, out: Path, state: Path | None) -> subprocess.Popen:
    args = [*CLI, "watch", str(src), "--follow", "--out", str(out), "--stats-every", "0", "--checkpoint-every", "1s"]
    if state is not None:
        args += ["--state", str(state)]
    return subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for(pred, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not pred():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_two_watchers_on_one_state_or_alert_file_are_refused_and_sigint_exits_130(tmp_path):
    recs = payments(300)
    src = write_jsonl(tmp_path / "in.jsonl", recs)
    out, state = tmp_path / "alerts.jsonl", tmp_path / "w.state"
    first = _follow(src, out, state)
    try:
        want = batch_lines(PLAN, recs)
        _wait_for(lambda: state.exists() and out.exists() and len(lines(out)) >= len(want) - 1, first)
        proc = watch(src, "--out", tmp_path / "other.jsonl", "--state", state)
        assert proc.returncode == 2 and "is locked by another running watch" in proc.stderr, proc.stderr
        proc = watch(src, "--out", out)
        assert proc.returncode == 2 and "is locked by another running watch" in proc.stderr, proc.stderr
        proc = watch(src, "--out", tmp_path / "a2.jsonl", "--rejects", out)  # an output in use, as rejects
        assert proc.returncode == 2 and "locked" in proc.stderr
        assert not (tmp_path / "other.jsonl").exists() or not lines(tmp_path / "other.jsonl")
        first.send_signal(signal.SIGINT)
        assert first.wait(timeout=120) == 130, first.stderr.read()
    finally:
        if first.poll() is None:
            first.kill()
    assert lines(out) == want  # once each: the refused watchers wrote nothing
    proc = watch(src, "--out", out, "--state", state)  # the lock went with the process
    assert proc.returncode == 0 and lines(out) == want, proc.stderr


def test_sigterm_stops_watch_cleanly_with_0(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", payments(30))
    out = tmp_path / "alerts.jsonl"
    proc = _follow(src, out, None)
    try:
        _wait_for(lambda: out.exists() and out.stat().st_size > 0, proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()


def _job(tmp_path: Path, src: Path, **kw) -> WatchJob:
    opts = WatchOptions(input=str(src), out=tmp_path / "alerts.jsonl", rejects=tmp_path / "rejects.jsonl",
                        state=tmp_path / "w.state", stats_every=0, **kw)
    return WatchJob(PLAN, opts, log=lambda msg: None)


def test_a_poison_record_is_rejected_the_offset_moves_past_it_and_a_restart_goes_on(tmp_path, monkeypatch):
    from fraudrules.executors.stream import executor as ex_mod

    recs = payments(400)
    poison = dict(recs[0], id="POISON", ts="2026-03-01T00:30:00Z")
    arrival = recs[:200] + [poison] + recs[200:]
    src = write_jsonl(tmp_path / "in.jsonl", arrival)
    real_rfd, real_scalar = ex_mod.records_from_dicts, ex_mod.ScalarIntake.convert
    real_many = ex_mod.ScalarIntake.convert_many

    def boom(records, *a, **kw):  # a failure no reader foresaw, on every intake path
        if any(r.get("id") == "POISON" for r in records):
            raise ZeroDivisionError("poison")
        return real_rfd(records, *a, **kw)

    def boom_one(self, rec):
        if rec.get("id") == "POISON":
            raise ZeroDivisionError("poison")
        return real_scalar(self, rec)

    def boom_many(self, records):
        boom(records)
        return real_many(self, records)

    monkeypatch.setattr(ex_mod, "records_from_dicts", boom)
    monkeypatch.setattr(ex_mod.ScalarIntake, "convert", boom_one)
    monkeypatch.setattr(ex_mod.ScalarIntake, "convert_many", boom_many)
    summary = _job(tmp_path, src, batch_lines=64).run()
    rejects = [json.loads(x) for x in lines(tmp_path / "rejects.jsonl")]
    assert [(r["line"], r["reason"]) for r in rejects] == [(201, "cannot be read: ZeroDivisionError: poison")]
    assert summary["records"] == 401 and summary["rejected"] == 1 and summary["reconciles"]
    assert lines(tmp_path / "alerts.jsonl") == batch_lines(PLAN, recs)
    assert read_checkpoint(tmp_path / "w.state")["offset"] == src.stat().st_size  # past the poison
    write_jsonl(src, payments(200, start=400), "a")
    summary = _job(tmp_path, src, batch_lines=64).run()  # the restart meets the poison no more
    assert summary["resumed"] and summary["rejected"] == 1
    assert lines(tmp_path / "alerts.jsonl") == batch_lines(PLAN, payments(600))
    assert len(lines(tmp_path / "rejects.jsonl")) == 1


def test_a_line_longer_than_the_bound_is_rejected_without_being_held(tmp_path):
    recs = payments(100)
    huge = json.dumps(dict(recs[0], id="HUGE", note="x" * 5000))  # whole within one read
    endless = json.dumps(dict(recs[1], id="ENDLESS", note="x" * (3 << 20)))  # longer than a read (1 MiB)
    src = write_jsonl(tmp_path / "in.jsonl", recs[:50] + [huge] + recs[50:80] + [endless] + recs[80:])
    summary = _job(tmp_path, src, max_line_bytes=1000).run()
    rejects = [json.loads(x) for x in lines(tmp_path / "rejects.jsonl")]
    assert [(r["line"], r["reason"]) for r in rejects] == [(51, "line longer than 1,000 bytes"),
                                                           (82, "line longer than 1,000 bytes")]
    assert summary["lines"] == 102 and summary["processed"] == 100 and summary["reconciles"]
    assert read_checkpoint(tmp_path / "w.state")["offset"] == src.stat().st_size
    assert lines(tmp_path / "alerts.jsonl") == batch_lines(PLAN, recs)


def test_a_record_far_in_the_future_is_rejected_and_does_not_move_the_watermark(tmp_path):
    recs = payments(400)
    future = dict(recs[0], id="F1", ts="2030-01-01T00:00:00Z")
    arrival = recs[:100] + [future] + recs[100:]
    src = write_jsonl(tmp_path / "in.jsonl", arrival)
    out, rej = tmp_path / "alerts.jsonl", tmp_path / "rejects.jsonl"
    proc = watch(src, "--out", out, "--rejects", rej, "--lateness", "5m", "--summary", tmp_path / "s.json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["late"] == 0 and summary["rejected"] == 1
    (reject,) = [json.loads(x) for x in lines(rej)]
    assert reject["line"] == 101 and "max-future" in reject["reason"] and "2030-01-01T00:00:00Z" in reject["reason"]
    assert lines(out) == batch_lines(PLAN, recs)
    # without the bound, the record is scored and the rest goes late, as documented
    proc = watch(src, "--out", tmp_path / "b.jsonl", "--late", tmp_path / "late.jsonl", "--lateness", "5m",
                 "--max-future", "off", "--summary", tmp_path / "s2.json")
    assert proc.returncode == 0 and json.loads((tmp_path / "s2.json").read_text())["late"] == 300


def test_max_future_is_measured_from_the_newest_record_and_the_clock():
    from fraudrules.executors.stream import StreamExecutor

    rejected = []
    clock = [1772323200.0]  # 2026-03-01T00:00:00Z
    ex = StreamExecutor(PLAN, max_future=3600, clock=lambda: clock[0],
                        on_reject=lambda r, why: rejected.append(r["id"]))
    base = payments(1)[0]

    def feed(rid: str, ts: str) -> None:
        ex.feed_many([dict(base, id=rid, ts=ts)])

    feed("a", "2026-03-01T01:00:01Z")  # the clock + 1h + 1s: nothing newer yet
    feed("b", "2026-03-01T00:59:59Z")
    feed("c", "2026-03-01T01:59:58Z")  # within 1h of b, the newest so far
    feed("d", "2026-03-01T02:59:59Z")  # 1h + 1s after c
    feed("e", "2026-02-01T00:00:00Z")  # the past is never too far ahead (it is late here)
    assert rejected == ["a", "d"]
    assert ex.max_ts == (1772323200 + 7198) * 10**9  # 01:59:58, c's ts: the rejects did not move it
    clock[0] += 86400  # a quiet day later, the clock moved on: the stream is not blocked
    feed("f", "2026-03-02T00:30:00Z")
    assert rejected == ["a", "d"] and ex.stats["late"] == 1


def test_duplicate_ids_are_rejected_as_in_batch_across_a_restart(tmp_path):
    recs = payments(300)
    first = recs[:150] + [dict(recs[3], ts="2026-03-01T00:50:00Z", amount=1)]  # p3 again, later
    src = write_jsonl(tmp_path / "in.jsonl", first)
    out, rej, state = tmp_path / "alerts.jsonl", tmp_path / "rejects.jsonl", tmp_path / "w.state"
    assert watch(src, "--out", out, "--rejects", rej, "--state", state).returncode == 0
    write_jsonl(src, recs[150:] + [dict(recs[10], amount=2), dict(recs[200], ts="2026-03-01T00:00:00Z")], "a")
    proc = watch(src, "--out", out, "--rejects", rej, "--state", state)
    assert proc.returncode == 0, proc.stderr
    got = [(r["line"], r["reason"]) for r in map(json.loads, lines(rej))]
    # batch reads the same file: the same lines are rejected for the same reason
    specs = parse_inputs([f"payment={src}"], PACK.schema)
    want = [(r.line, r.reason) for r in read_inputs(specs, PACK.schema).rejects]
    assert [line for line, _ in got] == [line for line, _ in want] == [151, 302, 303]
    assert got == want and all("duplicate id" in reason for _, reason in got)
    assert lines(out) == batch_lines(PLAN, recs)


def test_serve_exits_130_on_sigint_after_a_clean_stop(tmp_path):
    pytest.importorskip("fastapi")  # the optional 'serve' extra
    from tests.test_serve import Server

    srv = Server(REPO / "rules", tmp_path / "state")
    srv.kill(signal.SIGINT)
    assert srv.proc.returncode == 130 and "interrupted" in srv.log.read_text()
