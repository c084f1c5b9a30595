"""Key codes held as int32 (columns.vec.row_index): every place that combines codes into one wider
sort key widens them to int64 first, so large codes times a large width do not wrap around.

The sizes are picked so that the int32 product overflows: (code - lo) * width > 2**31.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from fraudrules.columns.vec import Vec, coded
from fraudrules.runtime.windows import ColumnCodes, CompositeIndex, GroupIndex, joint_codes, previous_same

BIG_CODE = 70_000  # times a width of 40,001 distinct timestamps: 2.8e9, past int32


def _rows() -> tuple[np.ndarray, np.ndarray]:
    """Codes 0 and BIG_CODE, each with 40,000 distinct timestamps (the index's width is 40,001)."""
    n = 40_000
    codes = np.r_[np.zeros(n, dtype=np.int64), np.full(n, BIG_CODE, dtype=np.int64)]
    ts = np.r_[np.arange(n), np.arange(n)] * 1_000
    order = np.lexsort((ts, codes))
    return codes[order], ts[order]


def test_composite_index_answers_the_same_for_int32_codes_as_for_int64() -> None:
    codes, ts = _rows()
    wide, narrow = CompositeIndex(codes, ts), CompositeIndex(codes.astype(np.int32), ts)
    q_codes = np.array([0, BIG_CODE, BIG_CODE, BIG_CODE, 5], dtype=np.int64)
    q_ts = np.array([5_000, 0, 20_000_000, 39_999_000, 1_000])
    for side in ("left", "right"):
        want = wide.search(q_codes, q_ts, side)
        assert narrow.search(q_codes.astype(np.int32), q_ts, side).tolist() == want.tolist()
        # a query of the big code lands among the big code's rows, not among code 0's (a wrapped key would)
        assert (want[1:4] >= 40_000).all()


def test_previous_same_is_the_same_for_int32_group_codes() -> None:
    """(Its (key, value) sort key only groups equal pairs, which a wrapped int32 key would still keep
    together; it is widened all the same, and the answers must not depend on the codes' width.)"""
    codes, ts = _rows()
    values = np.arange(len(codes)) % 50_000  # many distinct values: a wide (key, value) product
    vec = Vec(values.astype(np.float64), np.zeros(len(codes), dtype=bool))
    valid = np.ones(len(codes), dtype=bool)
    wide = GroupIndex.build(vec, ts, codes)
    narrow = GroupIndex.build(vec, ts, codes.astype(np.int32))
    assert narrow.codes.dtype == np.int32
    vcodes = values.astype(np.int64)
    assert previous_same(narrow, vec, valid, vcodes.astype(np.int32)).tolist() == \
        previous_same(wide, vec, valid, vcodes).tolist()


def test_column_and_joint_codes_are_int32_and_join_equal_texts() -> None:
    a = coded(np.array([0, 1, 0, 2], dtype=np.int32), pa.array(["x", "y", "z"]), np.array([0, 0, 0, 1], dtype=bool))
    b = Vec(np.array(["z", "q", "x", ""], dtype=object), np.array([0, 0, 0, 1], dtype=bool))
    ca, cb = ColumnCodes(a), ColumnCodes(b)
    assert ca.codes.dtype == cb.codes.dtype == np.int32
    ja, jb = joint_codes(ca, cb)
    assert ja.dtype == jb.dtype == np.int32
    assert ja[0] == ja[2] == jb[2]  # "x"
    assert ja[3] == jb[3] == -1  # null keys
    assert len({int(ja[0]), int(ja[1]), int(jb[0]), int(jb[1])}) == 4  # x, y, z, q all distinct
