"""The write-ahead log of ``serve`` (engine/serve/wal.py) on its own: an entry's framing refuses every
corrupted or torn byte, rotation starts a segment at the sequence given, and pruning deletes exactly the
segments that a checkpoint covers and the retention no longer needs (an oracle of its own below)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fraudrules.serve.wal import WriteAheadLog, _decode, encode_entry, read_log

ENTRY = encode_entry(7, 1_700_000_000_000_000_000, {"stream": "call", "id": "c1", "caller": "+8613800000000"},
                     {"decision": "allow", "risk_score": 0})


def test_an_entry_decodes_to_what_was_encoded_and_ends_at_its_newline():
    two = ENTRY + encode_entry(8, 5, {"a": 1})
    first, pos = _decode(two, 0)
    assert first == {"seq": 7, "ts": 1_700_000_000_000_000_000,
                     "rec": {"stream": "call", "id": "c1", "caller": "+8613800000000"},
                     "ans": {"decision": "allow", "risk_score": 0}}
    assert pos == len(ENTRY)
    second, end = _decode(two, pos)
    assert second == {"seq": 8, "ts": 5, "rec": {"a": 1}} and end == len(two)


@pytest.mark.parametrize("k", range(len(ENTRY)))
def test_any_byte_of_an_entry_replaced_makes_it_refused(k):
    """Length, the space after it, the CRC, the space after that, the payload and the closing newline: each
    one byte wrong is a torn or corrupt entry, never an entry read wrong."""
    bad = bytearray(ENTRY)
    bad[k] = ord("#")
    assert _decode(bytes(bad), 0) is None


@pytest.mark.parametrize("cut", range(len(ENTRY)))
def test_an_entry_cut_anywhere_is_refused(cut):
    assert _decode(ENTRY[:cut], 0) is None


def _build(folder: Path, plan: list[list[int]]) -> None:
    """A log whose segments hold entries with these event times, in order (a checkpoint's rotation between them),
    sequence numbers counting from 0; then the empty segment the next entry would go to."""

    async def go() -> None:
        wal = WriteAheadLog(folder, [], 0)
        wal.start()
        seq = 0
        for times in plan:
            for ts in times:
                wal.append(seq, ts, {"n": seq})
                seq += 1
            wal.rotate(seq)
        await wal.close()

    asyncio.run(go())


PLAN = [[10, 11, 12], [20, 22, 21], [30, 31], [5]]  # segments from seq 0, 3, 6 and 8; then an empty one at 9


def test_rotation_starts_a_segment_at_the_sequence_given_and_reopening_continues_the_log(tmp_path):
    _build(tmp_path, PLAN)
    segments, entries = read_log(tmp_path)
    assert [(s.first_seq, s.last_seq, s.max_ts) for s in segments] == [
        (0, 2, 12), (3, 5, 22), (6, 7, 31), (8, 8, 5), (9, -1, None)]
    assert [e["seq"] for e in entries] == list(range(9)) and [e["rec"]["n"] for e in entries] == list(range(9))

    async def more() -> None:
        wal = WriteAheadLog(tmp_path, segments, 9)
        wal.start()
        wal.append(9, 40, {"n": 9})
        await wal.close()

    asyncio.run(more())
    segments, entries = read_log(tmp_path)
    assert [s.first_seq for s in segments] == [0, 3, 6, 8, 9] and [e["seq"] for e in entries] == list(range(10))


def test_a_segment_of_one_entry_is_rotated_and_an_empty_one_kept(tmp_path):
    _build(tmp_path, [[10], [], [11]])  # the second rotation finds the segment it opened still empty
    segments, entries = read_log(tmp_path)
    assert [(s.first_seq, s.last_seq, s.max_ts) for s in segments] == [(0, 0, 10), (1, 1, 11), (2, -1, None)]
    assert [e["seq"] for e in entries] == [0, 1]


def _prunable(segments: list[tuple[int, int | None]], keep_from_seq: int, ts_floor: int | None) -> int:
    """How many segments at the front may go: each needs a segment after it that starts at or before
    ``keep_from_seq`` (every entry of its own is then older than the checkpoint), and no record of it at or
    after ``ts_floor`` (no floor: none at all). Only a front goes, so the sequence stays without a gap."""
    gone = 0
    for (_first, max_ts), (next_first, _) in zip(segments, segments[1:]):
        covered = next_first <= keep_from_seq
        old = max_ts is None or (ts_floor is not None and max_ts < ts_floor)
        if not (covered and old):
            break
        gone += 1
    return gone


@pytest.mark.parametrize("ts_floor", [None, 0, 12, 13, 22, 23, 32, 100])
@pytest.mark.parametrize("keep_from_seq", [0, 2, 3, 4, 6, 8, 9, 12])
def test_prune_deletes_exactly_the_covered_old_segments_at_the_front(tmp_path, keep_from_seq, ts_floor):
    _build(tmp_path, PLAN)
    segments, _ = read_log(tmp_path)
    before = [(s.first_seq, s.max_ts) for s in segments]
    gone = _prunable(before, keep_from_seq, ts_floor)

    async def prune() -> int:
        wal = WriteAheadLog(tmp_path, segments, 9)
        removed = wal.prune(keep_from_seq, ts_floor)
        await wal.close()
        return removed

    assert asyncio.run(prune()) == gone
    left, entries = read_log(tmp_path)
    assert [s.first_seq for s in left] == [first for first, _ in before[gone:]]
    assert sorted(p.name for p in tmp_path.iterdir()) == [s.path.name for s in left]
    first = before[gone][0]
    assert [e["seq"] for e in entries] == list(range(first, 9))  # what is left reads back without a gap
