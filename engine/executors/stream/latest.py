"""The stream executor's latest-chain join of two-step sequences (#12; runtime/latest.py decides
which rules, and walks; docs/design.md §5, §7).

durable-rules hands back every chain a trigger ends: on a busy key that is every live first step,
n^2/2 chains for n triggers. The evidence needs only the latest chain that passes the cross
conditions, so for a rule that :func:`~fraudrules.runtime.latest.latest_chain_only` allows:

- durable-rules holds one first-step fact per join value, the latest: a later first step with the
  same join value joins every trigger an earlier one joins (the same key, a later ts inside
  ``within``, earlier than any trigger still to come), so the earlier fact is retracted then.
  durable-rules still performs the join and hands back (latest first step, trigger).
- Python keeps each join value's live first steps in total order (:class:`FirstSteps`); when the
  latest fails the cross conditions, :func:`choose_latest` walks down from it, 1, 2, 4, ... at a
  time, over all the release's triggers at once, with the shared evaluator.
- A trigger that no live first step passes would walk down all of them. :class:`Hints` keeps, per
  run, what tells that at once (runtime/latest.py ``hopeless_tests``): the first step with the
  least or greatest value of a field a conjunct compares (a monotonic deque), and the counts of
  the values a ``!=`` conjunct compares. Such a trigger is dropped before the walk.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import TYPE_CHECKING

import numpy as np

from ...runtime.latest import Extreme, hopeless_tests, latest_passing
from ...runtime.plan import RulePlan
from .bindings import Gather

if TYPE_CHECKING:  # pragma: no cover
    from .executor import Candidate, RuleRuntime, StreamExecutor

COMPACT_AFTER = 64  # expired first steps a run keeps before it drops them (amortised O(1) each)


class Hints:
    """A rule's conjuncts that can tell a hopeless trigger, with the positions of their fields."""

    def __init__(self, rp: RulePlan, ex: StreamExecutor):
        extremes, differs = hopeless_tests(rp, ex.plan.schema)
        first, last = rp.steps
        fi, ti = ex._index[first.stream], ex._index[last.stream]
        self.extremes: list[tuple[Extreme, int]] = [(e, fi[e.field]) for e in extremes]
        self.differs: list[tuple[int, int]] = [(fi[d.first_field], ti[d.field]) for d in differs]


class FirstSteps:
    """One join value's first steps, in total order. ``cands[live:]`` are within ``within`` of the
    record being processed; ``cands[:live]`` expired during the release batch and are dropped after
    it (:meth:`trim`), so the positions a trigger of the batch noted stay valid until its alert.
    A first step's serial is its position plus ``base``, the number dropped before it."""

    __slots__ = ("cands", "live", "base", "hints", "ends", "counts", "nonnull")

    def __init__(self, hints: Hints) -> None:
        self.cands: list[Candidate] = []
        self.live = 0
        self.base = 0
        self.hints = hints
        # per extreme: serials of the live first steps whose value no later one undercuts (or
        # exceeds), oldest first; the front is the least (greatest) live value
        self.ends: list[deque[int]] = [deque() for _ in hints.extremes]
        # per ``!=``: the live first steps' non-null values, counted
        self.counts: list[Counter] = [Counter() for _ in hints.differs]
        self.nonnull = [0] * len(hints.differs)

    def add(self, cand: Candidate) -> None:
        serial = self.base + len(self.cands)
        self.cands.append(cand)
        for ((e, idx), ends) in zip(self.hints.extremes, self.ends):
            v = cand.values[idx]
            if v is None or v != v:  # null and NaN fail every comparison
                continue
            cands, base = self.cands, self.base
            if e.least:
                while ends and cands[ends[-1] - base].values[idx] >= v:
                    ends.pop()
            else:
                while ends and cands[ends[-1] - base].values[idx] <= v:
                    ends.pop()
            ends.append(serial)
        for k, (idx, _) in enumerate(self.hints.differs):
            v = cand.values[idx]
            if v is not None:
                self.counts[k][v] += 1
                self.nonnull[k] += 1

    def expire(self) -> None:
        """The oldest live first step left ``within``."""
        cand = self.cands[self.live]
        serial = self.base + self.live
        self.live += 1
        for ends in self.ends:
            if ends and ends[0] == serial:
                ends.popleft()
        for k, (idx, _) in enumerate(self.hints.differs):
            v = cand.values[idx]
            if v is not None:
                counts = self.counts[k]
                counts[v] -= 1
                if not counts[v]:
                    del counts[v]
                self.nonnull[k] -= 1

    def witnesses(self, trigger: Candidate) -> list[int] | None:
        """None when no live first step can pass the trigger's cross conditions (a ``!=`` that every
        live value fails, or no live value to compare); else per extreme, the position of the first
        step to test it on: if that one fails, every one does."""
        for k, (_, tidx) in enumerate(self.hints.differs):
            x = trigger.values[tidx]
            if x is None or self.nonnull[k] == self.counts[k].get(x, 0):
                return None
        out = []
        for ends in self.ends:
            if not ends:
                return None
            out.append(ends[0] - self.base)
        return out

    def trim(self) -> bool:
        """Drop expired first steps once they are many; True when none is left."""
        if self.live >= len(self.cands):
            self.cands.clear()
            self.base += self.live
            self.live = 0
            return True
        if self.live > COMPACT_AFTER and 2 * self.live > len(self.cands):
            del self.cands[:self.live]
            self.base += self.live
            self.live = 0
        return False


# (trigger, its run, lowest and one past the highest position it may join, witnesses)
Pending = tuple["Candidate", FirstSteps, int, int, list[int]]


def choose_latest(ex: StreamExecutor, rule: RuleRuntime, pending: list[Pending]) -> list[tuple[Candidate, ...]]:
    """Each pending trigger's latest chain that passes the cross conditions, in trigger order."""
    if not pending:
        return []
    first, last = rule.rp.steps
    lo = np.fromiter((p[2] for p in pending), dtype=np.int64, count=len(pending))
    hi = np.fromiter((p[3] for p in pending), dtype=np.int64, count=len(pending))
    trigs = [p[0] for p in pending]
    for k, (e, _) in enumerate(rule.hints.extremes):
        # the first step with the least (greatest) value fails: so does every one; no walk
        rule.joined += len(pending)
        rows = {first.alias: [p[1].cands[p[4][k]] for p in pending], last.alias: trigs}
        hi[~ex.evaluator.truth(e.expr, Gather(ex, rule, rows).env(last.alias, last.aggregates))] = 0

    def passes(t: np.ndarray, pos: np.ndarray) -> np.ndarray:
        ts, ps = t.tolist(), pos.tolist()
        rule.joined += len(ts)
        rows = {first.alias: [pending[i][1].cands[p] for i, p in zip(ts, ps)],
                last.alias: [pending[i][0] for i in ts]}
        return ex.evaluator.truth(last.cross, Gather(ex, rule, rows).env(last.alias, last.aggregates))

    if last.cross is None:
        rule.joined += len(pending)  # the latest first step, which durable-rules handed back
    found = latest_passing(lo, hi, passes if last.cross is not None else None)
    return [(pending[i][1].cands[f], pending[i][0]) for i, f in enumerate(found.tolist()) if f >= 0]
