"""The records model: per-stream tables in the total order, input specs and reject accounting."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..columns.vec import Vec

if TYPE_CHECKING:  # pragma: no cover
    pass


FORMATS = ("csv", "jsonl", "parquet")



# --- public data model ----------------------------------------------------------


@dataclass
class Table:
    """One stream's records, sorted by the total order."""

    stream: str
    columns: dict[str, Vec]  # every field of the stream, in schema order
    seq: np.ndarray  # int64 global total-order position (0..N-1 over all streams)
    input_index: np.ndarray  # int32 index into RecordSet.inputs
    line: np.ndarray  # int64 source line (CSV/JSONL physical line; Parquet row number, 1-based)

    @property
    def n(self) -> int:
        return len(self.seq)

    def ts(self) -> np.ndarray:
        return self.columns["ts"].values


@dataclass
class InputStats:
    path: str
    stream: str
    format: str
    read: int = 0
    rejected: int = 0
    scored: int = 0
    filtered: int = 0  # rows a mapping's ``where`` left out
    late: int = 0  # rows at or before a history store's high-water mark; read = scored + rejected + filtered + late


@dataclass
class Reject:
    input: str
    line: int
    reason: str


@dataclass
class RecordSet:
    tables: dict[str, Table]  # every stream that appeared in the inputs (possibly with 0 records)
    inputs: list[InputStats]
    rejects: list[Reject]  # sorted by (input order, line)

    @property
    def total(self) -> int:
        return sum(t.n for t in self.tables.values())


@dataclass(frozen=True)
class InputSpec:
    path: Path
    stream: str | None  # None: read through the mapping
    format: str  # csv | jsonl | parquet
