"""The stream executor's scalar path: a few records evaluated one by one.

A release batch of a few records (a single ``feed``, an HTTP request) spends most
of its time in the vectorised evaluator's fixed costs per node: numpy arrays of
one element, masks, dtype checks. :class:`ScalarSteps` compiles, once per
executor, every expression the stream executor evaluates per record -- each
aggregate's ``where=`` and value, each step's local ``where``, each ``unless``
condition -- into closures of :mod:`fraudrules.runtime.scalar`, and
:meth:`ScalarSteps.batch` fills a :class:`RowBatch` with what
:class:`~.bindings.StreamBatch` computes over columns: the same flags, the same
aggregate pairs, in the same order (the window states are stepped record by
record in both). ``tests/test_scalar.py`` proves the closures equal to the
vectorised evaluator; ``tests/test_stream.py`` runs both paths against batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...runtime.alerts import LISTED_AGGREGATES
from ...runtime.plan import AggregateSpec
from ...runtime.scalar import ScalarCompiler

if TYPE_CHECKING:  # pragma: no cover
    from .executor import StreamExecutor

_NO_AGGS: dict = {}


class _BySpec:
    """``agg_py[spec][i]``: the pair of aggregate ``spec`` at row ``i``, read from the rows' slot lists
    (only flagged records read it; a spec's hash walks its expressions, a slot is an int)."""

    __slots__ = ("slots", "per_row")

    def __init__(self, slots: dict[AggregateSpec, int], per_row: list[list]):
        self.slots = slots
        self.per_row = per_row

    def __getitem__(self, spec: AggregateSpec) -> _Column:
        return _Column(self.per_row, self.slots[spec])


class _Column:
    """One aggregate's pairs by row, read in place (a flagged record reads one)."""

    __slots__ = ("per_row", "slot")

    def __init__(self, per_row: list[list], slot: int):
        self.per_row = per_row
        self.slot = slot

    def __getitem__(self, i: int) -> tuple[Any, bool]:
        return self.per_row[i][self.slot]


class RowBatch:
    """Flags and aggregates of one stream's records in a release batch (StreamBatch's results)."""

    __slots__ = ("flags", "uflags", "agg_py")

    def __init__(self) -> None:
        self.flags: dict[tuple[int, int], list[bool]] = {}
        self.uflags: dict[int, list[bool]] = {}
        self.agg_py: _BySpec | None = None


class ScalarSteps:
    """The closures of every per-record expression of a Plan, by stream."""

    def __init__(self, ex: StreamExecutor):
        self.slots = slots = {spec: i for i, spec in enumerate(ex._specs)}  # a record's aggregates, by slot
        self.width = len(slots)
        compilers = {
            s: ScalarCompiler(ex.evaluator, ex._index[s], dict(zip(ex._fields[s], ex._kinds[s])), slots.__getitem__)
            for s in ex._fields
        }
        # per stream: (spec, state, key position, where= closure, value closure or None)
        self.aggs: dict[str, list[tuple]] = {}
        for spec in ex._specs:  # the executor's order, which the vectorised path follows too
            c = compilers[spec.stream]
            value = None if spec.value is None else c.value(spec.value)
            self.aggs.setdefault(spec.stream, []).append(
                (slots[spec], ex._aggs[spec], ex._index[spec.stream][spec.key], c.truth(spec.where), value,
                 ex._index[spec.stream]["id"] if spec.func in LISTED_AGGREGATES else None))
        # per stream: (rule index, step, key position, local where)
        self.steps: dict[str, list[tuple]] = {}
        self.unless: dict[str, list[tuple]] = {}
        for rule in ex._rules:
            for j, sp in enumerate(rule.rp.steps):
                c = compilers[sp.stream]
                self.steps.setdefault(sp.stream, []).append(
                    (rule.index, j, ex._index[sp.stream][sp.key], c.truth(sp.local, sp.aggregates)))
            u = rule.rp.unless
            if u is not None:
                self.unless.setdefault(u.stream, []).append(
                    (rule.index, ex._index[u.stream][u.key], compilers[u.stream].truth(u.where)))

    def batch(self, stream: str, rows: list[tuple], ts: list[int], qs: list[int]) -> RowBatch:
        """Step the window states over ``rows`` (in total order, at positions ``qs``) and evaluate
        every condition."""
        out = RowBatch()
        per_row: list[list] = [[None] * self.width for _ in rows]
        for slot, state, kidx, where, value, id_idx in self.aggs.get(stream, ()):
            step = state.step
            for i, row in enumerate(rows):
                key = row[kidx]
                if key is None:  # never read: the key's own step flag is false
                    pair = state.null_result
                else:
                    v = None if value is None else value(row, _NO_AGGS)
                    if id_idx is None:
                        counts, v = state.input_one(where(row, _NO_AGGS), v)
                    else:  # count/distinct keep the record's position and id, for alerts' members
                        counts, v = state.input_tagged(where(row, _NO_AGGS), v, qs[i], row[id_idx])
                    pair = step(key, ts[i], counts, v)
                per_row[i][slot] = pair
        out.agg_py = _BySpec(self.slots, per_row)
        for ri, j, kidx, local in self.steps.get(stream, ()):
            out.flags[(ri, j)] = [row[kidx] is not None and local(row, aggs) for row, aggs in zip(rows, per_row)]
        for ri, kidx, where in self.unless.get(stream, ()):
            out.uflags[ri] = [row[kidx] is not None and where(row, _NO_AGGS) for row in rows]
        return out
