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
from dataclasses import dataclass

import numpy as np

from ..columns.types import PhysicalKind
from ..columns.vec import physical_kind
from ..lang.expr import Binary, Expr, Field, Literal, aliases_used, conjuncts
from ..pack.streams import Schema
from .plan import RulePlan

MAX_PAIRS_PER_BLOCK = 4_000_000  # (trigger, first step) pairs evaluated at once: bounds memory
# Sequences of three or more steps join every chain (two-step ones the latest only). On a busy key their
# count grows like n^(k-1), so a rule file could ask for an exponential join: past this many partial
# chains ending at one step on one key value, an executor stops with an error naming the rule and the
# step, never a silent cut (batch: the chains its join keeps, by the key of the step they end at;
# stream: the chains durable-rules would hold, by the value the next step joins, counted before a fact
# goes in).
MAX_CHAINS = 1_000_000
# The stream executor's cap is lower: durable-rules hands every complete chain back to Python at each
# trigger (~35 µs a chain measured: 1.6M chains of 4 steps on one key took 55 s), so a busy key under
# MAX_CHAINS still stalls a real-time stream for minutes (8 steps, 40 records of one key: 250 s).
# Between the two caps batch answers and the stream refuses the step and counts it (stats chain_cap).
MAX_STREAM_CHAINS = 50_000


def latest_chain_only(rp: RulePlan) -> bool:
    """Whether each trigger of ``rp`` needs only its latest passing first step, not every chain.

    True for two-step sequences, unless an ``unless`` could cancel the latest chain and spare an
    earlier one. ``unless`` is checked after the choice; it stays exact when every first step a
    trigger joins has the same unless key: an unless record strictly between the latest first
    step and the trigger then lies between every earlier one and the trigger too. That holds when
    the unless record is matched against the trigger's key (``on`` the last step), or against the
    first step's key and the trigger joins that key; not when ``follows`` joins the trigger to
    another field of the first step, whose key may differ from one first step to the next."""
    if len(rp.steps) != 2 or any(sp.is_run for sp in rp.steps):  # a run's first record moves the cut
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


# --- triggers that no first step passes ----------------------------------------------------------------
#
# A trigger whose cross conditions no live first step passes walks down all of them. Two kinds of
# conjunct say so at once, from a summary of the live first steps that both executors could keep:


@dataclass(frozen=True)
class Extreme:
    """A conjunct ``T op g(first.field)``, g non-decreasing (the field, or a positive number times it)
    and T free of the first step: if the first step with the least (``least``) or greatest value of
    ``field`` fails it, every first step does (a null field fails any comparison)."""

    expr: Expr
    field: str
    least: bool


@dataclass(frozen=True)
class Differs:
    """A conjunct ``field != first.field`` over text fields: no first step passes it unless one has a
    non-null value other than the trigger's (a null trigger value passes none)."""

    field: str  # the trigger's
    first_field: str


_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "!=": "!="}


def _first_field(expr: Expr, alias: str) -> str | None:
    """The first step's field when ``expr`` is non-decreasing in it alone: ``alias.f``, ``k * alias.f``
    or ``alias.f * k`` with a number k > 0."""
    if isinstance(expr, Field):
        return expr.name if expr.alias == alias else None
    if isinstance(expr, Binary) and expr.op == "*":
        for k, f in ((expr.left, expr.right), (expr.right, expr.left)):
            if (isinstance(k, Literal) and k.kind == "number" and isinstance(k.value, (int, float))
                    and not isinstance(k.value, bool) and k.value > 0):
                return _first_field(f, alias) if isinstance(f, Field) else None
    return None


def hopeless_tests(rp: RulePlan, schema: Schema) -> tuple[list[Extreme], list[Differs]]:
    """The conjuncts of a latest-chain rule's cross conditions that tell, from the live first steps'
    least or greatest value or their distinct values, that a trigger joins none of them."""
    first, last = rp.steps
    if last.cross is None:
        return [], []
    extremes: list[Extreme] = []
    differs: list[Differs] = []
    for c in conjuncts(last.cross):
        if not isinstance(c, Binary) or c.op not in _FLIP:
            continue
        for op, t_side, f_side in ((c.op, c.left, c.right), (_FLIP[c.op], c.right, c.left)):
            if aliases_used(t_side):  # the trigger's side reads no earlier step
                continue
            f = _first_field(f_side, first.alias)
            if f is None:
                continue
            kind = _kind(schema, first.stream, f)
            if op == "!=":
                if (isinstance(f_side, Field) and isinstance(t_side, Field) and kind == PhysicalKind.OBJECT
                        and _kind(schema, last.stream, t_side.name) == PhysicalKind.OBJECT):
                    differs.append(Differs(t_side.name, f))
            elif kind in (PhysicalKind.INT, PhysicalKind.FLOAT):
                # T >= g and T > g: the least g passes most easily; T <= g and T < g: the greatest
                extremes.append(Extreme(c, f, least=op in (">", ">=")))
            break
    return extremes, differs


def _kind(schema: Schema, stream: str, field: str) -> PhysicalKind | None:
    f = schema.streams[stream].fields.get(field)
    return None if f is None else physical_kind(f.type)
