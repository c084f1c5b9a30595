"""Column views the shared Evaluator reads while the stream executor works: a micro-batch
of one stream's records, and the chains that durable-rules hands back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ...columns.vec import Vec
from ...lang.expr import Call, Expr
from ...runtime.plan import AggregateSpec
from .aggregates import aggregate_vec

if TYPE_CHECKING:  # pragma: no cover
    from .executor import Candidate, RuleRuntime, StreamExecutor

_FILL = {"float": 0.0, "int": 0, "bool": False, "object": ""}
_DTYPE = {"float": np.float64, "int": np.int64, "bool": np.bool_}

def vec_of(values: list, kind: str) -> Vec:
    """A Vec of one physical kind from Python values (None = null), with records.py's fillers."""
    n = len(values)
    null = np.fromiter((v is None for v in values), dtype=bool, count=n)
    if null.any():
        fill = _FILL[kind]
        values = [fill if v is None else v for v in values]
    if kind == "object":
        arr = np.empty(n, dtype=object)
        arr[:] = values
    else:
        arr = np.array(values, dtype=_DTYPE[kind]) if n else np.zeros(0, dtype=_DTYPE[kind])
    return Vec(arr, null)



def py_values(vec: Vec) -> list:
    vals = vec.values.tolist()
    if vec.null.any():
        return [None if nu else v for v, nu in zip(vals, vec.null.tolist())]
    return vals



class StreamBatch:
    """The rows of one stream in a release batch, as lazily built columns."""

    def __init__(self, ex: StreamExecutor, stream: str, rows: list[tuple], ts: list[int]):
        self.ex = ex
        self.stream = stream
        self.rows = rows
        self.ts = ts
        self.n = len(rows)
        self._cols: dict[str, Vec] = {}
        self.agg_vec: dict[AggregateSpec, Vec] = {}
        self.agg_py: dict[AggregateSpec, list[tuple[Any, bool]]] = {}
        self.flags: dict[tuple[int, int], list[bool]] = {}
        self.uflags: dict[int, list[bool]] = {}
        self._memo: dict[tuple[str, Expr | None], Any] = {}

    def truth(self, expr: Expr | None) -> np.ndarray:
        """A field-only condition (an aggregate's where=), once per batch however many specs share it."""
        key = ("t", expr)
        out = self._memo.get(key)
        if out is None:
            out = self._memo[key] = self.ex.evaluator.truth(expr, self.env())
        return out

    def value(self, expr: Expr) -> Vec:
        key = ("v", expr)
        out = self._memo.get(key)
        if out is None:
            out = self._memo[key] = self.ex.evaluator.compute(expr, self.env())
        return out

    def col(self, name: str) -> Vec:
        v = self._cols.get(name)
        if v is None:
            i = self.ex._index[self.stream][name]
            v = self._cols[name] = vec_of([r[i] for r in self.rows], self.ex._kinds[self.stream][i])
        return v

    def env(self, aggregates: dict[Call, AggregateSpec] | None = None) -> RowsEnv:
        return RowsEnv(self, aggregates or {})


class RowsEnv:
    def __init__(self, batch: StreamBatch, aggregates: dict[Call, AggregateSpec]):
        self.batch = batch
        self.aggregates = aggregates
        self.n = batch.n

    def field(self, alias: str | None, name: str) -> Vec:
        return self.batch.col(name)

    def aggregate(self, call: Call) -> Vec:
        return self.batch.agg_vec[self.aggregates[call]]


class Gather:
    """Columns over chains: each alias reads its candidates' stored values."""

    def __init__(self, ex: StreamExecutor, rule: RuleRuntime, rows: dict[str, list[Candidate]]):
        self.ex = ex
        self.rule = rule
        self.rows = rows
        self._cache: dict[tuple, Vec] = {}

    def field(self, alias: str, name: str) -> Vec:
        ck = (alias, name)
        v = self._cache.get(ck)
        if v is None:
            stream = self.rule.stream_of[alias]
            i = self.ex._index[stream][name]
            v = self._cache[ck] = vec_of([c.values[i] for c in self.rows[alias]], self.ex._kinds[stream][i])
        return v

    def aggregate(self, alias: str, spec: AggregateSpec) -> Vec:
        ck = (alias, spec)
        v = self._cache.get(ck)
        if v is None:
            v = self._cache[ck] = aggregate_vec([c.aggs[spec] for c in self.rows[alias]], spec)
        return v


class ChainEnv:
    def __init__(self, gather: Gather, own: str, aggregates: dict[Call, AggregateSpec]):
        self.gather = gather
        self.own = own
        self.aggregates = aggregates
        self.n = len(gather.rows[own])

    def field(self, alias: str | None, name: str) -> Vec:
        return self.gather.field(alias or self.own, name)

    def aggregate(self, call: Call) -> Vec:
        return self.gather.aggregate(self.own, self.aggregates[call])


