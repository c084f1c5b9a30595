"""Spill folders never outlive their read: none for a read that fits, none left by a chunked run or
by a read that fails after spilling."""

from __future__ import annotations

import pytest

from fraudrules.errors import InputError
from fraudrules.io.records import parse_inputs
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
