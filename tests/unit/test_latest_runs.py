"""Batch's runs (runtime.runs.latest_runs) against a scan back from each candidate, record by record.

tests/test_runs.py checks whole rules against the reference model, but its random records rarely give one key a
long stretch of repeated values, so the descent of ``distinct`` runs (runtime.runs._Descent) never needed its
upper levels there: a mutation pass planted wrong level sizes and those tests passed. Here the candidates are
drawn from few keys and few values, so a run often has to skip a long stretch of values it already holds.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudrules.runtime.runs import latest_runs


def scanned_runs(codes: list[int], n: int, values: list[int] | None) -> list[list[int]]:
    """Per candidate, its run's members in total order (empty: no run ends there), by scanning back from it:
    the candidate, then the latest earlier ones of its key, with ``values`` only those of a value not yet taken
    (a null, -1, is in no run)."""
    runs = []
    for i, code in enumerate(codes):
        if values is not None and values[i] < 0:
            runs.append([])
            continue
        members, taken = [i], {values[i]} if values is not None else set()
        for j in range(i - 1, -1, -1):
            if len(members) == n:
                break
            if codes[j] != code:
                continue
            if values is not None:
                if values[j] < 0 or values[j] in taken:
                    continue
                taken.add(values[j])
            members.append(j)
        runs.append(sorted(members) if len(members) == n else [])
    return runs


def _check(codes: list[int], n: int, values: list[int] | None) -> None:
    want = scanned_runs(codes, n, values)
    c = np.asarray(codes, dtype=np.int64)
    v = None if values is None else np.asarray(values, dtype=np.int64)
    firsts = latest_runs(c, n, v)
    assert firsts.tolist() == [run[0] if run else -1 for run in want]
    members = latest_runs(c, n, v, members_of=np.arange(len(codes)))
    assert members.tolist() == [run if run else [-1] * n for run in want]


LONG_SKIP = ([0] * 70, 3, [2] + [0, 1] * 34 + [1])  # the run ending last reaches back over 68 held values


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_distinct_runs_are_the_scan_back_from_each_candidate(data):
    size = data.draw(st.integers(0, 160))
    codes = data.draw(st.lists(st.integers(0, 2), min_size=size, max_size=size))
    values = data.draw(st.lists(st.integers(-1, 3), min_size=size, max_size=size))
    _check(codes, data.draw(st.integers(1, 5)), values)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 3), max_size=120), st.integers(1, 6))
def test_plain_runs_are_the_last_n_candidates_of_the_key(codes, n):
    _check(codes, n, None)


def test_a_run_skips_a_long_stretch_of_values_it_holds():
    codes, n, values = LONG_SKIP
    _check(codes, n, values)
    got = latest_runs(np.asarray(codes), n, np.asarray(values), members_of=np.asarray([len(codes) - 1]))
    assert got.tolist() == [[0, 67, 69]]  # the 2 at the start, the latest 0, the last 1
