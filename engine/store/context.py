"""The context a run carries forward: one mechanism for runs, chunks and a stream's start.

A :class:`Context` holds what later records can still be influenced by (:mod:`.horizon`): the
records of each stream inside its span, with only the columns rules read, and the last emitted
alert per (rule, key) for suppression. Scoring a slice of records *with* the context of
everything before it gives the alerts and scores that one run over everything would give at
those records (docs/design.md §8):

- the context rows come first in the total order (every new record is later than the
  high-water mark, so this is also their order in one run), numbered by ``_order``, the
  position each record had in the order of all records scored so far;
- only new rows may trigger, score or be written; context rows feed windows, ``is_new``,
  earlier sequence steps and ``unless``;
- suppression starts from the last emitted alert of each (rule, key), which is exactly the
  state one run would have reached there.

Between runs a :class:`~.history.HistoryStore` persists the context; between the chunks of one
large input it stays in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from ..columns.hashing import text_hashes
from ..columns.vec import Vec, concat, search_sorted, sorted_distinct
from ..io.arrow import TS_TYPE, TextAfterArrow, arrow_to_columns, arrow_to_vec, columns_to_arrow
from ..io.convert import duplicate_id_reason
from ..io.records import id_hashes
from ..io.tables import RecordSet, Rejects, Table
from ..pack.streams import Schema
from ..runtime.alerts import alert_fields
from .horizon import Horizon

ORDER = "_order"
LAST_ALERT_SCHEMA = pa.schema([("rule_id", pa.string()), ("key", pa.string()), ("ts", TS_TYPE),
                               ("alert_id", pa.string())])


@dataclass
class LateRecord:
    input: str
    line: int
    stream: str
    id: str
    ts: int


@dataclass
class Context:
    horizon: Horizon
    records: dict[str, pa.Table] = field(default_factory=dict)  # stream -> kept columns + _order, in order
    last_alerts: pa.Table = field(default_factory=LAST_ALERT_SCHEMA.empty_table)
    high_water: int | None = None  # largest ts scored so far (ns)
    next_order: int = 0  # _order of the next record scored

    @property
    def rows(self) -> int:
        return sum(t.num_rows for t in self.records.values())

    def prior_alerts(self) -> dict[str, dict[str, int]]:
        """rule id -> key -> ts (ns) of the last emitted alert, for suppression."""
        out: dict[str, dict[str, int]] = {}
        if self.last_alerts.num_rows:
            ts = self.last_alerts.column("ts").cast(pa.int64()).to_pylist()
            for rule, key, t in zip(self.last_alerts.column("rule_id").to_pylist(),
                                    self.last_alerts.column("key").to_pylist(), ts):
                out.setdefault(rule, {})[key] = t
        return out

    def records_in_order(self) -> list[dict]:
        """The context rows as plain records (``stream``, ISO ``ts``, the kept fields), in the total
        order: what a stream executor is fed to start where a batch history stopped."""
        from ..runtime.alerts import iso_utc

        keyed: list[tuple[int, dict]] = []
        for stream, table in self.records.items():
            if table.num_rows == 0:
                continue
            order = table.column(ORDER).to_numpy()
            cols = {c: table.column(c).to_pylist() for c in table.column_names if c not in (ORDER, "ts")}
            ts = iso_utc(table.column("ts").cast(pa.int64()).to_numpy())
            for i in range(table.num_rows):
                rec = {"stream": stream, "ts": ts[i]}
                rec.update((c, v[i]) for c, v in cols.items() if v[i] is not None)
                keyed.append((int(order[i]), rec))
        keyed.sort(key=lambda t: t[0])
        return [r for _, r in keyed]

    def narrowed(self, horizon: Horizon) -> Context:
        """This context as rules of a shorter ``horizon`` see it: per stream, only the rows within
        its span of the high-water mark and only its columns (the rest would be null to them)."""
        kept: dict[str, pa.Table] = {}
        for stream, table in self.records.items():
            span = horizon.span(stream)
            if span <= 0 or table.num_rows == 0:
                continue
            names = [c for c in table.column_names if c == ORDER or c in horizon.streams[stream].columns]
            table = prune(table.select(names), self.high_water, span)
            if table.num_rows:
                kept[stream] = table
        return Context(horizon, kept, self.last_alerts, self.high_water, self.next_order)

    # -- a new slice ---------------------------------------------------------------------------
    def split_late(self, records: RecordSet) -> tuple[RecordSet, list[LateRecord]]:
        """Records at or before the high-water mark come too late to be scored in order: set them apart."""
        if self.high_water is None:
            return records, []
        late: list[LateRecord] = []
        tables = {}
        names = [s.path for s in records.inputs]
        for stream, table in records.tables.items():
            is_late = table.ts() <= self.high_water
            if not is_late.any():
                tables[stream] = table
                continue
            rows = np.flatnonzero(is_late)
            ids = table.columns["id"].take(rows).values  # these rows' texts only (a coded column's .values: all)
            for inp, line, rid, ts in zip(table.input_index[rows].tolist(), table.line[rows].tolist(), ids,
                                          table.ts()[rows].tolist()):
                late.append(LateRecord(names[inp] if 0 <= inp < len(names) else "", line, stream, str(rid), ts))
                records.inputs[inp].scored -= 1
                records.inputs[inp].late += 1
            tables[stream] = table.take(np.flatnonzero(~is_late))
        late.sort(key=lambda r: (names.index(r.input) if r.input in names else -1, r.line))
        return RecordSet(tables, records.inputs, records.rejects), late

    def prepend(self, records: RecordSet, schema: Schema, names: set[str] | None = None
                ) -> tuple[RecordSet, dict[str, np.ndarray]]:
        """The context rows followed by ``records``; and, per stream, which rows are new. ``names``: the
        only columns the caller reads (runtime.plan.names_read); a stream with context rows leaves the
        others out instead of filling them with a null per context row (14 payment columns x 400 days)."""
        tables: dict[str, Table] = {}
        fresh: dict[str, np.ndarray] = {}
        for stream in dict.fromkeys([*self.records, *records.tables]):
            spec = schema.streams[stream]
            old = self.records.get(stream)
            new = records.tables.get(stream)
            if old is None or old.num_rows == 0:
                tables[stream] = Table(stream, new.columns, new.seq + self.next_order, new.input_index, new.line)
                fresh[stream] = np.ones(new.n, dtype=bool)
                continue
            seq = old.column(ORDER).to_numpy().astype(np.int64)
            m = old.num_rows
            if new is not None and new.n:
                # column by column, so that the context is not held twice in numpy (converted, then joined)
                cols = {}
                for name, v in new.columns.items():
                    if names is not None and name not in names:
                        continue
                    if name == "id" and name in old.column_names:
                        # a str per context row (60 bytes) only where an alert shows one: taken lazily
                        cols[name] = TextAfterArrow(old.column(name), v)
                        continue
                    c = arrow_to_vec(old.column(name), spec.fields[name].type) if name in old.column_names \
                        else Vec.nulls(spec.fields[name].type, m)
                    cols[name] = concat([c, v])  # coded text stays coded
                    del c
                seq = np.concatenate([seq, new.seq + self.next_order])
                inp = np.concatenate([np.full(m, -1, dtype=np.int32), new.input_index])
                line = np.concatenate([np.zeros(m, dtype=np.int64), new.line])
            else:
                cols = {name: vec for name, vec in arrow_to_columns(old, spec).items()
                        if names is None or name in names}
                inp, line = np.full(m, -1, dtype=np.int32), np.zeros(m, dtype=np.int64)
            tables[stream] = Table(stream, cols, seq, inp, line)
            fresh[stream] = np.r_[np.zeros(m, dtype=bool), np.ones(len(seq) - m, dtype=bool)]
        return RecordSet(tables, records.inputs, records.rejects), fresh

    # -- after the slice -----------------------------------------------------------------------
    def advance(self, records: RecordSet, emitted: Sequence[dict], schema: Schema, scored_rows: int,
                high_water: int | None = None) -> Context:
        """The context after ``records`` (the new rows only, late ones removed) and their alerts.

        ``high_water``: the largest ``ts`` of the slice when ``records`` holds only its tail (Spark
        collects only the rows a later run can reach); by default it is read from ``records``."""
        high_water = self.high_water if high_water is None else max(high_water, self.high_water or high_water)
        for table in records.tables.values():
            if table.n:
                top = int(table.ts().max())
                high_water = top if high_water is None else max(high_water, top)
        kept: dict[str, pa.Table] = {}
        for stream in self.horizon.kept_streams():
            parts = [self.records[stream]] if stream in self.records else []
            table = records.tables.get(stream)
            if table is not None and table.n:
                spec = schema.streams[stream]
                names = [c for c in self.horizon.columns(stream) if c in spec.fields]
                parts.append(columns_to_arrow(table.columns, spec, names,
                                              {ORDER: table.seq + self.next_order}))
            if not parts:
                continue
            merged = pa.concat_tables(parts, promote_options="default") if len(parts) > 1 else parts[0]
            kept[stream] = thin(prune(merged, high_water, self.horizon.span(stream)), high_water,
                                self.horizon.streams[stream].column_spans)
        return Context(self.horizon, kept, merge_last_alerts(self.last_alerts, emitted, high_water,
                                                             self.horizon.suppress_ns),
                       high_water, self.next_order + scored_rows)


def iso_to_ns(text: str) -> int:
    """An alert's ISO UTC time (runtime.alerts.iso_utc) back to integer nanoseconds, exactly."""
    return int(np.datetime64(text.rstrip("Z"), "ns").astype(np.int64))


class KnownIds:
    """The ids of a context's records (a history store's), per stream, as sorted 64-bit hashes compared as the
    read compares ids (io.records.SeenIds): a new record whose id one of them has is a "duplicate id", as one
    run over the earlier inputs and this one rejects it (docs/design.md §3). The context holds each stream's
    records inside its span of the high-water mark (and none of a stream no rule reads), so an id reused
    further back than that is not seen."""

    def __init__(self, context: Context) -> None:
        # sorted_distinct, not np.unique: numpy 2.3 and later hash before sorting (5.7 s against 0.05 s for 5M)
        self.by_stream = {stream: sorted_distinct(text_hashes(table.column("id")))
                          for stream, table in context.records.items() if table.num_rows}
        self.rejected: list[Rejects] = []  # what split() rejected, every call's

    def into(self, rejects: Rejects, names: list[str]) -> Rejects:
        """``rejects`` (a read's, in input and line order) with everything :meth:`split` rejected, in that order."""
        return _in_order([rejects, *self.rejected], names)

    def split(self, records: RecordSet) -> tuple[RecordSet, int]:
        """``records`` without those whose id is known, which join the rejects (kept in input and line order,
        the input's counts reconciled); and how many they were."""
        tables = dict(records.tables)
        names = [s.path for s in records.inputs]
        inputs, lines, reasons = [], [], []
        gone: list[np.ndarray] = []
        for stream, table in records.tables.items():
            known = self.by_stream.get(stream)
            if known is None or not table.n:
                continue
            hashes = id_hashes(table.columns["id"])
            at = np.minimum(search_sorted(known, hashes), len(known) - 1)
            dup = known[at] == hashes
            if not dup.any():
                continue
            rows = np.flatnonzero(dup)
            for inp, n in enumerate(np.bincount(table.input_index[rows], minlength=len(names)).tolist()):
                if n:
                    records.inputs[inp].scored -= n
                    records.inputs[inp].rejected += n
            inputs.extend(names[inp] for inp in table.input_index[rows].tolist())
            lines.extend(table.line[rows].tolist())
            # the texts of these rows only: a coded id column would make a str of every row for .values
            reasons.extend(duplicate_id_reason(stream, rid) for rid in table.columns["id"].take(rows).values)
            gone.append(table.seq[rows])
            tables[stream] = table.take(np.flatnonzero(~dup))
        if not lines:
            return records, 0
        # the places in the order close up behind them, as one run numbers only the records its read keeps
        gone_seq = np.sort(np.concatenate(gone))
        for stream, table in tables.items():
            tables[stream] = Table(stream, table.columns, table.seq - np.searchsorted(gone_seq, table.seq),
                                   table.input_index, table.line)
        new = Rejects(np.array(inputs, dtype=object), np.array(lines, dtype=np.int64), np.array(reasons, dtype=object))
        self.rejected.append(new)
        return RecordSet(tables, records.inputs, _in_order([records.rejects, new], names)), len(lines)


def _in_order(parts: list[Rejects], names: list[str]) -> Rejects:
    """The rejects of ``parts`` as one, in the order of their inputs (``names``) and lines."""
    if sum(1 for p in parts if len(p)) <= 1:
        return Rejects.joined(parts)
    both = Rejects.joined(parts)
    rank = np.full(len(both), -1, dtype=np.int64)
    for k, name in enumerate(names):  # a comparison over the rejects per input, not a lookup per reject
        rank[both.input == name] = k
    order = np.lexsort((both.line, rank))
    return Rejects(both.input[order], both.line[order], both.reason[order])


def prune(table: pa.Table, high_water: int | None, span_ns: int) -> pa.Table:
    """Rows a record later than ``high_water`` can still reach: ts >= high_water - span."""
    if high_water is None or table.num_rows == 0:
        return table
    keep = table.column("ts").cast(pa.int64()).to_numpy() >= high_water - span_ns
    first = int(keep.argmax()) if keep.any() else len(keep)
    if keep[first:].all():
        # rows are in the total order, ts first, so what leaves is a prefix: a slice copies nothing
        # and drops the leading Arrow chunks, where a filter would copy the whole context every chunk
        return table.slice(first)
    return table.filter(pa.array(keep))


def thin(table: pa.Table, high_water: int | None, column_spans: dict[str, int]) -> pa.Table:
    """Null each column in the rows older than its own span (``column_spans``): no rule that reads
    it reaches them. The context's rows are kept as far back as the stream's widest rule reaches
    (400 days of payments for a dormancy count), but most columns only for a day or an hour, so
    their old text need not be carried. Rows are in ts order: the old rows are a prefix."""
    if high_water is None or table.num_rows == 0 or not column_spans:
        return table
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    for name in table.column_names:
        if name not in column_spans:
            continue
        old = int(np.searchsorted(ts, high_water - column_spans[name], side="left"))
        col = table.column(name)
        if old == 0 or col.slice(0, old).null_count == old:
            continue
        nulls = pa.nulls(old, col.type)
        table = table.set_column(table.column_names.index(name), name,
                                 pa.chunked_array([nulls, *col.slice(old).chunks], col.type))
    return table


def merge_last_alerts(last: pa.Table, emitted: Sequence[dict], high_water: int | None, suppress_ns: int) -> pa.Table:
    """Upsert the newest emitted alert per (rule, key); drop those that can no longer suppress."""
    latest: dict[tuple[str, str], tuple[int, str]] = {}
    if last.num_rows:
        for rule, key, ts, aid in zip(last.column("rule_id").to_pylist(), last.column("key").to_pylist(),
                                      last.column("ts").cast(pa.int64()).to_pylist(),
                                      last.column("alert_id").to_pylist()):
            latest[(rule, key)] = (ts, aid)
    # in the total order, so a later alert of a pair replaces an earlier one
    for rule, key, ts, aid in alert_fields(emitted, "rule_id", "key", "ts", "alert_id"):
        latest[(rule, key)] = (iso_to_ns(ts), aid)
    cutoff = -(1 << 62) if high_water is None else high_water - suppress_ns
    rows = sorted((k, v) for k, v in latest.items() if v[0] >= cutoff)
    return pa.table({
        "rule_id": pa.array([k[0] for k, _ in rows], pa.string()),
        "key": pa.array([k[1] for k, _ in rows], pa.string()),
        "ts": pa.array([v[0] for _, v in rows], pa.int64()).cast(TS_TYPE),
        "alert_id": pa.array([v[1] for _, v in rows], pa.string()),
    }, schema=LAST_ALERT_SCHEMA)
