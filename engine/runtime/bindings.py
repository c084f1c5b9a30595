"""Bindings: the rows an executor evaluates expressions over, one type for every executor.

An executor keeps its rows its own way (numpy tables and row numbers in batch,
tuples of Python values in stream). A :class:`Bindings` shows them as the
columns of ``n`` rows: the fields and window aggregates of each step alias
(a single stream's rows answer to any alias). :meth:`Bindings.env` is the
Evaluator's view for one step, where a bare field name and an aggregate call
belong to that step. The alert builder reads matches through the same type.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..columns.vec import Vec
from ..lang.expr import Call
from .plan import AggregateSpec


class Bindings(ABC):
    """Columns per step alias over ``n`` rows, each built once."""

    def __init__(self, n: int):
        self.n = n
        self._built: dict[tuple[str, object], Vec] = {}

    @abstractmethod
    def _column(self, alias: str, name: str) -> Vec:
        """Field ``name`` of the record bound to ``alias``, in each row."""

    @abstractmethod
    def _aggregate(self, alias: str, spec: AggregateSpec) -> Vec:
        """The window aggregate ``spec`` at the record bound to ``alias``, in each row."""

    def column(self, alias: str, name: str) -> Vec:
        key = (alias, name)
        if key not in self._built:
            self._built[key] = self._column(alias, name)
        return self._built[key]

    def aggregate(self, alias: str, spec: AggregateSpec) -> Vec:
        key = (alias, spec)
        if key not in self._built:
            self._built[key] = self._aggregate(alias, spec)
        return self._built[key]

    def aggregate_at(self, alias: str, spec: AggregateSpec, rows: np.ndarray) -> Vec:
        """``aggregate`` at rows ``rows`` alone (an ``and``'s undecided rows): taken from the whole column
        when it is built, else as the executor computes it there (_aggregate_at)."""
        got = self._built.get((alias, spec))
        if got is not None:
            return got.take(rows)
        return self._aggregate_at(alias, spec, rows)

    def _aggregate_at(self, alias: str, spec: AggregateSpec, rows: np.ndarray) -> Vec:
        """An executor that can compute some aggregate at a few rows for less overrides this."""
        return self.aggregate(alias, spec).take(rows)

    def members(self, alias: str, spec: AggregateSpec, limit: int) -> list[tuple[int, list[Any]]]:
        """What a count or distinct at ``alias`` counted, per row: (total, the first ``limit``), in total
        order; record ids for a count, values for a distinct (docs/design.md §6). Executors that
        build alerts implement it."""
        raise NotImplementedError(f"{type(self).__name__} cannot list an aggregate's members")

    def run_records(self, alias: str) -> list[list[dict[str, Any]]]:
        """A repeated step's run per row: each record's id, ts and (with ``distinct: f``) f, in total
        order (docs/design.md §6). Executors that build alerts implement it."""
        raise NotImplementedError(f"{type(self).__name__} cannot list a run's records")

    def env(self, own: str, aggregates: Mapping[Call, AggregateSpec]) -> StepEnv:
        """The Env of an expression of step ``own``, whose aggregate calls are ``aggregates``."""
        return StepEnv(self, own, aggregates)


class StepEnv:
    """An Env (runtime.evaluate) for one step: ``amount`` is the step's own, ``call.amount`` another's."""

    def __init__(self, bindings: Bindings, own: str, aggregates: Mapping[Call, AggregateSpec]):
        self.bindings = bindings
        self.own = own
        self.aggregates = aggregates
        self.n = bindings.n

    def field(self, alias: str | None, name: str) -> Vec:
        return self.bindings.column(alias or self.own, name)

    def aggregate(self, call: Call) -> Vec:
        # ``fanin.sum(amount, 24h)``: at the record bound to ``fanin``; unqualified: at this step's own
        return self.bindings.aggregate(call.alias or self.own, self.aggregates[call])

    def aggregate_at(self, call: Call, rows: np.ndarray) -> Vec:
        return self.bindings.aggregate_at(call.alias or self.own, self.aggregates[call], rows)
