"""The records model: per-stream tables in the total order, input specs and reject accounting."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import overload

import numpy as np

from ..columns.vec import Vec

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

    def take(self, rows: np.ndarray) -> Table:
        """The records at positions ``rows`` (ascending keeps the total order), every column with them."""
        return Table(self.stream, {k: v.take(rows) for k, v in self.columns.items()}, self.seq[rows],
                     self.input_index[rows], self.line[rows])


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


class Rejects(Sequence[Reject]):
    """Rejected rows as three columns (input, line, reason), read as a sequence of Reject: a run that
    rejects millions of rows holds three arrays, not millions of objects."""

    __slots__ = ("input", "line", "reason")

    def __init__(self, input: np.ndarray | None = None, line: np.ndarray | None = None,
                 reason: np.ndarray | None = None):
        self.input = np.zeros(0, dtype=object) if input is None else input
        self.line = np.zeros(0, dtype=np.int64) if line is None else line
        self.reason = np.zeros(0, dtype=object) if reason is None else reason

    @classmethod
    def of(cls, rejects: Iterable[Reject]) -> Rejects:
        if isinstance(rejects, Rejects):
            return rejects
        rows = list(rejects)
        return cls(np.array([r.input for r in rows], dtype=object), np.array([r.line for r in rows], dtype=np.int64),
                   np.array([r.reason for r in rows], dtype=object))

    @classmethod
    def joined(cls, parts: Sequence[Rejects]) -> Rejects:
        parts = [p for p in parts if len(p)]
        if len(parts) <= 1:
            return parts[0] if parts else cls()
        return cls(np.concatenate([p.input for p in parts]), np.concatenate([p.line for p in parts]),
                   np.concatenate([p.reason for p in parts]))

    def __len__(self) -> int:
        return len(self.line)

    @overload
    def __getitem__(self, i: int) -> Reject: ...
    @overload
    def __getitem__(self, i: slice) -> list[Reject]: ...

    def __getitem__(self, i: int | slice) -> Reject | list[Reject]:
        if isinstance(i, slice):
            return list(Rejects(self.input[i], self.line[i], self.reason[i]))
        return Reject(self.input[i], int(self.line[i]), self.reason[i])

    def __iter__(self) -> Iterator[Reject]:
        for path, line, reason in zip(self.input.tolist(), self.line.tolist(), self.reason.tolist()):
            yield Reject(path, line, reason)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (Rejects, list, tuple)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable arrays, compared by value

    def __repr__(self) -> str:
        return f"Rejects({len(self)} rows{': ' + repr(self[:3])[1:-1] + ', ...' if len(self) else ''})"


@dataclass
class RecordSet:
    tables: dict[str, Table]  # every stream that appeared in the inputs (possibly with 0 records)
    inputs: list[InputStats]
    rejects: Rejects  # sorted by (input order, line); a list of Reject is taken as one

    def __post_init__(self) -> None:
        self.rejects = Rejects.of(self.rejects)

    @property
    def total(self) -> int:
        return sum(t.n for t in self.tables.values())


@dataclass(frozen=True)
class InputSpec:
    path: Path
    stream: str | None  # None: read through the mapping
    format: str  # csv | jsonl | parquet
