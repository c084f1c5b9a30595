"""Window aggregates kept incrementally, record by record, with the values of runtime.windows.

:data:`STATE_CLASSES` holds the stream body of each aggregate of ``lang.aggregates``. Each
class holds per-key deques of the records inside its window; ``inputs`` prepares a batch's
values once, ``step`` takes one record, ``expire`` releases what the watermark has passed,
and ``dump``/``load`` carry the state across restarts.
"""

from __future__ import annotations

import math
import operator
from bisect import bisect_right
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import fields as dc_fields
from dataclasses import is_dataclass
from typing import Any

import numpy as np

from ...columns.vec import FILLERS, Vec
from ...lang.aggregates import AGGREGATES
from ...lang.expr import Expr
from ...runtime.plan import AggregateSpec
from ...runtime.windows import NS, SUM_SCALE, scaled, stddev_of
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
    return "|".join([spec.func, spec.stream, spec.key, str(spec.window_ns), expr_signature(spec.value),
                     expr_signature(spec.where)])


# --- window aggregates (runtime/windows.py semantics, incrementally) ----------------------
#
# Each state keeps, per key, the rows that count (those passing ``where=``), in
# total order. Rows arrive in total order, so ts never goes down within a key
# and the window (ts_r - w, ts_r] is a deque popped at the front. Keys sit in
# an OrderedDict ordered by their last append (= by ts): a key whose newest row
# left the window is dropped whole.

Inputs = tuple[list[bool], list[Any]]  # per record: does it count, and its value as step() takes it


class _Agg:
    def __init__(self, spec: AggregateSpec):
        self.spec = spec
        self.w = spec.window_ns
        self.keys: OrderedDict = OrderedDict()
        self.null_result = (FILLERS[AGGREGATES[spec.func].kind], True)  # at a record without a key

    def inputs(self, mask: np.ndarray, value: Vec) -> Inputs:
        """Records that pass where= and have a value count, with their values as Python objects."""
        return (mask & ~value.null).tolist(), value.values.tolist()

    def input_one(self, passes: bool, value: Any) -> tuple[bool, Any]:
        """:meth:`inputs` for one record (the scalar path): its where= truth, its value or None."""
        return passes and value is not None, value

    def _entry(self, key: Any, make: Callable[[], Any]) -> Any:
        """The state of a key that takes a record: made when new, else moved to the end."""
        st = self.keys.get(key)
        if st is None:
            st = self.keys[key] = make()
        else:
            self.keys.move_to_end(key)
        return st

    def expire(self, now: int) -> None:
        lo = now - self.w
        keys = self.keys
        while keys:
            k = next(iter(keys))
            if self._newest(keys[k]) > lo:
                break
            del keys[k]

    def entries(self) -> int:
        return sum(self._size(v) for v in self.keys.values())

    def live_keys(self) -> int:
        return len(self.keys)


class _Listed(_Agg):
    """count and distinct: per key, [entries in total order, head]. An alert names what these
    counted (Bindings.members), so each entry keeps its record's total-order position and id.
    Rows that leave the window are skipped (``head``) while a batch runs and dropped in
    :meth:`expire`, after the batch's alerts are built, so that a record earlier in the same batch
    can still list them."""

    def __init__(self, spec: AggregateSpec):
        super().__init__(spec)
        self._moved: set = set()  # keys whose head moved since the last expire()

    def input_tagged(self, passes: bool, value: Any, q: int, rid: Any) -> tuple[bool, Any]:
        """:meth:`inputs` for one record (the scalar path), with its total-order position and id."""
        raise NotImplementedError

    def _newest(self, st):
        return st[0][-1][0] if st[0] else -math.inf

    def _size(self, st):
        return len(st[0]) - st[-1]

    def expire(self, now: int) -> None:
        for k in self._moved:
            st = self.keys.get(k)
            if st is not None and st[-1]:
                del st[0][:st[-1]]
                st[-1] = 0
        self._moved.clear()
        super().expire(now)

    def _window(self, key, ts: int, q: int) -> list:
        """Entries of ``key`` in (ts - w, ts] at or before position q (valid until the next expire())."""
        st = self.keys.get(key)
        if st is None:
            return []
        ent = st[0]
        lo = bisect_right(ent, ts - self.w, key=_ts_of)
        return ent[lo:bisect_right(ent, q, lo=lo, key=self._Q)]


def _ts_of(entry: tuple) -> int:
    return entry[0]


class _Count(_Listed):
    _Q = staticmethod(operator.itemgetter(1))

    def input_tagged(self, passes: bool, value: Any, q: int, rid: Any) -> tuple[bool, Any]:
        return passes, (q, rid)

    def inputs(self, mask: np.ndarray, value: Vec | None, qs: list | None = None, ids: list | None = None) -> Inputs:
        n = len(mask)
        return mask.tolist(), list(zip(range(n) if qs is None else qs, [None] * n if ids is None else ids))

    def step(self, key, ts, counts, tag):
        if counts:
            st = self._entry(key, lambda: [[], 0])
            st[0].append((ts, tag[0], tag[1]))
        else:
            st = self.keys.get(key)
            if st is None:
                return 0.0, False
        ent, head = st
        lo = ts - self.w
        end = len(ent)
        if head < end and ent[head][0] <= lo:
            while head < end and ent[head][0] <= lo:
                head += 1
            st[1] = head
            self._moved.add(key)
        return float(end - head), False

    def members(self, key, ts: int, q: int, limit: int) -> tuple[int, list]:
        """(records counted, the ids of the first ``limit``) at the record (key, ts, q)."""
        window = self._window(key, ts, q)
        return len(window), [e[2] for e in window[:limit]]

    def dump(self):
        return [[k, [list(e) for e in st[0][st[1]:]]] for k, st in self.keys.items()]

    def load(self, data):
        self.keys = OrderedDict((k, [[(int(t), int(q), rid) for t, q, rid in entries], 0]) for k, entries in data)


class _Tallied(_Agg):
    """Per key, [deque of (ts, value), a running tally of the deque]."""

    def _newest(self, st):
        return st[0][-1][0] if st[0] else -math.inf

    def _size(self, st):
        return len(st[0])

    def dump(self):
        return [[k, [list(e) for e in st[0]]] for k, st in self.keys.items()]


class _Scaled(_Tallied):
    """Values taken as exact integers in units of 1/SUM_SCALE (runtime.windows.scaled)."""

    def inputs(self, mask: np.ndarray, value: Vec) -> Inputs:
        return (mask & ~value.null).tolist(), scaled(value.values).tolist()

    def input_one(self, passes: bool, value: Any) -> tuple[bool, Any]:
        if value is None:
            return False, 0
        return passes, scaled_one(float(value))


class _Sum(_Scaled):
    """Unscaled as float(total) / SUM_SCALE like runtime.windows.unscale; the tally is their total."""

    def step(self, key, ts, counts, units):
        if counts:
            st = self._entry(key, lambda: [deque(), 0])
            st[0].append((ts, units))
            st[1] += units
        else:
            st = self.keys.get(key)
        if st is None:
            return self._result(0, 0)
        dq = st[0]
        lo = ts - self.w
        while dq and dq[0][0] <= lo:
            st[1] -= dq.popleft()[1]
        return self._result(st[1], len(dq))

    def _result(self, total: int, count: int) -> tuple[float, bool]:
        return float(total) / SUM_SCALE, False

    def load(self, data):
        self.keys = OrderedDict()
        for k, entries in data:
            dq = deque((int(t), int(s)) for t, s in entries)
            self.keys[k] = [dq, sum(s for _, s in dq)]


class _Avg(_Sum):
    """The sum, unscaled, divided by the count."""

    def _result(self, total: int, count: int) -> tuple[float, bool]:
        if count == 0:
            return 0.0, True
        return float(total) / SUM_SCALE / float(count), False


class _Extreme(_Agg):
    """min / max over a monotonic deque (values as float64, like window_extreme)."""

    dominated: Callable[[float, float], bool]  # (kept value, new value): the kept one can go

    def inputs(self, mask: np.ndarray, value: Vec) -> Inputs:
        return (mask & ~value.null).tolist(), value.values.astype(np.float64).tolist()

    def input_one(self, passes: bool, value: Any) -> tuple[bool, Any]:
        if value is None:
            return False, 0.0
        return passes, float(value)

    def _newest(self, st):
        return st[-1][0] if st else -math.inf

    def _size(self, st):
        return len(st)

    def step(self, key, ts, counts, value):
        if counts:
            st = self._entry(key, deque)
            while st and self.dominated(st[-1][1], value):
                st.pop()
            st.append((ts, value))
        else:
            st = self.keys.get(key)
            if st is None:
                return 0.0, True
        lo = ts - self.w
        while st and st[0][0] <= lo:
            st.popleft()
        if not st:
            return 0.0, True
        return st[0][1], False

    def dump(self):
        return [[k, [list(e) for e in st]] for k, st in self.keys.items()]

    def load(self, data):
        self.keys = OrderedDict((k, deque((int(t), float(v)) for t, v in entries)) for k, entries in data)


class _Min(_Extreme):
    dominated = staticmethod(operator.ge)


class _Max(_Extreme):
    dominated = staticmethod(operator.le)


class _Distinct(_Listed):
    """Per key, [entries (ts, value, q), count per value in the window, head]."""

    _Q = staticmethod(operator.itemgetter(2))

    def input_tagged(self, passes: bool, value: Any, q: int, rid: Any) -> tuple[bool, Any]:
        return passes and value is not None, (value, q)

    def inputs(self, mask: np.ndarray, value: Vec, qs: list | None = None, ids: list | None = None) -> Inputs:
        vals = value.values.tolist()
        return (mask & ~value.null).tolist(), list(zip(vals, range(len(vals)) if qs is None else qs))

    def step(self, key, ts, counts, tagged):
        if counts:
            value = tagged[0]
            st = self._entry(key, lambda: [[], {}, 0])
            st[0].append((ts, value, tagged[1]))
            st[1][value] = st[1].get(value, 0) + 1
        else:
            st = self.keys.get(key)
            if st is None:
                return 0.0, False
        ent, seen, head = st
        lo = ts - self.w
        end = len(ent)
        if head < end and ent[head][0] <= lo:
            while head < end and ent[head][0] <= lo:
                v = ent[head][1]
                left = seen[v] - 1
                if left:
                    seen[v] = left
                else:
                    del seen[v]
                head += 1
            st[2] = head
            self._moved.add(key)
        return float(len(seen)), False

    def members(self, key, ts: int, q: int, limit: int) -> tuple[int, list]:
        """(distinct values counted, the first ``limit`` in order of first appearance)."""
        first = list(dict.fromkeys(e[1] for e in self._window(key, ts, q)))
        return len(first), first[:limit]

    def dump(self):
        return [[k, [list(e) for e in st[0][st[2]:]]] for k, st in self.keys.items()]

    def load(self, data):
        self.keys = OrderedDict()
        for k, entries in data:
            ent = [(int(t), v, int(q)) for t, v, q in entries]
            self.keys[k] = [ent, dict(Counter(v for _, v, _ in ent)), 0]


class _IsNew(_Agg):
    """(key, value) -> ts of the latest earlier row passing where=."""

    def inputs(self, mask: np.ndarray, value: Vec) -> Inputs:
        # earlier rows count when they pass where=; the row itself need not
        return mask.tolist(), py_values(value)

    def input_one(self, passes: bool, value: Any) -> tuple[bool, Any]:
        return passes, value

    def expire(self, now: int) -> None:
        lo = now - self.w
        d = self.keys
        while d:
            k = next(iter(d))
            if d[k] > lo:
                break
            del d[k]

    def entries(self) -> int:
        return len(self.keys)

    def live_keys(self) -> int:
        return len({k for k, _ in self.keys})

    def step(self, key, ts, counts, value):
        if value is None:
            return False, False
        k = (key, value)
        prev = self.keys.get(k)
        new = not (prev is not None and prev > ts - self.w)
        if counts:
            if prev is not None:
                self.keys.move_to_end(k)
            self.keys[k] = ts
        return new, False

    def dump(self):
        return [[k, v, ts] for (k, v), ts in self.keys.items()]

    def load(self, data):
        self.keys = OrderedDict(((k, v), int(ts)) for k, v, ts in data)


class _Stddev(_Scaled):
    """Per key, [deque of (ts, scaled value), count, sum, sum of squares] as exact Python ints."""

    def step(self, key, ts, counts, units):
        if counts:
            st = self._entry(key, lambda: [deque(), 0, 0, 0])
            st[0].append((ts, units))
            st[1] += 1
            st[2] += units
            st[3] += units * units
        else:
            st = self.keys.get(key)
            if st is None:
                return 0.0, True
        dq = st[0]
        lo = ts - self.w
        while dq and dq[0][0] <= lo:
            u = dq.popleft()[1]
            st[1] -= 1
            st[2] -= u
            st[3] -= u * u
        sd = stddev_of(st[1], st[2], st[3])
        return (0.0, True) if sd is None else (sd, False)

    def load(self, data):
        self.keys = OrderedDict()
        for k, entries in data:
            dq = deque((int(t), int(u)) for t, u in entries)
            self.keys[k] = [dq, len(dq), sum(u for _, u in dq), sum(u * u for _, u in dq)]


class _SincePrev(_Agg):
    """key -> ts of its latest row passing where=."""

    def inputs(self, mask: np.ndarray, value: Vec | None) -> Inputs:
        return mask.tolist(), [None] * len(mask)

    def input_one(self, passes: bool, value: Any) -> tuple[bool, Any]:
        return passes, None  # takes no value: where= alone decides

    def _newest(self, st):
        return st

    def _size(self, st):
        return 1

    def step(self, key, ts, counts, value):
        prev = self.keys.get(key)
        found = prev is not None and prev > ts - self.w
        if counts:
            self._entry(key, lambda: ts)
            self.keys[key] = ts
        # float(int) / 1e9, like runtime.windows._since_prev (not Python's exactly rounded int / int)
        return (float(ts - prev) / NS, False) if found else (0.0, True)

    def dump(self):
        return [[k, ts] for k, ts in self.keys.items()]

    def load(self, data):
        self.keys = OrderedDict((k, int(ts)) for k, ts in data)


STATE_CLASSES: dict[str, type[_Agg]] = {
    "count": _Count, "sum": _Sum, "avg": _Avg, "min": _Min, "max": _Max, "distinct": _Distinct, "is_new": _IsNew,
    "since_prev": _SincePrev, "stddev": _Stddev,
}
