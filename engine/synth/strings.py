"""Vectorised string building: fixed-width ASCII matrices (n, width) of uint8 turned into arrow strings.

Building whole columns this way, instead of formatting one Python string per value, is what keeps
ten million records to a few minutes.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .schema import DAY, TZ_OFFSET_S

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def digits(values, width: int) -> np.ndarray:
    """(n, width) uint8 matrix of the zero-padded decimal digits (ASCII) of values."""
    v = np.asarray(values, dtype=np.int64).copy()
    out = np.empty((v.size, width), dtype=np.uint8)
    for k in range(width - 1, -1, -1):
        out[:, k] = (v % 10).astype(np.uint8) + 48
        v //= 10
    return out


def hex_digits(values, width: int) -> np.ndarray:
    """(n, width) uint8 matrix of the zero-padded lower-case hex digits of values."""
    v = np.asarray(values, dtype=np.int64).copy()
    out = np.empty((v.size, width), dtype=np.uint8)
    for k in range(width - 1, -1, -1):
        out[:, k] = _HEX[v & 15]
        v >>= 4
    return out


def const(s: str, n: int) -> np.ndarray:
    """The same string n times, as a read-only (n, len(s)) matrix."""
    b = np.frombuffer(s.encode("ascii"), dtype=np.uint8)
    return np.broadcast_to(b, (n, b.size))


def table_rows(table: list[str], idx: np.ndarray) -> np.ndarray:
    """Rows of equal-width strings chosen by idx, as a (n, w) uint8 matrix."""
    w = len(table[0])
    assert all(len(s) == w for s in table)
    t = np.frombuffer("".join(table).encode("ascii"), dtype=np.uint8).reshape(len(table), w)
    return t[idx]


def hcat(*parts: np.ndarray) -> np.ndarray:
    """Concatenate string matrices side by side."""
    return np.ascontiguousarray(np.hstack(parts))


def to_arrow(mat: np.ndarray) -> pa.Array:
    """A (n, w) uint8 matrix of ASCII as an arrow string array (zero copy)."""
    mat = np.ascontiguousarray(mat, dtype=np.uint8)
    n, w = mat.shape
    if n * w >= 2**31:
        offsets = np.arange(0, (n + 1) * w, w, dtype=np.int64)
        return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(mat)).cast(pa.string())
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(mat))


def money(cents: np.ndarray) -> pa.Array:
    """Integer cents as strings with exactly two decimals."""
    cents = np.asarray(cents, dtype=np.int64)
    whole = pa.array(cents // 100).cast(pa.string())
    frac = to_arrow(digits(cents % 100, 2))
    return pc.binary_join_element_wise(whole, frac, ".")


def timestamps(ts: np.ndarray) -> pa.Array:
    """Epoch seconds as 'YYYY-MM-DDTHH:MM:SS+08:00'."""
    local = np.asarray(ts, dtype=np.int64) + TZ_OFFSET_S
    day = local // DAY
    sod = local - day * DAY
    d0, d1 = int(day.min()), int(day.max())
    dates = np.arange(d0, d1 + 1).astype("datetime64[D]").astype(str).tolist()
    date_mat = table_rows(dates, day - d0)
    hh, rem = np.divmod(sod, 3600)
    mm, ss = np.divmod(rem, 60)
    n = ts.size
    mat = hcat(date_mat, const("T", n), digits(hh, 2), const(":", n), digits(mm, 2), const(":", n),
               digits(ss, 2), const("+08:00", n))
    return to_arrow(mat)


def ids(prefix: str, first: int, n: int) -> pa.Array:
    """Record ids prefix + 9 digits, numbered from first."""
    return to_arrow(hcat(const(prefix, n), digits(np.arange(first, first + n), 9)))
