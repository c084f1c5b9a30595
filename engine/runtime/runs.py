"""Repeated steps (``runs: n``, ``distinct: f``): the latest run ending at a record (docs/design.md §5).

A run step binds n records r1 < ... < rn of one key, each passing the step's where; with
``distinct: f`` they have n different non-null values of f. The alias reads rn. Given rn, the chain
takes the *latest* run: the n-1 latest candidates before rn, or, with ``distinct``, the latest
candidates scanning back from rn, skipping values already taken (greedy; it is the latest run
position by position, so it also has the latest r1, which only helps ``within``, ``unless`` and the
step before). So a run depends on rn alone, and an executor keeps, per candidate, its run's first
record (the chain's order and ``within`` read it) and lists the whole run in the evidence.

Two forms of the same choice: :func:`latest_runs` over a whole table (batch, vectorised: a rank
lookup, or for ``distinct`` a descent over a sparse table of "next occurrence" maxima, n steps of
O(log N) each), and :class:`RunState` record by record (stream: per key at most n entries).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Any

import numpy as np


def _group_sorted(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Candidates (given in total order) sorted by key code, stably: (order, first sorted index of each
    sorted index's group)."""
    order = np.argsort(codes, kind="stable")
    sc = codes[order]
    n = len(sc)
    heads = np.r_[True, sc[1:] != sc[:-1]] if n else np.zeros(0, dtype=bool)
    gstart = np.maximum.accumulate(np.where(heads, np.arange(n), 0)) if n else np.zeros(0, dtype=np.int64)
    return order, gstart


class _Descent:
    """For queries (x, c, lo): the largest p in [lo, c) with nxt[p] > x, by binary descent over a sparse
    table of range maxima of ``nxt`` (log2(N) levels)."""

    def __init__(self, nxt: np.ndarray):
        self.levels = [nxt]
        size = 1
        while size * 2 <= len(nxt):
            prev = self.levels[-1]
            self.levels.append(np.maximum(prev[:-size], prev[size:]))
            size *= 2

    def before(self, c: np.ndarray, lo: np.ndarray, x: np.ndarray) -> np.ndarray:
        for k in range(len(self.levels) - 1, -1, -1):
            size = 1 << k
            start = c - size
            ok = start >= lo
            if ok.any():
                level = self.levels[k]
                ok &= level[np.clip(start, 0, len(level) - 1)] <= x  # the whole block is skipped
            c = np.where(ok, start, c)
        p = c - 1
        return np.where(p >= lo, p, -1)


def latest_runs(codes: np.ndarray, n: int, values: np.ndarray | None,
                members_of: np.ndarray | None = None) -> np.ndarray:
    """Runs over a step's candidates, given in total order with their key codes (all >= 0) and, for
    ``distinct``, their value codes (-1: null).

    Without ``members_of``: per candidate, the index of the first record of the latest run ending at it,
    or -1 when it ends none. With ``members_of`` (candidate indices): an array (len, n) of each one's run,
    in total order (-1 rows where there is none), for the evidence of the alerts only."""
    m = len(codes)
    order, gstart = _group_sorted(codes)
    pos = np.empty(m, dtype=np.int64)
    pos[order] = np.arange(m)
    queries = np.arange(m) if members_of is None else np.asarray(members_of, dtype=np.int64)
    qpos = pos[queries]
    if values is None:
        starts = qpos - (n - 1)
        ok = starts >= gstart[qpos]
        if members_of is None:
            return np.where(ok, order[np.maximum(starts, 0)], -1)
        grid = np.maximum(starts[:, None] + np.arange(n)[None, :], 0)
        return np.where(ok[:, None], order[grid], -1)
    # distinct: scanning back from x, p is the latest record of its value up to x when the next
    # record of the same key and value comes after x (nxt[p] > x); a null value never counts (-1)
    sv = values[order]
    sc = codes[order]
    occ = np.lexsort((np.arange(m), sv, sc))
    same = np.r_[(sc[occ][1:] == sc[occ][:-1]) & (sv[occ][1:] == sv[occ][:-1]), False] if m else np.zeros(0, bool)
    nxt = np.full(m, m, dtype=np.int64)
    nxt[occ[:-1][same[:-1]]] = occ[1:][same[:-1]]
    nxt[sv < 0] = -1
    descent = _Descent(nxt)
    found = np.full((len(queries), n), -1, dtype=np.int64)
    live = np.flatnonzero(sv[qpos] >= 0)
    cur = qpos[live]
    found[live, n - 1] = cur
    for i in range(n - 2, -1, -1):  # the i-th record of the run, walking back from rn
        if not len(live):
            break
        p = descent.before(cur, gstart[qpos[live]], qpos[live])
        hit = p >= 0
        found[live[hit], i] = p[hit]
        live, cur = live[hit], p[hit]
    complete = (found >= 0).all(axis=1)
    if members_of is None:
        return np.where(complete, order[np.maximum(found[:, 0], 0)], -1)
    return np.where(complete[:, None], order[np.maximum(found, 0)], -1)


Entry = tuple[int, int, Any, Any]  # (q, ts, id, distinct value or None)


class RunState:
    """One key's latest step candidates that a run ending at the next one can use: the last n, or with
    ``distinct`` the latest record of each of the n latest values (stream executor)."""

    __slots__ = ("n", "distinct", "entries")

    def __init__(self, n: int, distinct: bool, entries: list[Entry] | None = None):
        self.n = n
        self.distinct = distinct
        self.entries: deque | OrderedDict = OrderedDict() if distinct else deque(maxlen=n)
        for e in entries or ():
            self.add(e)

    def add(self, entry: Entry) -> list[Entry] | None:
        """Take a candidate; return the latest run ending at it (in total order), or None."""
        if not self.distinct:
            self.entries.append(entry)
            return list(self.entries) if len(self.entries) == self.n else None
        value = entry[3]
        if value is None:  # a null value is in no run of a distinct step
            return None
        d = self.entries
        d.pop(value, None)
        d[value] = entry
        if len(d) > self.n:
            d.popitem(last=False)
        return list(d.values()) if len(d) == self.n else None

    def newest_ts(self) -> int | None:
        """The ts of the latest entry (None: none yet, a key whose candidates had no value)."""
        if not self.entries:
            return None
        return next(reversed(self.entries.values()))[1] if self.distinct else self.entries[-1][1]

    def dump(self) -> list[list]:
        return [list(e) for e in (self.entries.values() if self.distinct else self.entries)]
