"""Contenders started from a small process, so that their peak RSS is their own.

Linux starts a child's ``ru_maxrss`` at the high-water mark of the process it was forked (or
vforked) from, and keeps it across exec. A benchmark that has grown (generating data, reading ids)
and then launches a contender would report at least its own peak for the contender: with
``bench_batch`` at 390 MB, the engine and DuckDB both showed 390 MB at 1M records. The
:class:`Launcher`'s worker is forked from a fork server started while the benchmark is small, and
imports nothing but this module; it starts each contender and waits for it.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import NamedTuple


class Finished(NamedTuple):
    exit_code: int
    seconds: float  # wall time, interpreter start-up included
    peak_rss_mb: float  # of the contender and the children it waited for
    cpu_seconds: float  # user + system


def run_and_wait(cmd: list[str], cwd: str, stdout: str, stderr: str) -> Finished:
    with open(stdout, "wb") as fo, open(stderr, "wb") as fe:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=fo, stderr=fe)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
    return Finished(os.waitstatus_to_exitcode(status), seconds, usage.ru_maxrss / 1024,  # Linux: KiB
                    usage.ru_utime + usage.ru_stime)


class Launcher:
    """Create it first thing in ``main``, before the benchmark grows."""

    def __init__(self) -> None:
        self._pool = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("forkserver"))
        self._pool.submit(int).result()  # the server and its worker start now, small

    def run(self, cmd: list[str], cwd: Path, stdout: Path, stderr: Path) -> Finished:
        return self._pool.submit(run_and_wait, cmd, str(cwd), str(stdout), str(stderr)).result()

    def close(self) -> None:
        self._pool.shutdown()
