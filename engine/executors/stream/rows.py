"""A release's conditions and window aggregates, per stream, computed only where a rule reads them.

:class:`ReleaseSteps` compiles, once per executor, every expression the stream executor evaluates
per record -- each aggregate's ``where=`` and value, each step's local ``where``, each ``unless``
condition -- and :meth:`ReleaseSteps.batch` gives a :class:`RowBatch` with what each of one stream's
records in a release is to the rules (a step's candidate, an ``unless`` record) and their aggregate pairs:

1. Each step's ``where`` is split into its conjuncts. Those that read only fields (the
   *prefilter*) are evaluated on every record; a record that fails them is no candidate of the
   step, whatever its aggregates.
2. Every record that counts for an aggregate is added to its window state; the aggregate's value
   is computed only at the records that pass the prefilter of a step that reads it or shows it
   (aggregates.py computes lazily). Most records of a release pass no prefilter.
3. A conjunct ``count(...) >= n`` or ``distinct(...) >= n`` (``_floor``) first drops the records whose key holds
   fewer than n entries in that state: no window of the key counts more, and most keys hold a few.
4. The conjuncts that read aggregates are evaluated one after the other, in the rule's order: the lazy values
   a conjunct reads are computed only at the records the conjuncts before it left.

Expressions are evaluated over columns with the vectorised :class:`~engine.runtime.evaluate.Evaluator`
when the stream has more than ``scalar_max`` records in the release (numpy's fixed costs shared),
otherwise record by record with closures of :mod:`fraudrules.runtime.scalar` (a single ``feed``, an
HTTP request). ``tests/test_scalar.py`` proves the closures equal to the vectorised evaluator;
``tests/test_stream.py`` runs both paths against batch.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ...lang.expr import Call, Expr, conjuncts, literal_comparison
from ...runtime.plan import AggregateSpec
from ...runtime.scalar import ScalarCompiler
from .bindings import StreamBatch, py_values

if TYPE_CHECKING:  # pragma: no cover
    from .aggregates import _Agg
    from .executor import StreamExecutor

_NO_AGGS: dict = {}
_UNSET = object()  # _one: an expression not evaluated yet


class _RowAggs:
    """``aggs[slot]`` of one record for the scalar closures: its pair of each aggregate."""

    __slots__ = ("cols", "i")

    def __init__(self, cols: list, i: int):
        self.cols = cols
        self.i = i

    def __getitem__(self, slot: int) -> tuple[Any, bool]:
        return self.cols[slot][self.i]


class _Column:
    """One aggregate's pairs by record of the batch; a record nothing asked for is computed on
    demand (lazy states answer for any record of the release; eager ones cannot)."""

    __slots__ = ("pairs", "agg", "batch")

    def __init__(self, pairs: list, agg: _SpecPlan, batch: _Batch):
        self.pairs = pairs
        self.agg = agg
        self.batch = batch

    def __getitem__(self, i: int) -> tuple[Any, bool]:
        pair = self.pairs[i]
        if pair is None:
            pair = self.pairs[i] = self.agg.late_read(self.batch, i)
        return pair


class _BySpec:
    """``agg_py[spec][i]``: the pair of aggregate ``spec`` at record ``i`` of the batch."""

    __slots__ = ("slots", "cols", "aggs", "batch", "made")

    def __init__(self, slots: dict[AggregateSpec, int], cols: list, aggs: list, batch: _Batch):
        self.slots = slots
        self.cols = cols
        self.aggs = aggs
        self.batch = batch
        self.made: dict[AggregateSpec, _Column] = {}  # each candidate of a batch asks again

    def __getitem__(self, spec: AggregateSpec) -> _Column:
        got = self.made.get(spec)
        if got is not None:
            return got
        slot = self.slots[spec]
        pairs = self.cols[slot]
        if pairs is None:  # an aggregate of another stream's step: never read here
            pairs = self.cols[slot] = [None] * self.batch.n
        got = self.made[spec] = _Column(pairs, self.aggs[slot], self.batch)
        return got


class RowBatch:
    """What one stream's records in a release batch are to the rules, and their aggregates. ``events[i]``:
    what record ``i`` is to the rules, in the order the executor takes them (its routes, then each rule's
    ``unless`` before its steps in ``steps_on`` order): ``(rule, -1)`` an unless record,
    ``(rule, j)`` a candidate of step j; None when nothing. ``flagged[(rule index, j)]``: the records that
    are candidates of step j, ascending (None for one record, :meth:`ReleaseSteps._one`)."""

    __slots__ = ("agg_py", "events", "flagged")

    def __init__(self) -> None:
        self.agg_py: _BySpec | None = None
        self.events: list[list | None] = []
        self.flagged: dict[tuple[int, int], list[int]] | None = None


class _Batch:
    """One stream's records of a release and the expressions evaluated on them (each once)."""

    __slots__ = ("rows", "ts", "qs", "n", "sb", "memo", "lists", "plan", "ex", "passing")

    def __init__(self, ex: StreamExecutor, plan: _StreamPlan, rows: list[tuple], ts: list[int], qs: list[int],
                 columns: bool):
        self.ex = ex
        self.plan = plan
        self.rows = rows
        self.ts = ts
        self.qs = qs
        self.n = len(rows)
        self.sb = StreamBatch(ex, plan.stream, rows, ts) if columns else None
        self.memo: list[Any] = [None] * len(plan.exprs)
        self.lists: dict[int, list[bool]] = {}
        self.passing: dict[int, list[int]] = {}

    def truth(self, e: int) -> Any:
        """Expression ``e`` (a condition) on every record: a bool array over columns, else a list."""
        got = self.memo[e]
        if got is None:
            expr, closure = self.plan.exprs[e]
            if self.sb is not None:
                got = self.ex.evaluator.truth(expr, self.sb.own())
            else:
                got = [closure(r, _NO_AGGS) for r in self.rows]
            self.memo[e] = got
        return got

    def values(self, e: int) -> list:
        """Expression ``e`` (a value) on every record, as Python values (None for null)."""
        got = self.memo[e]
        if got is None:
            expr, closure = self.plan.exprs[e]
            if self.sb is not None:
                got = py_values(self.ex.evaluator.compute(expr, self.sb.own()))
            else:
                got = [closure(r, _NO_AGGS) for r in self.rows]
            self.memo[e] = got
        return got

    def mask(self, e: int | None) -> list[bool] | None:
        """A condition as a list of bools (None: no condition, every record)."""
        if e is None:
            return None
        got = self.lists.get(e)
        if got is None:
            got = self.truth(e)
            got = self.lists[e] = got.tolist() if isinstance(got, np.ndarray) else got
        return got

    def indexes(self, e: int | None) -> Sequence[int]:
        """The records a condition holds at, ascending (every record when None); one list per condition and
        batch, which the window states with that ``where=`` share (the caller must not change it)."""
        if e is None:
            return range(self.n)
        got = self.passing.get(e)
        if got is None:
            got = self.passing[e] = [i for i, m in enumerate(self.mask(e)) if m]
        return got


class _SpecPlan:
    """One aggregate of a stream: its state, key position and the expressions of its input."""

    __slots__ = ("slot", "spec", "state", "kidx", "where", "value", "id_idx", "where_fn", "inner_slots", "reads_only",
                 "kidxs")

    def __init__(self, slot: int, spec: AggregateSpec, state: _Agg, kidx: int, where: int | None,
                 value: int | None, id_idx: int, where_fn: Callable | None = None,
                 inner_slots: tuple[int, ...] = (), reads_only: bool = False, kidxs: tuple[int, ...] = ()):
        self.slot = slot
        # key=[f1, f2]: the records fed go in under each distinct non-null value of these fields (once per key)
        self.kidxs = kidxs
        self.spec = spec
        self.state = state
        self.kidx = kidx  # the key of the records fed (``agg(..., stream=, key=)``: the other stream's field)
        self.where = where
        self.value = value
        self.id_idx = id_idx
        # where= reads is_new (``where=is_new(payee, 180d)``): a closure over the record and its is_new pairs,
        # which are fed first, at every record of the stream (inner_slots)
        self.where_fn = where_fn
        self.inner_slots = inner_slots
        # agg(..., stream=, key=) at the reading stream: the other stream's records feed it (ReleaseSteps.sources)
        self.reads_only = reads_only

    def feed(self, b: _Batch, need: list[int], cols: list, lo_ts: int | None = None) -> list:
        """Add the batch's records that count to the state; the pairs at the records ``need``.
        ``lo_ts``: the first ts of the release, when the records read are not all of this batch."""
        state, kidx, id_idx = self.state, self.kidx, self.id_idx
        rows, ts, qs = b.rows, b.ts, b.qs
        mask: list[bool] | None = None
        if self.where_fn is not None:
            fn = self.where_fn
            mask = [bool(fn(row, _RowAggs(cols, i))) for i, row in enumerate(rows)]
        elif not state.lazy:
            mask = b.mask(self.where)
        vals = None if self.value is None else b.values(self.value)
        entry = state.entry
        pairs: list = [None] * b.n
        null = state.null_result
        if state.lazy:
            # every record of this release reads (ts[0] - w, ...]
            state.trim_lo = (ts[0] if lo_ts is None else lo_ts) - state.keep
            add = state.add
            # reads_only: another stream's records feed it; a follower (share_entries): its leader adds them
            if self.reads_only or state.leader is not None:
                idx: Sequence[int] = ()
            elif self.where_fn is not None:
                idx = [i for i, m in enumerate(mask) if m]  # type: ignore[arg-type]
            else:
                idx = b.indexes(self.where)
            if self.kidxs:
                self._feed_any(b, idx, vals)
            elif state.takes == "id":  # count: the record's id
                for i in idx:
                    row = rows[i]
                    key = row[kidx]
                    if key is not None:
                        add(key, ts[i], qs[i], row[id_idx])
            elif state.takes == "value":  # distinct: the value as it is
                for i in idx:
                    v = vals[i]
                    if v is not None:
                        key = rows[i][kidx]
                        if key is not None:
                            add(key, ts[i], qs[i], v)
            else:
                for i in idx:
                    key = rows[i][kidx]
                    if key is None:
                        continue
                    counts, x = entry(True, None if vals is None else vals[i], None)
                    if counts:
                        add(key, ts[i], qs[i], x)
            self.read_at(b, need, pairs)
            return pairs
        # eager (is_new, since_prev): the state just before each record, in total order
        needed = set(need)
        step = state.step
        for i in range(b.n):
            passes = True if mask is None else mask[i]
            if not passes and i not in needed:
                continue
            row = rows[i]
            key = row[kidx]
            if key is None:
                pair = null
            else:
                counts, x = entry(passes, None if vals is None else vals[i], row[id_idx])
                pair = step(key, ts[i], counts, x)
            if i in needed:
                pairs[i] = pair
        return pairs

    def pair_at(self, row: tuple, ts: int, q: int) -> tuple[Any, bool]:
        """A lazy state's pair at one record (:meth:`read_at` for a batch, its loop kept inline there)."""
        key = row[self.kidx]
        return self.state.null_result if key is None else self.state.at(key, ts, q)

    def read_at(self, b: _Batch, need: list[int], pairs: list) -> None:
        """A lazy state's pairs at the records ``need`` (ascending) of a batch fed to it, into ``pairs``."""
        state, kidx, rows, ts, qs = self.state, self.kidx, b.rows, b.ts, b.qs
        null, at = state.null_result, state.at
        for i in need:
            key = rows[i][kidx]
            pairs[i] = null if key is None else at(key, ts[i], qs[i])

    def _feed_any(self, b: _Batch, idx, vals: list | None) -> None:
        """``key=[f1, f2]``: each record under every distinct non-null value of the fields, once per value."""
        state, id_idx, rows = self.state, self.id_idx, b.rows
        for i in idx:
            row = rows[i]
            keys = dict.fromkeys(row[k] for k in self.kidxs if row[k] is not None)
            if not keys:
                continue
            if state.takes == "id":
                payload = row[id_idx]
            elif state.takes == "value":
                payload = vals[i]
                if payload is None:
                    continue
            else:
                counts, payload = state.entry(True, None if vals is None else vals[i], None)
                if not counts:
                    continue
            for key in keys:
                state.add(key, b.ts[i], b.qs[i], payload)

    def late_read(self, b: _Batch, i: int) -> tuple[Any, bool]:
        """The pair at record ``i`` when nothing asked for it before (lazy states only)."""
        if not self.state.lazy:
            raise RuntimeError(f"{self.spec.func} at a record the release did not compute it for")
        key = b.rows[i][self.kidx]
        return self.state.null_result if key is None else self.state.at(key, b.ts[i], b.qs[i])


class _StepPlan:
    __slots__ = ("rule", "step", "kidx", "pre", "slots", "stages", "need_slots", "floors")

    def __init__(self, rule: int, step: int, kidx: int, pre: list[int], slots: list[int],
                 stages: tuple[tuple[Callable, tuple[int, ...]], ...],
                 floors: tuple[tuple[int, FloorTest, float], ...] = ()):
        self.rule = rule
        self.step = step
        self.kidx = kidx
        self.pre = pre  # conditions on the record's fields alone (expression numbers)
        self.slots = slots  # the aggregates a candidate of the step keeps
        # the conjuncts that read aggregates, as (closure, the aggregates it reads), in the rule's order: they are
        # tested one after the other, and the lazy values of one are computed only where the ones before it held
        self.stages = stages
        self.need_slots: tuple[int, ...] = ()  # stepped at a candidate: the eager ones (ReleaseSteps)
        # (slot, test, n) per conjunct ``count(...) >= n`` or ``distinct(...) >= n`` (and alike, _floor): a record
        # whose key holds entries ``e`` with ``not test(e, n)`` cannot pass the check, whatever its window
        self.floors = floors


class _StreamPlan:
    def __init__(self, stream: str):
        self.stream = stream
        self.exprs: list[tuple[Expr, Callable]] = []
        self._index: dict[tuple[str, Expr], int] = {}
        self.aggs: list[_SpecPlan] = []
        self.sources: list[_SpecPlan] = []  # agg(..., stream=, key=) fed by this stream's records, read elsewhere
        self.steps: list[_StepPlan] = []
        self.unless: list[tuple[int, int, int | None]] = []
        self.inner_slots: tuple[int, ...] = ()  # is_new read inside another aggregate's where=: at every record

    def expr(self, kind: str, expr: Expr | None, compiler: ScalarCompiler) -> int | None:
        """The number of an expression evaluated on this stream's records (each once per batch)."""
        if expr is None:
            return None
        k = (kind, expr)
        if k not in self._index:
            closure = compiler.truth(expr) if kind == "truth" else compiler.value(expr)
            self._index[k] = len(self.exprs)
            self.exprs.append((expr, closure))
        return self._index[k]


class ReleaseSteps:
    """The compiled per-record expressions of a Plan, by stream (see the module docstring)."""

    def __init__(self, ex: StreamExecutor):
        self.ex = ex
        self.slots = slots = {spec: i for i, spec in enumerate(ex._specs)}  # a record's aggregates, by slot
        self.width = len(slots)
        compilers = {
            s: ScalarCompiler(ex.evaluator, ex._index[s], dict(zip(ex._fields[s], ex._kinds[s])), slots.__getitem__)
            for s in ex._fields
        }
        self.plans: dict[str, _StreamPlan] = {}
        self._orders: dict[str, list[tuple[Any, int]]] = {}
        self._flag_orders: dict[str, list] = {}

        def plan_of(stream: str) -> _StreamPlan:
            if stream not in self.plans:
                self.plans[stream] = _StreamPlan(stream)
            return self.plans[stream]

        self._by_slot: list[_SpecPlan] = []
        # the executor's order, except that an is_new read inside another's where= is fed before it, and a
        # state that reads another's entries (aggregates.share_entries) comes after the states that add them
        for spec in sorted(ex._specs, key=lambda a: (bool(a.inner), ex._aggs[a].leader is not None)):
            if spec.foreign:  # fed by the other stream's records (sources), read at the step's
                src, state = spec.source[0], ex._aggs[spec]
                p, c = plan_of(src), compilers[src]
                kidxs = tuple(ex._index[src][f] for f in spec.source_fields)
                p.sources.append(_SpecPlan(slots[spec], spec, state, kidxs[0],
                                           p.expr("truth", spec.where, c), p.expr("value", spec.value, c),
                                           ex._index[src]["id"], kidxs=kidxs if len(kidxs) > 1 else ()))
                agg = _SpecPlan(slots[spec], spec, state, ex._index[spec.stream][spec.key], None, None,
                                ex._index[spec.stream]["id"], reads_only=True)
            else:
                p, c = plan_of(spec.stream), compilers[spec.stream]
                nested = bool(spec.inner)
                agg = _SpecPlan(slots[spec], spec, ex._aggs[spec], ex._index[spec.stream][spec.key],
                                None if nested else p.expr("truth", spec.where, c), p.expr("value", spec.value, c),
                                ex._index[spec.stream]["id"],
                                c.truth(spec.where, dict(spec.inner)) if nested else None,
                                tuple(slots[s] for _, s in spec.inner))
            plan_of(spec.stream).aggs.append(agg)
        self._by_slot = sorted((a for p in self.plans.values() for a in p.aggs), key=lambda a: a.slot)
        for p in self.plans.values():
            p.inner_slots = tuple(slot for agg in p.aggs for slot in agg.inner_slots)
        for rule in ex._rules:
            for j, sp in enumerate(rule.rp.steps):
                p, c = plan_of(sp.stream), compilers[sp.stream]
                pre, stages, floors = [], [], []
                for conj in conjuncts(sp.local) if sp.local is not None else []:
                    calls = [n for n in conj.walk() if isinstance(n, Call) and n in sp.aggregates]
                    if calls:
                        stages.append((c.truth(conj, sp.aggregates),
                                       tuple(dict.fromkeys(slots[sp.aggregates[n]] for n in calls))))
                        floor = _floor(conj, sp.aggregates)
                        if floor is not None:
                            floors.append((slots[sp.aggregates[floor[0]]], floor[1], floor[2]))
                    else:
                        pre.append(p.expr("truth", conj, c))
                p.steps.append(_StepPlan(rule.index, j, ex._index[sp.stream][sp.key], pre,
                                         [slots[s] for s in rule.step_specs[j]], tuple(stages), tuple(floors)))
            u = rule.rp.unless
            if u is not None:
                p, c = plan_of(u.stream), compilers[u.stream]
                p.unless.append((rule.index, ex._index[u.stream][u.key], p.expr("truth", u.where, c)))
            a = rule.rp.absent
            if a is not None:  # flagged like an unless record, under -1 - index (event (rule, -2))
                p, c = plan_of(a.stream), compilers[a.stream]
                p.unless.append((-1 - rule.index, ex._index[a.stream][a.key], p.expr("truth", a.where, c)))
        for p in self.plans.values():
            for st in p.steps:
                st.need_slots = tuple(s for s in st.slots if not self._by_slot[s].state.lazy)

    def has_sources(self, stream: str) -> bool:
        """Whether ``stream``'s records feed an ``agg(..., stream=, key=)`` read by another stream."""
        plan = self.plans.get(stream)
        return plan is not None and bool(plan.sources)

    def feed_sources(self, stream: str, rows: list[tuple], ts: list[int], qs: list[int], lo_ts: int) -> None:
        """Add one stream's records of a release to the ``agg(..., stream=, key=)`` states they feed, before
        any record of the release reads them (a reader may come earlier in the release's stream order)."""
        plan = self.plans.get(stream)
        if plan is None or not plan.sources:
            return
        b = _Batch(self.ex, plan, rows, ts, qs, len(rows) > self.ex.scalar_max)
        for agg in plan.sources:
            agg.feed(b, [], [], lo_ts)  # no where_fn: an is_new inside where= is refused here

    def batch(self, stream: str, rows: list[tuple], ts: list[int], qs: list[int]) -> RowBatch:
        """Events and aggregates of ``rows`` (one stream's records of a release, in total order, at
        positions ``qs``); steps the window states over them."""
        out = RowBatch()
        plan = self.plans.get(stream)
        n = len(rows)
        cols: list = [None] * self.width
        out.events = [None] * n
        if plan is None:
            out.agg_py = _BySpec(self.slots, cols, self._by_slot, _Batch(self.ex, _StreamPlan(stream), rows, ts,
                                                                             qs, False))
            return out
        if n == 1 and self.ex.scalar_max > 0:
            return self._one(plan, stream, rows[0], ts[0], qs[0])
        b = _Batch(self.ex, plan, rows, ts, qs, n > self.ex.scalar_max)
        # 1. the records that pass each step's conditions on fields alone
        pres: list[list[int]] = []
        need: dict[int, list[list[int]]] = {}
        for st in plan.steps:
            kidx = st.kidx
            if b.sb is not None:
                ok = ~b.sb.col(plan_key_name(self.ex, stream, kidx)).null
                pre = None
                for e in st.pre:
                    if pre is None and b.memo[e] is None and 4 * int(ok.sum()) < n:
                        pre = np.flatnonzero(ok).tolist()
                    if pre is not None:  # few records left: the rest record by record (closures)
                        fn = plan.exprs[e][1]
                        pre = [i for i in pre if fn(rows[i], _NO_AGGS)]
                    else:  # over columns, once for every step that has it
                        ok = ok & b.truth(e)
                if pre is None:
                    pre = np.flatnonzero(ok).tolist()
            elif not st.pre:
                pre = [i for i, row in enumerate(rows) if row[kidx] is not None]
            else:  # the first conjunct once per batch for every step and aggregate that has it, the rest
                # on the records left
                first = b.mask(st.pre[0])
                pre = [i for i, row in enumerate(rows) if first[i] and row[kidx] is not None]
                for e in st.pre[1:]:
                    if not pre:
                        break
                    fn = plan.exprs[e][1]
                    pre = [i for i in pre if fn(rows[i], _NO_AGGS)]
            pres.append(pre)
            if pre:  # eager aggregates must be stepped in order, so at every candidate
                for slot in st.slots:
                    if not self._by_slot[slot].state.lazy:
                        need.setdefault(slot, []).append(pre)
        # 2. window states: every record that counts goes in; eager values where a step reads them, and an
        # is_new inside another's where= at every record
        for agg in plan.aggs:
            for slot in agg.inner_slots:
                need.setdefault(slot, []).append(list(range(n)))
        for agg in plan.aggs:
            lists = need.get(agg.slot, [])
            cols[agg.slot] = agg.feed(b, _union(lists), cols)
        # 3. a record whose key holds fewer entries than a count or distinct of the step's check asks for cannot
        # pass it: out before any of its values is read (most keys hold a few entries, checks ask for more)
        by_slot = self._by_slot
        for k, st in enumerate(plan.steps):
            if st.floors and pres[k]:
                for slot, test, least in st.floors:
                    agg = by_slot[slot]
                    held, kidx = agg.state.keys.get, agg.kidx  # a key's entries: no window of it counts more
                    pres[k] = [i for i in pres[k] if test(len(held(rows[i][kidx], ())), least)]
        # 4. the conjuncts that read aggregates, the j-th of every step together: the lazy values they read at the
        # records the conjuncts before them left (a record that fails ``distinct(...) >= 3`` is not read the max
        # of the next conjunct), each state at ascending records; the rest when a candidate asks (_Column)
        for j in range(max((len(st.stages) for st in plan.steps), default=0)):
            lazy: dict[int, list[list[int]]] = {}
            for st, pre in zip(plan.steps, pres):
                if pre and j < len(st.stages):
                    for slot in st.stages[j][1]:
                        if by_slot[slot].state.lazy:
                            lazy.setdefault(slot, []).append(pre)
            for slot, lists in lazy.items():
                need = _union(lists)
                pairs = cols[slot]
                if j:  # an earlier conjunct may have read this aggregate at some of them
                    need = [i for i in need if pairs[i] is None]
                by_slot[slot].read_at(b, need, pairs)
            for k, st in enumerate(plan.steps):
                if pres[k] and j < len(st.stages):
                    test = st.stages[j][0]
                    pres[k] = [i for i in pres[k] if test(rows[i], _RowAggs(cols, i))]
        flagged: dict[tuple[int, int], list[int]] = {(st.rule, st.step): pre for st, pre in zip(plan.steps, pres)}
        unless: dict[int, list[int]] = {}
        for ri, kidx, e in plan.unless:
            if b.sb is not None:  # over columns: a key and the condition
                ok = ~b.sb.col(plan_key_name(self.ex, stream, kidx)).null
                unless[ri] = np.flatnonzero(ok if e is None else ok & b.truth(e)).tolist()
                continue
            mask = b.mask(e)
            unless[ri] = [i for i, row in enumerate(rows) if row[kidx] is not None and (mask is None or mask[i])]
        # 6. per record, what it is to each rule, in the executor's order
        events = out.events
        for event, idx in [(ev, unless.get(_flag_of(ev), ()) if ev[1] < 0 else flagged[(ev[0].index, ev[1])])
                           for ev in self._order(stream)]:
            for i in idx:
                got = events[i]
                if got is None:
                    events[i] = [event]
                else:
                    got.append(event)
        out.agg_py = _BySpec(self.slots, cols, self._by_slot, b)
        out.flagged = flagged
        return out

    def _order(self, stream: str) -> list[tuple[Any, int]]:
        """(rule, -1) and (rule, step) in the order the executor takes a record of ``stream``: its
        routes, each rule's unless before its steps in ``steps_on`` order."""
        got = self._orders.get(stream)
        if got is None:
            got = self._orders[stream] = [
                ev for rule in self.ex._routes.get(stream, ())
                for ev in ([(rule, -1)] if rule.unless is not None and rule.unless.stream == stream else [])
                + ([(rule, -2)] if rule.absent is not None and rule.absent.stream == stream else [])
                + [(rule, j) for j in rule.steps_on.get(stream, ())]]
        return got

    def _one(self, plan: _StreamPlan, stream: str, row: tuple, t: int, q: int) -> RowBatch:
        """:meth:`batch` for one record (a single ``feed``, an HTTP request): the same steps
        without the per-batch lists. Each expression is evaluated at most once, in the order
        :meth:`batch` first needs it: a conjunct shared by several steps and aggregates (18 distinct
        among the 50 of the call stream's steps) is not evaluated again per step."""
        out = RowBatch()
        cols: list = [None] * self.width
        exprs = plan.exprs
        memo: list[Any] = [_UNSET] * len(exprs)
        passed: dict[tuple[int, int] | int, bool] = {}  # (rule, step) -> candidate; unless flag -> record
        need = set(plan.inner_slots)
        by_slot = self._by_slot
        steps_ok = []
        for st in plan.steps:
            ok = row[st.kidx] is not None
            if ok:
                for e in st.pre:
                    v = memo[e]
                    if v is _UNSET:
                        v = memo[e] = exprs[e][1](row, _NO_AGGS)
                    if not v:
                        ok = False
                        break
            steps_ok.append(ok)
            if ok and st.need_slots:
                need.update(st.need_slots)
        for agg in plan.aggs:
            state = agg.state
            key = row[agg.kidx]
            if agg.where_fn is not None:
                passes = bool(agg.where_fn(row, _RowAggs(cols, 0)))
            elif agg.where is None:
                passes = True
            else:
                passes = memo[agg.where]
                if passes is _UNSET:
                    passes = memo[agg.where] = exprs[agg.where][1](row, _NO_AGGS)
            slot = agg.slot
            value = None
            if state.lazy:
                if key is not None and passes and not agg.reads_only and state.leader is None:
                    if agg.value is not None:
                        value = memo[agg.value]
                        if value is _UNSET:
                            value = memo[agg.value] = exprs[agg.value][1](row, _NO_AGGS)
                    counts, x = state.entry(True, value, row[agg.id_idx])
                    if counts:
                        state.trim_lo = t - state.keep
                        state.add(key, t, q, x)
                if slot in need:
                    cols[slot] = [agg.pair_at(row, t, q)]
            elif passes or slot in need:
                if key is None:
                    pair = state.null_result
                else:
                    if agg.value is not None:
                        value = memo[agg.value]
                        if value is _UNSET:
                            value = memo[agg.value] = exprs[agg.value][1](row, _NO_AGGS)
                    counts, x = state.entry(passes, value, row[agg.id_idx])
                    pair = state.step(key, t, counts, x)
                if slot in need:
                    cols[slot] = [pair]
        for st, ok in zip(plan.steps, steps_ok):
            if ok:  # a conjunct's lazy values are read when the conjuncts before it held, as batch() does
                aggs = _RowAggs(cols, 0)
                for test, reads in st.stages:
                    for slot in reads:
                        if cols[slot] is None:
                            cols[slot] = [by_slot[slot].pair_at(row, t, q)]
                    if not test(row, aggs):
                        ok = False
                        break
            passed[(st.rule, st.step)] = ok
        for ri, kidx, e in plan.unless:
            if row[kidx] is None:
                passed[ri] = False
            elif e is None:
                passed[ri] = True
            else:
                v = memo[e]
                if v is _UNSET:
                    v = memo[e] = exprs[e][1](row, _NO_AGGS)
                passed[ri] = bool(v)
        events = [ev for ev, flag in self._flagged_order(stream) if passed[flag]]
        out.events = [events or None]
        out.agg_py = _BySpec(self.slots, cols, by_slot, _Batch(self.ex, plan, [row], [t], [q], False))
        return out

    def _flagged_order(self, stream: str) -> list[tuple[tuple[Any, int], tuple[int, int] | int]]:
        """:meth:`_order` with where each event's flag is in :meth:`_one`'s ``passed``."""
        got = self._flag_orders.get(stream)
        if got is None:
            got = self._flag_orders[stream] = [(ev, _flag_of(ev) if ev[1] < 0 else (ev[0].index, ev[1]))
                                               for ev in self._order(stream)]
        return got


def _union(lists: list[list[int]]) -> list[int]:
    """The records of ascending lists, ascending, each once."""
    if not lists:
        return []
    return lists[0] if len(lists) == 1 else sorted(set().union(*lists))


# a conjunct ``agg op n`` needs ``held op' n`` of the entries its key holds, as agg <= held (count, distinct)
FloorTest = Callable[[float, float], bool]
_FLOOR_TESTS: dict[str, FloorTest] = {">=": operator.ge, ">": operator.gt, "==": operator.ge}


def _floor(conj: Expr, aggregates: dict[Call, AggregateSpec]) -> tuple[Call, FloorTest, float] | None:
    """``count(...) >= n``, ``> n`` or ``== n`` (or ``n <= count(...)``...) over a plain window of the step's own
    record: the aggregate, and the test the entries its key holds must pass for the conjunct to hold. None for any
    other conjunct (a sum can exceed its count; an aliased or bounded window is not this record's)."""
    got = literal_comparison(conj, ("number",))
    if got is None:
        return None
    call, lit, op = got
    if (op in _FLOOR_TESTS and isinstance(call, Call) and call.alias is None and call in aggregates
            and not isinstance(lit.value, bool)):
        spec = aggregates[call]
        if spec.func in ("count", "distinct") and spec.bound is None:
            return call, _FLOOR_TESTS[op], float(lit.value)  # type: ignore[arg-type]
    return None


def _flag_of(event: tuple[Any, int]) -> int:
    """Where an unless (-1) or absent (-2) event's records are kept: the rule's index, or -1 - index."""
    rule, j = event
    return rule.index if j == -1 else -1 - rule.index


def plan_key_name(ex: StreamExecutor, stream: str, kidx: int) -> str:
    return ex._names[stream][kidx]
