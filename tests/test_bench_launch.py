"""The benchmarks' peak RSS is the contender's own (bench/launch.py): a child started by a process
that has grown reports at least that process's peak (Linux keeps the parent's high-water mark
across exec); a child started by the Launcher does not."""

from __future__ import annotations

import os
import subprocess
import sys

from bench.launch import Launcher

GROWN_MB = 400


def test_a_launched_contender_reports_its_own_peak_not_the_benchmarks(tmp_path):
    grown = bytearray(GROWN_MB << 20)
    grown[::4096] = b"\x01" * len(grown[::4096])  # touched: resident
    cmd = [sys.executable, "-c", "pass"]
    direct = subprocess.Popen(cmd)
    _, _, usage = os.wait4(direct.pid, 0)
    assert usage.ru_maxrss / 1024 >= GROWN_MB  # the inherited floor the launcher is there to avoid
    launcher = Launcher()
    try:
        done = launcher.run(cmd, tmp_path, tmp_path / "out", tmp_path / "err")
        big = launcher.run([sys.executable, "-c", "x = bytearray(200 << 20); x[::4096] = b'1' * len(x[::4096])"],
                           tmp_path, tmp_path / "out2", tmp_path / "err2")
    finally:
        launcher.close()
    del grown
    assert done.exit_code == 0 and done.peak_rss_mb < 100
    assert big.exit_code == 0 and 200 <= big.peak_rss_mb < 300  # what the contender itself held
