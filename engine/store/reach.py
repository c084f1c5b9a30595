"""Which context rows a slice's new records can reach, per rule group (docs/design.md §8).

Everything a rule reads of earlier records goes through keys: a window aggregate reads the records
of its key, a sequence step joins the step it follows on a key (or a ``follows`` field), ``unless``
reads the records of a step's key. And only a new record can trigger. So, from the new records that
pass the last step's conditions reading no aggregate, the keys propagate back along the chain: the
earlier steps' records that could join (they pass their own such conditions, and their join field
is a later step's key), the records their aggregates read, the ``unless`` records of their keys.
Every other context row can change nothing the rule emits; a group keeps the union over its rules
of the rows they can reach, and its answer is the bytes of the evaluation over its whole context.

This is what keeps long windows cheap: of four million carried payments, a dormancy count over 400
days reads those of the accounts of the new large transfers, and a three-hop cycle those that can
chain to a new payment. A rule with an absence, a repeated step, a step keyed by several fields
(``key: [a, b]``) or a window over another stream bounded by a step keeps every row of its streams.
(One difference, on an error path only: a sequence of 3+ steps that would pass MAX_CHAINS partial
chains on one key over the whole context may stay under it over the rows reached.)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..columns.vec import Vec
from ..io.arrow import arrow_to_vec
from ..io.tables import RecordSet
from ..lang.aggregates import AGGREGATES
from ..lang.expr import Call, Expr, Field, conjuncts
from ..pack.model import is_composite
from ..pack.streams import Schema
from ..runtime.evaluate import ColumnsEnv, Evaluator
from ..runtime.plan import AggregateSpec, RulePlan, StepPlan
from .context import Context


class _Whole(Exception):
    """A stream read in a way the keys cannot narrow: keep all the context rows the rule reads."""


def _reads_aggregate(expr: Expr) -> bool:
    return any(isinstance(n, Call) and n.name in AGGREGATES for n in expr.walk())


@dataclass
class _Rows:
    """Rows of one stream: a mask over its context rows and one over its new rows."""

    old: np.ndarray
    new: np.ndarray


@dataclass
class _Reach:
    context: Context
    records: RecordSet
    schema: Schema
    evaluator: Evaluator
    kept: dict[str, np.ndarray] = field(default_factory=dict)  # stream -> context rows reached
    whole: set[str] = field(default_factory=set)
    _arrow: dict[tuple[str, str], pa.Array] = field(default_factory=dict)  # new rows' field, as Arrow

    def new_arrow(self, stream: str, name: str) -> pa.Array:
        """A field of the new rows as Arrow (nulls as their filler: callers mask them), converted once."""
        got = self._arrow.get((stream, name))
        if got is None:
            v = self.records.tables[stream].columns[name].values
            got = pa.array(v.tolist() if v.dtype.kind not in "iu" else v)
            self._arrow[(stream, name)] = got
        return got

    def _old(self, stream: str) -> pa.Table | None:
        return self.context.records.get(stream)

    def _new_n(self, stream: str) -> int:
        t = self.records.tables.get(stream)
        return 0 if t is None else t.n

    def _old_n(self, stream: str) -> int:
        t = self._old(stream)
        return 0 if t is None else t.num_rows

    def none(self, stream: str) -> _Rows:
        return _Rows(np.zeros(self._old_n(stream), dtype=bool), np.zeros(self._new_n(stream), dtype=bool))

    def candidates(self, sp: StepPlan, old: bool) -> _Rows:
        """Rows of the step's stream passing its conditions that read no aggregate (context rows too
        when ``old``): a superset of the records the step can bind."""
        plain = [c for c in (conjuncts(sp.local) if sp.local is not None else []) if not _reads_aggregate(c)]
        rows = self.none(sp.stream)
        rows.new[:] = True
        new = self.records.tables.get(sp.stream)
        if new is not None and new.n and plain:
            rows.new &= self._truth(plain, new.columns, new.n)
        table = self._old(sp.stream)
        if old and table is not None and table.num_rows:
            rows.old[:] = True
            if plain:
                names = {n.name for c in plain for n in c.walk() if isinstance(n, Field)}
                spec = self.schema.streams[sp.stream]
                cols = {name: arrow_to_vec(table.column(name), spec.fields[name].type) if name in table.column_names
                        else Vec.nulls(spec.fields[name].type, table.num_rows) for name in names if name in spec.fields}
                rows.old &= self._truth(plain, cols, table.num_rows)
        return rows

    def _truth(self, exprs: list[Expr], columns: dict[str, Vec], n: int) -> np.ndarray:
        env = ColumnsEnv(columns, n)
        ok = np.ones(n, dtype=bool)
        for c in exprs:
            ok &= self.evaluator.truth(c, env)
        return ok

    def values(self, stream: str, name: str, rows: _Rows) -> pa.Array:
        """The distinct non-null values of a field at ``rows``."""
        if is_composite(name):
            raise _Whole(stream)
        parts = []
        table = self._old(stream)
        if table is not None and rows.old.any() and name in table.column_names:
            parts.append(table.column(name).filter(pa.array(rows.old)).combine_chunks())
        new = self.records.tables.get(stream)
        if new is not None and rows.new.any():
            arr = self.new_arrow(stream, name).filter(pa.array(rows.new & ~new.columns[name].null))
            if parts and arr.type != parts[0].type:
                arr = _cast(arr, parts[0].type, stream)
            parts.append(arr)
        if not parts:
            return pa.array([], pa.string())
        return pc.drop_null(pa.concat_arrays(parts)).unique()

    def matching(self, stream: str, names: Iterable[str], values: pa.Array) -> _Rows:
        """Rows of ``stream`` whose value of any of ``names`` is one of ``values``."""
        rows = self.none(stream)
        if len(values) == 0:
            return rows
        table = self._old(stream)
        new = self.records.tables.get(stream)
        for name in names:
            if is_composite(name):
                raise _Whole(stream)
            if table is not None and table.num_rows and name in table.column_names:
                col = table.column(name)
                rows.old |= pc.is_in(col, value_set=_cast(values, col.type, stream)).to_numpy(zero_copy_only=False)
            if new is not None and new.n:
                arr = self.new_arrow(stream, name)
                hit = pc.is_in(arr, value_set=_cast(values, arr.type, stream)).to_numpy(zero_copy_only=False)
                rows.new |= hit & ~new.columns[name].null
        return rows

    def keep(self, stream: str, rows: _Rows) -> None:
        if stream in self.kept:
            self.kept[stream] |= rows.old
        elif len(rows.old):
            self.kept[stream] = rows.old.copy()


def _cast(values: pa.Array, to: pa.DataType, stream: str) -> pa.Array:
    # equality of text and integers is the same in Arrow as in the executors' codes; floats (-0.0, NaN)
    # and a key of another type than the field: keep the stream whole
    ok = (pa.types.is_string(to) or pa.types.is_large_string(to) or pa.types.is_integer(to))
    if not ok:
        raise _Whole(stream)
    try:
        return values.cast(to)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        raise _Whole(stream) from None


def _join_source(rp: RulePlan, j: int) -> tuple[int, str]:
    """(step index, field) that step ``j`` joins: the field it follows, else the step before's key
    (as executors.batch.BatchExecutor._join_source)."""
    sp = rp.steps[j]
    if sp.follows:
        alias, name = sp.follows
        return next(i for i, s in enumerate(rp.steps) if s.alias == alias), name
    return j - 1, rp.steps[j - 1].key


def _specs_at(rp: RulePlan) -> Iterable[tuple[int, AggregateSpec]]:
    """(index of the step whose records an aggregate is evaluated at, spec) of every aggregate the rule
    reads: ``fanin.count(...)`` at a later step is evaluated at fanin's record."""
    index = {sp.alias: i for i, sp in enumerate(rp.steps)}
    last = len(rp.steps) - 1
    for j, sp in enumerate(rp.steps):
        for call, spec in sp.aggregates.items():
            yield (index[call.alias] if call.alias in index else j), spec
    for call, spec in rp.explain_aggregates.items():
        yield (index[call.alias] if call.alias in index else last), spec


def _streams_read(rp: RulePlan) -> set[str]:
    out = {sp.stream for sp in rp.steps}
    out |= {rp.unless.stream} if rp.unless is not None else set()
    out |= {rp.absent.stream} if rp.absent is not None else set()
    for _, spec in _specs_at(rp):
        out |= {s.source[0] for s in spec.inputs()}
    return out


def _rule_reach(r: _Reach, rp: RulePlan) -> None:
    """Add to ``r`` the context rows ``rp`` can read from its possible triggers."""
    steps = rp.steps
    if rp.absent is not None or any(sp.is_run for sp in steps):  # an absence fires at a context row
        raise _Whole(*_streams_read(rp))
    last = len(steps) - 1
    rows = [r.candidates(sp, old=j < last) for j, sp in enumerate(steps)]
    # forward: a step's record joins an earlier candidate's join field
    for j in range(1, len(steps)):
        i, name = _join_source(rp, j)
        sp = steps[j]
        joinable = r.matching(sp.stream, [sp.key], r.values(steps[i].stream, name, rows[i]))
        rows[j] = _Rows(rows[j].old & joinable.old, rows[j].new & joinable.new)
    # backward: an earlier record matters only if a later step's possible record joins it
    for j in range(last, 0, -1):
        i, name = _join_source(rp, j)
        linked = r.matching(steps[i].stream, [name], r.values(steps[j].stream, steps[j].key, rows[j]))
        rows[i] = _Rows(rows[i].old & linked.old, rows[i].new & linked.new)
    for j, sp in enumerate(steps):
        r.keep(sp.stream, rows[j])
    for j, spec in _specs_at(rp):
        if spec.foreign and (spec.bound is not None or spec.inner):
            raise _Whole(spec.source[0])
        sp = steps[j]
        if spec.stream != sp.stream:
            raise _Whole(spec.source[0])
        # per key: the records of the key of each record it is evaluated at (an is_new inside where=
        # and a bound by an earlier step read the same key's records)
        keys = r.values(sp.stream, spec.key, rows[j])
        for inner in spec.inputs():
            r.keep(inner.source[0], r.matching(inner.source[0], inner.source_fields, keys))
    if rp.unless is not None:
        u = rp.unless
        keys = r.values(steps[u.on].stream, steps[u.on].key, rows[u.on])
        r.keep(u.stream, r.matching(u.stream, [u.key], keys))


def reached(context: Context, rules: list[RulePlan], records: RecordSet, evaluator: Evaluator,
            schema: Schema) -> Context:
    """``context`` (already narrowed to the rules' horizon) without the rows no new record of
    ``records`` can reach through the ``rules``; see the module docstring."""
    if not context.records:
        return context
    r = _Reach(context, records, schema, evaluator)
    for rp in rules:
        if not _streams_read(rp) & set(context.records):
            continue
        try:
            _rule_reach(r, rp)
        except _Whole:  # its reach into the other streams may be incomplete too
            r.whole |= _streams_read(rp)
    kept: dict[str, pa.Table] = {}
    for stream, table in context.records.items():
        if stream in r.whole:
            kept[stream] = table
        elif stream in r.kept and r.kept[stream].any():
            kept[stream] = table.filter(pa.array(r.kept[stream]))
    return Context(context.horizon, kept, context.last_alerts, context.high_water, context.next_order)
