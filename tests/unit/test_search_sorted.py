"""columns/vec.py ``search_sorted``: numpy's searchsorted, with many unsorted queries sorted first.

The sorted path is what large runs take (a sequence's candidates searched in an index of chains, a
dictionary's hashes searched in another's); its thresholds keep it out of small inputs, so these
tests lower them to reach it with small arrays, and check every answer against ``np.searchsorted``.
"""

from __future__ import annotations

import contextlib
from unittest import mock

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudrules.columns import vec
from fraudrules.columns.vec import search_sorted
from fraudrules.runtime.windows import CompositeIndex, code_ts_order

INTS = st.integers(-(2**40), 2**40)
FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just(float("nan")), st.just(0.0),
                   st.just(-0.0))


def _always_sort():
    """Every call with two or more queries takes the sorting path (unsorted queries) or the merging path
    (sorted ones)."""
    return mock.patch.multiple(vec, SORT_QUERIES_FROM=2, SORT_QUERIES_PER_KEY=10**9, MERGE_QUERIES_PER_KEY=0)


def _sorts_taken():
    """A spy on the argsort that only the sorting path calls."""
    return mock.patch.object(vec.np, "argsort", wraps=np.argsort)


@settings(max_examples=300, deadline=None)
@given(st.lists(INTS, max_size=50), st.lists(INTS, max_size=80), st.sampled_from(["left", "right"]),
       st.sampled_from([np.int64, np.uint64]))
def test_integer_queries_answer_as_numpy(keys: list[int], queries: list[int], side: str, dtype) -> None:
    if dtype is np.uint64:  # hashes: unsigned, the top bit set for half of them
        keys = [k + 2**40 for k in keys]
        queries = [q + 2**40 for q in queries]
    k = np.sort(np.array(keys, dtype=dtype))
    q = np.array(queries, dtype=dtype)
    want = np.searchsorted(k, q, side=side)
    with _always_sort():
        got = search_sorted(k, q, side=side)
    assert got.dtype == np.int64
    assert got.tolist() == want.tolist()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-50, 50), max_size=30), st.lists(st.integers(-60, 60), max_size=120),
       st.sampled_from(["left", "right"]))
def test_sorted_queries_merged_answer_as_numpy(keys: list[int], queries: list[int], side: str) -> None:
    """Sorted queries, ties among keys and queries alike, answered by searching the keys among them."""
    k = np.sort(np.array(keys, dtype=np.int64))
    q = np.sort(np.array(queries, dtype=np.int64))
    with _always_sort(), _sorts_taken() as spy:
        got = search_sorted(k, q, side=side)
    assert not spy.called
    assert got.dtype == np.int64
    assert got.tolist() == np.searchsorted(k, q, side=side).tolist()


@settings(max_examples=200, deadline=None)
@given(st.lists(FLOATS, max_size=40), st.lists(FLOATS, max_size=60), st.sampled_from(["left", "right"]))
def test_float_queries_with_nan_answer_as_numpy(keys: list[float], queries: list[float], side: str) -> None:
    k = np.sort(np.array(keys, dtype=np.float64))  # NaN sorts last, as searchsorted expects
    q = np.array(queries, dtype=np.float64)
    with _always_sort():
        got = search_sorted(k, q, side=side)
    assert got.tolist() == np.searchsorted(k, q, side=side).tolist()


def test_the_sorting_path_is_taken_only_for_many_unsorted_queries() -> None:
    rng = np.random.default_rng(3)
    keys = np.sort(rng.integers(0, 10**9, 50_000))
    shuffled = rng.integers(0, 10**9, vec.SORT_QUERIES_FROM * 2)
    cases = [
        (shuffled, True),
        (np.sort(shuffled), False),  # already in order: numpy walks it well
        (shuffled[: vec.SORT_QUERIES_FROM - 1], False),  # too few to pay for a sort
        (rng.integers(0, 10**9, vec.SORT_QUERIES_PER_KEY * 1000 + 1), False),  # many more queries than keys
    ]
    for queries, sorts in cases:
        k = keys if len(queries) <= 2 * vec.SORT_QUERIES_FROM else keys[:1000]
        with _sorts_taken() as spy:
            got = search_sorted(k, queries, side="right")
        assert spy.called == sorts, (len(queries), sorts)
        assert got.tolist() == np.searchsorted(k, queries, side="right").tolist()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 30)), max_size=40),
       st.lists(st.tuples(st.integers(-1, 7), st.integers(-5, 35)), max_size=40), st.sampled_from(["left", "right"]))
def test_composite_index_searches_as_a_scan_on_the_sorting_path(rows, queries, side: str) -> None:
    """CompositeIndex.search over (code, ts) rows, the queries sorted first, against a scan of the rows."""
    rows = sorted(rows)
    codes = np.array([c for c, _ in rows], dtype=np.int64)
    ts = np.array([t for _, t in rows], dtype=np.int64)
    qc = np.array([c for c, _ in queries], dtype=np.int64)
    qt = np.array([t for _, t in queries], dtype=np.int64)
    with _always_sort():
        got = CompositeIndex(codes, ts).search(qc, qt, side)
    for (c, t), pos in zip(queries, got.tolist()):
        if not rows or c < rows[0][0]:
            assert pos == 0
            continue
        if c > rows[-1][0]:
            assert pos == len(rows)
            continue
        if side == "left":
            want = sum(1 for r in rows if r < (c, t))
        else:
            want = sum(1 for r in rows if r <= (c, t))
        assert pos == want, (rows, c, t, side)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 30)), max_size=40),
       st.lists(st.tuples(st.integers(-1, 7), st.integers(-5, 35)), max_size=40), st.integers(0, 12),
       st.booleans(), st.booleans())
def test_composite_index_searches_between_as_its_two_searches(rows, queries, within: int, in_ts_order: bool,
                                                              forced: bool) -> None:
    """search_between (one sort by code for both ends of a window) equals search "left" at ts - within and
    search "right" at ts, for queries in ts order (a step's candidates) or in any order."""
    rows = sorted(rows)
    index = CompositeIndex(np.array([c for c, _ in rows], dtype=np.int64), np.array([t for _, t in rows],
                                                                                       dtype=np.int64))
    if in_ts_order:
        queries = sorted(queries, key=lambda q: q[1])
    qc = np.array([c for c, _ in queries], dtype=np.int64)
    qt = np.array([t for _, t in queries], dtype=np.int64)
    with _always_sort() if forced else contextlib.nullcontext():
        lo, hi = index.search_between(qc, qt - within, qt)
        want_lo, want_hi = index.search(qc, qt - within, "left"), index.search(qc, qt, "right")
    assert lo.tolist() == want_lo.tolist()
    assert hi.tolist() == want_hi.tolist()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(-1, 6), st.integers(0, 20)), max_size=60), st.booleans())
def test_code_ts_order_is_lexsort(rows, ts_ascends: bool) -> None:
    """code_ts_order equals np.lexsort((ts, codes)), ties in position order included, whether or not ts
    ascends (the one-sort path) and with int32 codes."""
    if ts_ascends:
        rows = sorted(rows, key=lambda r: r[1])
    codes = np.array([c for c, _ in rows], dtype=np.int32)
    ts = np.array([t for _, t in rows], dtype=np.int64)
    assert code_ts_order(codes, ts).tolist() == np.lexsort((ts, codes)).tolist()
