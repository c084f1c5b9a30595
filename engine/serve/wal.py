"""Write-ahead log of accepted records, with group commit (``fraudrules serve``).

Format: segment files ``wal-<first seq, 16 digits>.log`` in the state folder.
Each entry is one line ``<length> <crc32 hex> <json>\\n``; the JSON is
``{"seq": n, "ts": ns, "rec": {...}, "ans": {...}}``: the record as received and the answer it got (so
that a retry after a restart gets it again; entries written before answers were logged have no
``ans``). Length and
CRC catch a torn or corrupted entry: at the end of the *last* segment that is
what a crash mid-write leaves, and the tail is cut there (such an entry was
never acknowledged, since acknowledgement waits for its fsync); anywhere else
it is corruption and opening the log fails loudly.

Group commit: :meth:`WriteAheadLog.append` only queues the bytes (it runs on
the event loop, in request order); one committer task writes and fsyncs
everything queued so far in a worker thread (after waiting ``window`` seconds
for more, default 0) and then wakes every request whose entries it covered.
Requests that arrive during an fsync form the next group, so under load one
fsync serves many requests without delaying a lone one.
"""

from __future__ import annotations

import asyncio
import json
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import FraudRulesError
from ..io.files import fsync_dir

_PREFIX = "wal-"
_SUFFIX = ".log"


def encode_entry(seq: int, ts: int, rec: dict, answer: dict | None = None) -> bytes:
    entry = {"seq": seq, "ts": ts, "rec": rec} if answer is None else {"seq": seq, "ts": ts, "rec": rec, "ans": answer}
    # records (validated) and alerts (runtime.alerts) hold finite numbers only
    payload = json.dumps(entry, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    return b"%d %08x " % (len(payload), zlib.crc32(payload)) + payload + b"\n"


def _decode(buf: bytes, pos: int) -> tuple[dict, int] | None:
    """The entry at ``pos`` and the position after it, or None if it is torn or corrupt."""
    sp1 = buf.find(b" ", pos, pos + 21)
    if sp1 < 0:
        return None
    try:
        length = int(buf[pos:sp1])
        crc = int(buf[sp1 + 1: sp1 + 9], 16)
    except ValueError:
        return None
    start = sp1 + 10
    end = start + length
    if buf[sp1 + 9: sp1 + 10] != b" " or end >= len(buf) or buf[end: end + 1] != b"\n":
        return None
    payload = buf[start:end]
    if zlib.crc32(payload) != crc:
        return None
    try:
        entry = json.loads(payload)
    except ValueError:
        return None
    return entry, end + 1


@dataclass
class Segment:
    path: Path
    first_seq: int
    last_seq: int = -1  # -1: empty
    max_ts: int | None = None

    def note(self, seq: int, ts: int) -> None:
        self.last_seq = seq
        if self.max_ts is None or ts > self.max_ts:
            self.max_ts = ts


def _segment_path(folder: Path, first_seq: int) -> Path:
    return folder / f"{_PREFIX}{first_seq:016d}{_SUFFIX}"


def log_entries(folder: Path, segments: list[Segment]) -> Iterator[dict]:
    """Every entry of every segment of ``folder``, in order, one segment in memory at a time; each segment read
    is appended to ``segments`` (complete once the iteration ends). A torn tail of the last segment is cut off
    (never acknowledged: acknowledgement waits for its fsync); a bad entry anywhere else raises."""
    paths = sorted(p for p in folder.glob(f"{_PREFIX}*{_SUFFIX}"))
    last_seq: int | None = None
    for k, path in enumerate(paths):
        seg = Segment(path, int(path.name[len(_PREFIX): -len(_SUFFIX)]))
        segments.append(seg)
        for entry in _segment_entries(path, repair=k == len(paths) - 1):
            seq = int(entry["seq"])
            if last_seq is not None and seq != last_seq + 1:
                raise FraudRulesError(f"{path}: write-ahead log sequence jumps from {last_seq} to {seq}")
            last_seq = seq
            seg.note(seq, int(entry["ts"]))
            yield entry


def _segment_entries(path: Path, repair: bool) -> Iterator[dict]:
    """The entries of one segment file; ``repair``: it is the last, and a torn tail is cut off, not an error."""
    data = path.read_bytes()
    pos = 0
    while pos < len(data):
        got = _decode(data, pos)
        if got is None:
            if not repair:
                raise FraudRulesError(f"{path}: corrupt write-ahead log entry at byte {pos} (not the tail "
                                      f"of the last segment)")
            with open(path, "r+b") as fh:
                fh.truncate(pos)
                os.fsync(fh.fileno())
            return
        entry, pos = got
        yield entry


def read_log(folder: Path) -> tuple[list[Segment], list[dict]]:
    """:func:`log_entries` all at once (tests and small logs)."""
    segments: list[Segment] = []
    entries = list(log_entries(folder, segments))
    return segments, entries


def entries_since(segments: list[Segment], ts_floor: int) -> Iterator[dict]:
    """The entries of ``segments`` (a log whose every entry is on disk: :meth:`WriteAheadLog.settle`), in order,
    but those of segments whose records are all older than ``ts_floor``, which are not read."""
    for seg in segments:
        if seg.max_ts is not None and seg.max_ts >= ts_floor:
            yield from _segment_entries(seg.path, repair=False)


class WriteAheadLog:
    """Append-only segments with group commit; see the module docstring."""

    def __init__(self, folder: Path, segments: list[Segment], next_seq: int, *, window: float = 0.0):
        self.folder = folder
        self.window = window
        self.segments = segments
        if not segments or segments[-1].last_seq >= 0 or segments[-1].first_seq != next_seq:
            self.segments.append(Segment(_segment_path(folder, next_seq), next_seq))
        self._fh = open(self.segments[-1].path, "ab")
        fsync_dir(folder)
        self._queue: list[Any] = []  # bytes, or ("rotate", Segment)
        self._queued = 0  # tickets handed out
        self._durable = 0  # tickets on disk
        self._waiters: list[tuple[int, asyncio.Future]] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._error: BaseException | None = None
        self.fsyncs = 0
        self.bytes = 0

    # -- on the event loop -----------------------------------------------------------------
    def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._committer())

    def append(self, seq: int, ts: int, rec: dict, answer: dict | None = None) -> int:
        """Queue one entry; returns the ticket to wait for."""
        self._queue.append(encode_entry(seq, ts, rec, answer))
        seg = self.segments[-1]
        seg.note(seq, ts)
        self._queued += 1
        if self._wake is not None:
            self._wake.set()
        return self._queued

    def rotate(self, next_seq: int) -> None:
        """Entries from now on go to a new segment starting at ``next_seq``."""
        if self.segments[-1].last_seq < 0:
            return  # the current segment is empty: keep using it
        seg = Segment(_segment_path(self.folder, next_seq), next_seq)
        self.segments.append(seg)
        self._queue.append(("rotate", seg))
        self._queued += 1
        if self._wake is not None:
            self._wake.set()

    async def durable(self, ticket: int | None = None) -> None:
        """Wait until the entries up to ``ticket`` (default: all queued) are fsynced."""
        ticket = self._queued if ticket is None else ticket
        if self._error is not None:
            raise FraudRulesError(f"write-ahead log failed: {self._error!r}")
        if ticket <= self._durable:
            return
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append((ticket, fut))
        assert self._wake is not None
        self._wake.set()
        await fut

    async def settle(self) -> None:
        """Wait until every entry queued is on disk and none is being written: the segments can then be read.
        Whoever calls this keeps new entries from being queued meanwhile, or it may wait for them too."""
        while self._durable < self._queued:
            await self.durable()

    def prune(self, keep_from_seq: int, ts_floor: int | None) -> int:
        """Delete whole segments before ``keep_from_seq`` whose records are all older than ``ts_floor``."""
        removed = 0
        while len(self.segments) > 1:
            seg = self.segments[0]
            nxt = self.segments[1]
            if nxt.first_seq > keep_from_seq:
                break
            if seg.max_ts is not None and (ts_floor is None or seg.max_ts >= ts_floor):
                break
            seg.path.unlink(missing_ok=True)
            self.segments.pop(0)
            removed += 1
        return removed

    async def close(self) -> None:
        await self.durable()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._fh.close()

    async def _committer(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self.window > 0:
                await asyncio.sleep(self.window)  # let concurrent requests join this group
            if not self._queue:
                continue
            items, self._queue = self._queue, []
            upto = self._queued
            try:
                await asyncio.to_thread(self._write, items)
            except BaseException as exc:  # the disk failed: no request may be acknowledged now
                self._error = exc
                for _, fut in self._waiters:
                    if not fut.done():
                        fut.set_exception(FraudRulesError(f"write-ahead log failed: {exc!r}"))
                self._waiters = []
                return
            self._durable = upto
            still = []
            for ticket, fut in self._waiters:
                if ticket <= upto:
                    if not fut.done():
                        fut.set_result(None)
                else:
                    still.append((ticket, fut))
            self._waiters = still
            if self._queue:
                self._wake.set()

    # -- in the worker thread -------------------------------------------------------------
    def _write(self, items: list) -> None:
        buf = bytearray()
        for it in items:
            if isinstance(it, tuple):
                self._fh.write(buf)
                buf.clear()
                self._fh.flush()
                os.fsync(self._fh.fileno())
                self._fh.close()
                self._fh = open(it[1].path, "ab")
                fsync_dir(self.folder)
            else:
                buf += it
        self._fh.write(buf)
        self._fh.flush()
        os.fdatasync(self._fh.fileno())
        self.fsyncs += 1
        self.bytes += len(buf)
