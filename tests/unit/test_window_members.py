"""executors/batch.py ``_window_members``: an alert's members of ``count`` and ``distinct`` windows.

The members of a ``distinct`` window over coded text are found by their codes, not as objects (a large
window cost a dictionary's worth of str each time). Each window is checked against a scan of its
rows, for coded text, the same text as plain objects, and numbers.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudrules.columns.vec import Coded, Vec, coded
from fraudrules.executors.batch import _window_members
from fraudrules.runtime.plan import AggregateSpec

TEXTS = ["a", "b", "ü", "+8613800138000", "x y", "a\"b", ""]


def _spec(func: str) -> AggregateSpec:
    return AggregateSpec(func, "payment", "payer_account", 10**9, None, None)


def _expected(values: list, mask: list[bool], windows, limit: int) -> list[tuple[int, list]]:
    out = []
    for lo, hi in windows:
        if lo is None:
            out.append((0, []))
            continue
        seen = list(dict.fromkeys(values[i] for i in range(lo, hi) if mask[i]))
        out.append((len(seen), seen[:limit]))
    return out


@st.composite
def cases(draw):
    n = draw(st.integers(1, 40))
    words = draw(st.lists(st.sampled_from(TEXTS), min_size=n, max_size=n))
    mask = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    windows = []
    for _ in range(draw(st.integers(0, 8))):
        if draw(st.booleans()) and draw(st.booleans()):
            windows.append((None, None))
            continue
        lo = draw(st.integers(0, n))
        windows.append((lo, draw(st.integers(lo, n))))
    return words, mask, windows, draw(st.integers(1, 5))


@settings(max_examples=200, deadline=None)
@given(cases(), st.booleans())
def test_distinct_members_of_coded_text_are_those_of_a_scan(case, repeats_in_dictionary: bool) -> None:
    words, mask, windows, limit = case
    null = np.zeros(len(words), dtype=bool)
    # a dictionary that holds each text once (as the reader makes it), or a raw one that coded() merges
    dictionary = sorted(set(words)) * (2 if repeats_in_dictionary else 1)
    codes = np.array([dictionary.index(w) for w in words], dtype=np.int32)
    value = coded(codes, pa.array(dictionary), null) if repeats_in_dictionary else Coded(codes, pa.array(dictionary),
                                                                                         null)
    plain = Vec(np.array(words, dtype=object), null)
    ids = Vec(np.array([f"r{i}" for i in range(len(words))], dtype=object), null)
    want = _expected(words, mask, windows, limit)
    for v in (value, plain):
        got = _window_members(_spec("distinct"), windows, np.array(mask), v, ids, np.arange(len(words)), limit)
        assert got == want


@settings(max_examples=150, deadline=None)
@given(cases())
def test_distinct_members_of_numbers_and_count_members(case) -> None:
    words, mask, windows, limit = case
    numbers = [float(TEXTS.index(w)) for w in words]
    null = np.zeros(len(words), dtype=bool)
    value = Vec(np.array(numbers, dtype=np.float64), null)
    ids = Vec(np.array([f"r{i}" for i in range(len(words))], dtype=object), null)
    got = _window_members(_spec("distinct"), windows, np.array(mask), value, ids, np.arange(len(words)), limit)
    assert got == _expected(numbers, mask, windows, limit)
    id_row = np.arange(len(words))[::-1].copy()  # ids through another order, as a group's sorted rows
    got = _window_members(_spec("count"), windows, np.array(mask), None, ids, id_row, limit)
    want = []
    for lo, hi in windows:
        rows = [] if lo is None else [i for i in range(lo, hi) if mask[i]]
        want.append((len(rows), [f"r{id_row[i]}" for i in rows[:limit]]))
    assert got == want
