"""Text and time functions over columns give, row by row, what each value gives alone.

``timestamp()`` over a column whose texts repeat (a mapping's constant) parses each distinct text
once; ``concat()`` formats numbers through Arrow. Both are held to the value-by-value definition.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudrules.columns.vec import Vec
from fraudrules.lang.functions import _DISTINCT_MIN, _to_text, timestamp_problems

TEXTS = ["2026-03-01T00:00:35+08:00", "2026-02-28 16:00:35", "2026-03-01", "1772294435", "now", " today ",
         "9999-01-01T00:00:00Z", "1500-01-01", "2026-03-01t00:00:35z", "", "x", "2026-13-01", "2026-03-01T00:00Z"]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(TEXTS), min_size=1, max_size=6, unique=True), st.integers(0, 2**32 - 1),
       st.sampled_from([None, "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"]))
def test_timestamps_of_repeated_texts_are_each_texts_own(pool, seed, fmt):
    rng = np.random.default_rng(seed)
    n = _DISTINCT_MIN + int(rng.integers(0, 500))  # enough rows for the distinct texts to be parsed once
    text = np.array(pool, dtype=object)[rng.integers(0, len(pool), n)]
    null = rng.random(n) < 0.1
    vec, why = timestamp_problems(text, null, fmt)
    alone = {t: timestamp_problems(np.array([t], dtype=object), np.zeros(1, dtype=bool), fmt) for t in pool}
    for i in range(n):
        if null[i]:
            assert vec.null[i] and vec.values[i] == 0 and why[i] == 0
            continue
        one, one_why = alone[text[i]]
        assert (vec.values[i], vec.null[i], why[i]) == (one.values[0], one.null[0], one_why[0]), text[i]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.integers(-2**53, 2**53), st.floats(allow_nan=True, allow_infinity=True)),
                min_size=1, max_size=50))
def test_numbers_as_text_are_ints_without_point_and_floats_as_numpy_writes_them(values):
    vals = np.array(values, dtype=np.float64)
    null = np.zeros(len(vals), dtype=bool)
    null[::7] = True
    got = _to_text(Vec(vals, null))
    for v, is_null, text in zip(vals.tolist(), null.tolist(), got.tolist()):
        if is_null:
            assert text == ""
        elif np.isfinite(v) and v == int(v) and abs(v) < 2**53:
            assert text == str(int(v))
        else:
            assert text == str(np.float64(v).astype(str))


def test_a_clock_over_a_column_with_an_unrepresentable_null_filler_is_quiet():
    """hour() and weekday() over a column whose null rows hold a value that is no time (inf, 1e300: what a
    float filler can be) give those rows null and the others their hour, and numpy prints no RuntimeWarning
    on the user's stderr (CI's log showed 'invalid value encountered in cast' from a fuzzed expression)."""
    import warnings

    from fraudrules.lang.functions import FUNCTIONS

    ts = Vec(np.array([np.inf, 1e300, 3600e9 * 5], dtype=np.float64), np.array([True, True, False]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hour = FUNCTIONS["hour"].apply([ts], "UTC")
        weekday = FUNCTIONS["weekday"].apply([ts], "UTC")
    assert hour.null.tolist() == [True, True, False] and hour.values[2] == 5.0
    assert weekday.null.tolist() == [True, True, False] and weekday.values[2] == 4.0  # 1970-01-01: a Thursday
