"""Reading while the rule pack loads (io.records.start_read on io.threads.Background): the same
result, and a read that stops or is dropped leaves nothing behind (tests/test_spill_folders.py)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fraudrules.errors import InputError
from fraudrules.io.records import parse_inputs, start_read
from fraudrules.io.threads import Background, Cancelled
from fraudrules.jobs import score as score_module
from fraudrules.jobs.score import score
from fraudrules.pack.loader import load_pack
from tests.helpers import REPO

SAMPLES = REPO / "samples"


@pytest.fixture(scope="module")
def pack():
    return load_pack(REPO / "rules")


def test_background_gives_the_value_or_the_exception() -> None:
    assert Background(lambda check: 42, "t").result() == 42

    def fails(check):
        raise InputError("bad input")

    with pytest.raises(InputError, match="bad input"):
        Background(fails, "t").result()


def test_a_cancelled_background_stops_at_its_next_check_and_discards_what_it_made() -> None:
    running, steps = threading.Event(), []

    def work(check):
        running.set()
        for i in range(5_000):
            check()
            steps.append(i)
            time.sleep(0.001)
        return "done"

    task = Background(work, "t")
    running.wait(5)
    task.cancel()
    assert 0 < len(steps) < 5_000
    with pytest.raises(Cancelled):
        task.result()

    dropped: list[str] = []
    made = Background(lambda check: "made", "t", discard=dropped.append)
    made.cancel()  # finished before or after the cancel: made and never taken, so discarded
    assert dropped == ["made"]
    taken = Background(lambda check: "taken", "t", discard=dropped.append)
    assert taken.result() == "taken"
    taken.cancel()  # taken: the caller owns it
    assert dropped == ["made"]


def _counting_reads(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = score_module.read_time_chunks

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(score_module, "read_time_chunks", counted)
    return calls


def test_a_read_started_early_is_taken_and_gives_the_same_result(pack, monkeypatch) -> None:
    specs = parse_inputs([str(SAMPLES)], pack.schema)
    plain = score(REPO / "rules", specs, pack=pack, jobs=1)
    calls = _counting_reads(monkeypatch)
    seen: list[int] = []
    early = score(REPO / "rules", specs, pack=pack, jobs=1, progress=lambda phase, n, total: seen.append(n),
                  started=start_read(specs, pack.schema))
    assert calls == []  # no second read
    assert early.alerts == plain.alerts and early.alerts
    assert early.scored.equals(plain.scored)
    assert [s.read for s in early.records.inputs] == [s.read for s in plain.records.inputs]


def test_a_read_started_with_other_arguments_is_dropped_and_read_anew(pack, monkeypatch) -> None:
    specs = parse_inputs([str(SAMPLES)], pack.schema)
    plain = score(REPO / "rules", specs, pack=pack, region="GB", jobs=1)
    calls = _counting_reads(monkeypatch)
    other = start_read(specs, pack.schema, region="CN")  # the run reads with GB
    result = score(REPO / "rules", specs, pack=pack, region="GB", jobs=1, started=other)
    assert calls == [1]
    assert result.alerts == plain.alerts


def _bad_after_spill(tmp_path: Path, pack):
    bad = tmp_path / "payment.csv"
    bad.write_text("id,ts,id\np1,2026-03-01T00:00:00Z,p2\n")  # read after call.csv has been spilled
    return parse_inputs([f"call={SAMPLES / 'call.csv'}", f"payment={bad}"], pack.schema)


def test_a_started_read_that_fails_after_spilling_removes_the_spill(pack, tmp_path) -> None:
    specs = _bad_after_spill(tmp_path, pack)
    started = start_read(specs, pack.schema, memory_rows=1000, chunk_rows=500, spill_dir=tmp_path / "spill")
    with pytest.raises(InputError, match="more than once"):
        started.result(None)
    assert list((tmp_path / "spill").iterdir()) == []


def test_a_started_read_that_is_cancelled_removes_its_spill(pack, tmp_path) -> None:
    specs = parse_inputs([str(SAMPLES)], pack.schema)
    spill = tmp_path / "spill"
    started = start_read(specs, pack.schema, memory_rows=1000, chunk_rows=500, spill_dir=spill)
    deadline = time.monotonic() + 60
    while not (spill.exists() and any(spill.iterdir())):  # spilling (or done, its spill held for the run)
        assert time.monotonic() < deadline
        time.sleep(0.001)
    started.cancel()
    assert list(spill.iterdir()) == []


def test_score_with_a_bad_rule_stops_its_read_and_reports_the_rule(tmp_path) -> None:
    """The read starts before the pack loads: a bad pack still fails at file:line:col, at once,
    and leaves nothing behind."""
    rules = tmp_path / "rules"
    subprocess.run(["cp", "-r", str(REPO / "rules"), str(rules)], check=True)
    (rules / "zz_bad.yaml").write_text("id: TF-BAD-001\ntitle: bad\nwhen: [\n")
    proc = subprocess.run([sys.executable, "-m", "fraudrules", "score", str(SAMPLES), "--rules", str(rules),
                           "--out", str(tmp_path / "out"), "--memory-rows", "1000", "--chunk-rows", "500",
                           "--spill-dir", str(tmp_path / "spill")],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "zz_bad.yaml:" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert not (tmp_path / "spill").exists() or list((tmp_path / "spill").iterdir()) == []


def test_a_cancelled_read_leaves_no_thread_behind(pack) -> None:
    """A cancelled read stops its block reader's thread too: one still parsing in Arrow as the
    interpreter exits aborts the process (seen as SIGABRT on Ctrl-C during a score)."""
    specs = parse_inputs([str(SAMPLES)], pack.schema)
    for _ in range(3):
        started = start_read(specs, pack.schema, chunk_rows=50)  # many blocks: cancelled mid-read
        deadline = time.monotonic() + 60
        while not any(t.name == "fraudrules-read-ahead" for t in threading.enumerate()):
            assert time.monotonic() < deadline
            time.sleep(0.0005)
        started.cancel()
        assert [t.name for t in threading.enumerate() if t.name.startswith("fraudrules-read")] == []
