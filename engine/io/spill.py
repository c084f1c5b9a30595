"""Inputs larger than memory: typed records spilled to Parquet, handed back in time-ordered chunks.

When a read would hold more than ``memory_rows`` records, every block read so far, and every
block after, is written to a spill folder as a Parquet file sorted by ``ts`` (with its input and
line, the rest of the total order) in small row groups. A sample of the timestamps gives chunk
boundaries of about ``memory_rows`` records each, at timestamp changes only, so that all records of
one timestamp fall in one chunk. Each chunk then reads just the row groups whose ``ts`` range
meets it, puts its rows in the total order, and continues the previous chunk's context
(store.context): the same mechanism that carries one day's run to the next.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ..errors import OutputError
from ..pack.streams import Schema
from .arrow import TS_TYPE, arrow_to_columns, columns_to_arrow, release_memory
from .tables import Table

ROW_GROUP = 64 * 1024
SAMPLES_PER_CHUNK = 256  # timestamps sampled per chunk's worth of rows: sizes land within ~1%
# What a whole run holds in memory (read, typed columns, evaluation in forked workers, outputs), summed
# over its processes (PSS): 0.8-0.9 GB for the bench's 1M records and 6.36 GB for its 10M (32 rules,
# two workers; docs/benchmarks.md, issue #9): ~250 MB for the process and its pack, ~610 B a record.
# A margin on both, and MEMORY_SHARE leaves the rest of the memory to wider records.
FIXED_BYTES = 256 * 2**20
BYTES_PER_HELD_ROW = 640
MEMORY_SHARE = 0.4  # of the memory available when the run starts, for records held at once
MIN_MEMORY_ROWS = 500_000  # the old fixed default: never chunk smaller than this unless asked
FLUSH_ROWS = 1 << 18  # rows sorted and written to one file at most: an input read whole goes out in pieces


def available_memory() -> int | None:
    """Bytes this process can still use: MemAvailable, capped by a cgroup (container) limit; None if unknown."""
    avail = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError):
        return None
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit = Path(limit_file).read_text().strip()
            if limit != "max" and avail is not None:
                avail = min(avail, int(limit) - int(Path(usage_file).read_text().strip()))
            break
        except (OSError, ValueError):
            continue
    return avail


def auto_memory_rows() -> int:
    """The default of ``--memory-rows``: as many records as MEMORY_SHARE of the available memory holds
    (so a run that fits is not cut into chunks it does not need), never fewer than MIN_MEMORY_ROWS."""
    avail = available_memory()
    if avail is None:
        return MIN_MEMORY_ROWS
    return max(MIN_MEMORY_ROWS, (int(avail * MEMORY_SHARE) - FIXED_BYTES) // BYTES_PER_HELD_ROW)


def _pieces(chunks: list[dict], lines: list[np.ndarray]) -> Iterator[tuple[dict, np.ndarray, np.ndarray]]:
    """(a block's columns, its lines, the rows of one file of it), at most FLUSH_ROWS rows a file: an input
    whose blocks were joined when it was read (io.records) is sorted and written a block's worth at a time."""
    for cols, line in zip(chunks, lines):
        for start in range(0, len(line), FLUSH_ROWS):
            yield cols, line, np.arange(start, min(start + FLUSH_ROWS, len(line)), dtype=np.int64)


LOCK_NAME = ".lock"  # held (flock) by the process that made a spill folder, and by its forked workers


class SpillFolder:
    """A folder for one run's spilled data (records in chunks, alert text), in ``parent``
    (``--spill-dir``, made if missing) or in the system's temporary folder.

    A run killed hard (``kill -9``, the machine's OOM killer) cannot remove its folder, and a spill
    can be many GB. So each folder holds a lock file that its run keeps locked (``flock``: the kernel lets
    go when the last process holding it dies, forked workers included), and making a folder first removes
    the folders of the same kind whose lock nobody holds: runs that are gone. A folder that cannot be
    made is the user's to fix, not a crash (OutputError)."""

    def __init__(self, parent: Path | None, prefix: str):
        where = parent if parent is not None else Path(tempfile.gettempdir())
        try:
            where.mkdir(parents=True, exist_ok=True)
            sweep_spill_folders(where, prefix)
            self.path = Path(tempfile.mkdtemp(prefix=prefix, dir=where))
            # locked before it has its name: a sweep never sees this folder's lock free
            self._lock = open(self.path / f"{LOCK_NAME}.new", "wb")  # noqa: SIM115 - held for the folder's life
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(self.path / f"{LOCK_NAME}.new", self.path / LOCK_NAME)
        except OSError as exc:
            raise OutputError(f"{where}: cannot make a spill folder: {exc.strerror or exc}") from None

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        self._lock.close()


def sweep_spill_folders(where: Path, prefix: str) -> list[Path]:
    """Remove the folders named ``prefix*`` in ``where`` whose run is gone (their lock is free); a folder
    without a lock file (being made this very moment) or with a held one is left alone."""
    removed = []
    for folder in where.glob(f"{prefix}*"):
        try:
            with open(folder / LOCK_NAME, "rb") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
        except OSError:  # no lock file, not ours to read, or held: a live run's
            continue
    return removed


class Spill:
    def __init__(self, schema: Schema, memory_rows: int, spill_dir: Path | None = None):
        if memory_rows < 1:
            raise ValueError("memory_rows must be positive")
        self.schema = schema
        self.limit = memory_rows
        self.stride = max(1, memory_rows // SAMPLES_PER_CHUNK)
        self._parent = Path(spill_dir) if spill_dir is not None else None
        # made when the first block is spilled: a read that fits in memory leaves no empty folder behind
        self._folder: SpillFolder | None = None
        self.active = False
        self.files: dict[str, list[tuple[int, Path, np.ndarray]]] = {}  # stream -> (input, file, ts sample)
        self._owner: dict[int, Any] = {}  # input index -> the read attempt its files came from
        self._count = 0
        self.rows = 0
        self._inputs_done = 0

    # -- writing -------------------------------------------------------------------------------
    def after_block(self, done: list, current: Any | None, index: int) -> None:
        """Called after each block is read: spill everything once the limit is passed."""
        if len(done) > self._inputs_done and not self.active:
            # an input read through can keep its whole file (bytes and Arrow table) in a reference
            # cycle (the CSV reader and its chunk plan) that Python's GC may not visit for a long
            # time: free it now, before this input's rows pile up on top of it
            self._inputs_done = len(done)
            release_memory()
        if not self.active:
            held = sum(len(x) for r in [*done, *([current] if current is not None else [])] for x in r.lines)
            if held <= self.limit:
                return
            self.active = True
            self._folder = SpillFolder(self._parent, "fraudrules-spill-")
        for i, res in enumerate(done):
            self._flush(res, i)
        if current is not None:
            self._flush(current, index)
        release_memory()

    def _flush(self, result: Any, index: int) -> None:
        import pyarrow.parquet as pq  # only a run that spills writes Parquet (~15 ms of imports otherwise)

        if index in self._owner and self._owner[index] is not result:
            # a reader restarted this input on its slow path: drop what the first attempt spilled
            for stream in self.files:
                for _, path, _ in [f for f in self.files[stream] if f[0] == index]:
                    self.rows -= pq.ParquetFile(path).metadata.num_rows
                    path.unlink()
                self.files[stream] = [f for f in self.files[stream] if f[0] != index]
        self._owner[index] = result
        spec = self.schema.streams[result.stream]
        for cols, line, rows in _pieces(result.chunks, result.lines):
            n = len(rows)
            order = rows[np.lexsort((line[rows], cols["ts"].values[rows]))]
            table = columns_to_arrow({k: v.take(order) for k, v in cols.items()}, spec, list(spec.fields),
                                     {"_input": np.full(n, index, dtype=np.int32), "_line": line[order]})
            assert self._folder is not None
            path = self._folder.path / result.stream / f"{self._count:06d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, path, row_group_size=ROW_GROUP)
            self.files.setdefault(result.stream, []).append(
                (index, path, cols["ts"].values[order][:: self.stride].copy()))
            self._count += 1
            self.rows += n
        result.chunks.clear()
        result.lines.clear()

    # -- reading -------------------------------------------------------------------------------
    def boundaries(self) -> list[int]:
        """Chunk starts after the first: every ``memory_rows`` records, moved to a change of timestamp."""
        samples = [s for files in self.files.values() for _, _, s in files]
        if not samples:
            return []
        ts = np.sort(np.concatenate(samples))
        per_chunk = max(1, self.limit // self.stride)
        return np.unique(ts[per_chunk::per_chunk]).tolist()

    def chunks(self) -> Iterator[dict[str, Table]]:
        """The chunks in time order. A chunk's tables are emptied when the next chunk is asked for,
        so that two chunks are never held at once: use each one before asking for the next."""
        import pyarrow.dataset as ds  # here: ~0.1 s and pandas (pyarrow's dataset imports it) a run that never
        # spills does not pay for before its read starts

        edges = [None, *self.boundaries(), None]
        for lo, hi in zip(edges[:-1], edges[1:]):
            parts: dict[str, pa.Table] = {}
            for stream, files in self.files.items():
                if not files:
                    continue
                cond = None
                if lo is not None:
                    cond = ds.field("ts") >= pa.scalar(lo, pa.int64()).cast(TS_TYPE)
                if hi is not None:
                    upper = ds.field("ts") < pa.scalar(hi, pa.int64()).cast(TS_TYPE)
                    cond = upper if cond is None else cond & upper
                table = ds.dataset([str(p) for _, p, _ in files], format="parquet").to_table(filter=cond)
                if table.num_rows:
                    parts[stream] = table
            if not parts:
                continue
            tables = self._ordered(parts)
            yield tables
            for table in tables.values():  # the caller is done with this chunk: let it go
                table.columns.clear()
            tables.clear()
            release_memory()

    def _ordered(self, parts: dict[str, pa.Table]) -> dict[str, Table]:
        """Tables of one chunk in the total order (ts, input, line), with seq from 0."""
        keys = {s: (t.column("ts").cast(pa.int64()).to_numpy(), t.column("_input").to_numpy(),
                    t.column("_line").to_numpy()) for s, t in parts.items()}
        ts = np.concatenate([k[0] for k in keys.values()])
        inp = np.concatenate([k[1] for k in keys.values()])
        line = np.concatenate([k[2] for k in keys.values()])
        seq_all = np.empty(len(ts), dtype=np.int64)
        seq_all[np.lexsort((line, inp, ts))] = np.arange(len(ts), dtype=np.int64)
        del ts, inp, line
        tables: dict[str, Table] = {}
        offset = 0
        for stream in list(parts):
            table = parts.pop(stream)  # dropped once converted: a chunk is not held twice as Arrow
            n = table.num_rows
            seq = seq_all[offset: offset + n]
            offset += n
            perm = np.argsort(seq, kind="stable")
            # permuted column by column in numpy (pointers, for text) rather than by an Arrow take of the table
            columns = arrow_to_columns(table.drop_columns(["_input", "_line"]), self.schema.streams[stream], perm)
            del table
            tables[stream] = Table(stream, columns, seq[perm], keys[stream][1][perm].astype(np.int32),
                                   keys[stream][2][perm].astype(np.int64))
            del keys[stream]
        return tables

    def close(self) -> None:
        if self._folder is not None:
            self._folder.remove()
