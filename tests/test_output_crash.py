"""Crash consistency of `score`'s output set (#12): SIGKILL at every point of the commit of the
outputs, and at seeded random moments while they are written, must leave the output folder
holding either the old complete set or the new complete set (temporary files aside).

The deterministic points come from a ``sitecustomize`` put on the child's path for this test only:
it kills the process just before, or just after, the k-th ``os.replace`` into the output folder,
which is how each output file is committed (engine/io/sinks.py::atomic_path)."""

from __future__ import annotations

import os
import random
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
_replace, _calls = os.replace, [0]
_where, _k, _when = os.environ["KILL_DIR"], int(os.environ["KILL_AT"]), os.environ["KILL_WHEN"]

def replace(src, dst, *a, **kw):
    if os.path.dirname(os.path.abspath(dst)) == _where:
        _calls[0] += 1
        if _calls[0] == _k and _when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        _replace(src, dst, *a, **kw)
        if _calls[0] == _k and _when == "after":
            os.kill(os.getpid(), signal.SIGKILL)
        return None
    return _replace(src, dst, *a, **kw)

os.replace = replace
'''


def snapshot(folder: Path) -> dict[str, bytes]:
    """The output files (temporary files left by a kill are not outputs)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if not p.name.startswith(".")}


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
    return a, b


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


@pytest.mark.xfail(strict=True, reason="#12: each output file is renamed into place on its own, so a kill "
                                      "between two renames leaves a mixed set; the set is not committed as a unit")
def test_a_kill_at_any_commit_point_leaves_the_old_or_the_new_set(tmp_path, sets):
    problems = []
    for k in range(1, len(sets[0]) + 1):
        for when in ("before", "after"):
            out = tmp_path / f"{when}{k}"
            _seed_old(out, sets)
            hook = tmp_path / "hook"
            hook.mkdir(exist_ok=True)
            (hook / "sitecustomize.py").write_text(HOOK)
            env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]),
                       KILL_DIR=str(out.resolve()), KILL_AT=str(k), KILL_WHEN=when)
            proc = score(out, env=env)
            assert proc.wait(timeout=300) == -signal.SIGKILL, proc.stderr.read()  # the hook fired
            problem = _check(out, sets)
            if problem:
                problems.append(f"killed {when} commit {k}: {problem}")
    assert not problems, "\n".join(problems)


@pytest.mark.xfail(strict=False, reason="#12: as above; a random moment may or may not fall between two renames")
def test_a_kill_at_random_moments_leaves_the_old_or_the_new_set(tmp_path, sets):
    rnd = random.Random(12)
    started = time.monotonic()
    assert score(tmp_path / "timing").wait(timeout=300) == 0
    full = time.monotonic() - started
    problems = []
    for attempt in range(6):  # bounded: six runs of a few seconds
        out = tmp_path / f"r{attempt}"
        _seed_old(out, sets)
        proc = score(out)
        time.sleep(rnd.uniform(0.5, 1.0) * full)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        problem = _check(out, sets)
        if problem:
            problems.append(f"attempt {attempt}: {problem}")
    assert not problems, "\n".join(problems)
