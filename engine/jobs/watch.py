"""The watch job: JSON Lines records in, alerts out as they fire (``fraudrules watch``).

Reads JSON Lines (each record with a ``stream`` field, or source rows read
through a mapping file) from stdin, a file or a growing file (``follow``),
feeds them to the :class:`~engine.stream.StreamExecutor` in micro-batches of
whatever input is available, appends every alert to the alert file as one
line (:func:`engine.sinks.alert_line`) and flushes it at once.

Nothing is dropped silently: lines that are not JSON objects or whose values
do not fit their fields go to the rejects output, records behind the
watermark to the late output (both JSON Lines with a reason), and both are
counted.

Checkpoints (``state``): the executor's state (JSON), the input offset and
the byte length of every output file are written atomically (tmp file,
fsync, ``os.replace``) every ``checkpoint_every`` seconds and at shutdown,
*before* the final flush of pending records. On restart the output files are
truncated to the checkpointed lengths, live facts are re-asserted into a
fresh durable-rules host and input resumes at the offset, so the alert file
ends up exactly as an uninterrupted run's: nothing lost, nothing repeated.
"""

from __future__ import annotations

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
from ..io.files import read_json_document, write_json_durably
from ..io.sinks import alert_line
from ..lang.expr import DURATION_UNITS
from ..runtime.alerts import iso_utc
from ..runtime.plan import Plan

STATE_KIND = "fraudrules-watch-checkpoint"


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

    def open(self, truncate_to: int | None) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.path, "ab")
        size = self.fh.seek(0, os.SEEK_END)
        if truncate_to is not None:
            if size < truncate_to:
                raise FraudRulesError(f"{self.path} is shorter ({size} bytes) than the checkpoint says "
                                      f"({truncate_to}); it was changed since: refusing to resume")
            self.fh.truncate(truncate_to)
            size = truncate_to
        self.length = size

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


class WatchJob:
    """One ``watch`` run. ``stop`` may be set from a signal handler: the job then
    checkpoints, processes every pending record and returns its summary."""

    def __init__(self, plan: Plan, opts: WatchOptions, *, mapping=None, region: str = "CN",
                 log: Callable[[str], None] | None = None):
        self.plan = plan
        self.opts = opts
        self.mapping = mapping
        self.region = region
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.stop = False
        self.alerts = _Output(opts.out)
        self.late = _Output(opts.late, lambda line: self.log(f"late: {line}"))
        self.rejects = _Output(opts.rejects, lambda line: self.log(f"rejected: {line}"))
        self.executor = StreamExecutor(plan, lateness=opts.lateness, shards=opts.shards, region=region,
                                       on_late=self._on_late, on_reject=self._on_reject)
        self.offset = 0  # input bytes consumed (through the last complete line fed)
        self.line_no = 0  # input lines consumed
        self.filtered = 0  # rows a mapping's where left out
        self.resumed = False
        self._lines_of: dict[int, int] = {}  # id(record) -> input line, for the current batch
        self.started = time.perf_counter()

    # -- outputs for the executor -------------------------------------------------------
    def _on_late(self, record: dict, info: dict) -> None:
        ts, wm = info["ts_ns"], info["watermark_ns"]
        out = {"reason": f"late: ts {iso_utc(np.array([ts]))[0]} is {info['behind_s']:g}s behind the "
                         f"watermark {iso_utc(np.array([wm]))[0]}",
               "line": self._lines_of.get(id(record)), "record": record}
        self.late.write(json.dumps(out, ensure_ascii=False, separators=(",", ":"), default=str))

    def _on_reject(self, record: Any, reason: str) -> None:
        out = {"reason": reason, "line": self._lines_of.get(id(record)), "record": record}
        self.rejects.write(reject_json(out))

    def _reject_line(self, line_no: int, reason: str, text: str) -> None:
        self.executor.counters["records_in"] += 1
        self.executor.counters["rejected"] += 1
        self.rejects.write(json.dumps({"reason": reason, "line": line_no, "text": text[:200]}, ensure_ascii=False,
                                      separators=(",", ":")))

    # -- checkpoints --------------------------------------------------------------------------
    def _restore(self) -> dict[str, int] | None:
        path = self.opts.state
        if path is None or not path.exists():
            return None
        state = read_json_document(path, "kind", STATE_KIND, "watch checkpoint")
        if state.get("input") != self.opts.input:
            raise FraudRulesError(f"{path}: the checkpoint was taken reading {state.get('input')!r}, "
                                  f"not {self.opts.input!r}")
        self.executor.load_state(state["executor"])
        self.offset = int(state["offset"])
        self.line_no = int(state["line"])
        self.filtered = int(state.get("filtered", 0))
        self.resumed = True
        return state["outputs"]

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
        for o in (self.alerts, self.late, self.rejects):
            o.flush(sync=True)  # the outputs must be on disk up to the lengths we record
        state = {
            "kind": STATE_KIND,
            "input": self.opts.input,
            "offset": self.offset,
            "line": self.line_no,
            "filtered": self.filtered,
            "outputs": {"alerts": self.alerts.length, "late": self.late.length, "rejects": self.rejects.length},
            "executor": self.executor.state_dict(),
        }
        write_json_durably(path, state)
        self.checkpoints += 1

    # -- the loop ----------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        self.checkpoints = 0
        lengths = self._restore()
        if not self.resumed and self.opts.history is not None:
            self._prime()
        self.alerts.open(lengths["alerts"] if lengths else None)
        self.late.open(lengths["late"] if lengths else None)
        self.rejects.open(lengths["rejects"] if lengths else None)
        if self.resumed:
            self.log(f"resumed from {self.opts.state} at input byte {self.offset:,} (line {self.line_no:,}); "
                     f"{self.executor.stats['pending']:,} records pending, {self.executor.live_facts:,} live facts")
        try:
            self._loop()
        finally:
            self.alerts.close()
            self.late.close()
            self.rejects.close()
        return self.summary()

    def _open_input(self) -> tuple[int, IO[bytes] | None]:
        if self.opts.input == "-":
            fd = sys.stdin.buffer.fileno()
            skip = self.offset
            while skip > 0:  # stdin cannot seek: resume by skipping what the checkpoint consumed
                chunk = os.read(fd, min(skip, 1 << 20))
                if not chunk:
                    raise InputError(f"stdin ended after fewer bytes than the checkpoint consumed ({self.offset})")
                skip -= len(chunk)
            return fd, None
        path = Path(self.opts.input)
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        fh = open(path, "rb")
        size = os.fstat(fh.fileno()).st_size
        if self.offset > size:
            raise InputError(f"{path} is shorter ({size} bytes) than the checkpoint's offset ({self.offset})")
        fh.seek(self.offset)
        return fh.fileno(), fh

    def _loop(self) -> None:
        opts = self.opts
        fd, fh = self._open_input()
        buf = b""
        last_stats = last_ckpt = time.monotonic()
        self._last_stats_records = self.executor.counters["records_in"]
        eof = False
        try:
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
                    buf += chunk
                    *lines, buf = buf.split(b"\n")
                    for i in range(0, len(lines), opts.batch_lines):
                        self._feed(lines[i: i + opts.batch_lines])
                        now = time.monotonic()
                        if opts.state is not None and now - last_ckpt >= opts.checkpoint_every:
                            self.checkpoint()
                            last_ckpt = now
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
        finally:
            if fh is not None:
                fh.close()
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
            try:
                text = raw.decode("utf-8").strip()
            except UnicodeDecodeError:  # as score rejects it, not read with U+FFFD in place of the bytes
                self._reject_line(self.line_no, "invalid UTF-8", raw.decode("utf-8", "replace").strip())
                continue
            if not text:
                continue
            try:
                obj = json.loads(text)
            except ValueError as exc:
                self._reject_line(self.line_no, f"invalid JSON: {exc}", text)
                continue
            except RecursionError:
                self._reject_line(self.line_no, "invalid JSON: nested too deeply", text)
                continue
            if not isinstance(obj, dict):
                self._reject_line(self.line_no, "not a JSON object", text)
                continue
            records.append(obj)
            lines_of[id(obj)] = self.line_no
        if self.mapping is not None:
            records = self._map(records, lines_of)
        self._lines_of = lines_of
        self._write_alerts(self.executor.feed_many(records))
        self._lines_of = {}

    def _write_alerts(self, alerts: list[dict]) -> None:
        for a in alerts:
            self.alerts.write(alert_line(a))
        self.alerts.flush()  # an alert is on its way as soon as it fires
        self.late.flush()
        self.rejects.flush()

    def _map(self, rows: list[dict], lines_of: dict[int, int]) -> list[dict]:
        """Source rows through the mapping file -> records of its stream (as JSON values)."""
        from ..io.convert import dict_rows_to_columns, json_kind
        from ..io.raw import RawChunk

        mapping = self.mapping
        if not rows:
            return []
        n = len(rows)
        kinds = {c: json_kind(mapping.source_type(c), mapping.source_type(c) == "string") for c in mapping.columns}
        cols, pre = dict_rows_to_columns(rows, kinds, n)
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
                self.rejects.write(reject_json({"reason": norm.problems.reason(i), "line": int(line[i]),
                                                "record": rows[i]}))
            elif norm.filtered[i]:
                self.filtered += 1
            else:
                rec = {"stream": mapping.stream}
                rec.update({name: vals[i] for name, vals in texts.items() if vals[i] is not None})
                lines_of[id(rec)] = int(line[i])
                out.append(rec)
        return out

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
