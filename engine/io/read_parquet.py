"""The Parquet reader: row groups as Arrow batches, the requested columns only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..errors import InputError
from .raw import RawChunk
from .read_csv import check_header

# Parquet -------------------------------------------------------------------------------


class ParquetReader:
    def __init__(self, path: Path, requested: list[str], chunk_rows: int):
        import pyarrow.parquet as pq  # loads with the first Parquet input (~15 ms of a run's imports otherwise)

        self.path, self.chunk_rows = path, chunk_rows
        try:
            self.file = pq.ParquetFile(path)
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"{path}: cannot read Parquet: {exc}") from None
        self.header = check_header(list(self.file.schema_arrow.names), path)
        self.present = [c for c in requested if c in self.header]

    def chunks(self) -> Iterator[RawChunk]:
        lo = 0
        try:
            if not self.present:
                total = self.file.metadata.num_rows
                for lo in range(0, total, self.chunk_rows):
                    k = min(self.chunk_rows, total - lo)
                    rows = np.arange(lo + 1, lo + k + 1, dtype=np.int64)
                    yield RawChunk({}, k, rows, rows)
                return
            for batch in self.file.iter_batches(batch_size=self.chunk_rows, columns=self.present):
                k = batch.num_rows
                rows = np.arange(lo + 1, lo + k + 1, dtype=np.int64)
                yield RawChunk({c: batch.column(c) for c in self.present}, k, rows, rows)
                lo += k
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"{self.path}: cannot read Parquet: {exc}") from None
