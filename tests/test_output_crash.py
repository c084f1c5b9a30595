"""Crash consistency of `score`'s output set (#12): SIGKILL at every step of the commit of the
outputs, and at seeded random moments of a run, must leave the output folder holding either the old
complete set or the new complete set; the next run deletes what a killed run left beside it.

The deterministic points come from a ``sitecustomize`` put on the child's path for this test only:
it counts every rename, replace, unlink, rmdir and folder swap (``io.output_set.exchange``) that
touches the output folder or a staging folder of it, and kills the process just before, or just
after, the k-th one. A first run that kills nowhere lists the steps (engine/io/output_set.py)."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO

CLI = [sys.executable, str(REPO / "cli.py")]
HOOK = '''
import os, signal
_where = os.environ["KILL_DIR"]
_parent, _name = os.path.split(_where)
_staging = os.path.join(_parent, "." + _name + ".fraudrules-")
_k, _when, _trace = int(os.environ["KILL_AT"]), os.environ["KILL_WHEN"], os.environ["KILL_TRACE"]
_steps = [0]


def _touches(path):
    path = os.path.abspath(os.fsdecode(path))
    return path == _where or path.startswith(_where + os.sep) or path.startswith(_staging)


def _hook(name, fn, npaths):
    def hooked(*args, **kwargs):
        paths = args[:npaths]
        if not any(_touches(p) for p in paths):
            return fn(*args, **kwargs)
        _steps[0] += 1
        with open(_trace, "a") as fh:
            fh.write(name + " " + " ".join(os.path.relpath(os.fsdecode(p), _parent) for p in paths) + "\\n")
        if _steps[0] == _k and _when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        result = fn(*args, **kwargs)
        if _steps[0] == _k and _when == "after":
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    return hooked


os.replace = _hook("replace", os.replace, 2)
os.rename = _hook("rename", os.rename, 2)
os.unlink = _hook("unlink", os.unlink, 1)
os.rmdir = _hook("rmdir", os.rmdir, 1)
from fraudrules.io import output_set  # noqa: E402
output_set.exchange = _hook("exchange", output_set.exchange, 2)
'''
USER_FILE = "notes.txt"
MAX_STEPS = 40  # bounded: the commit of four files takes a handful of steps


def snapshot(folder: Path) -> dict[str, bytes]:
    """The output files (a dot entry is no output; there should be none, see ``leftovers``)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if not p.name.startswith(".")}


def leftovers(folder: Path) -> list[str]:
    """Staging folders of ``folder``: beside it, or inside it (the file-by-file commit)."""
    beside = [p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.fraudrules-")]
    inside = [p.name for p in folder.iterdir() if p.name.startswith(".")] if folder.is_dir() else []
    return beside + inside


def score(out: Path, *extra: str, env: dict | None = None, **kw):
    return subprocess.Popen([*CLI, "score", "samples", "--out", str(out), "-q", *extra], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """The old set (one rule) and the new set (every rule) of the same output folder."""
    base = tmp_path_factory.mktemp("sets")
    old, new = base / "old", base / "new"
    assert score(old, "--rule", "TF-VEL-001").wait(timeout=300) == 0
    assert score(new).wait(timeout=300) == 0
    a, b = snapshot(old), snapshot(new)
    assert a.keys() == b.keys() and a != b
    assert all(a[name] != b[name] for name in ("alerts.jsonl", "summary.json"))  # a mix would show
    # a file of the user's in the folder is part of both: it must be there at every moment
    return {**a, USER_FILE: b"mine\n"}, {**b, USER_FILE: b"mine\n"}


def _check(folder: Path, sets) -> str | None:
    got = snapshot(folder)
    old, new = sets
    if got == old or got == new:
        return None
    mixed = {name: "new" if data == new.get(name) else "old" if data == old.get(name) else "?"
             for name, data in got.items()}
    return f"a mixed output set: {mixed}"


def _seed_old(folder: Path, sets) -> None:
    folder.mkdir()
    for name, data in sets[0].items():
        (folder / name).write_bytes(data)


def _steps(lines: list[str], name: str) -> list[str]:
    """Trace lines with the folder's name and the random part of temporary names taken out."""
    return [re.sub(r"fraudrules-[^/ ]+", "fraudrules-*", line).replace(name, "OUT") for line in lines]


def _hooked_run(tmp_path: Path, out: Path, k: int, when: str) -> tuple[subprocess.Popen, list[str]]:
    hook = tmp_path / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(HOOK)
    trace = tmp_path / f"trace-{out.name}"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]),
               KILL_DIR=str(out.resolve()), KILL_AT=str(k), KILL_WHEN=when, KILL_TRACE=str(trace))
    proc = score(out, env=env)
    proc.wait(timeout=300)
    return proc, _steps(trace.read_text().splitlines() if trace.exists() else [], out.name)


def test_a_kill_at_any_commit_point_leaves_the_old_or_the_new_set(tmp_path, sets):
    # the steps of one whole commit, killed nowhere
    out = tmp_path / "whole"
    _seed_old(out, sets)
    proc, steps = _hooked_run(tmp_path, out, 0, "never")
    assert proc.returncode == 0, proc.stderr.read()
    assert snapshot(out) == sets[1] and not leftovers(out)
    assert [s.split()[0] for s in steps].count("exchange") == 1, steps  # one swap commits the set
    assert 3 <= len(steps) <= MAX_STEPS, steps
    swap = next(i for i, s in enumerate(steps, 1) if s.startswith("exchange"))
    assert len(steps) > swap, "the old set is deleted after the swap"

    problems = []
    for k in range(1, len(steps) + 1):
        for when in ("before", "after"):
            out = tmp_path / f"{when}{k}"
            _seed_old(out, sets)
            proc, seen = _hooked_run(tmp_path, out, k, when)
            assert proc.returncode == -signal.SIGKILL, proc.stderr.read()  # the hook fired
            assert seen == steps[:k], (seen, steps)  # at the k-th step
            problem = _check(out, sets)
            if problem:
                problems.append(f"killed {when} step {k} ({steps[k - 1]}): {problem}")
            # what the swap holds: the old set before it, the new one after it
            expected = sets[1] if k > swap or (k == swap and when == "after") else sets[0]
            if snapshot(out) != expected:
                which = "new" if expected is sets[1] else "old"
                problems.append(f"killed {when} step {k} ({steps[k - 1]}): not the {which} set")
    assert not problems, "\n".join(problems)

    # a killed run leaves its staging folder beside the output folder; the next run deletes it
    out = tmp_path / f"after{swap}"
    assert leftovers(out), "the killed run left nothing behind: the test would prove nothing"
    assert score(out).wait(timeout=300) == 0
    assert snapshot(out) == sets[1] and not leftovers(out)


def test_a_kill_at_random_moments_leaves_the_old_or_the_new_set(tmp_path, sets):
    rnd = random.Random(12)
    started = time.monotonic()
    assert score(tmp_path / "timing").wait(timeout=300) == 0
    full = time.monotonic() - started
    problems, killed = [], 0
    for attempt in range(6):  # bounded: six runs of a few seconds
        out = tmp_path / f"r{attempt}"
        _seed_old(out, sets)
        proc = score(out)
        time.sleep(rnd.uniform(0.5, 1.0) * full)
        proc.send_signal(signal.SIGKILL)
        killed += proc.wait(timeout=60) == -signal.SIGKILL
        problem = _check(out, sets)
        if problem:
            problems.append(f"attempt {attempt}: {problem}")
    assert not problems, "\n".join(problems)
    assert killed, "every run ended before its kill: the test would prove nothing"


@pytest.fixture
def interruptible():
    """A Ctrl-C can reach the runs this test starts. A job started with ``&`` where the shell has no job control
    (a CI runner may start the suite so) inherits SIGINT ignored; an interpreter that starts with it ignored keeps
    it so, as a background job should, and every run would finish (exit 0) whatever the test sends. A handler
    in this process, unlike an ignore, is reset to the default in a child when it starts."""
    was = signal.getsignal(signal.SIGINT)
    if was == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, was)


def test_an_interrupt_leaves_the_old_or_the_new_set_and_no_staging_folder(tmp_path, sets, interruptible):
    """Ctrl-C while the run works or commits: exit 130 (or 0 when it had finished), the old or the new
    set, and the staging folder deleted on the way out (the abort path, not the next run's clean-up)."""
    rnd = random.Random(130)
    codes = []
    # bounded: four to ten runs, each interrupted once its staging folder exists; past four, only until one
    # interrupt has landed while a run worked (a run of the samples takes a few tenths of a second after its
    # staging folder appears, so a later interrupt finds it finished: exit 0)
    for attempt in range(10):
        if attempt >= 4 and 130 in codes:
            break
        out = tmp_path / f"i{attempt}"
        _seed_old(out, sets)
        proc = score(out)
        deadline = time.monotonic() + 120
        while not leftovers(out) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rnd.uniform(0.0, 0.8 if attempt < 4 else 0.2))
        proc.send_signal(signal.SIGINT)
        codes.append(proc.wait(timeout=120))
        err = proc.stderr.read().decode(errors="replace")
        # -SIGINT: the interrupt came after the run had finished and said so, as the interpreter exited
        assert codes[-1] in (0, 130) or (codes[-1] == -signal.SIGINT and "wrote " in err), err[-3000:]
        assert _check(out, sets) is None
        assert not leftovers(out)
    assert 130 in codes, f"no interrupt landed while a run worked: {codes}"
