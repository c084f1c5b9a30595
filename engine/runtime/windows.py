"""Sliding event-time window aggregates, vectorised.

For a record r of stream S with key k, an aggregate covers the records of S
with key k, ts in ``(ts_r - w, ts_r]`` and at or before r in the total order
(docs/design.md §5). Rows are sorted by (key, total order); because ts never goes
down inside a key, every window is a contiguous slice ``[start_r, r]`` and
the starts never go down either. That turns every aggregate into prefix sums,
interval counting or a sparse table: no per-record Python loop.
:data:`WINDOW_BODIES` holds the batch body of each aggregate of ``lang.aggregates``.

Sums are computed on integers scaled by ``SUM_SCALE`` so that every executor,
in any order of addition, gets bit-identical totals (exact to 4 decimals).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..columns.hashing import union_codes
from ..columns.vec import (
    Coded,
    Vec,
    arrow_texts,
    distinct_values,
    row_index,
    search_sorted,
    sorted_distinct,
    stable_order,
)

NS = 1_000_000_000  # nanoseconds per second: durations are seconds, timestamps int64 ns

SUM_SCALE = 10_000


def factorize(values: np.ndarray, null: np.ndarray) -> np.ndarray:
    """Integer codes for values (dense, in first-seen order); -1 where null."""
    # dtype given: pandas would infer a string dtype from object text
    codes, _ = pd.factorize(pd.Series(values, dtype=values.dtype), use_na_sentinel=True)
    codes = codes.astype(np.int64)
    codes[null] = -1
    return codes


def object_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(codes, distinct values) of an object array, like ``pd.factorize`` but hashing each distinct
    *object* once (columns.vec.distinct_values)."""
    uniq, codes = distinct_values(np.asarray(values, dtype=object))
    return codes, uniq


class ColumnCodes:
    """Integer codes of a column's values (-1 = null) and the distinct value of each code: ``uniq``,
    an object array, or for coded text ``arrow``, an Arrow string array (objects made only if read)."""

    def __init__(self, vec: Vec):
        self.arrow = None
        self._uniq: np.ndarray | None = None
        if isinstance(vec, Coded):  # text read as codes: ranked from them, no text hashed
            used, rank = vec.used()
            local = rank[vec.codes]
            self.arrow = vec.arrow.take(used)  # type: ignore[attr-defined]
        else:
            local, self._uniq = object_codes(vec.values if vec.values.dtype == object else vec.values.astype(object))
        local[vec.null] = -1
        self.codes = row_index(local)

    @property
    def uniq(self) -> np.ndarray:
        if self._uniq is None:
            self._uniq = arrow_texts(self.arrow)
        return self._uniq


def joint_codes(a: ColumnCodes, b: ColumnCodes) -> tuple[np.ndarray, np.ndarray]:
    """Codes of two columns in one space, so that a join compares integers: only the distinct
    values of the two are hashed, not their rows (their bytes, when both are coded text; either way in
    first-seen order, as ``pd.factorize``)."""
    if a is b:
        return a.codes, b.codes
    if a.arrow is not None and b.arrow is not None and not (a.arrow.null_count or b.arrow.null_count):
        both = union_codes(a.arrow, b.arrow)
        na = len(a.arrow)
    else:
        both, _ = pd.factorize(np.concatenate([a.uniq, b.uniq]), use_na_sentinel=False)
        na = len(a.uniq)
    both = row_index(np.r_[both.astype(np.int64), -1])  # a row's -1 (null) takes the last slot: -1 again
    return (np.r_[both[:na], -1][a.codes], np.r_[both[na:-1], -1][b.codes])


def sorted_ranks(ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values, rank of each value among them) of timestamps in the total order: ts never
    goes down in a table, so one pass instead of a hashed ``np.unique``."""
    n = len(ts)
    if n and not (ts[1:] >= ts[:-1]).all():  # not sorted (not expected): the general way
        uniq, ranks = np.unique(ts, return_inverse=True)
        return uniq, ranks.astype(np.int64)
    new = np.r_[True, ts[1:] != ts[:-1]] if n else np.zeros(0, dtype=bool)
    return ts[new], np.cumsum(new, dtype=np.int64) - 1


def composite_searchsorted(codes: np.ndarray, ts: np.ndarray, q_codes: np.ndarray, q_ts: np.ndarray,
                           side: str) -> np.ndarray:
    """searchsorted over rows sorted by (code, ts), for (code, ts) queries."""
    return CompositeIndex(codes, ts).search(q_codes, q_ts, side)


def code_ts_order(codes: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """``np.lexsort((ts, codes))``: positions by code, then ts, then position. When ts already ascends (a
    step's rows in table order) one stable sort by code gives it, several times faster than lexsort's two
    passes at millions of rows."""
    if len(ts) > 1 and bool((ts[1:] >= ts[:-1]).all()):
        return stable_order(codes)[0]
    return np.lexsort((ts, codes))


class CompositeIndex:
    """Rows sorted by (code, ts) as one int64 key: code * (U + 1) + rank of ts.

    Ranks come from the rows' own distinct timestamps, computed once, so an
    index answers many searches (one per window) with two binary searches.
    """

    def __init__(self, codes: np.ndarray, ts: np.ndarray, ranks: tuple[np.ndarray, np.ndarray] | None = None):
        """``ranks``: (distinct timestamps, rank of each row's ts among them), when known; any
        superset of the rows' timestamps serves, the searches only need every ts in it."""
        self.n = len(codes)
        if ranks is None:
            self.uniq = sorted_distinct(ts)
            rank = search_sorted(self.uniq, ts)
        else:
            self.uniq, rank = ranks
        self.width = len(self.uniq) + 1
        self.lo = int(codes.min()) if self.n else 0
        self.keys = (codes.astype(np.int64) - self.lo) * self.width + rank  # int64: codes may be int32

    def search(self, q_codes: np.ndarray, q_ts: np.ndarray, side: str) -> np.ndarray:
        if self.n == 0 or len(q_codes) == 0:
            return np.zeros(len(q_codes), dtype=np.int64)
        return self.search_ranked(q_codes, search_sorted(self.uniq, q_ts, side=side), side)

    def search_between(self, q_codes: np.ndarray, lo_ts: np.ndarray, hi_ts: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
        """``search(q_codes, lo_ts, "left")`` and ``search(q_codes, hi_ts, "right")``: the rows of each query's
        code with ts in [lo_ts, hi_ts]. A step's candidates come in ts order: one stable sort by code puts
        them in the index's order for both searches, where each search would sort them again."""
        m = len(q_codes)
        if self.n == 0 or m == 0:
            return np.zeros(m, dtype=np.int64), np.zeros(m, dtype=np.int64)
        pos_lo = search_sorted(self.uniq, lo_ts, side="left")
        pos_hi = search_sorted(self.uniq, hi_ts, side="right")
        order, codes = stable_order(np.asarray(q_codes))
        lo, hi = np.empty(m, dtype=np.int64), np.empty(m, dtype=np.int64)
        lo[order] = self.search_ranked(codes, pos_lo[order], "left")
        hi[order] = self.search_ranked(codes, pos_hi[order], "right")
        return lo, hi

    def search_ranked(self, q_codes: np.ndarray, q_pos: np.ndarray, side: str) -> np.ndarray:
        """``search`` with ``q_pos`` = np.searchsorted(self.uniq, q_ts, side) already known."""
        if self.n == 0 or len(q_codes) == 0:
            return np.zeros(len(q_codes), dtype=np.int64)
        base = (np.asarray(q_codes, dtype=np.int64) - self.lo) * self.width
        if side == "left":  # first row with (code, ts) >= query
            q = base + q_pos
        else:  # first row with (code, ts) > query; rank - 1 may be -1, still above the previous code
            q = base + q_pos - 1
        out = search_sorted(self.keys, q, side=side)  # queries in a step's order, not the index's
        # queries whose code lies outside the indexed codes land at the ends
        out = np.where(q_codes < self.lo, 0, out)
        return out


@dataclass
class GroupIndex:
    """Rows of one table ordered by (key, total order)."""

    order: np.ndarray  # table row of each sorted position
    codes: np.ndarray  # key code per sorted position (-1 = null key, sorted first)
    table_ts: np.ndarray  # ts per table row: the table's own column, not a copy
    _index: CompositeIndex | None = None
    _ranks: tuple[np.ndarray, np.ndarray] | None = None  # (distinct ts, rank per sorted position)

    @staticmethod
    def build(key: Vec, ts: np.ndarray, codes: np.ndarray | None = None,
              ranks: tuple[np.ndarray, np.ndarray] | None = None) -> GroupIndex:
        """``codes``: the key's codes (KeyCodes), when known; ``ranks``: sorted_ranks(ts)."""
        codes = factorize(key.values, key.null) if codes is None else codes
        order, sc = stable_order(codes)  # stable: the table is already in total order
        sorted_ranks_ = None if ranks is None else (ranks[0], ranks[1][order])
        return GroupIndex(row_index(order), sc, ts, _ranks=sorted_ranks_)

    @property
    def ts(self) -> np.ndarray:
        """ts per sorted position, made when asked: a window body reads it once, and holding it took 8 bytes a
        row for every (stream, key) of the rules for the whole run."""
        return self.table_ts[self.order]

    def search_index(self) -> CompositeIndex:
        """The (key, ts) search index of the rows, built on first use."""
        if self._index is None:
            self._index = CompositeIndex(self.codes, self.ts if self._ranks is None else self.table_ts, self._ranks)
            self._ranks = None  # only the index needed them: 8 bytes a row less while the group is held
        return self._index

    def window_start(self, window_ns: int, at: np.ndarray | None = None) -> np.ndarray:
        """First sorted position of each row's window (ts > ts_r - w, same key); with ``at``, of the rows
        at those sorted positions only."""
        index = self.search_index()
        if at is not None:
            return index.search(self.codes[at], self.table_ts[self.order[at]] - window_ns, side="right")
        # ts - w searched in table order, where it goes up (numpy keeps the last answer as the lower
        # bound and memory stays in cache: ~5x faster than in key order, which jumps), then permuted
        pos = search_sorted(index.uniq, self.table_ts - window_ns, side="right")[self.order]
        return row_index(index.search_ranked(self.codes, pos, side="right"))  # held for the run

    def scatter(self, sorted_values: np.ndarray, sorted_null: np.ndarray) -> Vec:
        values = np.empty_like(sorted_values)
        null = np.empty_like(sorted_null)
        values[self.order] = sorted_values
        null[self.order] = sorted_null
        return Vec(values, null)


def _merged_order(src_seq: np.ndarray, q_seq: np.ndarray) -> np.ndarray:
    """The order of [source rows, query rows] by seq, a source row first at an equal seq, stable: as
    ``stable_order(np.r_[src_seq * 2, q_seq * 2 + 1])``. Both are ascending as tables are (the usual
    case): a merge, without sorting or a fused key per row; else that sort."""
    ns, nq = len(src_seq), len(q_seq)
    if not ((src_seq[1:] >= src_seq[:-1]).all() and (q_seq[1:] >= q_seq[:-1]).all()):
        return stable_order(np.r_[src_seq * 2, q_seq * 2 + 1])[0]
    q_at = np.searchsorted(src_seq, q_seq, side="right")  # the source rows at or before each query...
    q_at += np.arange(nq)  # ...and the queries before it: its merged position
    order = np.empty(ns + nq, dtype=np.int64)
    is_src = np.ones(ns + nq, dtype=bool)
    is_src[q_at] = False
    order[q_at] = np.arange(ns, ns + nq)
    order[is_src] = np.arange(ns)
    return order


def _in_order(src: np.ndarray, q: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``np.r_[src, q][order]``, without the joined copy."""
    out = np.empty(len(order), dtype=np.result_type(src, q))
    is_src = order < len(src)
    out[is_src] = src[order[is_src]]
    out[~is_src] = q[order[~is_src] - len(src)]
    return out


@dataclass
class ForeignIndex:
    """The windows of ``agg(..., stream=s, key=f)``: the records of s (the *source*) and the records the
    aggregate is read at (the *queries*) in one table sorted by (key code, total order), a query after the
    source record at its own position, so that a query's window ``[start, own position]`` holds exactly the
    source records with f equal to its key, ts in (t - w, t] and at or before it. Queries count for nothing
    (their where= is false), so every window body of WINDOW_BODIES applies unchanged."""

    group: GroupIndex
    source_row: np.ndarray  # per sorted position: the source row, -1 at a query
    query_pos: np.ndarray  # per query row: its sorted position

    @staticmethod
    def build(src_codes: np.ndarray, src_seq: np.ndarray, src_ts: np.ndarray,
              q_codes: np.ndarray, q_seq: np.ndarray, q_ts: np.ndarray) -> ForeignIndex:
        """``src_codes`` and ``q_codes`` in one code space (joint_codes), -1 for a null key."""
        ns, nq = len(src_codes), len(q_codes)
        # total order; source first at the same record (role 0 before 1)
        order = _merged_order(src_seq, q_seq)
        ts = _in_order(src_ts, q_ts, order)
        codes = _in_order(src_codes, q_codes, order)
        g = GroupIndex.build(Vec(codes, codes < 0), ts, codes, sorted_ranks(ts))
        del ts, codes  # the group holds the ts (in total order) and its own codes, sorted by key
        combined = order[g.order]  # per sorted position: the index into source rows + query rows
        del order
        at_query = np.flatnonzero(combined >= ns)  # the sorted positions of the queries
        query_pos = np.empty(nq, dtype=np.int64)
        query_pos[combined[at_query] - ns] = at_query
        return ForeignIndex(g, np.where(combined < ns, combined, -1), query_pos)

    def rows_of(self, rec: np.ndarray) -> ForeignIndex:
        """The index over expanded source rows (``key=[f1, f2]``: one per record and field) with each source
        position pointing at its record instead, so conditions and values are read per record."""
        sr = self.source_row
        return ForeignIndex(self.group, np.where(sr >= 0, rec[np.maximum(sr, 0)] if len(rec) else -1, -1),
                            self.query_pos)

    def sorted_mask(self, src_mask: np.ndarray) -> np.ndarray:
        """A source condition per sorted position; false at the queries."""
        src = self.source_row >= 0
        out = np.zeros(len(self.source_row), dtype=bool)
        out[src] = src_mask[self.source_row[src]]
        return out

    def sorted_values(self, src: Vec) -> Vec:
        """A source value per sorted position; null at the queries."""
        take = np.maximum(self.source_row, 0)
        values = src.values[take] if len(src.values) else np.zeros(len(take), dtype=src.values.dtype)
        null = src.null[take] if len(src.null) else np.ones(len(take), dtype=bool)
        return Vec(values, null | (self.source_row < 0))

    def sorted_codes(self, src_codes: np.ndarray) -> np.ndarray:
        """Value codes of the source per sorted position; -1 (null) at the queries."""
        out = np.full(len(self.source_row), -1, dtype=np.int64)
        src = self.source_row >= 0
        out[src] = src_codes[self.source_row[src]]
        return out


def _prefix(x: np.ndarray) -> np.ndarray:
    """Exclusive-inclusive prefix sums: out[i + 1] = sum(x[:i + 1]), out[0] = 0."""
    dtype = object if x.dtype == object else np.result_type(x.dtype, np.int64)
    out = np.zeros(len(x) + 1, dtype=dtype)
    np.cumsum(x, dtype=dtype, out=out[1:])  # into place: no second array of the sums
    return out


def _since_start(c: np.ndarray, start: np.ndarray) -> np.ndarray:
    """From prefix sums ``c``, the total over ``[start_i, i]`` at each row: written over the gathered starts,
    so that one array a row is made (a count over 5M rows held four 8-byte temporaries at once)."""
    out = c[start]
    np.subtract(c[1:], out, out=out)
    return out


def window_count(start: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Rows where ``mask`` in ``[start_i, i]``."""
    return _since_start(_prefix(mask), start)


_INT64_SAFE = float(2**62)


def scaled(values: np.ndarray) -> np.ndarray:
    """Values as integers in units of 1/SUM_SCALE: int64, or Python ints (object
    array) when the values are too large for int64 sums to be safe."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(over="ignore"):  # an infinite total just takes the exact path
        magnitude = float(np.abs(values).sum()) if len(values) else 0.0
    if magnitude * SUM_SCALE < _INT64_SAFE:
        return np.round(values * SUM_SCALE).astype(np.int64)
    out = np.empty(len(values), dtype=object)
    out[:] = [_scaled_one(v) for v in values.tolist()]  # rare: totals beyond 9e14
    return out


def _scaled_one(v: float) -> int:
    if abs(v) < 1e15:
        return int(round(v * SUM_SCALE))
    # v * SUM_SCALE may overflow to infinity (v near 1.8e308); a float this large is an integer anyway
    return int(v) * SUM_SCALE if math.isfinite(v) else 0


def unscale(total: np.ndarray) -> np.ndarray:
    """Scaled integer totals back to float64 (float(total) / SUM_SCALE); a total beyond float64 is
    infinite, with its sign."""
    total = np.asarray(total)
    if total.dtype != object:
        return total.astype(np.float64) / SUM_SCALE
    return np.array([_unscaled_one(t) for t in total.tolist()], dtype=np.float64)


def _unscaled_one(total: int) -> float:
    try:
        return float(total) / SUM_SCALE  # as the stream executor's aggregates do, to the bit
    except OverflowError:
        return math.inf if total > 0 else -math.inf


def window_sum(start: np.ndarray, values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Window sums as scaled integers (int64, or exact Python ints when huge)."""
    return _since_start(_prefix(scaled(np.where(mask, values, 0.0))), start)


def window_extreme(start: np.ndarray, values: np.ndarray, mask: np.ndarray, fn) -> tuple[np.ndarray, np.ndarray]:
    """Min or max over ``[start_i, i]`` with a sparse table; null when no row counts."""
    return extreme_between(start, np.arange(len(values)), values, mask, fn)


def extreme_between(lo: np.ndarray, hi: np.ndarray, values: np.ndarray, mask: np.ndarray,
                    fn) -> tuple[np.ndarray, np.ndarray]:
    """Min or max over the rows ``[lo_q, hi_q]`` of each query (empty when lo > hi) with a sparse table;
    null when no row counts."""
    n = len(values)
    m = len(lo)
    if n == 0 or m == 0:
        return np.zeros(m, dtype=np.float64), np.ones(m, dtype=bool)
    fill = np.inf if fn is np.minimum else -np.inf
    level = np.where(mask, values.astype(np.float64), fill)
    table = [level]
    span = 1
    while span * 2 <= n:
        prev = table[-1]
        nxt = prev.copy()
        nxt[: n - span] = fn(prev[: n - span], prev[span:])
        table.append(nxt)
        span *= 2
    length = hi - lo + 1
    empty = length <= 0
    lo, hi = np.where(empty, 0, lo), np.where(empty, 0, hi)
    k = np.floor(np.log2(np.maximum(length, 1))).astype(np.int64)
    out = np.empty(m, dtype=np.float64)
    for lv in np.unique(k):  # one pass per power of two, not per row
        sel = k == lv
        width = 1 << int(lv)
        out[sel] = fn(table[lv][lo[sel]], table[lv][hi[sel] - width + 1])
    null = ~np.isfinite(out) | empty
    return np.where(null, 0.0, out), null


def previous_same(g: GroupIndex, values: Vec, valid: np.ndarray, vcodes: np.ndarray | None = None) -> np.ndarray:
    """For each sorted row, the latest earlier sorted row of the same key with
    the same value (in sorted order too) among rows where ``valid``; -1 when there is none.
    ``vcodes``: the values' codes per sorted row, when known (KeyCodes)."""
    n = len(valid)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    vcodes = factorize(values.values, values.null) if vcodes is None else vcodes
    # by key, value, position: one stable sort of one integer (dense value codes keep it in int64).
    # Codes from KeyCodes or factorize are dense already (-1 .. rows - 1): hashing them again only
    # renumbers the values, and the runs of equal (key, value) do not depend on the numbering.
    dense = vcodes if int(vcodes.min()) >= -1 and int(vcodes.max()) < n else pd.factorize(vcodes)[0]
    width = int(dense.max()) + 2 if n else 1
    kmin = int(g.codes.min())
    run_order = np.argsort((g.codes.astype(np.int64) - kmin) * width + (dense + 1), kind="stable")
    del dense  # each temporary goes as soon as the next is made: a row of the context costs 8 bytes each
    rk, rv = g.codes[run_order], vcodes[run_order]
    new_run = np.r_[True, (rk[1:] != rk[:-1]) | (rv[1:] != rv[:-1])]
    del rk, rv
    positions = np.arange(n)
    run_start = np.maximum.accumulate(np.where(new_run, positions, 0))
    del new_run
    latest = np.maximum.accumulate(np.where(valid[run_order], positions, -1))
    del positions
    prev_in_run = np.r_[-1, latest[:-1]]
    del latest
    prev_in_run = np.where(prev_in_run >= run_start, prev_in_run, -1)
    del run_start
    out = np.full(n, -1, dtype=np.int64)
    hit = prev_in_run >= 0
    out[run_order[hit]] = run_order[prev_in_run[hit]]
    out[vcodes < 0] = -1
    return out


def window_distinct(g: GroupIndex, start: np.ndarray, values: Vec, valid: np.ndarray,
                    vcodes: np.ndarray | None = None) -> np.ndarray:
    """Distinct non-null values in ``[start_i, i]``.

    Row j (valid) counts at row i when start_i <= j <= i and its previous
    occurrence lies before start_i. Because starts never go down, those i form
    one interval per j; counting covering intervals is a difference array.
    """
    n = len(valid)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    prev = previous_same(g, values, valid, vcodes)
    js = np.flatnonzero(valid)
    # last i with start_i <= j
    hi = np.searchsorted(start, js, side="right") - 1
    # first i with start_i > prev_j (any i when there is no previous); prev_j nearly ascends, which numpy's own
    # search walks well: search_sorted's sort first took 1.5 s here at 10M records against 1.0 s
    lo = np.where(prev[js] < 0, js, np.maximum(js, np.searchsorted(start, prev[js], side="right")))
    keep = lo <= hi
    diff = np.bincount(lo[keep], minlength=n + 1) - np.bincount(hi[keep] + 1, minlength=n + 1)
    return np.cumsum(diff[:n])


def is_new(g: GroupIndex, window_ns: int, values: Vec, valid: np.ndarray,
           vcodes: np.ndarray | None = None) -> np.ndarray:
    """True when no earlier row of the key had this value within the window."""
    n = len(valid)
    if n == 0:
        return np.zeros(0, dtype=bool)
    # earlier rows count when they pass where=; the row itself need not
    prev = previous_same(g, values, valid, vcodes)
    has_value = ~values.null
    recent = np.zeros(n, dtype=bool)
    hit = prev >= 0
    recent[hit] = g.ts[prev[hit]] > g.ts[hit] - window_ns
    return has_value & ~recent


# --- the batch body of each aggregate (lang.aggregates), by name ---------------------


@dataclass
class Window:
    """The rows of one window aggregate, sorted by (key, total order), and each row's window start."""

    group: GroupIndex
    start: np.ndarray
    window_ns: int
    value_codes: np.ndarray | None = None  # codes of the value per sorted row, when known (KeyCodes)


# (window, the value per sorted row or None, where= per sorted row) -> (result, null) per sorted row
WindowBody = Callable[[Window, Vec | None, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _count(w: Window, value: Vec | None, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return window_count(w.start, mask).astype(np.float64), np.zeros(len(mask), dtype=bool)


def _sum(w: Window, value: Vec, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    total = window_sum(w.start, value.values, mask & ~value.null)
    return unscale(total), np.zeros(len(mask), dtype=bool)


def _avg(w: Window, value: Vec, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    valid = mask & ~value.null
    count = window_count(w.start, valid)
    with np.errstate(invalid="ignore", divide="ignore"):
        avg = unscale(window_sum(w.start, value.values, valid)) / count
    return np.where(count > 0, avg, 0.0), count == 0


def _min(w: Window, value: Vec, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return window_extreme(w.start, value.values, mask & ~value.null, np.minimum)


def _max(w: Window, value: Vec, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return window_extreme(w.start, value.values, mask & ~value.null, np.maximum)


def _distinct(w: Window, value: Vec, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    counts = window_distinct(w.group, w.start, value, mask & ~value.null, w.value_codes)
    return counts.astype(np.float64), np.zeros(len(mask), dtype=bool)


def _is_new(w: Window, value: Vec, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return is_new(w.group, w.window_ns, value, mask, w.value_codes), np.zeros(len(mask), dtype=bool)


def stddev_of(n: int, s1: int, s2: int) -> float | None:
    """Sample standard deviation from the count and the exact sums of scaled values and their
    squares: one correctly rounded division of integers, then a correctly rounded sqrt, so that
    every executor gets the same float."""
    if n < 2:
        return None
    num = n * s2 - s1 * s1
    return math.sqrt(max(num, 0) / (n * (n - 1) * SUM_SCALE * SUM_SCALE))


def _stddev(w: Window, value: Vec, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    valid = mask & ~value.null
    # scaled values and their squares as Python ints (squares pass int64), summed exactly in numpy
    units = scaled(np.where(valid, value.values, 0.0)).astype(object)
    c1, c2 = _prefix(units), _prefix(units * units)
    i = np.arange(len(mask))
    n = window_count(w.start, valid)
    s1, s2 = c1[i + 1] - c1[w.start], c2[i + 1] - c2[w.start]
    ok = n >= 2
    out = np.zeros(len(mask), dtype=np.float64)
    if ok.any():  # as stddev_of: (n*s2 - s1^2) / (n(n-1) scale^2), one rounding, then sqrt
        no = n[ok].astype(object)
        num = no * s2[ok] - s1[ok] * s1[ok]
        out[ok] = np.sqrt(np.maximum((num / (no * (no - 1) * (SUM_SCALE * SUM_SCALE))).astype(np.float64), 0.0))
    return out, ~ok


def median_of(values: list[float]) -> float | None:
    """The median of values sorted ascending: the middle one (odd count), or the mean of the two middle ones
    (even count) from their exact 4-decimal units, ``(A + B) / (2 * SUM_SCALE)`` rounded once, so that the
    median of 0.1 and 0.2 is 0.15 as their avg is; None for no values. Shared by every executor."""
    n = len(values)
    if n == 0:
        return None
    if n % 2:
        return values[n // 2]
    units = _scaled_one(values[n // 2 - 1]) + _scaled_one(values[n // 2])
    try:
        return units / (2 * SUM_SCALE)  # int / int: correctly rounded
    except OverflowError:
        return math.inf if units > 0 else -math.inf


def kth_smallest(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Per query, the position in ``values`` of the k-th smallest (from 0) of ``values[lo:hi]``, equal values
    ordered by position; every query needs ``0 <= k < hi - lo``.

    A wavelet matrix over the values' ranks, built and queried one bit at a time: at each level a query's range
    goes to the zeros or the ones of that bit, so the work is O((n + queries) log n) numpy passes with one level
    in memory, whatever the ranges' lengths."""
    order = np.argsort(values, kind="stable")
    n = len(values)
    int_ = np.int32 if n < 2**31 else np.int64  # int32 halves what each pass reads
    arr = np.empty(n, dtype=int_)
    arr[order] = np.arange(n, dtype=int_)  # each row's rank
    lo, hi, k = (x.astype(int_) for x in (lo, hi, k))
    rank = np.zeros(len(k), dtype=int_)
    zeros = np.zeros(n + 1, dtype=int_)
    is_zero, bits = np.empty(n, dtype=bool), np.empty(n, dtype=int_)
    for bit in reversed(range(max(n - 1, 0).bit_length())):
        np.bitwise_and(arr, 1 << bit, out=bits)
        np.equal(bits, 0, out=is_zero)
        np.cumsum(is_zero, out=zeros[1:])
        zl, zr = zeros[lo], zeros[hi]
        inside = zr - zl
        right = k >= inside  # fewer than k + 1 zeros in range: the answer has this bit set
        k -= inside * right
        lo = np.where(right, lo - zl + zeros[n], zl)
        hi = np.where(right, hi - zr + zeros[n], zr)
        rank |= right.astype(int_) << bit
        arr = np.concatenate((arr[is_zero], arr[~is_zero]))  # the next level: this bit's zeros, then its ones
    return order[rank]


def middle_of_sorted(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """median_of's even case for arrays: the mean of the two middle values from their exact 4-decimal units."""
    a, b = scaled(low), scaled(high)
    if a.dtype != object and b.dtype != object:  # scaled() keeps int64 only where sums of them stay exact
        units = a + b
        if len(units) == 0 or np.abs(units).max() < 2**53:  # exact in float64: one IEEE division is the
            return units.astype(np.float64) / (2 * SUM_SCALE)  # correctly rounded int / int
    return np.array([median_of([x, y]) for x, y in zip(low.tolist(), high.tolist())], dtype=np.float64)


def _median(w: Window, value: Vec, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The counting values of window ``[start_i, i]`` are a range of the counting rows; its middle one or two
    come from kth_smallest."""
    n = len(mask)
    out, null = np.zeros(n, dtype=np.float64), np.ones(n, dtype=bool)
    valid = mask & ~value.null
    counted = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(valid, out=counted[1:])
    lo, hi = counted[w.start], counted[1:]  # each row's window as a range of the counting rows
    size = hi - lo
    vals = value.values.astype(np.float64)[valid]
    odd, even = np.flatnonzero(size % 2 == 1), np.flatnonzero((size > 0) & (size % 2 == 0))
    lo2, hi2 = np.r_[lo[odd], lo[even], lo[even]], np.r_[hi[odd], hi[even], hi[even]]
    k = np.r_[size[odd] // 2, size[even] // 2 - 1, size[even] // 2]
    at = vals[kth_smallest(vals, lo2, hi2, k)] if len(k) else np.zeros(0)
    out[odd] = at[:len(odd)]
    out[even] = middle_of_sorted(at[len(odd):len(odd) + len(even)], at[len(odd) + len(even):])
    null[odd] = null[even] = False
    return out, null


def _since_prev(w: Window, value: Vec | None, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Seconds since the latest earlier row (passing where=) in the row's window, null when none."""
    n = len(mask)
    if n == 0:
        return np.zeros(0), np.zeros(0, dtype=bool)
    latest = np.maximum.accumulate(np.where(mask, np.arange(n), -1))
    prev = np.r_[-1, latest[:-1]]  # the latest counting row strictly before each row
    found = (prev >= 0) & (prev >= w.start)  # the window starts inside the row's own key
    out = np.zeros(n)
    ts = w.group.ts
    # int64 nanoseconds to float64, then / 1e9: the same two roundings as `ts - x.ts` in an expression
    out[found] = (ts[found] - ts[prev[found]]).astype(np.float64) / NS
    return out, ~found


WINDOW_BODIES: dict[str, WindowBody] = {
    "count": _count, "sum": _sum, "avg": _avg, "min": _min, "max": _max, "distinct": _distinct, "is_new": _is_new,
    "since_prev": _since_prev, "stddev": _stddev, "median": _median,
}


# --- windows that start at an earlier step (``where=ts > swap.ts``), one per chain --------------------


@dataclass
class Slices:
    """Per query (a chain), the window as sorted rows ``[lo, hi]`` of one key (empty when lo > hi): ``hi`` is the
    row the aggregate is evaluated at, ``lo`` the later of its window start and the first row after the bound."""

    group: GroupIndex
    lo: np.ndarray
    hi: np.ndarray
    value_codes: np.ndarray | None = None
    prev: np.ndarray | None = None  # distinct: previous_same of the counting rows, when known

    def take(self, sel: np.ndarray | slice) -> Slices:
        return Slices(self.group, self.lo[sel], self.hi[sel], self.value_codes, self.prev)

    def expand(self) -> tuple[np.ndarray, np.ndarray]:
        """(query, sorted row) for every row of every slice: work bounded by the slices' total length."""
        counts = np.maximum(self.hi - self.lo + 1, 0)
        q = np.repeat(np.arange(len(counts)), counts)
        offsets = np.cumsum(counts) - counts
        return q, self.lo[q] + (np.arange(len(q)) - offsets[q])


def _slice_total(s: Slices, x: np.ndarray) -> np.ndarray:
    c = _prefix(x)
    return c[s.hi + 1] - c[np.minimum(s.lo, s.hi + 1)]


def _b_count(s: Slices, value: Vec | None, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return _slice_total(s, mask.astype(np.int64)).astype(np.float64), np.zeros(len(s.lo), dtype=bool)


def _b_sum(s: Slices, value: Vec, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return unscale(_slice_total(s, scaled(np.where(mask & ~value.null, value.values, 0.0)))), \
        np.zeros(len(s.lo), dtype=bool)


def _b_avg(s: Slices, value: Vec, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    valid = mask & ~value.null
    count = _slice_total(s, valid.astype(np.int64))
    with np.errstate(invalid="ignore", divide="ignore"):
        avg = unscale(_slice_total(s, scaled(np.where(valid, value.values, 0.0)))) / count
    return np.where(count > 0, avg, 0.0), count == 0


def _b_min(s: Slices, value: Vec, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return extreme_between(s.lo, s.hi, value.values, mask & ~value.null, np.minimum)


def _b_max(s: Slices, value: Vec, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return extreme_between(s.lo, s.hi, value.values, mask & ~value.null, np.maximum)


def _b_distinct(s: Slices, value: Vec, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A row counts iff its previous row with the same value on the key lies before the slice."""
    valid = mask & ~value.null
    prev = previous_same(s.group, value, valid, s.value_codes) if s.prev is None else s.prev
    q, pos = s.expand()
    first = valid[pos] & (prev[pos] < s.lo[q])
    return np.bincount(q[first], minlength=len(s.lo)).astype(np.float64), np.zeros(len(s.lo), dtype=bool)


def _b_stddev(s: Slices, value: Vec, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    valid = mask & ~value.null
    units = scaled(np.where(valid, value.values, 0.0)).astype(object)
    n = _slice_total(s, valid.astype(np.int64))
    s1, s2 = _slice_total(s, units), _slice_total(s, units * units)
    ok = n >= 2
    out = np.zeros(len(s.lo), dtype=np.float64)
    if ok.any():  # as stddev_of
        no = n[ok].astype(object)
        num = no * s2[ok] - s1[ok] * s1[ok]
        out[ok] = np.sqrt(np.maximum((num / (no * (no - 1) * (SUM_SCALE * SUM_SCALE))).astype(np.float64), 0.0))
    return out, ~ok


def _b_median(s: Slices, value: Vec, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each slice's counting values sorted (one lexsort over all slices), then the middle one or two."""
    m = len(s.lo)
    valid = mask & ~value.null
    q, pos = s.expand()
    keep = valid[pos]
    q, vals = q[keep], value.values.astype(np.float64)[pos[keep]]
    order = np.lexsort((vals, q))
    q, vals = q[order], vals[order]
    n = np.bincount(q, minlength=m)
    first = np.cumsum(n) - n
    out, null = np.zeros(m, dtype=np.float64), n == 0
    odd = (n % 2 == 1)
    out[odd] = vals[first[odd] + n[odd] // 2]
    even = np.flatnonzero((n > 0) & ~odd)
    out[even] = middle_of_sorted(vals[first[even] + n[even] // 2 - 1], vals[first[even] + n[even] // 2])
    return out, null


def _b_since_prev(s: Slices, value: Vec | None, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The latest counting row strictly before the slice's last row, inside the slice."""
    latest = np.maximum.accumulate(np.where(mask, np.arange(len(mask)), -1)) if len(mask) else np.zeros(0, np.int64)
    prev = np.where(s.hi > 0, latest[np.maximum(s.hi - 1, 0)] if len(latest) else -1, -1)
    found = (prev >= 0) & (prev >= s.lo) & (s.lo <= s.hi)
    out = np.zeros(len(s.lo))
    ts = s.group.ts
    out[found] = (ts[s.hi[found]] - ts[prev[found]]).astype(np.float64) / NS
    return out, ~found


EXPANDED_ROWS = 1 << 18  # rows of slices that distinct_expanded expands at once


def distinct_expanded(s: Slices, value: Vec, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """_b_distinct by expanding the slices: each slice's distinct (slice, value code) pairs, with no
    previous_same over the whole group, for a few short slices (the batch executor's get_at). A value
    without a code (NaN) counts at each of its rows, as previous_same finds it no earlier row.

    The slices are expanded about EXPANDED_ROWS rows at a time: each is counted on its own, and
    expanding them all at once held about eight arrays of their total length at a time."""
    ends = np.cumsum(np.maximum(s.hi - s.lo + 1, 0))
    total = int(ends[-1]) if len(ends) else 0
    if total <= EXPANDED_ROWS:
        return _distinct_expanded(s, value, mask)
    cuts = np.searchsorted(ends, np.arange(EXPANDED_ROWS, total, EXPANDED_ROWS), side="right").tolist()
    out = np.zeros(len(s.lo), dtype=np.float64)
    for a, b in zip([0, *cuts], [*cuts, len(s.lo)]):
        if b > a:
            out[a:b] = _distinct_expanded(s.take(slice(a, b)), value, mask)[0]
    return out, np.zeros(len(s.lo), dtype=bool)


def _distinct_expanded(s: Slices, value: Vec, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    q, pos = s.expand()
    valid = mask[pos] & ~value.null[pos]
    q, pos = q[valid], pos[valid]
    codes = s.value_codes[pos] if s.value_codes is not None else factorize(value.values[pos], np.zeros(len(pos), bool))
    coded = codes >= 0
    width = int(codes.max(initial=0)) + 1
    pairs = sorted_distinct(q[coded].astype(np.int64) * width + codes[coded])
    counts = np.bincount(pairs // width, minlength=len(s.lo)) + np.bincount(q[~coded], minlength=len(s.lo))
    return counts.astype(np.float64), np.zeros(len(s.lo), dtype=bool)


SliceBody = Callable[[Slices, Vec | None, np.ndarray], tuple[np.ndarray, np.ndarray]]

# the batch body of each aggregate over a window that starts at an earlier step; is_new has none (the checker
# refuses ``is_new(x, w, where=ts > a.ts)``: it asks about the whole window)
SLICE_BODIES: dict[str, SliceBody] = {
    "count": _b_count, "sum": _b_sum, "avg": _b_avg, "min": _b_min, "max": _b_max, "distinct": _b_distinct,
    "since_prev": _b_since_prev, "stddev": _b_stddev, "median": _b_median,
}
