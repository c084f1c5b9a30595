"""Window aggregates kept incrementally, record by record, with the values of runtime.windows.

Each class holds per-key deques of the records inside its window; ``expire`` releases what
the watermark has passed, and ``dump``/``load`` carry the state across restarts.
"""

from __future__ import annotations

import math
from collections import Counter, OrderedDict, deque
from dataclasses import fields as dc_fields
from dataclasses import is_dataclass
from typing import Any

import numpy as np

from ...columns.vec import Vec
from ...lang.expr import Expr
from ...runtime.plan import AggregateSpec
from ...runtime.windows import SUM_SCALE


def aggregate_vec(pairs: list[tuple[Any, bool]], spec: AggregateSpec) -> Vec:
    n = len(pairs)
    dtype = np.bool_ if spec.func == "is_new" else np.float64
    values = np.array([p[0] for p in pairs], dtype=dtype) if n else np.zeros(0, dtype=dtype)
    null = np.array([p[1] for p in pairs], dtype=bool) if n else np.zeros(0, dtype=bool)
    return Vec(values, null)



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



# --- window aggregates (engine/windows.py semantics, incrementally) ----------------------
#
# Each state keeps, per key, the rows that count (those passing ``where=``), in
# total order. Rows arrive in total order, so ts never goes down within a key
# and the window (ts_r - w, ts_r] is a deque popped at the front. Keys sit in
# an OrderedDict ordered by their last append (= by ts): a key whose newest row
# left the window is dropped whole.


class _Agg:
    def __init__(self, spec: AggregateSpec):
        self.spec = spec
        self.w = spec.window_ns
        self.keys: OrderedDict = OrderedDict()

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


class _Count(_Agg):
    def _newest(self, st):
        return st[-1] if st else -math.inf

    def _size(self, st):
        return len(st)

    def step(self, key, ts, mask, value):
        st = self.keys.get(key)
        if mask:
            if st is None:
                st = self.keys[key] = deque()
            else:
                self.keys.move_to_end(key)
            st.append(ts)
        elif st is None:
            return 0.0, False
        lo = ts - self.w
        while st and st[0] <= lo:
            st.popleft()
        return float(len(st)), False

    def dump(self):
        return [[k, list(st)] for k, st in self.keys.items()]

    def load(self, data):
        self.keys = OrderedDict((k, deque(v)) for k, v in data)


class _Sum(_Agg):
    """sum and avg: exact integers in units of 1/SUM_SCALE (engine.windows.scaled), unscaled as
    float(total) / SUM_SCALE like engine.windows.unscale; avg divides that by the count."""

    def _newest(self, st):
        return st[0][-1][0] if st[0] else -math.inf

    def _size(self, st):
        return len(st[0])

    def step(self, key, ts, valid, scaled):
        st = self.keys.get(key)
        if valid:
            if st is None:
                st = self.keys[key] = [deque(), 0]
            else:
                self.keys.move_to_end(key)
            st[0].append((ts, scaled))
            st[1] += scaled
        if st is None:
            total, count = 0, 0
        else:
            dq = st[0]
            lo = ts - self.w
            while dq and dq[0][0] <= lo:
                st[1] -= dq.popleft()[1]
            total, count = st[1], len(dq)
        if self.spec.func == "sum":
            return float(total) / SUM_SCALE, False
        if count == 0:
            return 0.0, True
        return float(total) / SUM_SCALE / float(count), False

    def dump(self):
        return [[k, [list(e) for e in st[0]]] for k, st in self.keys.items()]

    def load(self, data):
        self.keys = OrderedDict()
        for k, entries in data:
            dq = deque((int(t), int(s)) for t, s in entries)
            self.keys[k] = [dq, sum(s for _, s in dq)]


class _Extreme(_Agg):
    """min / max over a monotonic deque (values as float64, like window_extreme)."""

    def _newest(self, st):
        return st[-1][0] if st else -math.inf

    def _size(self, st):
        return len(st)

    def step(self, key, ts, valid, value):
        st = self.keys.get(key)
        if valid:
            if st is None:
                st = self.keys[key] = deque()
            else:
                self.keys.move_to_end(key)
            if self.spec.func == "min":
                while st and st[-1][1] >= value:
                    st.pop()
            else:
                while st and st[-1][1] <= value:
                    st.pop()
            st.append((ts, value))
        elif st is None:
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


class _Distinct(_Agg):
    def _newest(self, st):
        return st[0][-1][0] if st[0] else -math.inf

    def _size(self, st):
        return len(st[0])

    def step(self, key, ts, valid, value):
        st = self.keys.get(key)
        if valid:
            if st is None:
                st = self.keys[key] = [deque(), {}]
            else:
                self.keys.move_to_end(key)
            st[0].append((ts, value))
            counts = st[1]
            counts[value] = counts.get(value, 0) + 1
        elif st is None:
            return 0.0, False
        dq, counts = st
        lo = ts - self.w
        while dq and dq[0][0] <= lo:
            v = dq.popleft()[1]
            left = counts[v] - 1
            if left:
                counts[v] = left
            else:
                del counts[v]
        return float(len(counts)), False

    def dump(self):
        return [[k, [list(e) for e in st[0]]] for k, st in self.keys.items()]

    def load(self, data):
        self.keys = OrderedDict()
        for k, entries in data:
            dq = deque((int(t), v) for t, v in entries)
            self.keys[k] = [dq, dict(Counter(v for _, v in dq))]


class _IsNew(_Agg):
    """is_new(x, w, where=): (key, value) -> ts of the latest earlier row passing where."""

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

    def step(self, key, ts, mask, value):
        if value is None:
            return False, False
        k = (key, value)
        prev = self.keys.get(k)
        new = not (prev is not None and prev > ts - self.w)
        if mask:
            if prev is not None:
                self.keys.move_to_end(k)
            self.keys[k] = ts
        return new, False

    def dump(self):
        return [[k, v, ts] for (k, v), ts in self.keys.items()]

    def load(self, data):
        self.keys = OrderedDict(((k, v), int(ts)) for k, v, ts in data)


AGGREGATE_CLASSES = {"count": _Count, "sum": _Sum, "avg": _Sum, "min": _Extreme, "max": _Extreme,
                "distinct": _Distinct, "is_new": _IsNew}
