"""The latest-chain join of two-step sequences, shared by both executors (#12).

The evidence of a sequence is its latest chain (docs/design.md §5). For two steps that is, for each
trigger, the latest earlier first step that joins it, lies within ``within`` and passes the cross
conditions; building every chain first costs n^2/2 on a busy key. :func:`latest_chain_only` says
when a trigger may look at its latest passing first step alone, and :func:`latest_passing` finds
it, walking down from the latest 1, 2, 4, ... first steps at a time, so a trigger whose latest
first step passes costs one evaluation.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .plan import RulePlan

MAX_PAIRS_PER_BLOCK = 4_000_000  # (trigger, first step) pairs evaluated at once: bounds memory


def latest_chain_only(rp: RulePlan) -> bool:
    """Whether each trigger of ``rp`` needs only its latest passing first step, not every chain.

    True for two-step sequences, unless an ``unless`` could cancel the latest chain and spare an
    earlier one. ``unless`` is checked after the choice; it stays exact when every first step a
    trigger joins has the same unless key: an unless record strictly between the latest first
    step and the trigger then lies between every earlier one and the trigger too. That holds when
    the unless record is matched against the trigger's key (``on`` the last step), or against the
    first step's key and the trigger joins that key; not when ``follows`` joins the trigger to
    another field of the first step, whose key may differ from one first step to the next."""
    if len(rp.steps) != 2:
        return False
    u = rp.unless
    if u is None or u.on == 1:
        return True
    first, last = rp.steps
    return last.follows is None or last.follows[1] == first.key


def expand_pairs(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ranges [lo_q, hi_q): (query index, position) for every position."""
    counts = np.maximum(hi - lo, 0)
    total = int(counts.sum())
    q = np.repeat(np.arange(len(lo)), counts)
    offsets = np.cumsum(counts) - counts
    pos = lo[q] + (np.arange(total) - offsets[q])
    return q, pos


Passes = Callable[[np.ndarray, np.ndarray], np.ndarray]


def latest_passing(lo: np.ndarray, hi: np.ndarray, passes: Passes | None,
                   max_pairs: int = MAX_PAIRS_PER_BLOCK) -> np.ndarray:
    """For each trigger t, the largest position p in [lo[t], hi[t]) with ``passes`` true, or -1.

    Positions are a trigger's candidate first steps in total order. ``passes(t, p)`` takes arrays
    of triggers and positions (each trigger's positions ascending) and returns a boolean mask; None
    means every pair passes (no cross conditions). The walk goes down from hi, 1, 2, 4, ... positions
    at a time, so a trigger costs about twice the first steps above its answer, and one when its
    latest passes; at most ``max_pairs`` pairs are evaluated at once."""
    found = np.full(len(lo), -1, dtype=np.int64)
    todo, top, width = np.flatnonzero(hi > lo), np.asarray(hi, dtype=np.int64).copy(), 1
    while len(todo):
        start = np.maximum(lo[todo], top[todo] - width)
        counts = top[todo] - start
        block_id = (np.cumsum(counts) - counts) // max_pairs
        splits = np.flatnonzero(np.r_[False, block_id[1:] != block_id[:-1]])
        for block in np.split(np.arange(len(todo)), splits):
            t, pos = expand_pairs(start[block], top[todo[block]])
            t = todo[block][t]
            if passes is not None and len(t):
                keep = passes(t, pos)
                t, pos = t[keep], pos[keep]
            last = np.r_[t[1:] != t[:-1], True] if len(t) else np.zeros(0, dtype=bool)
            found[t[last]] = pos[last]  # positions ascend per trigger: the last is the latest
        top[todo] = start
        todo = todo[(found[todo] < 0) & (top[todo] > lo[todo])]
        width *= 2
    return found
