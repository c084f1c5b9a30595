"""Column views the shared Evaluator reads while the stream executor works: a micro-batch
of one stream's records, and the chains that durable-rules hands back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ...columns.types import PhysicalKind
from ...columns.vec import DTYPES, FILLERS, Vec
from ...lang.aggregates import AGGREGATES
from ...lang.expr import Expr
from ...runtime.alerts import to_python
from ...runtime.bindings import Bindings, StepEnv
from ...runtime.plan import AggregateSpec

if TYPE_CHECKING:  # pragma: no cover
    from .executor import Candidate, RuleRuntime, StreamExecutor


def vec_of(values: list, kind: PhysicalKind) -> Vec:
    """A Vec of one physical kind from Python values (None = null), with the usual fillers."""
    n = len(values)
    null = np.fromiter((v is None for v in values), dtype=bool, count=n)
    if null.any():
        fill = FILLERS[kind]
        values = [fill if v is None else v for v in values]
    if kind == PhysicalKind.OBJECT:
        arr = np.empty(n, dtype=object)
        arr[:] = values
    else:
        arr = np.array(values, dtype=DTYPES[kind]) if n else np.zeros(0, dtype=DTYPES[kind])
    return Vec(arr, null)


def aggregate_vec(pairs: list[tuple[Any, bool]], spec: AggregateSpec) -> Vec:
    """A Vec from the (value, null) pairs that stream aggregates give (nulls hold fillers already)."""
    dtype = DTYPES[AGGREGATES[spec.func].kind]
    return Vec(np.array([p[0] for p in pairs], dtype=dtype), np.array([p[1] for p in pairs], dtype=bool))


def py_values(vec: Vec) -> list:
    vals = vec.values.tolist()
    if vec.null.any():
        return [None if nu else v for v, nu in zip(vals, vec.null.tolist())]
    return vals


class StreamBatch(Bindings):
    """The rows of one stream in a release batch, as lazily built columns (under any alias)."""

    def __init__(self, ex: StreamExecutor, stream: str, rows: list[tuple], ts: list[int]):
        super().__init__(len(rows))
        self.ex = ex
        self.stream = stream
        self.rows = rows
        self.ts = ts
        self.qs: list[int] = []  # total-order position of each row (set by the executor)
        self.agg_vec: dict[AggregateSpec, Vec] = {}
        self.agg_py: dict[AggregateSpec, list[tuple[Any, bool]]] = {}
        self.flags: dict[tuple[int, int], list[bool]] = {}
        self.uflags: dict[int, list[bool]] = {}
        self._memo: dict[tuple[str, Expr | None], Any] = {}
        self._calls: dict = {}

    def own(self) -> StepEnv:
        """The Env of the stream's own fields. The Evaluator keeps a function call's column in an Env's
        ``_calls`` (``matches(callee, ...)``, ``number_type(...)``); each Env made here shares the batch's,
        so the conditions that share a call compute it once per batch, not once per condition. The batch
        keeps that dict, not the Env: an Env refers to its batch, and the pair would be a reference cycle,
        garbage only a collection frees, with the release's rows and columns (runtime/heap.py)."""
        env = self.env(self.stream, {})
        env._calls = self._calls  # type: ignore[attr-defined]
        return env

    def truth(self, expr: Expr | None) -> np.ndarray:
        """A field-only condition (an aggregate's where=), once per batch however many specs share it."""
        return self._once("truth", expr)

    def value(self, expr: Expr) -> Vec:
        return self._once("compute", expr)

    def _once(self, method: str, expr: Expr | None) -> Any:
        key = (method, expr)
        if key not in self._memo:
            self._memo[key] = getattr(self.ex.evaluator, method)(expr, self.own())
        return self._memo[key]

    def col(self, name: str) -> Vec:
        return self.column(self.stream, name)

    def _column(self, alias: str, name: str) -> Vec:
        i = self.ex._index[self.stream][name]
        return vec_of([r[i] for r in self.rows], self.ex._kinds[self.stream][i])

    def _aggregate(self, alias: str, spec: AggregateSpec) -> Vec:
        return self.agg_vec[spec]


class Gather(Bindings):
    """Chains: each alias reads its candidates' stored values."""

    def __init__(self, ex: StreamExecutor, rule: RuleRuntime, rows: dict[str, list[Candidate]]):
        super().__init__(len(next(iter(rows.values()))))
        self.ex = ex
        self.rule = rule
        self.rows = rows

    def _column(self, alias: str, name: str) -> Vec:
        stream = self.rule.stream_of[alias]
        i = self.ex._index[stream][name]
        return vec_of([c.values[i] for c in self.rows[alias]], self.ex._kinds[stream][i])

    def _aggregate(self, alias: str, spec: AggregateSpec) -> Vec:
        if spec.bound is not None:  # starts at an earlier step of each chain: read from the state, per chain
            return aggregate_vec(self.ex.bounded(spec, self.rows[alias], self.rows[spec.bound[0]]), spec)
        return aggregate_vec([c.aggs[spec] for c in self.rows[alias]], spec)

    def run_records(self, alias: str) -> list[list[dict[str, Any]]]:
        # each candidate keeps its run's (q, ts, id, value) entries (runtime/runs.py); JSON as batch's to_python
        sp = next(s for s in self.rule.rp.steps if s.alias == alias)
        stream = sp.stream
        runs = [c.run for c in self.rows[alias]]
        flat = [e for run in runs for e in run]
        kinds = self.ex._kinds[stream]
        idx = self.ex._index[stream]
        cols = {"id": to_python(vec_of([e[2] for e in flat], kinds[idx["id"]])),
                "ts": to_python(vec_of([e[1] for e in flat], PhysicalKind.INT))}
        if sp.distinct:
            cols[sp.distinct] = to_python(vec_of([e[3] for e in flat], kinds[idx[sp.distinct]]))
        out, at = [], 0
        for run in runs:
            out.append([{c: vals[at + m] for c, vals in cols.items()} for m in range(len(run))])
            at += len(run)
        return out

    def members(self, alias: str, spec: AggregateSpec, limit: int) -> list[tuple[int, list[Any]]]:
        if spec.bound is not None:  # the chains are complete and the release's entries still held: read them
            return self.ex.bounded(spec, self.rows[alias], self.rows[spec.bound[0]], limit)
        # kept with each candidate when it was made (executor._members), MEMBERS_SHOWN long
        return [(t, first[:limit]) for t, first in (c.members[spec] for c in self.rows[alias])]
