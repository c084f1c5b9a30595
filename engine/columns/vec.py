"""Vectors with a null mask: the value model every executor evaluates on.

A :class:`Vec` is a numpy array plus a boolean null mask. Null slots hold a
harmless filler of the right type (0, "", False), so every numpy operation
runs without special cases and the mask alone decides what is null.

Physical kind (``columns.types``) by logical type:

========================  ==========================================
number (int, float)       float: float64
duration                  float: float64 seconds
timestamp                 int: int64 nanoseconds since the epoch, UTC
bool                      bool
string, phone, enum       object: object array of str
========================  ==========================================

A text column read from a file whose values repeat is a :class:`Coded`: int32 codes into a
dictionary of its distinct values, the object array made only when a caller reads ``values``.
Whatever groups rows by the text (``distinct``) reads the codes and hashes no text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .types import NUMERIC_TYPES, LogicalType, PhysicalKind

# the filler of null slots and the numpy dtype, by physical kind
FILLERS = {PhysicalKind.FLOAT: 0.0, PhysicalKind.INT: 0, PhysicalKind.BOOL: False, PhysicalKind.OBJECT: ""}
DTYPES = {PhysicalKind.FLOAT: np.dtype(np.float64), PhysicalKind.INT: np.dtype(np.int64),
          PhysicalKind.BOOL: np.dtype(bool), PhysicalKind.OBJECT: np.dtype(object)}


def physical_kind(ltype: LogicalType) -> PhysicalKind:
    """How a column of a logical type is held (the table above)."""
    if ltype in NUMERIC_TYPES:
        return PhysicalKind.FLOAT
    if ltype == LogicalType.TIMESTAMP:
        return PhysicalKind.INT
    if ltype == LogicalType.BOOL:
        return PhysicalKind.BOOL
    return PhysicalKind.OBJECT


def kind_of(values: np.ndarray) -> PhysicalKind:
    """The physical kind of an array (any other numeric dtype counts as float)."""
    for kind in (PhysicalKind.OBJECT, PhysicalKind.INT, PhysicalKind.BOOL):
        if values.dtype == DTYPES[kind]:
            return kind
    return PhysicalKind.FLOAT


def empty_values(kind: PhysicalKind, n: int) -> np.ndarray:
    """``n`` filler values of a physical kind."""
    if kind == PhysicalKind.OBJECT:
        arr = np.empty(n, dtype=object)
        arr[:] = ""
        return arr
    return np.zeros(n, dtype=DTYPES[kind])


def empty_array(ltype: LogicalType, n: int) -> np.ndarray:
    return empty_values(physical_kind(ltype), n)


@dataclass
class Vec:
    values: np.ndarray
    null: np.ndarray  # bool, same length; True where the value is null

    def __len__(self) -> int:
        return len(self.values)

    def take(self, index: np.ndarray) -> Vec:
        return Vec(self.values[index], self.null[index])

    def passing_values(self) -> np.ndarray:
        """The values for a caller that drops them after use (a column that makes its values on
        first read, ArrowTexts, does not keep them for this caller)."""
        return self.values

    @staticmethod
    def of(values: np.ndarray, null: np.ndarray | None = None) -> Vec:
        if null is None:
            null = np.zeros(len(values), dtype=bool)
        return Vec(values, null)

    @staticmethod
    def nulls(ltype: LogicalType, n: int) -> Vec:
        return Vec(empty_array(ltype, n), np.ones(n, dtype=bool))

    @staticmethod
    def full(value: object, ltype: LogicalType, n: int) -> Vec:
        if value is None:
            return Vec.nulls(ltype, n)
        arr = empty_array(ltype, n)
        arr[:] = value
        return Vec(arr, np.zeros(n, dtype=bool))

    def to_python(self, i: int) -> object:
        """The value at ``i`` as a plain Python object (None when null)."""
        if self.null[i]:
            return None
        v = self.values[i]
        if isinstance(v, np.generic):
            return v.item()
        return v

    def filled_strings(self) -> np.ndarray:
        """Object array of str with nulls as "" (the invariant, made explicit)."""
        out = self.values.astype(object)
        if self.null.any():
            out[self.null] = ""
        return out


def arrow_texts(arr: object) -> np.ndarray:
    """An Arrow string array as an object array of str (one str per element; nulls as None)."""
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=object)  # type: ignore[attr-defined]


class Coded(Vec):
    """A text column as int32 codes into a dictionary of distinct str, an Arrow string array (its
    blocks' dictionaries are merged by Arrow's hashing of bytes, not Python's of objects); ``values``
    is ``dictionary[codes]`` as an object array, made on first read and kept. Each text is in the
    dictionary once, so equal texts have equal codes; which codes are used, in what order, is free."""

    def __init__(self, codes: np.ndarray, arrow: object, null: np.ndarray):
        self.codes = codes
        self.arrow = arrow  # pyarrow.StringArray of distinct values
        self.null = null
        self._dictionary: np.ndarray | None = None
        self._values: np.ndarray | None = None

    @property
    def dictionary(self) -> np.ndarray:
        """The distinct values as an object array of str (one str each)."""
        if self._dictionary is None:
            self._dictionary = arrow_texts(self.arrow)
        return self._dictionary

    @property  # type: ignore[override]
    def values(self) -> np.ndarray:
        if self._values is None:
            if self._dictionary is None and len(self.codes) * 4 < len(self.arrow):  # type: ignore[arg-type]
                # a few rows of a large dictionary (an alert's evidence, a window's members): only their texts
                self._values = self.texts(self.codes)
            else:
                self._values = self.dictionary[self.codes]
        return self._values

    def texts(self, codes: np.ndarray) -> np.ndarray:
        """The texts of ``codes`` as an object array of str."""
        import pyarrow as pa

        if self._dictionary is not None:
            return self._dictionary[codes]
        return arrow_texts(self.arrow.take(pa.array(codes, type=pa.int32())))  # type: ignore[attr-defined]

    def equals(self, text: str) -> np.ndarray:
        """``self.values == text`` per row: compared once per dictionary entry, then read by code."""
        if self._values is not None or len(self.codes) * 8 < len(self.arrow):  # type: ignore[arg-type]
            return np.asarray(self.values == text, dtype=bool)
        import pyarrow.compute as pc

        hit = pc.fill_null(pc.equal(self.arrow, text), False).to_numpy(zero_copy_only=False)
        return hit[self.codes]

    def distinct_at(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``distinct_values(self.values[rows])`` in code order, from the codes: no object array of the
        rows is made and no text hashed. ``rows``: a boolean mask or an index."""
        codes = self.codes[rows]
        k = len(self.arrow)  # type: ignore[arg-type]
        if len(codes) * 8 < k:  # few rows of a large dictionary: sort their codes
            used, inverse = np.unique(codes, return_inverse=True)
        else:
            seen = np.zeros(k, dtype=bool)
            seen[codes] = True
            used = np.flatnonzero(seen)
            remap = np.zeros(k, dtype=np.int64)
            remap[used] = np.arange(len(used), dtype=np.int64)
            inverse = remap[codes]
        return self.texts(used), inverse.astype(np.int64, copy=False)

    def __len__(self) -> int:
        return len(self.codes)

    def take(self, index: np.ndarray) -> Vec:
        out = Coded(self.codes[index], self.arrow, self.null[index])
        out._dictionary = self._dictionary
        return out

    def used(self) -> tuple[np.ndarray, np.ndarray]:
        """(the codes used, in the order of their first row; the rank of each code in that order)."""
        n, k = len(self.codes), len(self.arrow)  # type: ignore[arg-type]
        first = np.full(k, n, dtype=np.int64)
        first[self.codes[::-1]] = np.arange(n - 1, -1, -1)  # the first row of each code
        used = np.flatnonzero(first < n)
        used = used[np.argsort(first[used])]
        rank = np.zeros(k, dtype=np.int64)
        rank[used] = np.arange(len(used), dtype=np.int64)
        return used, rank

    def distinct(self) -> tuple[np.ndarray, np.ndarray]:
        """``distinct_values(self.values)`` from the codes: (distinct values in first-seen order, index
        of each row into them), without hashing a row's text."""
        used, rank = self.used()
        return self.texts(used), rank[self.codes]


class ArrowTexts(Vec):
    """A text column of distinct values (ids) kept as an Arrow large_string array, nulls as "": about
    18 bytes a row against about 67 for a str object and its pointer. ``values`` is made on first read
    and kept; ``take`` stays in Arrow until then, so rows that only pass through (sorted, filtered,
    written out) never become objects."""

    def __init__(self, arrow: object, null: np.ndarray):
        self.arrow = arrow  # pyarrow.StringArray or LargeStringArray, one element per row, no nulls
        self.null = null
        self._values: np.ndarray | None = None

    @property  # type: ignore[override]
    def values(self) -> np.ndarray:
        if self._values is None:
            self._values = arrow_texts(self.arrow)
        return self._values

    def __len__(self) -> int:
        return len(self.null)

    def passing_values(self) -> np.ndarray:
        """The values as str objects for a caller that drops them after use: not kept (``values`` is)."""
        return self._values if self._values is not None else arrow_texts(self.arrow)

    def take(self, index: np.ndarray) -> Vec:
        if self._values is not None:
            return Vec(self._values[index], self.null[index])
        import pyarrow as pa

        rows = _positions(index, len(self.null))
        return ArrowTexts(self.arrow.take(pa.array(rows, type=pa.int64())), self.null[index])  # type: ignore[attr-defined]


def _positions(index: Any, n: int) -> np.ndarray:
    """``index`` (positions, negatives from the end, a mask or a slice) as non-negative positions into ``n``
    rows, without an ``arange(n)`` for each call: alerts take a few rows of a long column many times."""
    if isinstance(index, np.ndarray) and index.dtype.kind in "iu":
        return index + n * (index < 0) if index.dtype.kind == "i" and len(index) and index.min() < 0 else index
    if isinstance(index, np.ndarray) and index.dtype == bool and len(index) == n:
        return np.flatnonzero(index)
    return np.arange(n)[index]


def coded(codes: np.ndarray, arrow: object, null: np.ndarray) -> Coded:
    """A Coded column from codes into an Arrow string array that may hold a text more than once
    (normalised phones, the dictionaries of several blocks): Arrow's hashing merges the repeats."""
    import pyarrow.compute as pc

    enc = pc.dictionary_encode(arrow)
    if len(enc.dictionary) < len(arrow):  # type: ignore[arg-type]
        codes = np.asarray(enc.indices.to_numpy(), dtype=np.int32)[codes]
        arrow = enc.dictionary
    return Coded(codes.astype(np.int32, copy=False), arrow, null)


def concat(parts: list[Vec]) -> Vec:
    """The rows of several columns of one type, one after the other; coded text stays coded, and so does text
    of which some parts were coded and the others kept in Arrow (their reader saw repeats in some blocks only)."""
    if len(parts) > 1:
        parts = [p for p in parts if len(p)] or parts[:1]  # an empty block is a plain Vec whatever its kind
    if len(parts) == 1:
        return parts[0]
    null = np.concatenate([p.null for p in parts])
    if any(isinstance(p, Coded) for p in parts) and all(isinstance(p, (Coded, ArrowTexts)) for p in parts):
        return _coded_concat(parts, null)
    if parts and all(isinstance(p, ArrowTexts) for p in parts):  # their Arrow arrays, read or not
        import pyarrow as pa

        return ArrowTexts(pa.concat_arrays([p.arrow for p in parts]), null)  # type: ignore[attr-defined]
    return Vec(np.concatenate([p.values for p in parts]), null)


def _coded_concat(parts: list[Vec], null: np.ndarray) -> Vec:
    """Coded parts, and ArrowTexts parts beside them, as one Coded column: the parts' dictionaries joined (an
    ArrowTexts part's rows are each their own entry), whose repeats ``coded`` merges. Past 2 GiB of text
    (Arrow's string offsets), the rows become objects as before."""
    import pyarrow as pa

    dictionaries, codes, at = [], [], 0
    for p in parts:
        dictionaries.append(p.arrow)  # type: ignore[attr-defined]
        own = p.codes.astype(np.int64) if isinstance(p, Coded) else np.arange(len(p), dtype=np.int64)
        codes.append(own + at)
        at += len(p.arrow)  # type: ignore[attr-defined]
    if at >= 2**31:
        return Vec(np.concatenate([p.values for p in parts]), null)
    try:
        joined = pa.concat_arrays([d.cast(pa.string()) for d in dictionaries])  # type: ignore[attr-defined]
    except (pa.ArrowInvalid, OverflowError):
        return Vec(np.concatenate([p.values for p in parts]), null)
    return coded(np.concatenate(codes).astype(np.int32), joined, null)


def distinct_at(v: Vec, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct values of ``v`` at ``rows``, the index of each of those rows into them), for work
    done once per distinct value; their order is not first-seen for coded text, so callers map back."""
    if isinstance(v, Coded):
        return v.distinct_at(rows)
    return distinct_values(v.values[rows])


def as_bool(v: Vec) -> np.ndarray:
    """Two-valued logic: a null boolean counts as false."""
    return v.values.astype(bool) & ~v.null


class _PointerView:
    """An object array's buffer of PyObject pointers as uint64, for ``np.asarray`` (the array interface)."""

    __slots__ = ("values", "__array_interface__")

    def __init__(self, values: np.ndarray):
        self.values = values  # kept alive by the view numpy makes of this object
        self.__array_interface__ = {"data": (values.ctypes.data, True), "shape": values.shape, "typestr": "<u8",
                                    "version": 3}


def sorted_distinct(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)`` for numbers, by a sort. numpy 2.3 and later find the distinct values of a
    plain ``np.unique`` with a hash table before sorting them: on 477k mostly distinct int64 that took
    0.33 s against 0.02 s for a sort, and far more memory."""
    out = np.sort(values)
    if len(out) < 2:
        return out
    keep = np.empty(len(out), dtype=bool)
    keep[0] = True
    np.not_equal(out[1:], out[:-1], out=keep[1:])
    if out.dtype.kind == "f":  # np.unique keeps one NaN; NaN != NaN would keep them all
        nan = np.isnan(out)
        if nan.any():
            keep &= ~nan
            keep[np.argmax(nan)] = True
    return out[keep]


# numpy's searchsorted does one binary search per query, starting afresh unless the query is above the last
# one. Queries in random order over a sorted array larger than the caches miss the cache at nearly every
# step: 1M random queries into 4M int64 took 0.99 s, the same queries sorted first 0.13 s (10M into 10M:
# 14.6 s against 2.8 s). Below these sizes, or with many more queries than keys, the sort costs more.
# Sorted queries that outnumber the keys are cheaper the other way round: n binary searches among the m
# queries and a running count, instead of m among the n keys.
SORT_QUERIES_FROM = 4096
SORT_QUERIES_PER_KEY = 4
MERGE_QUERIES_PER_KEY = 2


def search_sorted(keys: np.ndarray, queries: np.ndarray, side: str = "left") -> np.ndarray:
    """``np.searchsorted(keys, queries, side)`` (int64), with many unsorted queries sorted first, and many
    more sorted queries than keys answered by searching the keys among the queries instead."""
    queries = np.asarray(queries)
    m = len(queries)
    ascending = m >= SORT_QUERIES_FROM and bool((queries[1:] >= queries[:-1]).all())
    if ascending and m > MERGE_QUERIES_PER_KEY * len(keys):
        # the answer at query i counts the keys below it (left) or at or below it (right): each key
        # raises the answers from the first query it is below (left) or at or below (right)
        firsts = np.searchsorted(queries, keys, side="right" if side == "left" else "left")
        return np.cumsum(np.bincount(firsts, minlength=m + 1)[:m])
    if m < SORT_QUERIES_FROM or ascending or m > SORT_QUERIES_PER_KEY * len(keys):
        return np.searchsorted(keys, queries, side=side).astype(np.int64, copy=False)
    order = np.argsort(queries)  # any order of equal queries will do: each is answered alone
    out = np.empty(m, dtype=np.int64)
    out[order] = np.searchsorted(keys, queries[order], side=side)
    return out


def distinct_values(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values, index of each value into them), hash-based.

    Cheaper than ``np.unique`` on text, which sorts; the order of the distinct
    values is first-seen, which no result depends on. An object array is told
    apart by the addresses of its objects first: text read from a file shares
    one str per distinct value (io.arrow.text_objects), integers hash ~10x
    faster than text, and only one row per address is compared as text, so
    equal texts at different addresses still get one index.
    """
    n = len(values)
    if 0 < n <= FEW_DISTINCT_ROWS:
        got = _distinct_by_dict(values)
        if got is not None:
            return got
    import pandas as pd

    if values.dtype != object or n == 0:
        codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=False)
        return np.asarray(uniques, dtype=object), codes.astype(np.int64)
    values = np.ascontiguousarray(values)
    # the PyObject pointers, read in place: valid while ``values`` holds its references (the view keeps
    # ``values``). Through the array interface, not ctypes: ``c_uint64 * n`` made a new ctypes type per length,
    # a reference cycle each, left to the collector
    addresses = np.asarray(_PointerView(values))
    # >> 4: two live objects start at least 16 bytes apart (each holds a refcount and a type pointer),
    # so address // 16 tells them apart as well; the low bits, zero by alignment, only made pandas'
    # hash table collide (factorize ~40% faster)
    by_address, distinct_addresses = pd.factorize(addresses >> np.uint64(4))
    first = np.empty(len(distinct_addresses), dtype=np.int64)
    first[by_address[::-1]] = np.arange(n - 1, -1, -1)  # the first row of each address
    local, uniq = pd.factorize(pd.Series(values[first], dtype=object), use_na_sentinel=False)
    return np.asarray(uniq, dtype=object), local.astype(np.int64)[by_address]


# Up to this many values, a dict finds the distinct ones faster than pandas (~70 µs of fixed cost a call):
# 1,000 phone numbers 70 µs against 112, 100 in 8 against 74; 4,000 take 300 µs against 223. A stream's
# release evaluates its columns over a few hundred records, many times a second.
FEW_DISTINCT_ROWS = 2_000
_PLAIN_TYPES = frozenset({str, int, bool, float})


def _distinct_by_dict(values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`distinct_values` by a dict, or None when pandas must decide: pandas takes every missing value
    (None, NaN, NaT, pd.NA) as one, which a dict does not, so a value that is not a plain str, int, bool or
    float, or is a NaN, leaves the answer to it. Equal values of those types (1, 1.0, True; 0.0 and -0.0)
    are one value to both, kept as first seen."""
    if values.dtype.kind not in "Obiuf":  # datetimes and the like: as pandas boxes them
        return None
    index: dict = {}
    try:
        codes = [index.setdefault(v, len(index)) for v in values.tolist()]
    except TypeError:  # an unhashable value: pandas says why
        return None
    if not set(map(type, index)) <= _PLAIN_TYPES or any(v != v for v in index):
        return None
    uniq = np.empty(len(index), dtype=object)
    uniq[:] = list(index)
    return uniq, np.array(codes, dtype=np.int64)


# numpy's stable argsort of int64 is a timsort (radix only up to 16 bits), while ``ndarray.sort`` of int64
# runs on SIMD kernels (x86-simd-sort): several times faster on a million rows. A key fused with the row
# number, ``(key - min) * n + row``, is unique, so any sort of it orders rows by key and, among equal keys,
# by row: exactly the stable order; the row and the key are then read back from it.
_FUSED_MAX = 2 ** 62  # (span of the keys) * rows must stay below it, or int64 would overflow


def row_index(rows: np.ndarray) -> np.ndarray:
    """Row positions (0 .. rows - 1) or codes (-1 .. distinct values - 1) held for long as int32 when they fit:
    a group's order and each row's sorted position, the codes of every key column and joined pair. Half the
    memory of numpy's int64 indexes, and they index arrays as fast. Whatever combines codes into a wider
    key (CompositeIndex, previous_same) widens them to int64 first."""
    return rows.astype(np.int32, copy=False) if len(rows) < 2**31 else rows


def stable_order(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(``np.argsort(keys, kind="stable")``, ``keys`` in that order) of an integer array."""
    n = len(keys)
    if n < 2:
        order = np.arange(n, dtype=np.int64)
        return order, keys[order]
    lo, hi = int(keys.min()), int(keys.max())
    if (hi - lo + 1) * n >= _FUSED_MAX:  # (not at realistic sizes) the plain stable sort
        order = np.argsort(keys, kind="stable")
        return order, keys[order]
    fused = keys.astype(np.int64) - lo
    fused *= n
    fused += np.arange(n, dtype=np.int64)
    fused.sort()
    key, order = np.divmod(fused, n)
    key += lo
    return order, key.astype(keys.dtype, copy=False)
