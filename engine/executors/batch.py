"""The batch executor: evaluates a Plan over a whole RecordSet with numpy.

Per rule and step, the step's own conditions and window aggregates are
computed over the entire stream at once. Sequence steps are then joined on
their keys with sorted searches that only pair records inside ``within``,
cross-step conditions are evaluated on the candidate chains, ``unless``
records are counted between chain ends with searches, and the latest chain
per triggering record is kept. Python touches a record only when its alert
is built (engine.alerts).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from ..columns.vec import Coded, Vec, sorted_distinct
from ..errors import FraudRulesError
from ..io.tables import RecordSet, Table
from ..lang.expr import Field
from ..runtime.alerts import LISTED_AGGREGATES, MatchView, key_texts, to_python
from ..runtime.bindings import Bindings
from ..runtime.evaluate import Evaluator
from ..runtime.heap import trim_thread_heaps
from ..runtime.keys import with_keys
from ..runtime.latest import MAX_CHAINS, MAX_PAIRS_PER_BLOCK, expand_pairs, latest_chain_only, latest_passing
from ..runtime.plan import AggregateSpec, Plan, RulePlan, StepPlan
from ..runtime.runs import latest_runs
from ..runtime.windows import (
    SLICE_BODIES,
    WINDOW_BODIES,
    ColumnCodes,
    CompositeIndex,
    ForeignIndex,
    GroupIndex,
    Slices,
    Window,
    code_ts_order,
    composite_searchsorted,
    distinct_expanded,
    joint_codes,
    previous_same,
    sorted_ranks,
)

# AggregateStore.get_at: an aggregate asked at no more than 1/NARROW_SHARE of its stream's rows is computed
# at those alone
NARROW_SHARE = 4


@dataclass
class RuleMatches:
    """Every match of one rule: the chain rows per step, and suppression."""

    rule: RulePlan
    rows: list[np.ndarray]  # per step: row in that step's table, one entry per match
    key: Vec  # the alert key (the last step's key value; of an absence, the value the absent record lacks)
    emitted: np.ndarray  # bool: False when suppressed
    deadline: np.ndarray | None = None  # of an absence rule: each match's D = ts(last step) + absent within

    @property
    def n(self) -> int:
        return len(self.rows[-1]) if self.rows else 0

    @property
    def suppressed(self) -> int:
        return int((~self.emitted).sum())


def empty_table(stream: str, schema) -> Table:
    spec = schema.streams[stream]
    cols = {name: Vec.nulls(f.type, 0) for name, f in spec.fields.items()}
    return Table(stream, cols, np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int64))


@dataclass
class IndexNeeds:
    """The shared indexes some rules read, each an ordered set: key codes, joint codes of two columns,
    groups with the aggregates whose window starts they hold, and foreign indexes with an aggregate of each."""

    keys: dict[tuple[str, str], None] = field(default_factory=dict)
    joints: dict[tuple[tuple[str, str], tuple[str, str]], None] = field(default_factory=dict)
    windows: dict[tuple[str, str], dict[AggregateSpec, None]] = field(default_factory=dict)
    foreign: dict[tuple[str, str, str, str], AggregateSpec] = field(default_factory=dict)

    def read_twice(self, per_rule: list[IndexNeeds]) -> IndexNeeds:
        """These needs, less what fewer than two of ``per_rule`` read (a group stays while two rules read it,
        each window start while two read it)."""
        def twice(sets: list[Any]) -> set[Any]:
            counts = Counter(k for one in sets for k in one)
            return {k for k, n in counts.items() if n >= 2}

        keys, joints = twice([n.keys for n in per_rule]), twice([n.joints for n in per_rule])
        groups, foreign = twice([n.windows for n in per_rule]), twice([n.foreign for n in per_rule])
        starts = twice([{start_key(s) for specs in n.windows.values() for s in specs} for n in per_rule])
        windows = {gk: {s: None for s in specs if start_key(s) in starts}
                   for gk, specs in self.windows.items() if gk in groups}
        return IndexNeeds({k: None for k in self.keys if k in keys}, {j: None for j in self.joints if j in joints},
                          windows, {fk: spec for fk, spec in self.foreign.items() if fk in foreign})


def start_key(spec: AggregateSpec) -> tuple[str, str, int]:
    """What a window start is shared by: (stream, key, window)."""
    return (spec.stream, spec.key, spec.window_ns)


class Tables:
    """Tables by stream, with empty ones for streams absent from the input; the codes of their
    key and text columns and the ranks of their timestamps, each computed once per executor."""

    def __init__(self, records: RecordSet, plan: Plan):
        self.records = records
        self.plan = plan
        self._empty: dict[str, Table] = {}
        self._codes: dict[tuple[str, str], ColumnCodes] = {}
        self._joint: dict[tuple[tuple[str, str], tuple[str, str]], tuple[np.ndarray, np.ndarray]] = {}
        self._ranks: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._derived = plan.derived_keys()
        self._keyed: dict[str, Table] = {}  # a stream's table with its keys of several fields (runtime/keys.py)

    def column_codes(self, stream: str, name: str) -> ColumnCodes:
        ck = (stream, name)
        if ck not in self._codes:
            self._codes[ck] = ColumnCodes(self[stream].columns[name])
        return self._codes[ck]

    def codes(self, stream: str, name: str) -> np.ndarray:
        """Per row, the code of a column's value (-1 = null): equal values, equal codes."""
        return self.column_codes(stream, name).codes

    def joint(self, a: tuple[str, str], b: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
        """Codes of two (stream, field) columns in one space: equal codes where values are equal."""
        if (a, b) not in self._joint:
            flipped = self._joint.get((b, a))  # caller to callee, and callee to caller: one space read both ways
            self._joint[(a, b)] = (flipped[1], flipped[0]) if flipped is not None else \
                joint_codes(self.column_codes(*a), self.column_codes(*b))
        return self._joint[(a, b)]

    def keep_joints(self, joints: dict[tuple[tuple[str, str], tuple[str, str]], None]) -> None:
        """Drop the joint codes of every pair not in ``joints``, nor read the other way round there (a cache: a
        pair read again is computed again)."""
        for pair in [p for p in self._joint if p not in joints and (p[1], p[0]) not in joints]:
            del self._joint[pair]

    def ranks(self, stream: str) -> tuple[np.ndarray, np.ndarray]:
        """(distinct timestamps, rank of each row's ts) of a table."""
        if stream not in self._ranks:
            self._ranks[stream] = sorted_ranks(self[stream].ts())
        return self._ranks[stream]

    def __getitem__(self, stream: str) -> Table:
        table = self.records.tables.get(stream)
        if table is None:
            table = self._empty.setdefault(stream, empty_table(stream, self.plan.schema))
        if stream not in self._derived:
            return table
        if stream not in self._keyed:  # derived once per executor; the caller's table is left as it was
            self._keyed[stream] = Table(stream, with_keys(table.columns, self._derived[stream]), table.seq,
                                        table.input_index, table.line)
        return self._keyed[stream]


class AggregateStore:
    """Computes each distinct window aggregate once per run."""

    def __init__(self, tables: Tables, evaluator: Evaluator):
        self.tables = tables
        self.evaluator = evaluator
        self._groups: dict[tuple[str, str], GroupIndex] = {}
        self._starts: dict[tuple[str, str, int], np.ndarray] = {}
        self._values: dict[AggregateSpec, Vec] = {}
        # (where=, value, value codes) per sorted row, of the aggregates read again (alerts' members, chains)
        self._inputs: dict[AggregateSpec, tuple[np.ndarray, Vec | None, np.ndarray | None]] = {}
        self._positions: dict[tuple[str, str], np.ndarray] = {}  # sorted position of each table row
        self._prev: dict[AggregateSpec, np.ndarray] = {}  # bounded distinct: previous occurrences
        # agg(..., stream=, key=): the joint index of (query stream, key, source stream, field), and per spec its
        # window starts with where= and value per sorted position (for members)
        self._foreign_index: dict[tuple[str, str, str, str], ForeignIndex] = {}
        self._foreign: dict[AggregateSpec, tuple[ForeignIndex, np.ndarray, Vec | None]] = {}
        # per foreign index: the only table rows it is read at (ascending), when not every row
        # (BatchExecutor._trigger_queries); a row outside them reads as null
        self.query_rows: dict[tuple[str, str, str, str], np.ndarray] = {}

    def group(self, stream: str, key: str) -> GroupIndex:
        gk = (stream, key)
        if gk not in self._groups:
            table = self.tables[stream]
            self._groups[gk] = GroupIndex.build(table.columns[key], table.ts(), self.tables.codes(stream, key),
                                                self.tables.ranks(stream))
        return self._groups[gk]

    def get(self, spec: AggregateSpec) -> Vec:
        if spec not in self._values:
            self._values[spec] = self._compute(spec)
        return self._values[spec]

    def get_at(self, spec: AggregateSpec, rows: np.ndarray) -> Vec:
        """``spec`` at table rows ``rows``. Asked at few rows (those an ``and`` leaves undecided, or
        alerts), an aggregate not computed yet is computed at them alone: a foreign one over the source
        records of their keys (_narrow_index; at 10M records the whole index of one count over sms held
        0.8 GB), one over its own stream as a slice of its key's rows per row (_narrow_window). Anything
        else is computed at every row once, then taken."""
        if spec not in self._values and len(rows) * NARROW_SHARE <= self.tables[spec.stream].n:
            if spec.foreign and (spec.stream, spec.key, *spec.source) not in self._foreign_index:
                return self._narrow_foreign(spec, rows)
            if not spec.foreign and spec.func in SLICE_BODIES:
                got = self._narrow_window(spec, rows)
                if got is not None:
                    return got
        return self.get(spec).take(rows)

    def _start_at(self, spec: AggregateSpec, pos: np.ndarray) -> np.ndarray:
        """The window start of the sorted positions ``pos``: from the whole array when it is made, else
        searched for these alone."""
        sk = start_key(spec)
        if sk in self._starts:
            return self._starts[sk][pos]
        return self.group(spec.stream, spec.key).window_start(spec.window_ns, pos)

    def _narrow_window(self, spec: AggregateSpec, rows: np.ndarray) -> Vec | None:
        """get_at of a window over the step's own stream: each row's window as a slice of its key's sorted
        rows, through the bodies of windows that start at an earlier step (SLICE_BODIES; distinct by
        expanding the slices, without previous_same over every row). None when distinct or median would
        expand more rows than the table has: computing every row is then the cheaper."""
        g = self.group(spec.stream, spec.key)
        pos = self.positions(spec.stream, spec.key)[rows]
        lo = self._start_at(spec, pos)
        if spec.func in ("distinct", "median") and int((pos - lo + 1).sum()) > len(g.order):
            return None
        mask, value, vcodes = self._input(spec)
        slices = Slices(g, lo, pos, vcodes)
        body = distinct_expanded if spec.func == "distinct" else SLICE_BODIES[spec.func]
        return Vec(*body(slices, value, mask))

    def window_start(self, spec: AggregateSpec) -> np.ndarray:
        """First sorted position of each row's window, per (stream, key, window)."""
        sk = start_key(spec)
        if sk not in self._starts:
            self._starts[sk] = self.group(spec.stream, spec.key).window_start(spec.window_ns)
        return self._starts[sk]

    def _input(self, spec: AggregateSpec) -> tuple[np.ndarray, Vec | None, np.ndarray | None]:
        """(where=, value, value codes or None) per sorted row; an is_new inside where= is computed first, at
        every row of the stream, as the step-level is_new would be there."""
        got = self._inputs.get(spec)
        if got is None:
            g = self.group(spec.stream, spec.key)
            env = TableRows(self.tables[spec.stream], self).env(spec.stream, dict(spec.inner))
            mask = self.evaluator.truth(spec.where, env)[g.order]
            value = None if spec.value is None else self.evaluator.compute(spec.value, env).take(g.order)
            # a plain field (distinct(device), is_new(payee)): its codes are known, no hashing of text
            vcodes = self.tables.codes(spec.stream, spec.value.name)[g.order] if (
                spec.func in ("distinct", "is_new") and isinstance(spec.value, Field)) else None
            got = (mask, value, vcodes)
            if spec.func in LISTED_AGGREGATES or spec.bound is not None:  # read again: members, chain blocks
                self._inputs[spec] = got
        return got

    def foreign_index(self, spec: AggregateSpec) -> ForeignIndex:
        fk = (spec.stream, spec.key, *spec.source)
        if fk not in self._foreign_index:
            src, query = self.tables[spec.source[0]], self.tables[spec.stream]
            q_seq, q_ts = query.seq, query.ts()
            at = self.query_rows.get(fk)
            if at is not None:
                q_seq, q_ts = q_seq[at], q_ts[at]
            if len(spec.source_fields) == 1:
                q_codes, src_codes = self.tables.joint((spec.stream, spec.key), spec.source)
                fi = ForeignIndex.build(src_codes, src.seq, src.ts(), q_codes if at is None else q_codes[at],
                                        q_seq, q_ts)
            else:  # key=[f1, f2]: one source row per (record, field) with a value no earlier field had
                q_codes, src_codes, rec = self._any_codes(spec)
                fi = ForeignIndex.build(src_codes, src.seq[rec], src.ts()[rec], q_codes if at is None else
                                        q_codes[at], q_seq, q_ts).rows_of(rec)
            self._foreign_index[fk] = fi
        return self._foreign_index[fk]

    def _any_codes(self, spec: AggregateSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query codes, source codes, source record) of ``key=[f1, f2, ...]``: the codes of every field in the
        query codes' space, and a row per (record, field) whose value is not null, is some query's key and is
        not an earlier listed field's value in the same record (so a record is in a key's window once)."""
        src_stream, fields = spec.source[0], spec.source_fields
        q_codes, first = self.tables.joint((spec.stream, spec.key), (src_stream, fields[0]))
        cols = [first]
        for f in fields[1:]:
            qk, sk = self.tables.joint((spec.stream, spec.key), (src_stream, f))
            carry = np.full(max(int(qk.max(initial=-1)), int(sk.max(initial=-1))) + 2, -1, dtype=np.int64)
            ok = qk >= 0
            carry[qk[ok]] = q_codes[ok]  # the same query value, in q_codes' space
            cols.append(np.where(sk >= 0, carry[np.maximum(sk, 0)], -1))
        keep = [c >= 0 for c in cols]
        for k in range(1, len(cols)):
            for j in range(k):
                keep[k] &= cols[k] != cols[j]
        rec = np.concatenate([np.flatnonzero(m) for m in keep]).astype(np.int64)
        codes = np.concatenate([c[m] for c, m in zip(cols, keep)]).astype(np.int64)
        return q_codes, codes, rec

    def _narrow_index(self, spec: AggregateSpec, q_rows: np.ndarray) -> ForeignIndex:
        """The ForeignIndex of the queries ``q_rows`` alone (table rows, ascending) and the source records
        whose key is one of theirs: a window holds records of its own key only, so each query's window is
        that of the whole index."""
        src, query = self.tables[spec.source[0]], self.tables[spec.stream]
        if len(spec.source_fields) == 1:
            q_codes, src_codes = self.tables.joint((spec.stream, spec.key), spec.source)
            rec = None
        else:
            q_codes, src_codes, rec = self._any_codes(spec)
        q_codes = q_codes[q_rows]
        # one slot at least: every key of both sides may be null (a slice whose asked records lack it)
        asked = np.zeros(max(int(q_codes.max(initial=-1)), int(src_codes.max(initial=-1)), 0) + 1, dtype=bool)
        asked[q_codes[q_codes >= 0]] = True
        keep = np.flatnonzero((src_codes >= 0) & asked[np.maximum(src_codes, 0)])
        src_rows = keep if rec is None else rec[keep]
        return ForeignIndex.build(src_codes[keep], src.seq[src_rows], src.ts()[src_rows], q_codes,
                                  query.seq[q_rows], query.ts()[q_rows]).rows_of(src_rows)

    def _foreign_body(self, spec: AggregateSpec, fi: ForeignIndex
                      ) -> tuple[np.ndarray, Vec | None, np.ndarray, np.ndarray]:
        """The window bodies of ``agg(..., stream=s, key=f)`` over index ``fi``: (where= per sorted position,
        value per sorted position, the aggregate at each of fi's queries, its null there)."""
        src_stream, src_key = spec.source
        g = fi.group
        start = g.window_start(spec.window_ns)
        env = TableRows(self.tables[src_stream], self).env(src_stream, {})
        src_mask = self.evaluator.truth(spec.where, env)
        if len(spec.source_fields) == 1:  # (with several fields, a record without a value has no row at all)
            src_mask = src_mask & (self.tables.codes(src_stream, src_key) >= 0)
        mask = fi.sorted_mask(src_mask)
        value = None if spec.value is None else fi.sorted_values(self.evaluator.compute(spec.value, env))
        vcodes = fi.sorted_codes(self.tables.codes(src_stream, spec.value.name)) if (
            spec.func == "distinct" and isinstance(spec.value, Field)) else None
        values, null = WINDOW_BODIES[spec.func](Window(g, start, spec.window_ns, vcodes), value, mask)
        return mask, value, values[fi.query_pos], null[fi.query_pos]

    def _keyed_only(self, spec: AggregateSpec, rows: np.ndarray | slice, values: np.ndarray, null: np.ndarray
                    ) -> Vec:
        """Values at table rows ``rows``, zero and null where the row has no key (no key, no window, as the
        stream executor)."""
        no_key = self.tables.codes(spec.stream, spec.key)[rows] < 0
        return Vec(np.where(no_key, 0, values).astype(values.dtype), null | no_key)

    def _compute_foreign(self, spec: AggregateSpec) -> Vec:
        """``agg(..., stream=s, key=f)`` at every record of the step's stream: the window bodies over the
        joint table of s's records and the reading records (runtime.windows.ForeignIndex)."""
        fi = self.foreign_index(spec)
        mask, value, values, null = self._foreign_body(spec, fi)
        self._foreign[spec] = (fi, mask, value)  # not the window starts: members() finds those of its few rows
        at = self.query_rows.get((spec.stream, spec.key, *spec.source))
        if at is not None:  # read only at the rows ``at``: null elsewhere (rows no caller reads)
            n = self.tables[spec.stream].n
            full, full_null = np.zeros(n, dtype=values.dtype), np.ones(n, dtype=bool)
            full[at], full_null[at] = values, null
            values, null = full, full_null
        return self._keyed_only(spec, slice(None), values, null)

    def _narrow_foreign(self, spec: AggregateSpec, rows: np.ndarray) -> Vec:
        """get_at of a foreign aggregate, computed at ``rows`` alone; null at a row outside query_rows, as
        in the whole computation."""
        uniq, inverse = np.unique(rows, return_inverse=True)
        at = self.query_rows.get((spec.stream, spec.key, *spec.source))
        asked = uniq if at is None else uniq[np.isin(uniq, at)]
        _, _, _, got, got_null = self._narrow_body(spec, asked)
        values, null = np.zeros(len(uniq), dtype=got.dtype), np.ones(len(uniq), dtype=bool)
        pos = np.searchsorted(uniq, asked)
        values[pos], null[pos] = got, got_null
        return self._keyed_only(spec, uniq, values, null).take(inverse.ravel())

    def _narrow_body(self, spec: AggregateSpec, asked: np.ndarray
                     ) -> tuple[ForeignIndex, np.ndarray, Vec | None, np.ndarray, np.ndarray]:
        """The index of the table rows ``asked`` (ascending) alone, and _foreign_body over it."""
        fi = self._narrow_index(spec, asked)
        return (fi, *self._foreign_body(spec, fi))

    def _compute(self, spec: AggregateSpec) -> Vec:
        if spec.foreign:
            return self._compute_foreign(spec)
        g = self.group(spec.stream, spec.key)
        # is_new looks back from each row to the same value's previous row, not over a window start
        start = self.window_start(spec) if spec.func != "is_new" else np.zeros(0, dtype=np.int64)
        mask, value, vcodes = self._input(spec)
        values, null = WINDOW_BODIES[spec.func](Window(g, start, spec.window_ns, vcodes), value, mask)
        return g.scatter(values, null)

    def keep_only(self, specs: set[AggregateSpec]) -> None:
        """Drop the per-row values and inputs of every aggregate not in ``specs``, from all caches at
        once (a foreign aggregate's entries are filled together). They are caches: one read again is
        computed again, the same."""
        for cache in (self._values, self._inputs, self._prev, self._foreign):
            for spec in [s for s in cache if s not in specs]:
                del cache[spec]

    def keep_indexes(self, needs: IndexNeeds) -> None:
        """Drop the groups, window starts and foreign indexes not in ``needs`` (caches: one read again is
        built again, the same)."""
        starts = {start_key(s) for specs in needs.windows.values() for s in specs}
        for cache, keep in ((self._groups, needs.windows), (self._positions, needs.windows),
                            (self._starts, starts), (self._foreign_index, needs.foreign)):
            for k in [k for k in cache if k not in keep]:
                del cache[k]

    def positions(self, stream: str, key: str) -> np.ndarray:
        """The sorted position of each table row."""
        gk = (stream, key)
        if gk not in self._positions:
            g = self.group(stream, key)
            positions = np.empty(len(g.order), dtype=g.order.dtype)
            positions[g.order] = np.arange(len(g.order), dtype=g.order.dtype)
            self._positions[gk] = positions
        return self._positions[gk]

    def slices(self, spec: AggregateSpec, rows: np.ndarray, bound_ts: np.ndarray) -> Slices:
        """The window of each chain: ``rows`` (the records the aggregate is evaluated at) and the ts of the
        earlier step that bounds it: ``(max(t - w, bound), t]``, or ``[bound, ...`` when inclusive."""
        g = self.group(spec.stream, spec.key)
        start = self.window_start(spec)  # builds the group's index too
        pos = self.positions(spec.stream, spec.key)[rows]
        assert spec.bound is not None and g._index is not None
        after = g._index.search(g.codes[pos], bound_ts, side="left" if spec.bound[1] else "right")
        return Slices(g, np.maximum(start[pos], after), pos, self._input(spec)[2])

    def bounded(self, spec: AggregateSpec, rows: np.ndarray, bound_ts: np.ndarray) -> Vec:
        """A window that starts at an earlier step, per chain (SLICE_BODIES: prefix sums, a sparse table, or
        the slices' rows expanded; no loop per chain). distinct and median expand every slice's rows: in
        blocks of at most MAX_PAIRS_PER_BLOCK rows, so that many chains over a busy key bound the memory."""
        mask, value, _ = self._input(spec)
        slices = self.slices(spec, rows, bound_ts)
        body = SLICE_BODIES[spec.func]
        if spec.func not in ("distinct", "median"):
            return Vec(*body(slices, value, mask))
        if spec.func == "distinct":
            slices.prev = self._previous(spec, value, mask, slices.value_codes)
        lengths = np.maximum(slices.hi - slices.lo + 1, 0)
        block = (np.cumsum(lengths) - lengths) // MAX_PAIRS_PER_BLOCK
        cuts = np.flatnonzero(np.r_[False, block[1:] != block[:-1]])
        parts = [body(slices.take(sel), value, mask) for sel in np.split(np.arange(len(rows)), cuts)]
        return Vec(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))

    def _previous(self, spec: AggregateSpec, value: Vec, mask: np.ndarray, vcodes: np.ndarray | None) -> np.ndarray:
        """previous_same of a bounded distinct's counting rows, once per run (chains come in blocks)."""
        if spec not in self._prev:
            self._prev[spec] = previous_same(self.group(spec.stream, spec.key), value, mask & ~value.null, vcodes)
        return self._prev[spec]

    def members(self, spec: AggregateSpec, rows: np.ndarray, limit: int,
                bound_ts: np.ndarray | None = None) -> list[tuple[int, list[Any]]]:
        """Bindings.members for table rows ``rows`` (bounded: each chain's bound ts): one window scan per row,
        so only for alerts."""
        if spec.foreign:  # the checker refuses a bound on a window over other records
            assert bound_ts is None
            return self._foreign_members(spec, rows, limit)
        g = self.group(spec.stream, spec.key)
        pos = self.positions(spec.stream, spec.key)[rows]
        lo = self._start_at(spec, pos) if bound_ts is None else self.slices(spec, rows, bound_ts).lo
        mask, value, _ = self._input(spec)
        if value is not None:
            mask = mask & ~value.null
        windows = [(None, None) if g.codes[p] < 0 else (s, p + 1) for p, s in zip(pos.tolist(), lo.tolist())]
        return _window_members(spec, windows, mask, value, self.tables[spec.stream].columns["id"], g.order, limit)

    def _foreign_members(self, spec: AggregateSpec, rows: np.ndarray, limit: int) -> list[tuple[int, list[Any]]]:
        """members() of ``agg(..., stream=, key=)``: the source records in each reading record's window."""
        if spec in self._foreign:  # computed at every row (or at every row of query_rows)
            fi, mask, value = self._foreign[spec]
            at = self.query_rows.get((spec.stream, spec.key, *spec.source))
            qpos = fi.query_pos[rows if at is None else np.searchsorted(at, rows)]
        else:  # an index of these rows alone (get_at)
            asked = sorted_distinct(rows)
            fi, mask, value, _, _ = self._narrow_body(spec, asked)
            qpos = fi.query_pos[np.searchsorted(asked, rows)]
        if value is not None:
            mask = mask & ~value.null
        no_key = (self.tables.codes(spec.stream, spec.key) < 0)[rows].tolist()
        starts = fi.group.window_start(spec.window_ns, qpos)
        windows = [(None, None) if nk else (s, p + 1) for nk, p, s in zip(no_key, qpos.tolist(), starts.tolist())]
        return _window_members(spec, windows, mask, value, self.tables[spec.source[0]].columns["id"], fi.source_row,
                               limit)


def _joinable(cand_code: np.ndarray, chain_code: np.ndarray) -> np.ndarray:
    """Which candidates have a join code that some chain holds (a null join value, code -1, never does). The
    others would join nothing, and searching for them cost most of a sequence's time when its first step is
    rare: 2.9M payments searched among 189k chains."""
    held = np.zeros(max(int(cand_code.max(initial=-1)), int(chain_code.max(initial=-1))) + 2, dtype=bool)
    held[chain_code[chain_code >= 0]] = True  # held[-1], the last entry, stays False
    return held[cand_code]


def _window_members(spec: AggregateSpec, windows: list[tuple[int | None, int | None]], mask: np.ndarray,
                    value: Vec | None, ids: Vec, id_row: np.ndarray, limit: int) -> list[tuple[int, list[Any]]]:
    """Each window's (count, first ``limit`` members): the ids of the rows ``mask`` passes in [lo, hi) (through
    ``id_row``) for count, the distinct values in order of first appearance for distinct; (0, []) for a
    (None, None) window (no key). The ids of every window are taken from the column at once: an alert-heavy
    rule has tens of thousands of windows, and one take each cost more than the alerts' text."""
    counts: list[int] = []
    picked: list[np.ndarray] = []  # count: rows of ``ids``; distinct: rows of ``value``, a value's first
    none = np.zeros(0, dtype=np.int64)
    coded = isinstance(value, Coded)
    for lo, hi in windows:
        if lo is None:
            counts.append(0)
            picked.append(none)
            continue
        hits = np.flatnonzero(mask[lo:hi]) + lo
        if spec.func == "count":
            counts.append(len(hits))
            picked.append(id_row[hits[:limit]])
        else:  # distinct: values in order of first appearance, by their codes (a text's code is its own)
            # and not as objects: a large window's texts cost a dictionary's worth each time
            local = value.codes[hits] if coded else pd.factorize(value.take(hits).values)[0]  # type: ignore
            first = np.sort(np.unique(local, return_index=True)[1])
            counts.append(len(first))
            picked.append(hits[first[:limit]])
    taken = np.concatenate(picked) if picked else none
    flat = to_python(ids.take(taken) if spec.func == "count" else value.take(taken))  # type: ignore[union-attr]
    ends = np.cumsum([len(p) for p in picked]).tolist()
    return [(n, flat[e - len(p):e]) for n, p, e in zip(counts, picked, ends)]


class TableRows(Bindings):
    """Every row of one table, whatever the alias; aggregates come from the store."""

    def __init__(self, table: Table, store: AggregateStore):
        super().__init__(table.n)
        self.table = table
        self.store = store

    def _column(self, alias: str, name: str) -> Vec:
        return self.table.columns[name]

    def _aggregate(self, alias: str, spec: AggregateSpec) -> Vec:
        return self.store.get(spec)

    def _aggregate_at(self, alias: str, spec: AggregateSpec, rows: np.ndarray) -> Vec:
        return self.store.get_at(spec, rows)


class ChainRows(Bindings):
    """Chains of a rule: each alias reads its step's table at the chain's rows."""

    def __init__(self, rule: RulePlan, tables: Tables, store: AggregateStore, rows: dict[str, np.ndarray],
                 runs: Runs | None = None):
        super().__init__(len(next(iter(rows.values()))))
        self.tables = tables
        self.store = store
        self.rows = rows
        self.streams = {sp.alias: sp.stream for sp in rule.steps}
        self.steps = {sp.alias: sp for sp in rule.steps}
        self.runs_of = runs

    def run_records(self, alias: str) -> list[list[dict[str, Any]]]:
        sp = self.steps[alias]
        members = self.runs_of.members(sp, self.rows[alias])
        table = self.tables[sp.stream]
        flat = members.ravel()
        cols = {"id": to_python(table.columns["id"].take(flat)), "ts": to_python(table.columns["ts"].take(flat))}
        if sp.distinct:
            cols[sp.distinct] = to_python(table.columns[sp.distinct].take(flat))
        n = members.shape[1]
        return [[{c: vals[i * n + m] for c, vals in cols.items()} for m in range(n)] for i in range(len(members))]

    def _column(self, alias: str, name: str) -> Vec:
        return self.tables[self.streams[alias]].columns[name].take(self.rows[alias])

    def _aggregate(self, alias: str, spec: AggregateSpec) -> Vec:
        if spec.bound is not None:  # starts at an earlier step of each chain
            return self.store.bounded(spec, self.rows[alias], self._bound_ts(spec))
        return self.store.get_at(spec, self.rows[alias])

    def _aggregate_at(self, alias: str, spec: AggregateSpec, rows: np.ndarray) -> Vec:
        if spec.bound is not None:
            return self.aggregate(alias, spec).take(rows)
        return self.store.get_at(spec, self.rows[alias][rows])

    def _bound_ts(self, spec: AggregateSpec) -> np.ndarray | None:
        if spec.bound is None:
            return None
        alias = spec.bound[0]
        return self.tables[self.streams[alias]].ts()[self.rows[alias]]

    def members(self, alias: str, spec: AggregateSpec, limit: int) -> list[tuple[int, list[Any]]]:
        return self.store.members(spec, self.rows[alias], limit, self._bound_ts(spec))


class Runs:
    """Repeated steps (runtime/runs.py): per step, the first record of the latest run ending at each row."""

    def __init__(self, tables: Tables):
        self.tables = tables
        self._done: dict[int, tuple[StepPlan, np.ndarray, np.ndarray]] = {}  # id(step) -> (step, cands, first)

    def first(self, sp: StepPlan, cands: np.ndarray | None = None) -> np.ndarray:
        """Per row of the step's table: the row of its run's first record, or -1 (no run ends there).
        ``cands``: the step's candidate rows (given the first time: the step's local where)."""
        got = self._done.get(id(sp))
        if got is None:
            assert cands is not None
            codes = self.tables.codes(sp.stream, sp.key)[cands]
            values = self.tables.codes(sp.stream, sp.distinct)[cands] if sp.distinct else None
            at = latest_runs(codes, sp.runs, values)  # a table is in total order, and so are cands
            first = np.full(self.tables[sp.stream].n, -1, dtype=np.int64)
            first[cands] = np.where(at >= 0, cands[np.maximum(at, 0)], -1)
            got = self._done[id(sp)] = (sp, cands, first)
        return got[2]

    def members(self, sp: StepPlan, rows: np.ndarray) -> np.ndarray:
        """The run ending at each row (each ends one), as rows in total order: shape (len(rows), runs)."""
        _, cands, _ = self._done[id(sp)]
        codes = self.tables.codes(sp.stream, sp.key)[cands]
        values = self.tables.codes(sp.stream, sp.distinct)[cands] if sp.distinct else None
        at = latest_runs(codes, sp.runs, values, members_of=np.searchsorted(cands, rows))
        return cands[at]


class BatchExecutor:
    """Evaluates a Plan over a RecordSet."""

    def __init__(self, plan: Plan, records: RecordSet, *, fresh: dict[str, np.ndarray] | None = None,
                 prior_alerts: dict[str, dict[str, int]] | None = None, high_water: int | None = None):
        """``fresh`` marks, per stream, the rows that may trigger (the others are context from earlier
        runs or chunks); ``prior_alerts`` gives rule id -> key -> ts of the last alert emitted before;
        ``high_water``: the largest ts those runs scored (an absence whose deadline lies before it fired
        there; docs/design.md §8)."""
        self.plan = plan
        self.records = records
        self.fresh = fresh
        self.high_water = high_water
        self.prior_alerts = prior_alerts or {}
        self.tables = Tables(records, plan)
        self.evaluator = Evaluator(plan.lists)
        self.store = AggregateStore(self.tables, self.evaluator)
        self.store.query_rows = self._trigger_queries()
        self.runs = Runs(self.tables)

    def _trigger_queries(self) -> dict[tuple[str, str, str, str], np.ndarray]:
        """Foreign indexes read only where a new record triggers, and at which rows: the fresh ones.

        After a context (fresh given), an ``agg(..., stream=, key=)`` that only the last step of
        rules reads (not an absence, not a repeated step, not inside another aggregate) is read at
        triggers alone, which are new rows (_triggers); its index then holds the context rows as
        source records but not as queries: a third less for a count over 400 days by two keys. The
        values at the other rows are null, and only candidates that _triggers drops read them."""
        if self.fresh is None:
            return {}
        only_last: set[tuple[str, str, str, str]] = set()
        anywhere: set[tuple[str, str, str, str]] = set()

        def fk(spec: AggregateSpec) -> tuple[str, str, str, str]:
            return (spec.stream, spec.key, *spec.source)

        for rp in self.plan.rules:
            for j, sp in enumerate(rp.steps):
                specs = [*sp.aggregates.values(), *(rp.explain_aggregates.values() if j == len(rp.steps) - 1 else ())]
                last = j == len(rp.steps) - 1 and rp.absent is None and not sp.is_run
                for spec in specs:
                    anywhere.update(fk(s) for s in spec.inputs() if s != spec.base and s.foreign)
                    if spec.base.foreign:
                        (only_last if last and spec.bound is None else anywhere).add(fk(spec.base))
                if j < len(rp.steps) - 1:
                    # ``alias.agg(...)`` read by a later step or the explain is evaluated at THIS step's
                    # record, which may be a context row: it lists in this step's kept, not its aggregates
                    anywhere.update(fk(spec.base) for spec in sp.kept if spec.base.foreign)
        out = {}
        for key in only_last - anywhere:
            fresh = self.fresh.get(key[0])
            if fresh is not None and not fresh.all():
                out[key] = np.flatnonzero(fresh)
        return out

    def run(self) -> list[RuleMatches]:
        return [self.run_rule(rp) for rp in self.plan.rules]

    def prepare(self, threads: int = 1, shared_only: bool = False) -> None:
        """Compute what rules share, once: the codes of every key column, each table's timestamp
        ranks, and the group index and window starts of every aggregate's (stream, key). Worker
        processes forked after this inherit it instead of each computing it again. With
        ``shared_only``, only what two rules or more read: a worker builds what its own rule alone
        reads, and drops it after (keep_only_for), so that no process holds every rule's indexes
        (at 1M records, 27 of 48 indexes, 90 MB of 150, are read by one rule).

        With ``threads`` > 1 the work runs on that many threads (numpy's sorts and searches, which
        most of it is, release the GIL), in three waves whose tasks are independent: codes and ranks;
        joint codes, and each (stream, key)'s group with all its window starts; foreign indexes. Each
        cache entry is made by one task, so the caches are those of a serial run."""
        # each task's temporaries go back to the system as it ends: the end of prepare() is the run's peak, and the
        # C heap and the thread's Arrow pool would otherwise still hold what the tasks before freed (~140 MB at 1M)
        waves = [[partial(_then_trim, task) for task in wave] for wave in self._shared_work(shared_only)]
        if threads <= 1:
            for wave in waves:
                for task in wave:
                    task()
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fraudrules-prepare") as pool:
            for wave in waves:
                for future in [pool.submit(task) for task in wave]:
                    future.result()  # the wave ends before the next starts; a task's error is raised here

    def _shared_work(self, shared_only: bool) -> list[list[Callable[[], Any]]]:
        """prepare()'s tasks in waves: a task reads only what earlier waves made."""
        every = self.needs(self.plan.rules)
        for stream in dict.fromkeys(stream for stream, _ in every.keys):
            self.tables[stream]  # a stream's keys of several fields, derived here, before the threads
        needs = every.read_twice([self.needs([rp]) for rp in self.plan.rules]) if shared_only else every
        streams = dict.fromkeys(stream for stream, _ in needs.keys)
        return [
            [partial(self.tables.ranks, s) for s in streams]
            + [partial(self.tables.column_codes, *k) for k in needs.keys],
            [partial(self.tables.joint, a, b) for a, b in needs.joints if (b, a) not in needs.joints or a <= b]
            + [partial(self._group_starts, gk, list(specs), bool(every.windows[gk]))
               for gk, specs in needs.windows.items()],
            [partial(self.store.foreign_index, spec) for spec in needs.foreign.values()],
        ]

    def needs(self, rules: list[RulePlan]) -> IndexNeeds:
        """The shared indexes ``rules`` read, each set in a fixed order: the same waves on every run."""
        out = IndexNeeds()
        for rp in rules:
            for j, sp in enumerate(rp.steps):
                out.keys[(sp.stream, sp.key)] = None
                if j:
                    out.joints[(self._join_source(rp, j), (sp.stream, sp.key))] = None
            if rp.unless is not None:
                on = rp.steps[rp.unless.on]
                out.joints[((rp.unless.stream, rp.unless.key), (on.stream, on.key))] = None
        specs = set().union(*(rp.aggregates() for rp in rules))
        for spec in sorted(specs, key=lambda a: (a.stream, a.key, a.window_ns)):
            if spec.foreign:
                out.foreign.setdefault((spec.stream, spec.key, *spec.source), spec)
                for f in spec.source_fields:
                    out.joints[((spec.stream, spec.key), (spec.source[0], f))] = None
            else:
                out.keys[(spec.stream, spec.key)] = None
                window_specs = out.windows.setdefault((spec.stream, spec.key), {})
                if spec.func != "is_new":  # (is_new needs no window start: AggregateStore._compute)
                    window_specs[spec] = None
        for a, b in out.joints:
            out.keys[a] = out.keys[b] = None
        return out

    def _group_starts(self, gk: tuple[str, str], specs: list[AggregateSpec], searched: bool) -> None:
        """A (stream, key)'s group, its search index and its window starts: one task, since they build
        on each other. With ``searched`` (some rule reads a window start of the group), the index is built
        even with no start to compute here: each worker that computes one inherits it, not builds its own."""
        group = self.store.group(*gk)
        if searched:
            group.search_index()
        for spec in specs:
            self.store.window_start(spec)

    def keep_only_for(self, rules: list[RulePlan]) -> None:
        """Keep the aggregate values and the indexes that ``rules`` read, drop the rest: one process
        evaluating rule after rule would otherwise hold every rule's aggregates (at 1M records, 270 MB)
        and indexes to the end. Key codes and timestamp ranks stay (small, and read everywhere)."""
        self.store.keep_only({spec for rp in rules for spec in (*rp.read_aggregates(), *rp.aggregates())})
        needs = self.needs(rules)
        self.store.keep_indexes(needs)
        self.tables.keep_joints(needs.joints)

    # -- one rule ------------------------------------------------------------
    def _candidates(self, sp: StepPlan) -> np.ndarray:
        table = self.tables[sp.stream]
        env = TableRows(table, self.store).env(sp.alias, sp.aggregates)
        mask = self.evaluator.truth(sp.local, env) & ~table.columns[sp.key].null
        rows = np.flatnonzero(mask)
        if sp.is_run:  # a record of a repeated step counts as its run's last: it must end one
            rows = rows[self.runs.first(sp, rows)[rows] >= 0]
        return rows

    def _start_rows(self, sp: StepPlan, rows: np.ndarray) -> np.ndarray:
        """The rows where the step's records begin: a run's first record, else the record itself."""
        return self.runs.first(sp)[rows] if sp.is_run else rows

    def _triggers(self, rp: RulePlan, sp: StepPlan) -> np.ndarray:
        """Candidates of a rule's last step: only new rows may trigger. An absence's last step may be an
        earlier run's record: what is new there is its deadline (_absence)."""
        rows = self._candidates(sp)
        if self.fresh is not None and sp.stream in self.fresh and rp.absent is None:
            rows = rows[self.fresh[sp.stream][rows]]
        return rows

    def run_rule(self, rp: RulePlan) -> RuleMatches:
        first = rp.steps[0]
        single = len(rp.steps) == 1
        rows: dict[str, np.ndarray] = {first.alias: self._triggers(rp, first) if single else self._candidates(first)}
        for j in range(1, len(rp.steps)):
            rows = self._extend(rp, rows, j)
        if rp.unless is not None:
            rows = self._apply_unless(rp, rows)
        if len(rp.steps) > 1:
            rows = self._latest_chain(rp, rows)
        last = rp.steps[-1]
        ordered = [rows[sp.alias] for sp in rp.steps]
        if rp.absent is not None:
            return self._absence(rp, ordered)
        key = self.tables[last.stream].columns[last.key].take(ordered[-1])
        emitted = self._suppress(rp, ordered[-1], key)
        return RuleMatches(rp, ordered, key, emitted)

    @property
    def now_ns(self) -> int | None:
        """Event time reached: the largest ts of the records so far, any stream (None: no records)."""
        tops = [int(t.ts().max()) for t in self.records.tables.values() if t.n]
        if self.high_water is not None:
            tops.append(self.high_water)
        return max(tops) if tops else None

    def _absence(self, rp: RulePlan, chains: list[np.ndarray]) -> RuleMatches:
        """Chains not followed by an absent record (docs/design.md §5, "Absence"): each trigger's deadline
        D = ts + within is known once the run's event time passed it (some record has ts > D), and the
        chain matches when no absent record of its join value passing ``where`` lies after the trigger
        in the total order with ts <= D. Searches over the absent records sorted by (code, seq); within
        a code, ts ascends with seq, so the first one after the trigger decides."""
        a = rp.absent
        assert a is not None
        last = rp.steps[-1]
        order = np.argsort(self._seq(last, chains[-1]), kind="stable")
        chains = [r[order] for r in chains]
        trig = chains[-1]
        src_sp, src_field = rp.steps[a.source[0]], a.source[1]
        src_rows = chains[a.source[0]]
        deadline = self._ts(last, trig) + a.within_ns
        now = self.now_ns
        known = deadline < now if now is not None else np.zeros(len(trig), dtype=bool)
        if self.high_water is not None:  # fired in the run that passed it
            known &= deadline >= self.high_water
        table = self.tables[a.stream]
        env = TableRows(table, self.store).env(a.alias, {})
        brows = np.flatnonzero(self.evaluator.truth(a.where, env) & ~table.columns[a.key].null)
        ccodes, bcodes = self.tables.joint((src_sp.stream, src_field), (a.stream, a.key))
        ccode = ccodes[src_rows]
        bcode, bseq = bcodes[brows], table.seq[brows]
        border = np.lexsort((bseq, bcode))
        bc, bs, bt = bcode[border], bseq[border], table.ts()[brows][border]
        present = np.zeros(len(trig), dtype=bool)
        if len(bc):
            at = composite_searchsorted(bc, bs, ccode, self._seq(last, trig), side="right")
            inside = at < len(bc)
            first = np.minimum(at, len(bc) - 1)
            present = inside & (bc[first] == ccode) & (bt[first] <= deadline)
        keep = known & ~present & (ccode >= 0)  # a null join value waits for nothing (§5: a null never joins)
        chains = [r[keep] for r in chains]
        deadline = deadline[keep]
        key = self.tables[src_sp.stream].columns[src_field].take(chains[a.source[0]])
        codes = self.tables.codes(src_sp.stream, src_field)[chains[a.source[0]]]
        # suppression from ts D, in the order of the deadlines (that of the triggers)
        emitted = self._suppress_at(rp, np.arange(len(deadline)), deadline, codes, key)
        return RuleMatches(rp, chains, key, emitted, deadline)

    def _seq(self, sp: StepPlan, rows: np.ndarray) -> np.ndarray:
        return self.tables[sp.stream].seq[rows]

    def _ts(self, sp: StepPlan, rows: np.ndarray) -> np.ndarray:
        return self.tables[sp.stream].ts()[rows]

    @staticmethod
    def _join_source(rp: RulePlan, j: int) -> tuple[str, str]:
        """The (stream, field) that step ``j`` joins on: an earlier step's field it follows (follow
        the money), else the key of the step before (same entity)."""
        sp = rp.steps[j]
        if sp.follows:
            alias, fname = sp.follows
            return next(s for s in rp.steps if s.alias == alias).stream, fname
        return rp.steps[j - 1].stream, rp.steps[j - 1].key

    def _chain_index(self, first: StepPlan, first_rows: np.ndarray,
                     codes: np.ndarray) -> tuple[CompositeIndex, np.ndarray]:
        """Chains sorted by (join code, ts of their first record), for the window searches of a join;
        chains that cannot join (code -1) are left out. Returns the index and each position's chain."""
        ts_first = self._ts(first, first_rows)
        live = np.flatnonzero(codes >= 0)
        order = live[code_ts_order(codes[live], ts_first[live])]
        uniq, rank = self.tables.ranks(first.stream)
        return CompositeIndex(codes[order], ts_first[order], (uniq, rank[first_rows][order])), order

    def _extend(self, rp: RulePlan, chains: dict[str, np.ndarray], j: int) -> dict[str, np.ndarray]:
        """Join the chains of steps 0..j-1 with candidates of step j."""
        steps = rp.steps
        if latest_chain_only(rp):
            return self._extend_latest(rp, chains)
        sp, prev, first = steps[j], steps[j - 1], steps[0]
        cand = self._triggers(rp, sp) if j == len(steps) - 1 else self._candidates(sp)
        join_codes, cand_codes = self.tables.joint(self._join_source(rp, j), (sp.stream, sp.key))
        chain_code = join_codes[chains[sp.follows[0] if sp.follows else prev.alias]]
        cand = cand[_joinable(cand_codes[cand], chain_code)]  # so no candidate's code is -1 below
        cand_code = cand_codes[cand]
        index, order = self._chain_index(first, self._start_rows(first, chains[first.alias]), chain_code)
        cand_ts = self._ts(sp, cand)
        within = rp.within_ns if rp.within_ns is not None else 0
        lo, hi = index.search_between(cand_code, cand_ts - within, cand_ts)
        prev_seq = self._seq(prev, chains[prev.alias])
        cand_seq = self._seq(sp, self._start_rows(sp, cand))  # a run lies wholly after the step before
        out: dict[str, list[np.ndarray]] = {a: [] for a in list(chains) + [sp.alias]}
        per_key = np.zeros(int(cand_code.max(initial=-1)) + 1, dtype=np.int64)  # chains kept, by key
        counts = np.maximum(hi - lo, 0)
        # bound memory: expand at most MAX_PAIRS_PER_BLOCK candidate pairs at a time
        block_id = (np.cumsum(counts) - counts) // MAX_PAIRS_PER_BLOCK
        splits = np.flatnonzero(np.r_[False, block_id[1:] != block_id[:-1]])
        for block in np.split(np.arange(len(cand)), splits):
            if len(block) == 0:
                continue
            q, pos = expand_pairs(lo[block], hi[block])
            q = block[q]
            chain_idx = order[pos]
            ok = prev_seq[chain_idx] < cand_seq[q]  # strictly later in the total order
            q, chain_idx = q[ok], chain_idx[ok]
            new_rows = {a: r[chain_idx] for a, r in chains.items()}
            new_rows[sp.alias] = cand[q]
            if sp.cross is not None and len(q):
                env = ChainRows(rp, self.tables, self.store, new_rows).env(sp.alias, sp.aggregates)
                keep = self.evaluator.truth(sp.cross, env)
                new_rows = {a: r[keep] for a, r in new_rows.items()}
            if len(steps) > 2 and len(q):  # runtime/latest.py MAX_CHAINS: bounded, and said
                per_key += np.bincount(cand_codes[new_rows[sp.alias]], minlength=len(per_key))
                if per_key.max() > MAX_CHAINS:
                    raise FraudRulesError(
                        f"{rp.id}: more than {MAX_CHAINS:,} partial chains at step {sp.alias!r} on one key: a "
                        f"sequence of {len(steps)} steps joins every chain, and a busy key makes that grow like "
                        f"n^{j}; narrow the steps' where or shorten within")
            for a, r in new_rows.items():
                out[a].append(r)
        return {a: (np.concatenate(parts) if parts else np.zeros(0, np.int64)) for a, parts in out.items()}

    def _extend_latest(self, rp: RulePlan, chains: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """A two-step sequence joined to the latest chain only: O(n log n) time, linear memory.

        The evidence is the latest chain (docs/design.md §5), so each trigger needs only its latest
        earlier first step that passes the cross conditions, not all of them (a busy key has n^2/2).
        The first steps a trigger may join are a run of the index sorted by (code, ts, rank), which
        is also their order in the total order; so walk down from the trigger's end of that run,
        1, 2, 4, ... rows at a time, until the cross conditions hold (runtime/latest.py, shared with
        the stream executor). ``_apply_unless`` runs after; ``latest_chain_only`` says when that
        stays exact (an unless record that cancels the latest chain cancels every earlier one)."""
        first, sp = rp.steps
        cand = self._triggers(rp, sp)
        join_codes, cand_codes = self.tables.joint(self._join_source(rp, 1), (sp.stream, sp.key))
        firsts = chains[first.alias]
        code = join_codes[firsts]
        cand = cand[_joinable(cand_codes[cand], code)]  # so no candidate's code is -1 below
        index, order = self._chain_index(first, firsts, code)
        sc = code[order]
        cand_code, cand_ts = cand_codes[cand], self._ts(sp, cand)
        within = rp.within_ns if rp.within_ns is not None else 0
        lo, hi = index.search_between(cand_code, cand_ts - within, cand_ts)
        # strictly earlier in the total order: within a code's run the seq ascends, so cut at it
        sseq = self._seq(first, firsts)[order]
        hi = np.minimum(hi, composite_searchsorted(sc, sseq, cand_code, self._seq(sp, cand), side="left"))
        lo = np.minimum(lo, hi)

        def passes(q: np.ndarray, pos: np.ndarray) -> np.ndarray:
            rows = {first.alias: firsts[order[pos]], sp.alias: cand[q]}
            env = ChainRows(rp, self.tables, self.store, rows).env(sp.alias, sp.aggregates)
            return self.evaluator.truth(sp.cross, env)

        # position in ``order`` of each trigger's chosen first step, or -1
        found = latest_passing(lo, hi, passes if sp.cross is not None else None, MAX_PAIRS_PER_BLOCK)
        hit = np.flatnonzero(found >= 0)
        return {first.alias: firsts[order[found[hit]]], sp.alias: cand[hit]}

    def _apply_unless(self, rp: RulePlan, chains: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Drop chains with an unless record of the same key strictly between their ends."""
        u = rp.unless
        first, last, on = rp.steps[0], rp.steps[-1], rp.steps[u.on]
        table = self.tables[u.stream]
        env = TableRows(table, self.store).env(u.stream, {})
        urows = np.flatnonzero(self.evaluator.truth(u.where, env) & ~table.columns[u.key].null)
        ucodes, ccodes = self.tables.joint((u.stream, u.key), (on.stream, on.key))
        ucode, ccode = ucodes[urows], ccodes[chains[on.alias]]
        useq = table.seq[urows]
        order = np.lexsort((useq, ucode))
        uc, us = ucode[order], useq[order]
        s1 = self._seq(first, self._start_rows(first, chains[first.alias]))
        sk = self._seq(last, chains[last.alias])
        lo = composite_searchsorted(uc, us, ccode, s1, side="right")
        hi = composite_searchsorted(uc, us, ccode, sk, side="left")
        keep = (hi <= lo) | (ccode < 0)
        return {a: r[keep] for a, r in chains.items()}

    def _latest_chain(self, rp: RulePlan, chains: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One chain per triggering record: the latest r(k-1), then r(k-2), ..."""
        seqs = [self._seq(sp, chains[sp.alias]) for sp in rp.steps]
        if len(seqs[-1]) == 0:
            return chains
        order = np.lexsort(tuple(seqs))  # last key is primary: trigger, then r(k-1), ...
        trig = seqs[-1][order]
        last_of_trigger = np.r_[trig[1:] != trig[:-1], True]
        pick = order[last_of_trigger]
        return {a: r[pick] for a, r in chains.items()}

    def _suppress(self, rp: RulePlan, trigger_rows: np.ndarray, key: Vec) -> np.ndarray:
        """Greedy suppression per key on event time, in the total order."""
        n = len(trigger_rows)
        emitted = np.ones(n, dtype=bool)
        if n == 0 or rp.suppress_ns <= 0:
            return emitted
        last = rp.steps[-1]
        table = self.tables[last.stream]
        seq = table.seq[trigger_rows]
        ts = table.ts()[trigger_rows]
        codes = self.tables.codes(last.stream, last.key)[trigger_rows]
        return self._suppress_at(rp, seq, ts, codes, key)

    def _suppress_at(self, rp: RulePlan, seq: np.ndarray, ts: np.ndarray, codes: np.ndarray, key: Vec
                     ) -> np.ndarray:
        """Greedy suppression of matches at event times ``ts``, in ``seq`` order, per key code."""
        n = len(seq)
        emitted = np.ones(n, dtype=bool)
        if n == 0 or rp.suppress_ns <= 0:
            return emitted
        order = np.lexsort((seq, codes))
        sc, st = codes[order], ts[order]
        # next candidate of the same key at least `suppress` later
        nxt = composite_searchsorted(sc, st, sc, st + rp.suppress_ns, side="left")
        same = np.zeros(n, dtype=bool)
        inside = nxt < n
        same[inside] = sc[nxt[inside]] == sc[inside]
        nxt = np.where(same, nxt, -1)
        heads = np.flatnonzero(np.r_[True, sc[1:] != sc[:-1]])
        prior = self.prior_alerts.get(rp.id)
        if prior:  # an alert emitted before this slice still suppresses: start each key after it
            import pandas as pd

            at = pd.Index(list(prior)).get_indexer(key_texts(key.take(order)))  # -1: no earlier alert
            prior_ts = np.fromiter(prior.values(), dtype=np.int64, count=len(prior))[np.maximum(at, 0)]
            blocked = (at >= 0) & (st < prior_ts + rp.suppress_ns)
            first_open = np.minimum.reduceat(np.where(blocked, n, np.arange(n)), heads)
            heads = first_open[first_open < n]
        keep = np.zeros(n, dtype=bool)
        frontier = heads
        while frontier.size:  # one step per emitted alert of the busiest key
            keep[frontier] = True
            frontier = nxt[frontier]
            frontier = frontier[frontier >= 0]
        emitted[order] = keep
        return emitted


def match_view(executor: BatchExecutor, matches: RuleMatches, only_emitted: bool = True) -> MatchView:
    """The alert builder's view of a rule's matches."""
    rp = matches.rule
    pick = matches.emitted if only_emitted else np.ones(matches.n, dtype=bool)
    rows = {sp.alias: r[pick] for sp, r in zip(rp.steps, matches.rows)}
    last = rp.steps[-1]
    seq = executor.tables[last.stream].seq[rows[last.alias]]
    deadline = None if matches.deadline is None else matches.deadline[pick]
    return MatchView(rp, ChainRows(rp, executor.tables, executor.store, rows, executor.runs), seq, deadline)


def _then_trim(task: Callable[[], Any]) -> None:
    task()
    trim_thread_heaps()
