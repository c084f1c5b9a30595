"""Typed columns to Arrow and back, exactly: the form records take on disk between runs and chunks.

The round trip is lossless for every logical type (float64 stays float64, timestamps stay
int64 nanoseconds, text stays text), so a record read back from a history store or a spill
file evaluates, and shows in an alert, byte for byte as it did when it was first read.
"""

from __future__ import annotations

import gc

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..columns.types import LogicalType, PhysicalKind
from ..columns.vec import DTYPES, FILLERS, ArrowTexts, Coded, Vec, arrow_texts, empty_array, physical_kind
from ..pack.streams import StreamSpec
from ..runtime.heap import trim_thread_heaps

TS_TYPE = pa.timestamp("ns", tz="UTC")  # timestamps on disk: readable as time by any Parquet tool

def release_memory(freeze: bool = False) -> None:
    """Hand memory that a finished block or chunk freed back to the system.

    Arrow's allocator (mimalloc in the wheels) and the C heap each keep freed memory for their own
    reuse, and neither reuses the other's: without this, what one of them keeps from the last chunk
    adds to what the other needs for the next, and peak RSS grows by both. A reader that is done
    may still sit in a reference cycle with all its data (CsvReader and its chunk plan): collect it.

    ``freeze``: what survives lives to the run's end (the alerts and their order keys): later full
    collections skip it (gc.freeze). It came in when alerts were dicts, which each collection walked
    again (1.4 s at 230k alerts); held as lines they cost a collection little, and freezing costs nothing.
    Reference counting still frees it; only a cycle among it dropped later would wait for the end.
    """
    gc.collect()
    if freeze:
        gc.freeze()
    trim_thread_heaps()


def arrow_type(ltype: LogicalType) -> pa.DataType:
    kind = physical_kind(ltype)
    if kind == PhysicalKind.FLOAT:
        return pa.float64()
    if kind == PhysicalKind.INT:
        return TS_TYPE
    if kind == PhysicalKind.BOOL:
        return pa.bool_()
    return pa.string()


def vec_to_arrow(vec: Vec, ltype: LogicalType) -> pa.Array:
    kind = physical_kind(ltype)
    mask = vec.null if vec.null.any() else None
    if kind == PhysicalKind.INT:
        return pa.array(vec.values.astype(np.int64), type=pa.int64(), mask=mask).cast(TS_TYPE)
    if isinstance(vec, Coded) and vec._values is None:  # decoded by Arrow: no str made per row
        return pa.DictionaryArray.from_arrays(pa.array(vec.codes, mask=mask), vec.arrow).cast(pa.string())
    if isinstance(vec, ArrowTexts):  # its Arrow array: no str made per row
        texts = vec.arrow.cast(pa.string())
        return texts if mask is None else pc.if_else(pa.array(mask), pa.scalar(None, pa.string()), texts)
    return pa.array(vec.values, type=arrow_type(ltype), mask=mask)


SAMPLE_ROWS = 16_384  # rows looked at to tell a column of distinct values (ids) from one that repeats


def _repeats(arr: pa.Array | pa.ChunkedArray) -> bool:
    """Whether a column's values repeat (accounts, devices, countries) rather than being distinct (ids):
    an evenly spread sample with no repeat says which."""
    n = len(arr)
    rows = np.arange(n) if n <= SAMPLE_ROWS else np.linspace(0, n - 1, SAMPLE_ROWS).astype(np.int64)
    # a column that repeats shows it in a 16th of the sample already (the same decision: a repeat in a
    # subset is one in the sample); only a column with no repeat there pays for the whole sample
    for every in (16, 1):
        sample = arr.take(pa.array(rows[::every]))
        if pc.count_distinct(sample, mode="all").as_py() < len(sample):
            return True
    return False


def _dictionary_codes(arr: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray, int]:
    """(each distinct value once, an Arrow string array; int32 code per row; the code of "", the value
    of null rows) by Arrow's dictionary encoding. "" is appended when no row holds it."""
    if isinstance(arr, pa.ChunkedArray):
        # one hash table over the joined chunks: encoding each chunk and unifying the dictionaries
        # (a spill chunk or a store read: a chunk per 64k-row group) was 3x slower, same codes
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], arr.type)
    enc = pc.dictionary_encode(arr)
    dictionary, indices = enc.dictionary, enc.indices
    k = len(dictionary)
    empty = np.flatnonzero(pc.equal(pc.binary_length(dictionary), 0).to_numpy(zero_copy_only=False)) if k else []
    blank = int(empty[0]) if len(empty) else k
    if blank == k:
        dictionary = pa.concat_arrays([dictionary.cast(pa.string()), pa.array([""], pa.string())])
    codes = pc.fill_null(indices, blank) if indices.null_count else indices
    return dictionary, np.asarray(codes.to_numpy(), dtype=np.int32), blank


def text_objects(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Object array of str, nulls as "".

    ``to_numpy`` makes one Python str (about 60 bytes) per row. A column whose values repeat
    (accounts, devices, countries) goes through a dictionary instead, so each distinct value is
    one str shared by its rows: 8 bytes a row. A column of distinct values (ids) skips the
    dictionary, which would only cost time.
    """
    n = len(arr)
    if n == 0:
        return np.empty(0, dtype=object)
    if isinstance(arr, pa.ChunkedArray) and arr.num_chunks == 1:
        arr = arr.chunk(0)
    if not _repeats(arr):
        if arr.null_count:
            arr = pc.fill_null(arr, "")
        return arrow_texts(arr)
    dictionary, codes, _ = _dictionary_codes(arr)
    return arrow_texts(dictionary)[codes]


def text_vec(arr: pa.Array | pa.ChunkedArray, null: np.ndarray) -> Vec:
    """A text column with its null mask: coded (columns.vec.Coded) when its values repeat, so the rows
    never become objects unless read as such; an object array of str (text_objects) otherwise. The
    values of the rows of ``null`` are "" (the filler), whatever ``arr`` holds there."""
    n = len(arr)
    if isinstance(arr, pa.ChunkedArray) and arr.num_chunks == 1:
        arr = arr.chunk(0)
    if n == 0:
        return Vec(np.empty(0, dtype=object), null)
    if not _repeats(arr):  # ids: kept in Arrow, large_string so that joined blocks pass 2 GiB
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if null.any():
            arr = pc.if_else(pa.array(null), pa.scalar("", arr.type), arr)
        elif arr.null_count:
            arr = pc.fill_null(arr, "")
        return ArrowTexts(arr.cast(pa.large_string()), null)
    dictionary, codes, blank = _dictionary_codes(arr)
    if null.any():
        codes = np.where(null, np.int32(blank), codes)
    return Coded(codes, dictionary, null)


class TextAfterArrow(Vec):
    """A text column whose first rows stay in Arrow until a caller takes them: the context rows'
    ids (store.context.Context.prepend). A rule reads a context row's id only when an alert shows
    it (an earlier step, a counted record), so ``take`` makes a str per row taken; ``values``,
    for any other reader, converts the whole column once, with the values an eager column has."""

    def __init__(self, head: pa.ChunkedArray, tail: Vec):
        self.head = head
        self.tail = tail
        self._values: np.ndarray | None = None
        self.null = np.concatenate([head.is_null().to_numpy(zero_copy_only=False) if head.null_count
                                    else np.zeros(len(head), dtype=bool), tail.null])

    @property  # type: ignore[override]
    def values(self) -> np.ndarray:
        if self._values is None:
            self._values = np.concatenate([text_objects(self.head), self.tail.values])
        return self._values

    def __len__(self) -> int:
        return len(self.null)

    def take(self, index: np.ndarray) -> Vec:
        if self._values is not None:
            return Vec(self._values[index], self.null[index])
        index = np.arange(len(self.null))[index]  # a mask or a slice as positions; negatives counted
        m = len(self.head)
        old = index < m
        values = np.empty(len(index), dtype=object)
        if old.any():
            got = self.head.take(pa.array(index[old]))
            values[old] = arrow_texts(pc.fill_null(got, ""))
        values[~old] = self.tail.values[index[~old] - m]
        return Vec(values, self.null[index])


def arrow_to_vec(arr: pa.Array | pa.ChunkedArray, ltype: LogicalType) -> Vec:
    n = len(arr)
    if n == 0:
        return Vec(empty_array(ltype, 0), np.zeros(0, dtype=bool))
    kind = physical_kind(ltype)
    null = arr.is_null().to_numpy(zero_copy_only=False) if arr.null_count else np.zeros(n, dtype=bool)
    if kind == PhysicalKind.OBJECT:
        return text_vec(arr, null)
    if kind == PhysicalKind.INT:
        arr = arr.cast(pa.int64())
    if arr.null_count:
        arr = pc.fill_null(arr, pa.scalar(FILLERS[kind], type=arr.type))
    return Vec(arr.to_numpy(zero_copy_only=False).astype(DTYPES[kind], copy=False), null)


def columns_to_arrow(columns: dict[str, Vec], spec: StreamSpec, names: list[str],
                     extra: dict[str, np.ndarray] | None = None) -> pa.Table:
    """The named fields of a stream's columns (plus plain numpy ``extra`` columns) as one table."""
    arrays = {name: vec_to_arrow(columns[name], spec.fields[name].type) for name in names}
    for name, values in (extra or {}).items():
        arrays[name] = pa.array(values)
    return pa.table(arrays)


def arrow_to_columns(table: pa.Table, spec: StreamSpec, take: np.ndarray | None = None) -> dict[str, Vec]:
    """Every field of the stream; a field the table lacks is all null (a store keeps only what rules read).

    With ``take``, the rows at those positions: each column is permuted as soon as it is converted,
    so that the table is never held twice in numpy.
    """
    n = table.num_rows if take is None else len(take)
    out = {}
    for name, fspec in spec.fields.items():
        if name in table.column_names:
            vec = arrow_to_vec(table.column(name), fspec.type)
            out[name] = vec if take is None else vec.take(take)
        else:
            out[name] = Vec.nulls(fspec.type, n)
    return out
