"""The stream executor's record ids (executors/stream/executor.py::SeenIds): a repeated (stream, id) is
refused as batch refuses it, across the merges of its recent set, and a checkpoint holds the ids exactly.
A checkpoint is input the service reads back after a crash, so a damaged list of ids is refused, not
loaded."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudrules.executors.stream.executor import SeenIds

ids = st.lists(st.tuples(st.sampled_from(["call", "payment"]), st.integers(0, 60).map(str)), max_size=200)


@settings(max_examples=200, deadline=None)
@given(first=ids, later=ids)
def test_an_id_is_new_once_per_stream_before_and_after_a_checkpoint(first, later):
    seen, oracle = SeenIds(), set()
    for pair in first:
        assert seen.add(*pair) == (pair not in oracle)
        oracle.add(pair)
    again = SeenIds()
    again.load(seen.dump())
    assert len(again) == len(oracle)
    for pair in later:
        assert again.add(*pair) == (pair not in oracle)
        oracle.add(pair)


def test_ids_stay_refused_after_the_recent_ones_are_merged():
    seen = SeenIds()
    assert all(seen.add("payment", f"p{i}") for i in range(10_000))  # past 4,096 recent ids: merged
    assert len(seen.sorted) > 0
    assert not any(seen.add("payment", f"p{i}") for i in range(0, 10_000, 7))
    assert seen.add("call", "p7")  # another stream's id is its own
    assert len(seen) == 10_001


def _encoded(values: list[int]) -> str:
    return base64.b64encode(np.array(values, dtype="<u8").tobytes()).decode("ascii")


@pytest.mark.parametrize("data", [_encoded([5, 3]), _encoded([1, 2, 2]), _encoded([9, 1, 4]), "AAAA", "not base64!"])
def test_a_damaged_list_of_ids_is_refused(data):
    """Out of order (two ids are enough), repeated, cut short of 8 bytes, or not base64 at all."""
    with pytest.raises(ValueError):
        SeenIds().load(data)


def test_an_ordered_list_of_ids_loads():
    seen = SeenIds()
    seen.load(_encoded([1, 2, 9]))
    assert len(seen) == 3 and list(seen.sorted) == [1, 2, 9]
