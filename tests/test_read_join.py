"""An input's blocks are joined into one as soon as it is read (io.records ``join_blocks``), so that the
inputs read after it pile up on its merged columns; a spill that starts later writes such an input out
in pieces of at most ``FLUSH_ROWS`` rows (io.spill), and the run equals one held in memory."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

import fraudrules.io.spill as spill_module
from fraudrules.io.records import parse_inputs, read_time_chunks
from fraudrules.jobs.score import score_job
from fraudrules.pack.loader import load_pack
from tests.helpers import REPO

SAMPLES = REPO / "samples"
ORDER = ["sim_event", "payment", "sms", "call"]  # the smallest first: read whole before the spill starts


@pytest.fixture(scope="module")
def pack():
    return load_pack(REPO / "rules")


def _specs(pack):
    return parse_inputs([f"{name}={SAMPLES / (name + '.csv')}" for name in ORDER], pack.schema)


def test_each_input_read_in_blocks_holds_one_joined_block_with_the_tables_of_before(pack) -> None:
    read = read_time_chunks(_specs(pack), pack.schema, chunk_rows=100)
    assert [len(r.chunks) for r in read.results] == [1, 1, 1, 1]
    assert [len(r.lines) for r in read.results] == [1, 1, 1, 1]
    blocks = read.whole()
    whole = read_time_chunks(_specs(pack), pack.schema, chunk_rows=10**6).whole()  # one block an input
    for stream, table in whole.tables.items():
        other = blocks.tables[stream]
        assert other.seq.tolist() == table.seq.tolist() and other.line.tolist() == table.line.tolist()
        for name, col in table.columns.items():
            assert other.columns[name].values.tolist() == col.values.tolist(), (stream, name)
            assert other.columns[name].null.tolist() == col.null.tolist(), (stream, name)


def test_a_joined_input_spilled_later_goes_out_in_pieces_and_the_run_equals_one_in_memory(pack, tmp_path,
                                                                                         monkeypatch) -> None:
    _, in_memory = score_job(REPO / "rules", _specs(pack), tmp_path / "mem", pack=pack, memory_rows=10**7,
                             chunk_rows=100)
    rows_written: dict[str, list[int]] = {}
    write_table = pq.write_table

    def counting(table, path, **kwargs):
        rows_written.setdefault(path.parent.name, []).append(table.num_rows)
        return write_table(table, path, **kwargs)

    monkeypatch.setattr(pq, "write_table", counting)  # spill imports pyarrow.parquet when it writes
    monkeypatch.setattr(spill_module, "FLUSH_ROWS", 64)
    # sim_event (531 records) is read and joined; the payments after it pass 1,500 records held
    result, spilled = score_job(REPO / "rules", _specs(pack), tmp_path / "spill", pack=pack, memory_rows=1500,
                                chunk_rows=100, spill_dir=tmp_path / "tmp")
    assert result.chunks > 1
    sims = rows_written["sim_event"]
    assert len(sims) == -(-result.records.inputs[0].scored // 64) and max(sims) <= 64
    for kind in ("alerts", "scored"):
        assert spilled[kind].read_bytes() == in_memory[kind].read_bytes()
