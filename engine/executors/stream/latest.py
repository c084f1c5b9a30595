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
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...runtime.latest import latest_passing
from .bindings import Gather

if TYPE_CHECKING:  # pragma: no cover
    from .executor import Candidate, RuleRuntime, StreamExecutor

COMPACT_AFTER = 64  # expired first steps a run keeps before it drops them (amortised O(1) each)


class FirstSteps:
    """One join value's first steps, in total order. ``cands[live:]`` are within ``within`` of the
    record being processed; ``cands[:live]`` expired during the release batch and are dropped after
    it (:meth:`trim`), so the positions a trigger of the batch noted stay valid until its alert."""

    __slots__ = ("cands", "live")

    def __init__(self) -> None:
        self.cands: list[Candidate] = []
        self.live = 0

    def trim(self) -> bool:
        """Drop expired first steps once they are many; True when none is left."""
        if self.live >= len(self.cands):
            self.cands.clear()
            self.live = 0
            return True
        if self.live > COMPACT_AFTER and 2 * self.live > len(self.cands):
            del self.cands[:self.live]
            self.live = 0
        return False


# (trigger, its run, lowest and one past the highest position it may join)
Pending = tuple["Candidate", FirstSteps, int, int]


def choose_latest(ex: StreamExecutor, rule: RuleRuntime, pending: list[Pending]) -> list[tuple[Candidate, ...]]:
    """Each pending trigger's latest chain that passes the cross conditions, in trigger order."""
    if not pending:
        return []
    first, last = rule.rp.steps
    lo = np.fromiter((p[2] for p in pending), dtype=np.int64, count=len(pending))
    hi = np.fromiter((p[3] for p in pending), dtype=np.int64, count=len(pending))

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
