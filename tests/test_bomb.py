"""A compressed bomb (#12): a few hundred KB of .gz that inflates to hundreds of MB of blank lines
must be read as a stream, in memory bounded by the block size, not inflated whole. Measured, not
timed: the peak RSS of a run over the bomb is compared with that of a run over the same records
without the padding (resource.getrusage of a fresh child each time)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

INFLATED_MB = 256
ROWS = {"csv": ("id,ts,amount\n", "p{i},2026-03-01T00:00:{i:02d}Z,10\n"),
        "jsonl": ("", '{{"id": "p{i}", "ts": "2026-03-01T00:00:{i:02d}Z", "amount": 10}}\n')}
MEASURE = """
import resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(proc.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, proc.stderr[-300:].replace(chr(10), " "))
"""


def write(path: Path, fmt: str, padding_mb: int) -> Path:
    header, row = ROWS[fmt]
    with gzip.open(path, "wb", compresslevel=6) as fh:
        fh.write(header.encode())
        blank = b"\n" * (1 << 20)
        for _ in range(padding_mb):
            fh.write(blank)
        for i in range(20):
            fh.write(row.format(i=i).encode())
    return path


def peak_kb(tmp: Path, src: Path) -> int:
    out = tmp / ("out-" + src.name)
    args = [sys.executable, "-c", MEASURE, sys.executable, str(REPO / "cli.py"), "score", f"payment={src}",
            "--out", str(out), "-q"]
    code, kb, err = subprocess.run(args, capture_output=True, text=True, cwd=REPO, timeout=600).stdout.split(" ", 2)
    assert code == "0", err
    summary = json.loads((out / "summary.json").read_text())
    assert [(i["read"], i["scored"], i["rejected"]) for i in summary["inputs"]] == [(20, 20, 0)]
    return int(kb)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_compressed_bomb_of_blank_lines_is_read_in_bounded_memory(tmp_path, fmt):
    bomb = write(tmp_path / f"bomb.{fmt}.gz", fmt, INFLATED_MB)
    plain = write(tmp_path / f"plain.{fmt}.gz", fmt, 0)
    assert bomb.stat().st_size < INFLATED_MB * 4096  # > 250 times smaller than what it holds
    extra_mb = (peak_kb(tmp_path, bomb) - peak_kb(tmp_path, plain)) / 1024
    assert extra_mb < INFLATED_MB / 2, f"the bomb cost {extra_mb:.0f} MB more than the same records unpadded"
