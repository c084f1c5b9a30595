"""Typed columns to Arrow and back, exactly: the form records take on disk between runs and chunks.

The round trip is lossless for every logical type (float64 stays float64, timestamps stay
int64 nanoseconds, text stays text), so a record read back from a history store or a spill
file evaluates, and shows in an alert, byte for byte as it did when it was first read.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..columns.types import LogicalType, PhysicalKind
from ..columns.vec import DTYPES, FILLERS, Vec, empty_array, physical_kind
from ..pack.streams import StreamSpec

TS_TYPE = pa.timestamp("ns", tz="UTC")  # timestamps on disk: readable as time by any Parquet tool


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
    return pa.array(vec.values, type=arrow_type(ltype), mask=mask)


def arrow_to_vec(arr: pa.Array | pa.ChunkedArray, ltype: LogicalType) -> Vec:
    n = len(arr)
    if n == 0:
        return Vec(empty_array(ltype, 0), np.zeros(0, dtype=bool))
    kind = physical_kind(ltype)
    null = arr.is_null().to_numpy(zero_copy_only=False) if arr.null_count else np.zeros(n, dtype=bool)
    if kind == PhysicalKind.INT:
        arr = arr.cast(pa.int64())
    if arr.null_count:
        arr = pc.fill_null(arr, pa.scalar(FILLERS[kind], type=arr.type))
    if kind == PhysicalKind.OBJECT:
        values = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=object)
    else:
        values = arr.to_numpy(zero_copy_only=False).astype(DTYPES[kind], copy=False)
    return Vec(values, null)


def columns_to_arrow(columns: dict[str, Vec], spec: StreamSpec, names: list[str],
                     extra: dict[str, np.ndarray] | None = None) -> pa.Table:
    """The named fields of a stream's columns (plus plain numpy ``extra`` columns) as one table."""
    arrays = {name: vec_to_arrow(columns[name], spec.fields[name].type) for name in names}
    for name, values in (extra or {}).items():
        arrays[name] = pa.array(values)
    return pa.table(arrays)


def arrow_to_columns(table: pa.Table, spec: StreamSpec) -> dict[str, Vec]:
    """Every field of the stream; a field the table lacks is all null (a store keeps only what rules read)."""
    n = table.num_rows
    out = {}
    for name, fspec in spec.fields.items():
        if name in table.column_names:
            out[name] = arrow_to_vec(table.column(name), fspec.type)
        else:
            out[name] = Vec.nulls(fspec.type, n)
    return out
