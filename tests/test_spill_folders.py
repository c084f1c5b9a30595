"""Spill folders never outlive their read: none for a read that fits, none left by a chunked run or
by a read that fails after spilling, and one left by a run killed hard goes with the next run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fraudrules.errors import InputError
from fraudrules.io.records import parse_inputs
from fraudrules.io.spill import LOCK_NAME, SpillFolder, sweep_spill_folders
from fraudrules.jobs.score import score, score_job
from fraudrules.pack.loader import load_pack
from tests.helpers import REPO

SAMPLES = REPO / "samples"


@pytest.fixture(scope="module")
def pack():
    return load_pack(REPO / "rules")


def test_a_run_that_fits_in_memory_leaves_no_spill_folder(pack, tmp_path) -> None:
    specs = parse_inputs([str(SAMPLES)], pack.schema)
    score_job(REPO / "rules", specs, tmp_path / "out", pack=pack, memory_rows=10**7, spill_dir=tmp_path / "spill")
    assert not (tmp_path / "spill").exists() or not any((tmp_path / "spill").iterdir())


def test_a_chunked_run_removes_its_spill_folder(pack, tmp_path) -> None:
    specs = parse_inputs([str(SAMPLES)], pack.schema)
    result, _ = score_job(REPO / "rules", specs, tmp_path / "out", pack=pack, memory_rows=1500, chunk_rows=700,
                          spill_dir=tmp_path / "spill")
    assert result.chunks > 1
    assert list((tmp_path / "spill").iterdir()) == []


def test_a_read_that_fails_after_spilling_removes_the_spill(pack, tmp_path) -> None:
    bad = tmp_path / "payment.csv"
    bad.write_text("id,ts,id\np1,2026-03-01T00:00:00Z,p2\n")  # read after call.csv has been spilled
    specs = parse_inputs([f"call={SAMPLES / 'call.csv'}", f"payment={bad}"], pack.schema)
    with pytest.raises(InputError, match="more than once"):
        score(REPO / "rules", specs, pack=pack, memory_rows=1000, chunk_rows=500, spill_dir=tmp_path / "spill")
    assert list((tmp_path / "spill").iterdir()) == []


HOLDER = """
import os, sys, time
from pathlib import Path
from fraudrules.io.spill import SpillFolder
folder = SpillFolder(Path(sys.argv[1]), "fraudrules-spill-")
(folder.path / "call").mkdir()
(folder.path / "call" / "000000.parquet").write_bytes(b"x" * 1000)
if sys.argv[2] == "fork" and os.fork() == 0:  # a forked worker: it holds the lock after its parent dies
    time.sleep(60)
    os._exit(0)
print(folder.path, flush=True)
time.sleep(60)
"""


def _held_folder(where, mode: str):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(where), mode], stdout=subprocess.PIPE, text=True,
                            cwd=REPO)
    return proc, Path(proc.stdout.readline().strip())


def test_the_folders_of_runs_killed_hard_are_swept_and_live_ones_kept(tmp_path) -> None:
    """kill -9 leaves a run's spill folder behind (nothing can remove it); the next run's folder in the
    same place removes it, but not a folder whose run, or a forked worker of it, is still alive, nor a
    folder that has no lock yet (being made), nor other files."""
    dead, dead_path = _held_folder(tmp_path, "alone")
    orphaned, orphan_path = _held_folder(tmp_path, "fork")
    live, live_path = _held_folder(tmp_path, "alone")
    unlocked = tmp_path / "fraudrules-spill-new"
    unlocked.mkdir()
    other = tmp_path / "fraudrules-spill-notes.txt"
    other.write_text("not a folder")
    try:
        for proc in (dead, orphaned):
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        assert dead_path.is_dir() and orphan_path.is_dir()  # what kill -9 leaves
        mine = SpillFolder(tmp_path, "fraudrules-spill-")
        assert not dead_path.exists()
        assert orphan_path.is_dir() and live_path.is_dir() and unlocked.is_dir() and other.exists()
        assert sweep_spill_folders(tmp_path, "fraudrules-spill-") == []  # its own is held, too
        mine.remove()
        assert not mine.path.exists()
    finally:
        live.kill()
        live.wait(timeout=10)
        for child in _children_of_the_dead(orphan_path):
            os.kill(child, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while orphan_path.exists() and time.monotonic() < deadline:  # the worker's lock goes with it
        sweep_spill_folders(tmp_path, "fraudrules-spill-")
        time.sleep(0.05)
    assert not orphan_path.exists() and not live_path.exists()


def _children_of_the_dead(folder) -> list[int]:
    """The pids still holding ``folder``'s lock file open (the orphaned worker)."""
    lock = os.path.realpath(folder / LOCK_NAME)
    held = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if any(os.path.realpath(f"/proc/{pid}/fd/{fd}") == lock for fd in os.listdir(f"/proc/{pid}/fd")):
                held.append(int(pid))
        except OSError:
            continue
    return held
