"""Window aggregates kept incrementally, with the values of runtime.windows.

:data:`STATE_CLASSES` holds the stream body of each aggregate of ``lang.aggregates``.

Most aggregates are *lazy*: a record that counts (passes ``where=`` and has a value) only appends
an entry ``(ts, q, ...)`` to its key's list (:meth:`_Windowed.add`), and the value at a record
(key, ts, q) is computed only when something reads it (:meth:`_Windowed.at`): the records in
``(ts - w, ts]`` at or before position q. Most records of a release are read by no rule (their
step's own conditions fail), so most of the window bookkeeping is never done. count, sum, avg and
stddev answer from the entry list with two bisections (sums as running totals of exact integers);
min, max and distinct keep a cursor per key that moves forward with the reads, as the former
per-record deques did, and recompute from the entries for a read that comes out of order.

is_new and since_prev are *eager*: their value at a record is the state just before it, so
:meth:`step` takes every record that counts or is read, in total order.

Entries of a key leave when the key's newest one left the window (:meth:`_Agg.expire`) or, for a
busy key, as new entries arrive (``trim_lo``: the first ts of the release minus the window, so
that every record of the release can still list what it counted). ``dump``/``load`` carry the
state across restarts (the checkpoint layout of STATE_VERSION 2).
"""

from __future__ import annotations

import math
import operator
from bisect import bisect_left, bisect_right, insort
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import fields as dc_fields
from dataclasses import is_dataclass
from typing import Any

import numpy as np

from ...columns.vec import FILLERS, Vec
from ...lang.aggregates import AGGREGATES
from ...lang.expr import Call, Expr
from ...runtime.plan import AggregateSpec
from ...runtime.windows import NS, SUM_SCALE, median_of, stddev_of
from ...runtime.windows import _scaled_one as scaled_one  # scaled()'s body for one value, whatever the batch
from .bindings import py_values


def expr_signature(expr: Expr | None) -> str:
    """A position-free canonical text of an expression (for matching state across restarts)."""
    if expr is None:
        return "-"
    if is_dataclass(expr):
        parts = []
        for f in dc_fields(expr):
            if f.name in ("start", "end"):
                continue
            v = getattr(expr, f.name)
            if f.name == "alias" and v is None and isinstance(expr, Call):
                continue  # Call.alias came later: checkpoints written before it keep their signatures
            if isinstance(v, tuple):
                v = "(" + ",".join(expr_signature(x) if isinstance(x, Expr) else
                                   (f"{x[0]}={expr_signature(x[1])}" if isinstance(x, tuple) else repr(x))
                                   for x in v) + ")"
            elif isinstance(v, Expr):
                v = expr_signature(v)
            else:
                v = repr(v)
            parts.append(f"{f.name}={v}")
        return f"{type(expr).__name__}[{';'.join(parts)}]"
    return repr(expr)


def spec_signature(spec: AggregateSpec) -> str:
    over = [f"over={spec.over}.{spec.over_key}"] if spec.foreign else []  # older checkpoints: unchanged
    return "|".join([spec.func, spec.stream, spec.key, str(spec.window_ns), expr_signature(spec.value),
                     expr_signature(spec.where), *over])


_TS = operator.itemgetter(0)
_Q1 = operator.itemgetter(1)
_VALUE = _Q1  # a distinct entry's value: (ts, value, q)
_NO_Q = -1  # the position of an entry loaded from a checkpoint: before every record still to come

Inputs = tuple[list[bool], list[Any]]  # per record: does it count, and its entry as add()/step() take it


def _itself(x: Any) -> Any:
    return x


def _drop_front(keys: dict, newest: Callable[[Any], float], lo: int, cursors: tuple[dict, ...] = ()) -> None:
    """Drop the keys at the front of ``keys`` (ordered by their last entry) whose newest entry is at or before
    ``lo``, with their cursors (those of every state that reads these entries). A dict's scan from the front skips
    the slots of keys taken out since it was last resized: one pass in C per call, and a call per release."""
    dead = []
    for k, st in keys.items():
        if newest(st) > lo:
            break
        dead.append(k)
    for k in dead:
        del keys[k]
        for of_state in cursors:
            of_state.pop(k, None)


class _Agg:
    """Per key state in a dict ordered by the key's last entry (= by ts): a key that takes an entry is taken
    out and put back at the end. A plain dict, not an OrderedDict: most records add to a
    key that has none yet, and the dict's insert, pop and scan from the front cost ~20% less."""

    lazy = True
    listed = False  # count and distinct: entries keep the record's position and id or value, for alerts
    takes = ""  # "id": entry() is (passes, id); "value": (passes and value is not None, value)

    def __init__(self, spec: AggregateSpec):
        self.spec = spec
        self.w = spec.window_ns
        # how far back entries are kept: the window, plus a sequence's within when a bounded aggregate over
        # them sits on a step before the last (read when the chain completes, up to within later)
        self.keep = self.w
        self.keys: dict = {}
        self.null_result = (FILLERS[AGGREGATES[spec.func].kind], True)  # at a record without a key
        self.trim_lo: float = -math.inf  # entries at or before this ts are outside every window still to come
        self._q = 0  # positions given by step() when it is fed record by record (tests)
        # the state whose entries this one reads (share_entries): it adds and drops them; None: its own
        self.leader: _Agg | None = None
        self.cursors: dict | None = None  # a cursor state's per-key cursors (_Cursor), dropped with their key
        # the cursor states whose cursors index this state's entries: itself, and its followers (share_entries)
        self.cursor_states: list[_Agg] = []

    # -- a record's input ----------------------------------------------------------------------
    def entry(self, passes: bool, value: Any, rid: Any) -> tuple[bool, Any]:
        """Whether a record counts, and what its entry keeps (its value, scaled, or its id)."""
        return passes and value is not None, value

    def inputs(self, mask: np.ndarray, value: Vec | None, qs: list | None = None,
               ids: list | None = None) -> Inputs:
        """:meth:`entry` of a column of records (tests and the record-by-record :meth:`step`)."""
        n = len(mask)
        vals = [None] * n if value is None else py_values(value)
        ids = [None] * n if ids is None else ids
        out = [self.entry(p, v, r) for p, v, r in zip(mask.tolist(), vals, ids)]
        return [c for c, _ in out], [x for _, x in out]

    # -- state -----------------------------------------------------------------------------------
    def expire(self, now: int) -> None:
        if self.leader is not None:  # its leader keeps the entries at least as long
            return
        _drop_front(self.keys, self._newest, now - self.keep, tuple(st.cursors for st in self.cursor_states))

    def _newest(self, st: Any) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def _size(self, st: Any) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def entries(self) -> int:
        return sum(self._size(v) for v in self.keys.values())

    def _dumped(self, ts: int, x: Any, q: int) -> tuple:
        """An entry in a checkpoint: (ts, payload), and its position when a bounded aggregate of an earlier step
        may read it at a record before the checkpoint (keep > w), where ties in ts need the total order.
        Dumps are tuples, which JSON writes as lists: the guard's in-memory snapshots (guard.py) then hold
        no container the collector tracks per entry, and share the entries' own tuples where the layouts
        are the same."""
        return (ts, x) if self.keep == self.w else (ts, x, q)

    def live_keys(self) -> int:
        return len(self.keys)


class _Windowed(_Agg):
    """Lazy aggregates: entries appended as records count, values computed when read. A key's
    state is the list of its entries; min, max, distinct and median also keep a cursor for each key
    read (``_Cursor.cursors``)."""

    _plain = True  # entries are (ts, q, payload), as _make gives; False where a subclass lays them out itself

    def _make(self, ent: list, ts: int, q: int, x: Any) -> tuple:
        """The entry of a record: (ts, q, payload, ...) (distinct: (ts, value, q), the checkpoint layout)."""
        return (ts, q, x)

    def _trim_at(self, ent: list) -> int:
        """How many entries at the front no window still to come holds, when worth dropping (else 0): at least
        32 of them, or a quarter of the list. Dropping a few from the front of a long list costs more than
        keeping them a while. Entries are in ts order, so one entry says whether that many are out, and the
        bisection runs only when they are: a busy key's front falls out one entry per add, and a bisection
        at every add to find one or two cost more than the adds themselves."""
        lo = self.trim_lo
        if ent[min(32, (len(ent) + 3) // 4) - 1][0] > lo:
            return 0
        return bisect_right(ent, lo, key=_TS)

    def step(self, key: Any, ts: int, counts: bool, x: Any) -> tuple[Any, bool]:
        """One record, fed in total order (tests): add it if it counts, then read the value at it."""
        q = self._q
        self._q += 1
        if counts:
            self.add(key, ts, q, x)
        return self.at(key, ts, q)

    def _newest(self, st):
        return st[-1][0] if st else -math.inf

    def _size(self, st):
        return len(st)

    def add(self, key: Any, ts: int, q: int, x: Any) -> None:
        """A record (at ts, position q) counts for ``key`` with entry payload ``x``. The entry is built here, not
        by :meth:`_make`, when its layout is the plain (ts, q, x): a method call less for most of the adds,
        which are the window states' largest cost in micro-batches."""
        keys = self.keys
        ent = keys.pop(key, None)
        if ent is None:
            keys[key] = [(ts, q, x) if self._plain else self._make(None, ts, q, x)]
            return
        keys[key] = ent  # to the end
        if ent and ent[0][0] <= self.trim_lo:
            k = self._trim_at(ent)
            if k:
                self._trimming(key, ent, k)
                del ent[:k]
        ent.append((ts, q, x) if self._plain else self._make(ent, ts, q, x))

    def _trimming(self, key: Any, ent: list, k: int) -> None:
        """The first ``k`` entries of ``key`` are about to go (a cursor moves back by them)."""

    def at(self, key: Any, ts: int, q: int) -> tuple[Any, bool]:  # pragma: no cover - abstract
        raise NotImplementedError

    def own(self) -> Iterator[tuple[Any, list]]:
        """(key, entries) of what this state's windows still to come may read: all of them, or for a follower
        of a longer window (share_entries) those after its own ``trim_lo``. Checkpoints and stats see this,
        so a follower's state is its own window's, as before it shared."""
        if self.leader is None:
            yield from self.keys.items()
            return
        lo = self.trim_lo
        for k, ent in self.keys.items():
            # a key may hold no entry: a checkpoint keeps a cursor state's entries from its cursor (_dumped_lists)
            at = bisect_right(ent, lo, key=_TS) if ent and ent[0][0] <= lo else 0
            if at < len(ent):
                yield k, ent[at:] if at else ent

    def entries(self) -> int:
        return sum(len(ent) for _, ent in self.own())

    def live_keys(self) -> int:
        return sum(1 for _ in self.own())


def _span(ent: list, w: int, ts: int, q: int, qpos: int = 1) -> tuple[int, int]:
    """Indexes [lo, hi) of the entries in (ts - w, ts] at or before position q (entry[qpos])."""
    lo = bisect_right(ent, ts - w, key=_TS)
    hi = len(ent)
    if hi and ent[-1][qpos] > q:
        hi = bisect_right(ent, q, lo=lo, key=_Q2 if qpos == 2 else _Q1)
    return lo, hi


# --- count, sum, avg, stddev: a list of entries per key, two bisections per read -----------------


class _Listed(_Windowed):
    """count, sum, avg, stddev: the value at a record from the entry list alone."""


class _Count(_Listed):
    """Entries (ts, q, record id)."""

    listed = True
    takes = "id"

    def entry(self, passes: bool, value: Any, rid: Any) -> tuple[bool, Any]:
        return passes, rid

    def at(self, key, ts, q):
        ent = self.keys.get(key)
        if ent is None:
            return 0.0, False
        lo, hi = _span(ent, self.w, ts, q)
        return float(hi - lo), False

    def members(self, key, ts: int, q: int, limit: int) -> tuple[int, list]:
        """(records counted, the ids of the first ``limit``) at the record (key, ts, q)."""
        ent = self.keys.get(key)
        if ent is None:
            return 0, []
        lo, hi = _span(ent, self.w, ts, q)
        return hi - lo, [e[2] for e in ent[lo:min(hi, lo + limit)]]

    def dump(self):
        return [[k, list(ent)] for k, ent in self.own()]  # entries (ts, q, id): the checkpoint layout

    def load(self, data):
        self.keys = {k: [(int(t), int(q), rid) for t, q, rid in entries] for k, entries in data}


class _Scaled(_Listed):
    """Values as exact integers in units of 1/SUM_SCALE (runtime.windows.scaled); entries
    (ts, q, units, running total of units up to and including this one), so that the total of
    entries [lo, hi) is ``ent[hi-1][3] - ent[lo][3] + ent[lo][2]`` whatever was dropped before."""

    def entry(self, passes: bool, value: Any, rid: Any) -> tuple[bool, Any]:
        if value is None:
            return False, 0
        return passes, scaled_one(float(value))

    _plain = False

    def _make(self, ent, ts, q, units):
        return (ts, q, units, (ent[-1][3] + units) if ent else units)

    def dump(self):
        return [[k, [self._dumped(e[0], e[2], e[1]) for e in ent]] for k, ent in self.own()]

    def load(self, data):
        self.keys = {}
        for k, entries in data:
            ent: list = []
            for t, u, *q in entries:
                ent.append(self._make(ent, int(t), int(q[0]) if q else _NO_Q, int(u)))
            self.keys[k] = ent


class _Sum(_Scaled):
    """Unscaled as float(total) / SUM_SCALE like runtime.windows.unscale."""

    def at(self, key, ts, q):
        ent = self.keys.get(key)
        if ent is None:
            return self._result(0, 0)
        lo, hi = _span(ent, self.w, ts, q)
        if hi <= lo:
            return self._result(0, 0)
        first = ent[lo]
        return self._result(ent[hi - 1][3] - first[3] + first[2], hi - lo)

    def _result(self, total: int, count: int) -> tuple[float, bool]:
        return float(total) / SUM_SCALE, False


class _Avg(_Sum):
    """The sum, unscaled, divided by the count."""

    def _result(self, total: int, count: int) -> tuple[float, bool]:
        if count == 0:
            return 0.0, True
        return float(total) / SUM_SCALE / float(count), False


class _Stddev(_Scaled):
    """Entries (ts, q, units, running total, running total of squares) as exact Python ints."""

    def _make(self, ent, ts, q, units):
        if ent:
            last = ent[-1]
            return (ts, q, units, last[3] + units, last[4] + units * units)
        return (ts, q, units, units, units * units)

    def at(self, key, ts, q):
        ent = self.keys.get(key)
        if ent is None:
            return 0.0, True
        lo, hi = _span(ent, self.w, ts, q)
        if hi - lo < 2:
            return 0.0, True
        first, last = ent[lo], ent[hi - 1]
        u = first[2]
        sd = stddev_of(hi - lo, last[3] - first[3] + u, last[4] - first[4] + u * u)
        return (0.0, True) if sd is None else (sd, False)


# --- min, max, distinct: a cursor per key ---------------------------------------------------------

# a cursor: [head, tail, tally, q of the last read]; the window at the last read is ent[head:tail] of the
# key's entries (tally: its value counts, its monotonic deque or its sorted values), moved forward to the next
# read, each entry entering and leaving once; a read behind the cursor is computed from the entries. A key gets
# its cursor at its first read: most keys are never read (a release reads where a step's conditions hold).
HEAD, TAIL, TALLY, AT_Q = range(4)


class _Cursor(_Windowed):
    _qpos = 1

    def __init__(self, spec: AggregateSpec):
        super().__init__(spec)
        self.cursors: dict = {}
        self.cursor_states = [self]

    def _trimming(self, key: Any, ent: list, k: int) -> None:
        for state in self.cursor_states:  # its own cursor, and those of the states that read its entries
            cur = state.cursors.get(key)
            if cur is not None:
                state._dropping(ent, cur, k)
                cur[HEAD] = max(cur[HEAD], k) - k
                cur[TAIL] = max(cur[TAIL], k) - k

    def _dropping(self, ent: list, cur: list, k: int) -> None:
        """The first ``k`` entries go: take those in the window out of the tally."""

    def _dumped_lists(self) -> Iterator[tuple[Any, list]]:
        """(key, entries) a checkpoint keeps: from the cursor's head, unless entries behind it may still be read
        by a bounded aggregate of an earlier step (keep > w); a follower's own window's (:meth:`own`)."""
        if self.leader is not None:
            yield from self.own()
            return
        cursors, tight = self.cursors, self.keep == self.w
        for k, ent in self.keys.items():
            cur = cursors.get(k) if tight else None
            yield k, ent[cur[HEAD]:] if cur is not None and cur[HEAD] else ent

    def _loaded(self, keys: dict) -> None:
        self.keys, self.cursors = keys, {}

    def load(self, data):
        """Entries (ts, q, value as float) from their checkpoint layout (ts, value[, q]): min, max, median."""
        self._loaded({k: [(int(t), int(q[0]) if q else _NO_Q, float(v)) for t, v, *q in entries]
                      for k, entries in data})

    def at(self, key, ts, q):
        ent = self.keys.get(key)
        if ent is None:
            return self._of([])
        cur = self.cursors.get(key)
        if cur is None:
            cur = self.cursors[key] = [0, 0, self._tally(), -1]
        elif q < cur[AT_Q]:
            lo, hi = _span(ent, self.w, ts, q, self._qpos)
            return self._of(ent[lo:hi])
        cur[AT_Q] = q
        return self._move(ent, cur, ts - self.w, q)


class _Extreme(_Cursor):
    """min / max over a monotonic deque of (ts, value) (values as float64, like window_extreme)."""

    dominated: Callable[[float, float], bool]  # (kept value, new value): the kept one can go
    best: Callable[..., float]
    _tally = deque

    def entry(self, passes: bool, value: Any, rid: Any) -> tuple[bool, Any]:
        if value is None:
            return False, 0.0
        return passes, float(value)

    def _of(self, window):
        if not window:
            return 0.0, True
        return self.best(e[2] for e in window), False

    def _move(self, ent, cur, lo, q):
        dq = cur[TALLY]
        tail, end = cur[TAIL], len(ent)
        dominated = self.dominated
        while tail < end and ent[tail][1] <= q:
            e = ent[tail]
            value = e[2]
            while dq and dominated(dq[-1][1], value):
                dq.pop()
            dq.append((e[0], value))
            tail += 1
        cur[TAIL] = tail
        while dq and dq[0][0] <= lo:
            dq.popleft()
        if not dq:
            return 0.0, True
        return dq[0][1], False

    def dump(self):
        return [[k, [self._dumped(e[0], e[2], e[1]) for e in ent]] for k, ent in self._dumped_lists()]


class _Min(_Extreme):
    dominated = staticmethod(operator.ge)
    best = staticmethod(min)


class _Max(_Extreme):
    dominated = staticmethod(operator.le)
    best = staticmethod(max)


class _Distinct(_Cursor):
    """Entries (ts, value, q); the cursor's tally counts each value in the window."""

    listed = True
    takes = "value"
    _qpos = 2
    _tally = dict
    _plain = False

    def _make(self, ent, ts, q, value):
        return (ts, value, q)

    def _of(self, window):
        return float(len({e[1] for e in window})), False

    def _move(self, ent, cur, lo, q):
        seen = cur[TALLY]
        tail, end = cur[TAIL], len(ent)
        while tail < end and ent[tail][2] <= q:
            v = ent[tail][1]
            seen[v] = seen.get(v, 0) + 1
            tail += 1
        cur[TAIL] = tail
        head = cur[HEAD]
        while head < tail and ent[head][0] <= lo:
            _forget(seen, ent[head][1])
            head += 1
        cur[HEAD] = head
        return float(len(seen)), False

    def _dropping(self, ent, cur, k):
        seen = cur[TALLY]
        for i in range(cur[HEAD], min(k, cur[TAIL])):
            _forget(seen, ent[i][1])

    def members(self, key, ts: int, q: int, limit: int, total: int | None = None) -> tuple[int, list]:
        """(distinct values counted, the first ``limit`` in order of first appearance). ``total``: the count
        at this record when the caller has it (a candidate's own value of this aggregate); the window is then
        read only up to its ``min(limit, total)``-th distinct value, not whole (a busy key holds thousands of
        entries, often of a few values: once all ``total`` are seen, no other is left)."""
        ent = self.keys.get(key)
        if ent is None:
            return 0, []
        lo, hi = _span(ent, self.w, ts, q, 2)
        if total is None:
            first = list(dict.fromkeys(map(_VALUE, ent[lo:hi])))
            return len(first), first[:limit]
        want = min(limit, total)
        seen: dict = {}
        if want > 0:
            for i in range(lo, hi):
                seen[ent[i][1]] = None
                if len(seen) == want:
                    break
        return total, list(seen)

    def dump(self):
        return [[k, list(ent)] for k, ent in self._dumped_lists()]  # (ts, value, q): the layout

    def load(self, data):
        self._loaded({k: [(int(t), v, int(q)) for t, v, q in entries] for k, entries in data})


class _Median(_Cursor):
    """The median over a sorted list of the window's values (floats; runtime.windows.median_of):
    each value enters once (insort) and leaves once (bisect), as in the batch body."""

    _tally = list

    def entry(self, passes: bool, value: Any, rid: Any) -> tuple[bool, Any]:
        if value is None:
            return False, 0.0
        return passes, float(value)

    def _of(self, window):
        m = median_of(sorted(e[2] for e in window))
        return (0.0, True) if m is None else (m, False)

    def _move(self, ent, cur, lo, q):
        window = cur[TALLY]
        tail, end = cur[TAIL], len(ent)
        while tail < end and ent[tail][1] <= q:
            insort(window, ent[tail][2])
            tail += 1
        cur[TAIL] = tail
        head = cur[HEAD]
        while head < tail and ent[head][0] <= lo:
            del window[bisect_left(window, ent[head][2])]
            head += 1
        cur[HEAD] = head
        m = median_of(window)
        return (0.0, True) if m is None else (m, False)

    def _dropping(self, ent, cur, k):
        window = cur[TALLY]
        for i in range(cur[HEAD], min(k, cur[TAIL])):
            del window[bisect_left(window, ent[i][2])]

    def dump(self):
        return [[k, [self._dumped(e[0], e[2], e[1]) for e in ent]] for k, ent in self._dumped_lists()]


def _forget(seen: dict, v: Any) -> None:
    left = seen[v] - 1
    if left:
        seen[v] = left
    else:
        del seen[v]


_Q2 = operator.itemgetter(2)


# --- is_new, since_prev: eager ---------------------------------------------------------------------


class _Eager(_Agg):
    lazy = False


class _IsNew(_Eager):
    """(key, value) -> ts of the latest earlier row passing where=."""

    def entry(self, passes: bool, value: Any, rid: Any) -> tuple[bool, Any]:
        return passes, value  # earlier rows count when they pass where=; the row itself need not

    def expire(self, now: int) -> None:
        _drop_front(self.keys, _itself, now - self.w)

    def entries(self) -> int:
        return len(self.keys)

    def live_keys(self) -> int:
        return len({k for k, _ in self.keys})

    def step(self, key, ts, counts, value):
        if value is None:
            return False, False
        k = (key, value)
        prev = self.keys.pop(k, None) if counts else self.keys.get(k)
        new = not (prev is not None and prev > ts - self.w)
        if counts:
            self.keys[k] = ts  # at the end
        return new, False

    def dump(self):
        return [(k, v, ts) for (k, v), ts in self.keys.items()]

    def load(self, data):
        self.keys = {(k, v): int(ts) for k, v, ts in data}


class _SincePrev(_Eager):
    """key -> ts of its latest row passing where=."""

    def entry(self, passes: bool, value: Any, rid: Any) -> tuple[bool, Any]:
        return passes, None  # takes no value: where= alone decides

    def _newest(self, st):
        return st

    def _size(self, st):
        return 1

    def step(self, key, ts, counts, value):
        prev = self.keys.pop(key, None) if counts else self.keys.get(key)
        found = prev is not None and prev > ts - self.w
        if counts:
            self.keys[key] = ts  # at the end
        # float(int) / 1e9, like runtime.windows._since_prev (not Python's exactly rounded int / int)
        return (float(ts - prev) / NS, False) if found else (0.0, True)

    def dump(self):
        return [(k, ts) for k, ts in self.keys.items()]

    def load(self, data):
        self.keys = {k: int(ts) for k, ts in data}


# --- a window that starts at an earlier step (``where=ts > swap.ts``) ---------------------------------------


def _entries(state: _Agg, key: Any) -> list:
    return state.keys.get(key) or []


def _bounded_span(state: _Agg, ent: list, bound: int, inclusive: bool, ts: int, q: int) -> tuple[int, int]:
    """Indexes [lo, hi) of the entries in (max(ts - w, bound), ts] (``[bound`` when inclusive), at or before q."""
    qpos = 2 if isinstance(state, _Distinct) else 1
    lo, hi = _span(ent, state.w, ts, q, qpos)
    after = (bisect_left if inclusive else bisect_right)(ent, bound, key=_TS)
    return max(lo, after), hi


def bounded_at(state: _Agg, func: str, key: Any, bound: int, inclusive: bool, ts: int, q: int) -> tuple[Any, bool]:
    """The value of aggregate ``func`` at the record (key, ts, q) over the window that starts at ``bound``, read
    from the entries of ``state`` (spec.base's: the same records, since_prev's as a count keeps them) by
    bisection: count, sum, avg and stddev from running totals, the others from the slice's entries."""
    if key is None:
        return state.null_result if func == state.spec.func else (0.0, True)
    ent = _entries(state, key)
    lo, hi = _bounded_span(state, ent, bound, inclusive, ts, q)
    if func == "since_prev":  # the latest entry strictly before the record itself
        before = bisect_left(ent, q, lo=lo, hi=max(lo, hi), key=_Q1)
        return (float(ts - ent[before - 1][0]) / NS, False) if before > lo else (0.0, True)
    if hi <= lo:
        if isinstance(state, _Cursor):
            return state._of([])
        return (0.0, False) if func in ("count", "sum") else (0.0, True)
    if func == "count":
        return float(hi - lo), False
    if isinstance(state, _Sum):
        first = ent[lo]
        return state._result(ent[hi - 1][3] - first[3] + first[2], hi - lo)
    if isinstance(state, _Stddev):
        first, last = ent[lo], ent[hi - 1]
        u = first[2]
        sd = stddev_of(hi - lo, last[3] - first[3] + u, last[4] - first[4] + u * u)
        return (0.0, True) if sd is None else (sd, False)
    return state._of(ent[lo:hi])  # type: ignore[attr-defined]


def bounded_members(state: _Agg, key: Any, bound: int, inclusive: bool, ts: int, q: int,
                    limit: int) -> tuple[int, list]:
    """members() of a count or distinct over the window that starts at ``bound``."""
    ent = _entries(state, key) if key is not None else []
    lo, hi = _bounded_span(state, ent, bound, inclusive, ts, q) if ent else (0, 0)
    if isinstance(state, _Distinct):
        first = list(dict.fromkeys(e[1] for e in ent[lo:hi]))
        return len(first), first[:limit]
    return max(hi - lo, 0), [e[2] for e in ent[lo:min(hi, lo + limit)]]


# the entry layout of each lazy aggregate: states of one layout (and the same records and payload) can read one
# list; a stddev's entries extend those of sum and avg (two running totals of squares after them)
_LAYOUTS: dict[type, type] = {}


def _entries_signature(spec: AggregateSpec, state: _Agg) -> tuple | None:
    """What decides a lazy state's entries, whatever its window: the same for two states means the same
    records go in with the same payload. None: a state that keeps its own (an eager or nested state is
    stepped, not read; a bounded one reads another's)."""
    layout = _LAYOUTS.get(type(state))
    if layout is None or spec.inner or spec.bound is not None:
        return None
    return (layout, spec.stream, spec.key, spec.over, spec.over_key, expr_signature(spec.value),
            expr_signature(spec.where))


def share_entries(states: dict[AggregateSpec, _Agg]) -> None:
    """Let lazy states whose entries are the same (count(1h) and count(24h) of one key and where=, a sum
    and an avg, a min and a max, distinct(1h) and distinct(24h)) read one list per key: the one that keeps
    entries longest adds and drops them, the others read it through their own window (a cursor state
    through its own cursors, which the leader moves back as it trims and drops with their key). A sum or an
    avg reads a stddev's entries when that stddev keeps them at least as long. Velocity rules ask the same
    aggregate over several windows, and every add is Python work per record. Called once the states' ``keep``
    is final, and after a load (the followers' own loaded entries are a subset of their leader's, which kept
    them at least as long)."""
    groups: dict[tuple, list[_Agg]] = {}
    for spec, state in states.items():
        sig = _entries_signature(spec, state)
        if sig is not None:
            groups.setdefault(sig, []).append(state)
    for sig, group in list(groups.items()):
        if sig[0] is _Stddev:
            scaled = groups.get((_Scaled, *sig[1:]))
            if scaled and max(st.keep for st in group) >= max(st.keep for st in scaled):
                group.extend(scaled)  # the first of the longest is then a stddev
                del groups[(_Scaled, *sig[1:])]
    for group in groups.values():
        leader = max(group, key=lambda st: st.keep)  # the first of the longest: specs come sorted
        leader.leader = None
        if leader.cursors is not None:
            leader.cursor_states = [leader]
        for state in group:
            if state is not leader:
                state.leader, state.keys = leader, leader.keys
                if state.cursors is not None:  # its cursors indexed its own entries
                    state.cursors = {}
                    leader.cursor_states.append(state)


_LAYOUTS.update({_Count: _Count, _Sum: _Scaled, _Avg: _Scaled, _Stddev: _Stddev, _Min: _Extreme, _Max: _Extreme,
                 _Median: _Extreme, _Distinct: _Distinct})

STATE_CLASSES: dict[str, type[_Agg]] = {
    "count": _Count, "sum": _Sum, "avg": _Avg, "min": _Min, "max": _Max, "distinct": _Distinct, "is_new": _IsNew,
    "since_prev": _SincePrev, "stddev": _Stddev, "median": _Median,
}
