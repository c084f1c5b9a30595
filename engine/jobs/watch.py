"""The watch job: JSON Lines records in, alerts out as they fire (``fraudrules watch``).

Reads JSON Lines (each record with a ``stream`` field, or source rows read
through a mapping file) from stdin, a file or a growing file (``follow``),
feeds them to the :class:`~engine.stream.StreamExecutor` in micro-batches of
whatever input is available, appends every alert to the alert file as one
line (:func:`engine.runtime.alerts.alert_line`) and flushes it at once.

Nothing is dropped silently: lines that are not JSON objects or whose values
do not fit their fields go to the rejects output, records behind the
watermark to the late output (both JSON Lines with a reason), and both are
counted.

Checkpoints (``state``): the executor's state (JSON), the input offset and
identity, and the path and byte length of every output file are written
atomically (tmp file, fsync, ``os.replace``) every ``checkpoint_every``
seconds and at shutdown, *before* the final flush of pending records. On
restart the output files are truncated to the checkpointed lengths, live facts
are re-asserted into a fresh durable-rules host and input resumes at the
offset, so the alert file ends up exactly as an uninterrupted run's: nothing
lost, nothing repeated.

A checkpoint is trusted only whole (docs/streaming.md): a header line with its
format version, the body's length and its SHA-256, then the body, whose fields
are checked one by one; the input must be the same file (inode and a digest of
its first bytes), each output at least as long as recorded and cut at a line
end there. Anything else is refused before any file is touched. The state file
(through ``STATE.lock`` beside it) and every output file are locked
(``flock``) for the run, so a second watch on them is refused.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import math
import os
import re
import select
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..errors import FraudRulesError, InputError
from ..executors.stream import StreamExecutor
from ..io.convert import loads_json
from ..io.files import fsync_dir
from ..lang.expr import DURATION_UNITS
from ..runtime.alerts import alert_line, iso_utc
from ..runtime.plan import Plan

STATE_KIND = "fraudrules-watch-checkpoint"
STATE_VERSION = 2
HEAD_BYTES = 4096  # the input is known by its inode and a digest of its first bytes (up to this many)
DEFAULT_MAX_FUTURE = 86400.0  # seconds: --max-future 1d
MAX_LINE_BYTES = 16 << 20  # one input line; a longer one is a reject (a record is a few hundred bytes)


def parse_duration(text: str | float | int) -> float:
    """``30s``, ``5m``, ``1.5h``, ``7d``, ``250ms`` or plain seconds -> seconds."""
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d|w)?\s*", str(text))
        if not m:
            raise ValueError(f"not a duration: {text!r} (examples: 30s, 5m, 1h, 7d)")
        value = float(m.group(1)) * DURATION_UNITS.get(m.group(2) or "s", 1)
    if value < 0 or math.isnan(value):
        raise ValueError(f"not a duration: {text!r}")
    return value


def rss_mb() -> float:
    """Current resident set size in MB (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1 << 20)
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        return 0.0


class _Output:
    """An append-only JSON Lines output whose byte length is known (for checkpoints)."""

    def __init__(self, path: Path | None, fallback: Callable[[str], None] | None = None):
        self.path = path
        self.fallback = fallback
        self.fh: IO[bytes] | None = None
        self.length = 0
        self.lines = 0

    def open(self) -> None:
        """Open for appending and take the file's lock; nothing is truncated yet."""
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fh = open(self.path, "a+b")  # readable too: check() reads the byte at the checkpointed end
        except OSError as exc:
            raise FraudRulesError(f"{self.path}: cannot open for writing: {exc.strerror or exc}") from None
        lock(self.fh.fileno(), self.path)
        self.length = self.fh.seek(0, os.SEEK_END)

    def check(self, name: str, recorded: dict[str, Any]) -> None:
        """Refuse to resume unless this output is the one the checkpoint wrote, intact up to its length."""
        want_path, want = recorded["path"], recorded["length"]
        here = None if self.path is None else str(self.path)
        if want_path != here:
            raise FraudRulesError(f"the checkpoint was taken writing {name} to {want_path or 'stderr'}, "
                                  f"not {here or 'stderr'}")
        if self.fh is None:
            return
        if self.length < want:
            raise FraudRulesError(f"{self.path} is shorter ({self.length} bytes) than the checkpoint says "
                                  f"({want}); it was changed since: refusing to resume")
        if want and os.pread(self.fh.fileno(), 1, want - 1) != b"\n":
            raise FraudRulesError(f"{self.path}: byte {want} is not the end of a line, as the checkpoint says; "
                                  "it was changed since: refusing to resume")

    def truncate(self, length: int) -> None:
        if self.fh is not None:
            self.fh.truncate(length)
            self.length = length

    def write(self, line: str) -> None:
        self.lines += 1
        if self.fh is None:
            if self.fallback is not None:
                self.fallback(line)
            return
        data = (line + "\n").encode("utf-8")
        self.fh.write(data)
        self.length += len(data)

    def flush(self, sync: bool = False) -> None:
        if self.fh is not None:
            self.fh.flush()
            if sync:
                os.fsync(self.fh.fileno())

    def close(self) -> None:
        if self.fh is not None:
            self.fh.flush()
            self.fh.close()
            self.fh = None


@dataclass
class WatchOptions:
    input: str = "-"  # a path, or "-" for stdin
    out: Path = Path("alerts.jsonl")
    lateness: float = 0.0  # seconds
    follow: bool = False
    late: Path | None = None
    rejects: Path | None = None
    state: Path | None = None
    stats_every: float = 10.0  # seconds; 0 = never
    checkpoint_every: float = 10.0  # seconds
    poll: float = 0.2  # seconds between looks at a growing file
    shards: int = 256
    batch_lines: int = 4096  # most records normalised together
    summary: Path | None = None
    history: Path | None = None  # a batch history store to start from (on a fresh start only)
    max_future: float | None = DEFAULT_MAX_FUTURE  # seconds a ts may lead the newest ts and the clock; None: no bound
    max_line_bytes: int = MAX_LINE_BYTES  # a longer line is rejected (and skipped) instead of held in memory


class StreamRun:
    """What ``watch`` on a file and ``watch --source nats://`` share, one place per check: the executor
    (``--max-future``, batch's duplicate-id policy, evaluation errors rejected), the three outputs
    (locked, their lengths kept for checkpoints), the decoding of a raw line or message, the poison
    isolation at intake, and the rejects and late lines. ``position`` names a record's place in its
    input in those lines (``line``; NATS: ``stream_seq``)."""

    position = "line"

    def __init__(self, plan: Plan, *, out: Path, late: Path | None, rejects: Path | None, lateness: float,
                 shards: int, region: str, max_future: float | None, max_line_bytes: int = MAX_LINE_BYTES,
                 mapping=None, log: Callable[[str], None] | None = None):
        self.plan = plan
        self.mapping = mapping
        self.region = region
        self.max_line_bytes = max_line_bytes
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.stop = False
        self.alerts = _Output(out)
        self.late = _Output(late, lambda line: self.log(f"late: {line}"))
        self.rejects = _Output(rejects, lambda line: self.log(f"rejected: {line}"))
        self.executor = StreamExecutor(plan, lateness=lateness, shards=shards, region=region,
                                       on_late=self._on_late, on_reject=self._on_reject,
                                       max_future=max_future, unique_ids=True)
        self.executor.on_eval_error = self._on_eval_error
        self.filtered = 0  # rows a mapping's where left out
        self.rejected_at: set[int] = set()  # positions of the records rejected since the caller cleared it
        self._state_lock: int | None = None  # fd of STATE.lock, held for the run
        self._lines_of: dict[int, int] = {}  # id(record) -> its position, for the current batch

    # -- outputs for the executor -------------------------------------------------------
    def _on_late(self, record: dict, info: dict) -> None:
        ts, wm = info["ts_ns"], info["watermark_ns"]
        out = {"reason": f"late: ts {iso_utc(np.array([ts]))[0]} is {info['behind_s']:g}s behind the "
                         f"watermark {iso_utc(np.array([wm]))[0]}",
               self.position: self._lines_of.get(id(record)), "record": record}
        self.late.write(json.dumps(out, ensure_ascii=False, separators=(",", ":"), default=str))

    def _on_reject(self, record: Any, reason: str) -> None:
        self._write_reject(reason, self._lines_of.get(id(record)), record=record)

    def _on_eval_error(self, record: dict, reason: str) -> None:
        self.log(f"warning: {record.get('stream')} record {record.get('id')!r} rejected: {reason}")

    def _write_reject(self, reason: str, pos: int | None, *, record: Any = None, text: str | None = None) -> None:
        if pos is not None:
            self.rejected_at.add(pos)
        out: dict[str, Any] = {"reason": reason, self.position: pos}
        if text is not None:
            out["text"] = text[:200]
        else:
            out["record"] = record
        self.rejects.write(reject_json(out))

    def _reject_line(self, pos: int, reason: str, text: str) -> None:
        self.executor.counters["records_in"] += 1
        self.executor.counters["rejected"] += 1
        self._write_reject(reason, pos, text=text)

    def _outputs(self) -> dict[str, _Output]:
        return {"alerts": self.alerts, "late": self.late, "rejects": self.rejects}

    def _lock(self, state: Path | None) -> None:
        """Lock the state (beside it) and every output, or refuse: nothing is truncated yet."""
        if state is not None:
            self._state_lock = lock_beside(state)
        for o in self._outputs().values():
            o.open()

    def _check_outputs(self, state: dict[str, Any]) -> None:
        for name, o in self._outputs().items():
            o.check(name, state["outputs"][name])

    def _truncate_outputs(self, state: dict[str, Any]) -> None:
        """Back to the checkpoint: what was written after it is written again from the same input."""
        for name, o in self._outputs().items():
            o.truncate(state["outputs"][name]["length"])

    def _outputs_state(self) -> dict[str, Any]:
        """The outputs for a checkpoint, fsynced first: they must be on disk up to the lengths recorded."""
        for o in self._outputs().values():
            o.flush(sync=True)
        return {name: {"path": None if o.path is None else str(o.path), "length": o.length}
                for name, o in self._outputs().items()}

    def _release_locks(self) -> None:
        for o in self._outputs().values():
            o.close()
        if self._state_lock is not None:
            os.close(self._state_lock)  # closing the fd releases the lock
            self._state_lock = None

    def _load_executor(self, path: Path, state: dict[str, Any]) -> None:
        try:
            self.executor.load_state(state["executor"])
        except FraudRulesError as exc:
            raise FraudRulesError(f"{path}: {exc}") from None
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise FraudRulesError(f"{path}: the checkpoint's executor state is invalid "
                                  f"({type(exc).__name__}: {exc})") from None

    # -- records in ---------------------------------------------------------------------------
    def decode(self, raw: bytes, pos: int, blank_ok: bool = True) -> Any:
        """A line or message as a JSON object; None when it is blank (``blank_ok``) or rejected (with its
        reason): too long, invalid UTF-8 (as score rejects it, never read with U+FFFD in place of the
        bytes), invalid JSON, nested too deeply for the parser, not an object."""
        if len(raw) > self.max_line_bytes:
            self._reject_line(pos, f"line longer than {self.max_line_bytes:,} bytes",
                              raw[:200].decode("utf-8", "replace"))
            return None
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            self._reject_line(pos, "invalid UTF-8", raw.decode("utf-8", "replace").strip())
            return None
        if not text:
            if not blank_ok:
                self._reject_line(pos, "an empty message", "")
            return None
        try:
            obj = loads_json(text)
        except ValueError as exc:
            self._reject_line(pos, f"invalid JSON: {exc}", text)
            return None
        if not isinstance(obj, dict):
            self._reject_line(pos, "not a JSON object", text)
            return None
        return obj

    def feed(self, records: list[dict], lines_of: dict[int, int]) -> list[dict]:
        """Take decoded records (``lines_of``: id(record) -> position) and return the alerts released."""
        self._lines_of = lines_of
        try:
            self._take(records, lines_of)
            return self.executor.release()
        finally:
            self._lines_of = {}

    def _take(self, records: list[dict], lines_of: dict[int, int]) -> None:
        """Map and normalise the records into the executor's buffer. If that fails on a record no
        reader foresaw (a poison record), the batch is undone and taken again record by record, and
        the record that fails alone is rejected: the offset moves past it, so a restart does not
        meet it again. (The intake buffers nothing unless it succeeds whole: engine/executors/stream.)"""
        mark = self._mark()
        try:
            self._intake(records, lines_of)
            return
        except Exception:  # noqa: BLE001 - any failure of one record must not stop the stream
            self._undo(mark)
        for rec in records:
            mark = self._mark()
            try:
                self._intake([rec], lines_of)
            except Exception as exc:  # noqa: BLE001
                self._undo(mark)
                self.executor.counters["records_in"] += 1
                self.executor.counters["rejected"] += 1
                self._write_reject(f"cannot be read: {type(exc).__name__}: {exc}", lines_of.get(id(rec)), record=rec)

    def _intake(self, records: list[dict], lines_of: dict[int, int]) -> None:
        if self.mapping is not None:
            records = self._map(records, lines_of)
        self.executor.intake(records)

    def _mark(self) -> tuple:
        return (self.executor.counters.copy(), self.filtered, self.rejects.length, self.rejects.lines,
                set(self.rejected_at))

    def _undo(self, mark: tuple) -> None:
        counters, self.filtered, length, self.rejects.lines, self.rejected_at = mark
        self.executor.counters = counters
        self.rejects.truncate(length)  # the rejects of the failed attempt are written again

    def _write_alerts(self, alerts: list[dict]) -> None:
        for a in alerts:
            self.alerts.write(alert_line(a))
        self.alerts.flush()  # an alert is on its way as soon as it fires
        self.late.flush()
        self.rejects.flush()

    def _map(self, rows: list[dict], lines_of: dict[int, int]) -> list[dict]:
        """Source rows through the mapping file -> records of its stream (as JSON values)."""
        from ..io.convert import dict_rows_to_columns
        from ..io.raw import RawChunk

        mapping = self.mapping
        if not rows:
            return []
        n = len(rows)
        cols, pre = dict_rows_to_columns(rows, mapping.json_kinds(), n)
        line = np.array([lines_of[id(r)] for r in rows], dtype=np.int64)
        chunk = RawChunk(cols, n, line, line.copy(), [], pre)
        spec = self.plan.schema.streams[mapping.stream]
        norm = mapping.apply(chunk, spec, mapping.region or self.region)
        bad = norm.problems.any()
        out: list[dict] = []
        texts = {name: _json_values(vec.values, vec.null, spec.fields[name].type)
                 for name, vec in norm.columns.items()}
        for i in range(n):
            if bad[i]:
                self.executor.counters["records_in"] += 1
                self.executor.counters["rejected"] += 1
                self._write_reject(norm.problems.reason(i), int(line[i]), record=rows[i])
            elif norm.filtered[i]:
                self.filtered += 1
            else:
                rec = {"stream": mapping.stream}
                rec.update({name: vals[i] for name, vals in texts.items() if vals[i] is not None})
                lines_of[id(rec)] = int(line[i])
                out.append(rec)
        return out



class WatchJob(StreamRun):
    """One ``watch`` run. ``stop`` may be set from a signal handler: the job then
    checkpoints, processes every pending record and returns its summary."""

    def __init__(self, plan: Plan, opts: WatchOptions, *, mapping=None, region: str = "CN",
                 log: Callable[[str], None] | None = None):
        super().__init__(plan, out=opts.out, late=opts.late, rejects=opts.rejects, lateness=opts.lateness,
                         shards=opts.shards, region=region, max_future=opts.max_future,
                         max_line_bytes=opts.max_line_bytes, mapping=mapping, log=log)
        self.opts = opts
        self._input: tuple[int, IO[bytes] | None] | None = None
        self.offset = 0  # input bytes consumed (through the last complete line fed)
        self.line_no = 0  # input lines consumed
        self.resumed = False
        self.started = time.perf_counter()

    # -- checkpoints --------------------------------------------------------------------------
    def _restore(self) -> dict[str, Any] | None:
        """Read and check the checkpoint; load nothing yet (see :meth:`run`)."""
        path = self.opts.state
        if path is None or not path.exists():
            return None
        state = read_checkpoint(path)
        if state["input"] != self.opts.input:
            raise FraudRulesError(f"{path}: the checkpoint was taken reading {state['input']!r}, "
                                  f"not {self.opts.input!r}")
        return state

    def _load(self, path: Path, state: dict[str, Any]) -> None:
        self._load_executor(path, state)
        self.offset = state["offset"]
        self.line_no = state["line"]
        self.filtered = state["filtered"]
        self.resumed = True

    def _prime(self) -> None:
        """Continue from the batch runs committed to a history store instead of starting blind."""
        from ..store.history import HistoryStore
        from ..store.horizon import plan_horizon

        fields = {name: set(spec.fields) for name, spec in self.plan.schema.streams.items()}
        with HistoryStore(self.opts.history) as store:  # held only while reading: batch runs may go on
            context = store.load(plan_horizon(self.plan), fields)
        records = context.records_in_order()
        self.executor.prime(records, context.prior_alerts(), context.high_water)
        self.log(f"started from the history {self.opts.history}: {len(records):,} records, high-water mark "
                 f"{iso_utc(np.array([context.high_water]))[0] if context.high_water is not None else 'none'}")

    def checkpoint(self) -> None:
        path = self.opts.state
        if path is None:
            return
        outputs = self._outputs_state()
        fd = self._input[0] if self._input is not None and self._input[1] is not None else None
        state = {
            "input": self.opts.input,
            "input_id": None if fd is None else input_identity(fd),
            "offset": self.offset,
            "line": self.line_no,
            "filtered": self.filtered,
            "outputs": outputs,
            "executor": self.executor.state_dict(),
        }
        write_checkpoint(path, state)
        self.checkpoints += 1

    # -- the loop ----------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Lock, check everything a resume depends on, and only then truncate, load and read."""
        self.checkpoints = 0
        try:
            self._lock(self.opts.state)
            state = self._restore()
            self._input = self._open_input(state)
            if state is not None:
                self._check_outputs(state)
                self._load(self.opts.state, state)
                self._truncate_outputs(state)
                self._seek_input()
            elif self.opts.history is not None:
                self._prime()
            if self.resumed:
                self.log(f"resumed from {self.opts.state} at input byte {self.offset:,} (line {self.line_no:,}); "
                         f"{self.executor.stats['pending']:,} records pending, "
                         f"{self.executor.live_facts:,} live facts")
            self._loop()
        finally:
            self._release_locks()
            if self._input is not None and self._input[1] is not None:
                self._input[1].close()
        return self.summary()

    def _open_input(self, state: dict[str, Any] | None) -> tuple[int, IO[bytes] | None]:
        """The input, checked against the checkpoint: the same file (inode, first bytes), long enough."""
        if self.opts.input == "-":
            return sys.stdin.buffer.fileno(), None
        path = Path(self.opts.input)
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        fh = open(path, "rb")
        if state is None:
            return fh.fileno(), fh
        try:
            size = os.fstat(fh.fileno()).st_size
            want, got = state["input_id"], input_identity(fh.fileno())
            if want is not None and (want["ino"] != got["ino"] or
                                     _head_digest(fh.fileno(), want["head_bytes"]) != want["head_sha256"]):
                raise InputError(f"{path} is not the file the checkpoint {self.opts.state} was reading (another "
                                 f"inode or other first bytes): it was rotated or replaced. Refusing to resume; to "
                                 f"read it from its start, remove the checkpoint (the outputs are appended to)")
            if state["offset"] > size:
                raise InputError(f"{path} is shorter ({size} bytes) than the checkpoint's offset "
                                 f"({state['offset']}): it was truncated or replaced. Refusing to resume")
        except BaseException:
            fh.close()
            raise
        return fh.fileno(), fh

    def _seek_input(self) -> None:
        fd, fh = self._input
        if fh is not None:
            fh.seek(self.offset)
            return
        skip = self.offset
        while skip > 0:  # stdin cannot seek: resume by skipping what the checkpoint consumed
            chunk = os.read(fd, min(skip, 1 << 20))
            if not chunk:
                raise InputError(f"stdin ended after fewer bytes than the checkpoint consumed ({self.offset})")
            skip -= len(chunk)

    def _loop(self) -> None:
        opts = self.opts
        fd, fh = self._input
        buf = b""
        last_stats = last_ckpt = time.monotonic()
        self._last_stats_records = self.executor.counters["records_in"]
        eof = False
        skipping = False  # inside a line longer than max_line_bytes: dropping bytes up to its end
        while not self.stop:
            ready, _, _ = select.select([fd], [], [], opts.poll)
            chunk = os.read(fd, 1 << 20) if ready else None
            if chunk == b"":
                if opts.follow and fh is not None:
                    if os.fstat(fd).st_size < self.offset + len(buf):
                        raise InputError(f"{opts.input} was truncated while following it")
                    time.sleep(opts.poll)
                else:
                    eof = True
            elif chunk:
                if skipping:
                    end = chunk.find(b"\n")
                    self.offset += len(chunk) if end < 0 else end + 1
                    if end < 0:
                        continue
                    skipping, chunk = False, chunk[end + 1:]
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for i in range(0, len(lines), opts.batch_lines):
                    self._feed(lines[i: i + opts.batch_lines])
                    now = time.monotonic()
                    if opts.state is not None and now - last_ckpt >= opts.checkpoint_every:
                        self.checkpoint()
                        last_ckpt = now
                if len(buf) > opts.max_line_bytes:  # a poison line: rejected, never held whole
                    self.line_no += 1
                    self._reject_line(self.line_no, f"line longer than {opts.max_line_bytes:,} bytes",
                                      buf[:200].decode("utf-8", "replace"))
                    self.offset += len(buf)
                    buf, skipping = b"", True
            if eof:
                if buf.strip():
                    self._feed([buf])  # a last line without its newline
                    self.offset -= 1
                buf = b""
                break
            now = time.monotonic()
            if opts.stats_every and now - last_stats >= opts.stats_every:
                self._print_stats(now - last_stats)
                last_stats = now
            if opts.state is not None and now - last_ckpt >= opts.checkpoint_every:
                self.checkpoint()
                last_ckpt = now
        # shutdown: checkpoint with the reorder buffer still pending, then flush it
        if opts.state is not None:
            self.checkpoint()
        self._write_alerts(self.executor.flush())
        self.alerts.flush()
        self.late.flush()
        self.rejects.flush()

    def _feed(self, lines: list[bytes]) -> None:
        records: list[Any] = []
        lines_of: dict[int, int] = {}
        for raw in lines:
            self.line_no += 1
            self.offset += len(raw) + 1
            obj = self.decode(raw, self.line_no)
            if obj is not None:
                records.append(obj)
                lines_of[id(obj)] = self.line_no
        self._write_alerts(self.feed(records, lines_of))

    # -- reporting ----------------------------------------------------------------------------------
    def _print_stats(self, interval: float) -> None:
        s = self.executor.stats
        done = s["records_in"] - self._last_stats_records
        self._last_stats_records = s["records_in"]
        rate = done / interval if interval > 0 else 0.0
        self.log(f"[watch] {s['records_in']:,} records ({rate:,.0f}/s), pending {s['pending']:,}, "
                 f"late {s['late']:,}, rejected {s['rejected']:,}, alerts {s['alerts']:,} | live facts "
                 f"{s['live_facts']:,}, keys {s['live_keys']:,}, state ~{s['state_bytes_est'] / 1e6:,.1f} MB, "
                 f"rss {rss_mb():,.0f} MB")

    def summary(self) -> dict[str, Any]:
        s = self.executor.stats
        elapsed = time.perf_counter() - self.started
        out = {
            "input": self.opts.input,
            "resumed": self.resumed,
            "lines": self.line_no,
            "records": s["records_in"],
            "processed": s["processed"],
            "rejected": s["rejected"],
            "late": s["late"],
            "filtered": self.filtered,
            "alerts": s["alerts"],
            "suppressed": s["suppressed"],
            "id_collisions": s["id_collisions"],
            # records refused as a sequence step past the stream's chain cap (docs/design.md §5), when any
            **({"chain_cap": s["chain_cap"]} if s["chain_cap"] else {}),
            "live_facts": s["live_facts"],
            "live_keys": s["live_keys"],
            "state_bytes_est": s["state_bytes_est"],
            "rss_mb": round(rss_mb(), 1),
            "seconds": round(elapsed, 3),
            "checkpoints": self.checkpoints,
            "alerts_by_rule": {k: v["alerts"] for k, v in s["by_rule"].items() if v["alerts"]},
            "reconciles": s["records_in"] == s["processed"] + s["rejected"] + s["late"] + s["pending"],
            "out": str(self.opts.out),
        }
        if self.opts.summary is not None:
            self.opts.summary.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
        return out


# -- the checkpoint file, locks and the input's identity -------------------------------------------------


def write_checkpoint(path: Path, state: dict[str, Any], kind: str = STATE_KIND, version: int = STATE_VERSION) -> None:
    """A header line (kind, version, the body's length and SHA-256), then the body: written to a
    temporary file, fsynced, renamed over ``path`` and the folder fsynced."""
    body = json.dumps(state, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    header = {"kind": kind, "version": version, "bytes": len(body),
              "sha256": hashlib.sha256(body).hexdigest()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(json.dumps(header, separators=(",", ":")).encode("ascii") + b"\n" + body)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def read_checkpoint(path: Path, kind: str = STATE_KIND, version: int = STATE_VERSION,
                    problem: Callable[[Any], str | None] | None = None) -> dict[str, Any]:
    """The body of a checkpoint, or a FraudRulesError that says what is wrong with it. ``problem``
    checks the body's schema (default: a file watch's)."""
    def bad(why: str) -> FraudRulesError:
        return FraudRulesError(f"{path}: not a valid watch checkpoint: {why}. Refusing to resume (nothing was "
                               f"changed); remove it to start from the beginning of the input")

    try:
        with open(path, "rb") as fh:
            head = fh.readline(4096)
            data = fh.read()
    except OSError as exc:
        raise bad(f"cannot read it ({exc.strerror or exc})") from None
    try:
        header = json.loads(head)
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("kind") != kind:
        raise bad(f"no checkpoint header ({kind}) on its first line")
    if header.get("version") != version:
        raise bad(f"format version {header.get('version')!r}, this fraudrules reads version {version}")
    if header.get("bytes") != len(data) or header.get("sha256") != hashlib.sha256(data).hexdigest():
        raise bad(f"its body is {len(data)} bytes whose SHA-256 does not match the header (torn or edited)")
    try:
        state = json.loads(data)
    except (ValueError, RecursionError):
        raise bad("its body is not JSON") from None
    why = (problem or _state_problem)(state)
    if why:
        raise bad(why)
    return state


def _count(value: Any) -> bool:
    return type(value) is int and value >= 0


def _state_problem(state: Any) -> str | None:
    """The first field of a checkpoint body that does not fit the schema, or None."""
    if not isinstance(state, dict):
        return "the body is not an object"
    if not isinstance(state.get("input"), str):
        return "input: expected text"
    ident = state.get("input_id")
    if ident is not None and not (isinstance(ident, dict) and _count(ident.get("ino"))
                                  and _count(ident.get("head_bytes")) and isinstance(ident.get("head_sha256"), str)):
        return "input_id: expected {ino, head_bytes, head_sha256}"
    for name in ("offset", "line", "filtered"):
        if not _count(state.get(name)):
            return f"{name}: expected a count (an integer >= 0)"
    return outputs_problem(state)


def outputs_problem(state: dict[str, Any]) -> str | None:
    """The schema of what every watch checkpoint holds besides its input: the outputs, the executor."""
    outputs = state.get("outputs")
    if not isinstance(outputs, dict) or set(outputs) != {"alerts", "late", "rejects"}:
        return "outputs: expected alerts, late and rejects"
    for name, o in outputs.items():
        if not (isinstance(o, dict) and _count(o.get("length")) and (o.get("path") is None or
                                                                      isinstance(o.get("path"), str))):
            return f"outputs.{name}: expected {{path, length}}"
        if o["path"] is None and o["length"]:
            return f"outputs.{name}: a length without a file"
    if not isinstance(state.get("executor"), dict):
        return "executor: expected an object"
    return None


def lock(fd: int, path: Path) -> None:
    """An exclusive lock on an open file for the life of the fd, or a clear refusal."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise FraudRulesError(f"{path} is locked by another running watch: two watchers on one state or "
                              f"output file would write every alert twice") from None
    except OSError as exc:  # a filesystem without flock: go on unlocked rather than refuse to run
        if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
            raise FraudRulesError(f"{path}: cannot lock it: {exc.strerror or exc}") from None


def lock_beside(state: Path) -> int:
    """Lock ``STATE.lock``: the state file itself is replaced at each checkpoint, so its lock would not hold."""
    path = state.with_name(state.name + ".lock")
    try:
        state.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise FraudRulesError(f"{path}: cannot create the state lock: {exc.strerror or exc}") from None
    try:
        lock(fd, state)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _head_digest(fd: int, n: int) -> str:
    return hashlib.sha256(os.pread(fd, n, 0)).hexdigest()


def input_identity(fd: int) -> dict[str, Any]:
    """What tells the input file from another at the same path: its inode and its first bytes."""
    n = min(os.fstat(fd).st_size, HEAD_BYTES)
    return {"ino": os.fstat(fd).st_ino, "head_bytes": n, "head_sha256": _head_digest(fd, n)}


def reject_json(out: dict) -> str:
    """One line of the rejects output. A rejected record may hold what JSON Lines cannot: NaN, a lone
    surrogate, nesting too deep to write; then the record is written as escaped text."""
    try:
        text = json.dumps(out, ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False)
        text.encode("utf-8")
        return text
    except (ValueError, UnicodeEncodeError, RecursionError):
        shown = {k: v for k, v in out.items() if k != "record"}
        try:
            shown["text"] = repr(out.get("record"))[:200]
        except RecursionError:
            shown["text"] = "(nested too deeply to show)"
        return json.dumps(shown, ensure_ascii=True, separators=(",", ":"), default=str)


def _json_values(values: np.ndarray, null: np.ndarray, ftype: str) -> list:
    """Normalised column values as JSON values that normalise to themselves again."""
    if ftype == "timestamp":
        texts = iso_utc(values)
        return [None if nu else t for t, nu in zip(texts, null.tolist())]
    vals = values.tolist()
    if ftype == "bool":
        return [None if nu else ("true" if v else "false") for v, nu in zip(vals, null.tolist())]
    if values.dtype == np.float64:
        return [None if nu else v for v, nu in zip(vals, null.tolist())]
    return [None if nu else str(v) for v, nu in zip(vals, null.tolist())]


def ordered_records(specs, schema, region: str = "CN") -> list[dict]:
    """Records of record files as dicts (values as written), in the batch total order.

    For differential tests and benchmarks: feeding these to the stream executor
    replays exactly what the batch executor sees. CSV inputs only.
    """
    import csv

    from ..io.records import read_inputs

    rs = read_inputs(specs, schema, region=region)
    raw: list[list[dict]] = []
    for spec in specs:
        if spec.format != "csv" or str(spec.path).endswith(".gz"):
            raise InputError(f"{spec.path}: ordered_records reads plain CSV only")
        with open(spec.path, newline="", encoding="utf-8") as fh:
            raw.append([{k: v for k, v in row.items() if v != ""} | {"stream": spec.stream}
                        for row in csv.DictReader(fh)])
    order: list[tuple[int, dict]] = []
    for table in rs.tables.values():
        for seq, inp, line in zip(table.seq.tolist(), table.input_index.tolist(), table.line.tolist()):
            order.append((seq, raw[inp][line - 2]))  # CSV data rows start on line 2
    order.sort(key=lambda t: t[0])
    return [r for _, r in order]
