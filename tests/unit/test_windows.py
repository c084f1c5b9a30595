"""runtime/windows.py: each aggregate's batch body over ``(ts - w, ts]``, by hand and against a loop.

Rows are given in the total order (ts never goes down), as a table holds them.
"""

from __future__ import annotations

import math
import statistics
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import fraudrules.runtime.windows as windows
from fraudrules.columns.vec import Vec, stable_order
from fraudrules.executors.stream.aggregates import STATE_CLASSES, bounded_at
from fraudrules.lang.aggregates import AGGREGATES
from fraudrules.lang.expr import Field
from fraudrules.runtime.plan import AggregateSpec
from fraudrules.runtime.windows import (
    SLICE_BODIES,
    SUM_SCALE,
    GroupIndex,
    Slices,
    _in_order,
    _merged_order,
    distinct_expanded,
)

MIN = 60 * 1_000_000_000  # ns
MINUTE_NS = MIN


def brute(func: str, minutes: list[float], values: list | None, keys: list, where: list[bool],
          window: float, bounds: list[tuple[float, bool]] | None = None, at: list[int] | None = None) -> list:
    """docs/design.md §5 written as a loop: rows j <= i of i's key with ts in (ts_i - w, ts_i] that pass where=;
    with ``bounds`` (minute, inclusive) per row, also ts > minute (ts >= minute): ``where=ts > swap.ts``."""
    out = []
    for i in range(len(minutes)) if at is None else at:
        rows = [j for j in range(i + 1)
                if keys[j] == keys[i] and minutes[i] - window < minutes[j] <= minutes[i] and where[j]
                and (bounds is None or minutes[j] > bounds[i][0] or bounds[i][1] and minutes[j] == bounds[i][0])]
        vals = [values[j] for j in rows if values[j] is not None] if values is not None else []
        if func == "count":
            out.append(float(len(rows)))
        elif func == "sum":
            out.append(sum(round(v * SUM_SCALE) for v in vals) / SUM_SCALE)
        elif func == "avg":
            out.append(sum(round(v * SUM_SCALE) for v in vals) / SUM_SCALE / len(vals) if vals else None)
        elif func == "min":
            out.append(min(vals, default=None))
        elif func == "max":
            out.append(max(vals, default=None))
        elif func == "distinct":
            out.append(float(len(set(vals))))
        elif func == "is_new":
            out.append(values[i] is not None and not any(values[j] == values[i] for j in rows if j < i))
        elif func == "stddev":  # exact variance of the 4-decimal values, rounded once, then sqrt
            exact = [Fraction(round(v * SUM_SCALE), SUM_SCALE) for v in vals]
            out.append(math.sqrt(float(statistics.variance(exact))) if len(exact) >= 2 else None)
        elif func == "median":  # the middle value, or the exact mean of the two middle 4-decimal values
            vs = sorted(vals)
            mid = len(vs) // 2
            out.append(None if not vs else vs[mid] if len(vs) % 2 else
                       float(Fraction(round(vs[mid - 1] * SUM_SCALE) + round(vs[mid] * SUM_SCALE), 2 * SUM_SCALE)))
        elif func == "since_prev":  # seconds since the latest earlier row of the window
            earlier = [j for j in rows if j < i]
            out.append((minutes[i] - minutes[earlier[-1]]) * 60.0 if earlier else None)
        else:  # pragma: no cover
            raise AssertionError(f"no loop for {func}(): write one here")
    return out


def test_the_window_is_open_at_its_start(batch_window):
    # at 60 the window (0, 60] leaves out the row at 0; at 61 it holds 30, 60 and 61
    assert batch_window("count", [0, 30, 60, 61]) == [1, 2, 2, 3]


def test_equal_timestamps_count_up_to_the_row_in_input_order(batch_window):
    assert batch_window("count", [5, 5, 5]) == [1, 2, 3]


def test_keys_have_windows_of_their_own(batch_window):
    assert batch_window("count", [0, 1, 2, 3, 4], keys=["A", "B", "A", "B", "A"]) == [1, 1, 2, 2, 3]


def test_a_null_key_row_does_not_count_for_its_neighbours(batch_window):
    assert batch_window("count", [0, 1, 2], keys=["A", None, "A"])[2] == 2


def test_window_start_is_the_first_sorted_row_inside(column):
    g = GroupIndex.build(column(["A", "B", "A"]), np.array([0, 0, 5 * MIN], dtype=np.int64))
    assert g.order.tolist() == [0, 2, 1]  # by key, then total order
    assert g.window_start(5 * MIN).tolist() == [0, 1, 2]  # (A, 5m) leaves (A, 0) out


@pytest.mark.parametrize("func, expected", [
    ("count", [1, 2, 2, 3]),  # where= alone decides; a null value still counts
    ("sum", [10, 10, 10, 15]),
    ("avg", [10, 10, 10, 7.5]),
    ("min", [10, 10, 10, 5]),
    ("max", [10, 10, 10, 10]),
])
def test_null_values_and_where(batch_window, func, expected):
    values = None if func == "count" else [10, None, 30, 5]
    assert batch_window(func, [0, 1, 2, 3], values, where=[True, True, False, True]) == expected


@pytest.mark.parametrize("func, expected", [
    ("count", 0), ("sum", 0), ("avg", None), ("min", None), ("max", None), ("distinct", 0),
])
def test_an_empty_window(batch_window, func, expected):
    values = None if func == "count" else [7]
    assert batch_window(func, [0], values, where=[False]) == [expected]


def test_rows_leave_the_window(batch_window):
    assert batch_window("sum", [0, 30, 61], [1, 2, 4]) == [1, 3, 6]
    assert batch_window("max", [0, 30, 61], [9, 2, 4]) == [9, 9, 4]


def test_sums_are_exact_to_four_decimals(batch_window):
    assert batch_window("sum", [0, 1, 2], [0.1, 0.2, 0.0001]) == [0.1, 0.3, 0.3001]


def test_distinct_ignores_nulls_and_forgets_what_left(batch_window):
    assert batch_window("distinct", [0, 1, 2, 3, 70], ["x", "y", "x", None, "z"]) == [1, 2, 2, 2, 1]


def test_is_new_looks_at_earlier_rows_inside_the_window(batch_window):
    # at 80 the last "x" (at 20) is exactly one window back: outside
    assert batch_window("is_new", [0, 10, 20, 80], ["x", "y", "x", "x"]) == [True, True, False, True]


def test_is_new_counts_earlier_rows_that_pass_where_and_never_a_null(batch_window):
    assert batch_window("is_new", [0, 1], ["x", "x"], where=[False, True]) == [True, True]
    assert batch_window("is_new", [0, 1], ["x", "x"], where=[True, False]) == [True, False]
    assert batch_window("is_new", [0, 1], [None, None]) == [False, False]


@pytest.mark.parametrize("func", sorted(AGGREGATES))
@pytest.mark.parametrize("seed", range(4))
def test_every_body_agrees_with_the_loop(batch_window, func, seed):
    rng = np.random.default_rng(seed)
    n = 120
    minutes = np.sort(rng.integers(0, 240, n)).tolist()  # many ties, windows of 0 to ~20 rows
    keys = rng.choice(["A", "B", "C", None], n, p=[0.4, 0.3, 0.2, 0.1]).tolist()
    where = (rng.random(n) < 0.8).tolist()
    values = None
    if AGGREGATES[func].takes_value:
        pool = ["x", "y", "z", None] if func in ("distinct", "is_new") else [0.5, 1.25, 100.0, 3.0, -2.0, None]
        values = [pool[i] for i in rng.integers(0, len(pool), n)]
    got = batch_window(func, minutes, values, keys=keys, where=where, window=30)
    want = brute(func, minutes, values, keys, where, 30)
    keyed = [i for i in range(n) if keys[i] is not None]  # a row without a key is never evaluated
    assert [got[i] for i in keyed] == [want[i] for i in keyed]


def test_median_middle_value_and_exact_mean_of_the_two_middle(batch_window):
    # odd: the middle value itself; even: the exact mean of the two middle 4-decimal values (0.15, not
    # 0.15000000000000002 as (0.1 + 0.2) / 2 is in floating point); a null value does not count
    got = batch_window("median", [0, 1, 2, 3, 4], [0.2, 0.1, None, 7.0, 0.3], window=60)
    assert got == [0.2, 0.15, 0.15, 0.2, 0.25]
    assert (0.1 + 0.2) / 2 != 0.15


def test_median_forgets_what_left_and_is_null_when_nothing_counts(batch_window):
    # window 10 min: at 12 only the rows at 5 and 12 are inside; where= leaves the row at 12 out
    assert batch_window("median", [0, 5, 12], [100.0, 1.0, 50.0], where=[True, True, False],
                        window=10) == [100.0, 50.5, 1.0]
    assert batch_window("median", [0, 1], [5.0, 6.0], where=[False, False]) == [None, None]


@pytest.mark.parametrize("func", sorted(SLICE_BODIES))
@pytest.mark.parametrize("seed", range(4))
def test_every_slice_body_agrees_with_the_loop(func, seed):
    """A window that starts at an earlier step (``where=ts > swap.ts``): each query row with its own bound, some
    rows queried twice (two chains), bounds before and inside the window and on ties with the row; the
    stream executor's bounded_at over the same records gives the same values."""
    rng = np.random.default_rng(seed)
    n = 120
    minutes = np.sort(rng.integers(0, 240, n)).tolist()
    keys = rng.choice(["A", "B", "C"], n, p=[0.4, 0.3, 0.3]).tolist()
    where = (rng.random(n) < 0.8).tolist()
    values = None
    if AGGREGATES[func].takes_value:
        pool = ["x", "y", "z", None] if func == "distinct" else [0.5, 1.25, 100.0, 3.0, -2.0, None]
        values = [pool[i] for i in rng.integers(0, len(pool), n)]
    rows = np.r_[np.arange(n), rng.integers(0, n, 40)]  # table rows the aggregate is read at
    bound_min = [float(minutes[r] - rng.choice([0, 1, 5, 20, 45])) for r in rows.tolist()]
    inclusive = bool(seed % 2)
    ts = np.array([round(m * MINUTE_NS) for m in minutes], dtype=np.int64)
    g = GroupIndex.build(Vec(np.array(keys, dtype=object), np.zeros(n, dtype=bool)), ts)
    w = 30 * MINUTE_NS
    start = g.window_start(w)
    pos = np.empty(n, dtype=np.int64)
    pos[g.order] = np.arange(n)
    p = pos[rows]
    after = g._index.search(g.codes[p], np.array([round(b * MINUTE_NS) for b in bound_min], dtype=np.int64),
                            side="left" if inclusive else "right")
    vec = None
    if values is not None:
        vec = Vec(np.array([0.0 if v is None else v for v in values], dtype=object if func == "distinct" else float),
                  np.array([v is None for v in values], dtype=bool)).take(g.order)
    got_v, got_null = SLICE_BODIES[func](Slices(g, np.maximum(start[p], after), p), vec,
                                         np.array(where, dtype=bool)[g.order])
    got = [None if nu else v.item() for v, nu in zip(got_v, got_null)]
    # the stream executor reads the same windows from the entries of the unbounded base aggregate
    spec = AggregateSpec(func, "s", "k", w, None if values is None else Field("v"), None, ("a", inclusive))
    state = STATE_CLASSES[spec.base.func](spec.base)
    for q in range(n):
        counts, x = state.entry(where[q], None if values is None else values[q], f"r{q}")
        if counts:
            state.add(keys[q], int(ts[q]), q, x)
    stream = [bounded_at(state, func, keys[r], round(b * MINUTE_NS), inclusive, int(ts[r]), r)
              for r, b in zip(rows.tolist(), bound_min)]
    assert got == [None if nu else v for v, nu in stream]
    want_all = {}
    for q, r in enumerate(rows.tolist()):
        bounds = [(-1e9, False)] * n
        bounds[r] = (bound_min[q], inclusive)
        want_all[q] = brute(func, minutes, values, keys, where, 30, bounds, at=[r])[0]
    assert got == [want_all[q] for q in range(len(rows))]


@pytest.mark.parametrize("seed", range(6))
def test_window_start_is_the_first_row_inside_by_the_loop(seed):
    """window_start searches ts - w in table order and permutes; the answer is the first sorted
    row of the same key with ts > ts_r - w, whatever the keys, ties, nulls, windows and ranks."""
    from fraudrules.runtime.windows import sorted_ranks

    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 300))
    ts = np.sort(rng.integers(0, 40, n)).astype(np.int64) * MIN
    keys = rng.choice(np.array(["A", "B", "C", "D"], dtype=object), n)
    null = rng.random(n) < 0.1
    for ranks in (None, sorted_ranks(ts)):
        g = GroupIndex.build(Vec(keys, null), ts, ranks=ranks)
        for w in (1, MIN, 5 * MIN, 7 * MIN + 1, 60 * MIN):
            expected = [next(j for j in range(len(g.ts)) if g.codes[j] == g.codes[i] and g.ts[j] > g.ts[i] - w)
                        for i in range(len(g.ts))]
            assert g.window_start(w).tolist() == expected


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("rows", [700, 7_000])  # a dict below FEW_DISTINCT_ROWS, pandas above
def test_distinct_values_tell_objects_and_texts_apart(seed, rows):
    """distinct_values hashes object addresses // 16 first: rows with equal text get one index,
    whether they share one str or not, and rows with different text never do."""
    from fraudrules.columns.vec import FEW_DISTINCT_ROWS, distinct_values

    assert (rows <= FEW_DISTINCT_ROWS) == (rows == 700)
    rng = np.random.default_rng(seed)
    pool = ["".join(rng.choice(list("ab01+"), int(rng.integers(0, 4)))) for _ in range(40)]
    shared = [pool[i] for i in rng.integers(0, len(pool), rows - 203)]  # one object per text, as a reader makes
    copies = ["".join(list(t)) for t in shared[:200]]  # equal texts at other addresses
    values = np.array(shared + copies + [1, 2.5, 1], dtype=object)
    uniq, index = distinct_values(values)
    assert [uniq[i] for i in index] == values.tolist()
    assert len(set(index.tolist())) == len(uniq) == len(set(values.tolist()))


_MIXED = st.one_of(st.text(alphabet="ab+1", max_size=3), st.integers(-2, 2), st.booleans(), st.none(),
                   st.sampled_from([0.0, -0.0, 1.0, 2.5, math.nan, math.inf]))


@settings(max_examples=300, deadline=None)
@given(st.lists(_MIXED, min_size=1, max_size=60), st.sampled_from([object, "float64", "int64", "bool"]))
@example([math.nan, 1.0, math.nan], "float64")  # two NaN objects: one value to pandas
@example(["a", None, 1, True, -0.0, 0.0], object)
def test_distinct_values_by_dict_equal_pandas_factorize(items, dtype):
    """The small-input path (a dict) answers as pandas' factorize, the large one's oracle: the same
    distinct values in first-seen order and the same index, or it leaves the values to pandas (missing
    values, which pandas takes as one, whatever their kind)."""
    import pandas as pd

    from fraudrules.columns.vec import distinct_values

    if dtype is object:
        values = np.empty(len(items), dtype=object)
        values[:] = items
    else:
        plain = [x for x in items if isinstance(x, (int, float)) and (dtype == "float64" or math.isfinite(x))]
        if not plain:
            return
        values = np.array(plain).astype(dtype)
    codes, uniq = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=False)
    got_uniq, got_index = distinct_values(values)
    assert got_index.dtype == np.int64
    assert got_index.tolist() == codes.tolist()
    expect = list(uniq)
    assert len(got_uniq) == len(expect)
    for a, b in zip(got_uniq.tolist(), expect):  # NaN equals NaN here, and 1 is not 1.0 or True
        assert type(a) is type(b) and (a == b or (a != a and b != b))


@pytest.mark.parametrize("seed", range(6))
def test_previous_same_does_not_depend_on_how_values_are_numbered(seed):
    """previous_same sorts dense value codes as they come and hashes other codes first: both give
    the latest earlier row of the same key and value, as the loop does."""
    from fraudrules.runtime.windows import previous_same

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 200))
    keys = rng.choice(np.array(["A", "B", "C"], dtype=object), n)
    g = GroupIndex.build(Vec(keys, rng.random(n) < 0.1), np.sort(rng.integers(0, 30, n)).astype(np.int64) * MIN)
    dense = rng.integers(-1, 6, n).astype(np.int64)  # -1: null
    sparse = np.where(dense < 0, -1, dense * 1_000_003 + 17)
    valid = rng.random(n) < 0.8
    values = Vec(dense.astype(object), dense < 0)
    expected = [max((j for j in range(i) if valid[j] and g.codes[j] == g.codes[i] and dense[j] == dense[i]),
                    default=-1) if dense[i] >= 0 else -1 for i in range(n)]
    assert previous_same(g, values, valid, dense).tolist() == expected
    assert previous_same(g, values, valid, sparse).tolist() == expected


@pytest.mark.parametrize("seed", range(20))
def test_stable_order_is_numpys_stable_argsort(seed):
    from fraudrules.columns.vec import stable_order

    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 300))
    lo, span = int(rng.integers(-5, 1_000)), int(rng.integers(1, [3, 50, 10 ** 9][seed % 3]))
    keys = rng.integers(lo, lo + span, n).astype([np.int64, np.int32][seed % 2])
    order, sorted_keys = stable_order(keys)
    assert np.array_equal(order, np.argsort(keys, kind="stable"))
    assert np.array_equal(sorted_keys, keys[np.argsort(keys, kind="stable")])
    assert sorted_keys.dtype == keys.dtype
    huge = np.array([2 ** 61, -(2 ** 61), 5, 5, 0], dtype=np.int64)  # span too large to fuse: the plain sort
    assert np.array_equal(stable_order(huge)[0], np.argsort(huge, kind="stable"))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 30), max_size=40), st.lists(st.integers(0, 30), max_size=40), st.booleans())
def test_a_foreign_index_merges_its_rows_in_the_order_the_sort_gives(src, queries, src_sorted):
    # ForeignIndex.build merges source and query rows by seq when both are ascending (tables are), and sorts
    # them otherwise (key=[f1, f2] repeats a record per field): either way the stable sort's order
    src_seq = np.array(sorted(src) if src_sorted else src, dtype=np.int64)
    q_seq = np.array(sorted(queries), dtype=np.int64)
    want = stable_order(np.r_[src_seq * 2, q_seq * 2 + 1])[0]
    order = _merged_order(src_seq, q_seq)
    assert np.array_equal(order, want)
    assert np.array_equal(_in_order(src_seq + 7, q_seq.astype(np.int32), order), np.r_[src_seq + 7, q_seq][want])


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_distinct_by_expanding_the_slices_is_the_slice_body(data):
    """distinct_expanded (get_at's distinct at a few rows) counts what _b_distinct counts over any slices, with
    value codes or without, nulls, where= and NaN (a value with no code: each of its rows counts)."""
    n = data.draw(st.integers(1, 40))
    keys = data.draw(st.lists(st.sampled_from(["A", "B", None]), min_size=n, max_size=n))
    pool = [1.0, 2.0, 2.5, float("nan"), None]
    values = data.draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n))
    where = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    ts = np.arange(n, dtype=np.int64) * MINUTE_NS
    g = GroupIndex.build(Vec(np.array([k or "" for k in keys], dtype=object), np.array([k is None for k in keys])), ts)
    vec = Vec(np.array([0.0 if v is None else v for v in values]), np.array([v is None for v in values])).take(g.order)
    hi = np.array(data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=10)), dtype=np.int64)
    first = np.r_[0, np.flatnonzero(g.codes[1:] != g.codes[:-1]) + 1]  # a window lies inside its key's rows
    first = first[np.searchsorted(first, np.arange(n), side="right") - 1]
    lo = np.array([data.draw(st.integers(int(first[h]), h + 1)) for h in hi.tolist()], dtype=np.int64)
    mask = where[g.order]
    want = SLICE_BODIES["distinct"](Slices(g, lo, hi), vec, mask)[0]
    assert distinct_expanded(Slices(g, lo, hi), vec, mask)[0].tolist() == want.tolist(), (keys, values, where, lo, hi)
    codes = np.array([-1 if nu or v != v else pool.index(v) for v, nu in zip(vec.values.tolist(), vec.null.tolist())],
                     dtype=np.int64)
    assert distinct_expanded(Slices(g, lo, hi, codes), vec, mask)[0].tolist() == want.tolist()
    with pytest.MonkeyPatch.context() as mp:  # the slices expanded a few rows at a time count the same
        mp.setattr(windows, "EXPANDED_ROWS", data.draw(st.integers(1, 6)))
        assert distinct_expanded(Slices(g, lo, hi), vec, mask)[0].tolist() == want.tolist()
        assert distinct_expanded(Slices(g, lo, hi, codes), vec, mask)[0].tolist() == want.tolist()


def test_a_groups_order_and_the_rows_sorted_positions_are_int32_and_right():
    # held for as long as a rule reads the group: int32 rows take half of numpy's int64 (2.3M records: -20 MB)
    from fraudrules.executors.batch import BatchExecutor
    from fraudrules.io.records import parse_inputs, read_inputs
    from fraudrules.pack.loader import load_pack
    from fraudrules.runtime.plan import compile_pack
    from tests.helpers import REPO, RULES

    pack = load_pack(RULES)
    records = read_inputs(parse_inputs([str(REPO / "samples")], pack.schema), pack.schema)
    store = BatchExecutor(compile_pack(pack, "CN"), records).store
    g, positions = store.group("call", "caller"), store.positions("call", "caller")
    assert g.order.dtype == np.int32 and positions.dtype == np.int32
    n = records.tables["call"].n
    assert sorted(g.order.tolist()) == list(range(n)) and g.order[positions].tolist() == list(range(n))
    callers = records.tables["call"].columns["caller"].values[g.order]
    runs = np.flatnonzero(callers[1:] != callers[:-1]) + 1
    assert len(set(callers[runs].tolist())) == len(runs)  # each caller's rows are one run of the order
    for lo, hi in zip(np.r_[0, runs], np.r_[runs, n]):
        assert np.all(np.diff(g.order[lo:hi]) > 0)  # in table (total) order within a caller


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([-2.0, -0.0, 0.0, 0.5, 1.25, 3.0, 1e300]), min_size=1, max_size=40), st.data())
def test_kth_smallest_is_the_kth_of_the_range_sorted_with_ties_in_row_order(values, data):
    """kth_smallest against sorting each range: the position it names, so that of equal values (-0.0 and 0.0
    among them) the earlier row comes first, as the stream's sorted list holds them."""
    n = len(values)
    ranges = st.tuples(st.integers(0, n - 1), st.integers(1, n)).filter(lambda t: t[0] < t[1])
    query = ranges.flatmap(lambda t: st.tuples(st.just(t[0]), st.just(t[1]), st.integers(0, t[1] - t[0] - 1)))
    queries = data.draw(st.lists(query, min_size=1, max_size=20))
    lo, hi, k = (np.array(x, dtype=np.int64) for x in zip(*queries))
    got = windows.kth_smallest(np.array(values), lo, hi, k)
    want = [sorted(range(a, b), key=lambda j: (values[j], j))[kk] for a, b, kk in queries]
    assert got.tolist() == want


def test_median_over_long_windows_agrees_with_the_loop(batch_window):
    # windows of hundreds of rows across two keys: kth_smallest walks every level of its matrix
    rng = np.random.default_rng(7)
    n = 600
    minutes = np.sort(rng.integers(0, 300, n)).tolist()
    keys = rng.choice(["A", "B"], n).tolist()
    values = [None if v < 0.05 else float(round(v * 1000, 2)) for v in rng.random(n)]
    where = (rng.random(n) < 0.9).tolist()
    got = batch_window("median", minutes, values, keys=keys, where=where, window=200)
    assert got == brute("median", minutes, values, keys, where, 200)


def test_median_of_two_huge_middles_is_their_exact_mean(batch_window):
    # 4-decimal units beyond 2**53: the exact path (median_of) rather than float64 arithmetic
    assert batch_window("median", [0, 1], [1e300, 3e300]) == [1e300, 2e300]
