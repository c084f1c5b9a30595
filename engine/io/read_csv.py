"""The CSV reader: pyarrow in one pass when it can, numpy record boundaries when it must."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from ..errors import InputError
from .raw import RawChunk, SlowPathNeeded, bad_utf8_records, runs_buffer, utf8_ok

if TYPE_CHECKING:  # pragma: no cover
    pass


# CSV -----------------------------------------------------------------------------------


def _parse_header(raw: bytes, path: Path) -> list[str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: the header line is not valid UTF-8") from None
    rows = list(csv.reader([text.rstrip("\r\n")]))
    return check_header([h.strip() for h in rows[0]] if rows else [], path)


def check_header(header: list[str], path: Path) -> list[str]:
    """A column named twice is refused: which of the two holds the field would be a guess."""
    seen: set[str] = set()
    twice = [h for h in header if h and (h in seen or seen.add(h))]
    if twice:
        raise InputError(f"{path}: column {twice[0]!r} appears more than once; rename or remove the repeated "
                         f"column")
    return header


class CsvReader:
    """A CSV input: the header, and chunks of rows as Arrow text columns."""

    def __init__(self, path: Path, data: bytes, requested: list[str], chunk_rows: int, *, slow: bool = False):
        self.path, self.data, self.chunk_rows = path, data, chunk_rows
        self.requested = requested
        self.header: list[str] = []
        self._plan: Callable[[], Iterator[RawChunk]] = lambda: iter(())
        if not data or data.isspace():
            return
        if slow:
            self._slow()
            return
        self.buf = np.frombuffer(data, dtype=np.uint8)
        self.nl = np.flatnonzero(self.buf == 10)  # every physical line end
        if b"\r" in data:
            cr = np.flatnonzero(self.buf == 13)
            if cr[-1] == len(data) - 1 or not (self.buf[cr + 1] == 10).all():
                self._slow()  # a bare CR line end: only the slow path counts lines as Arrow reads them
                return
        if not (self._fast() or self._general()):
            self._slow()

    def chunks(self) -> Iterator[RawChunk]:
        return self._plan()

    # column selection: the first occurrence of each requested name
    def _selection(self) -> dict[str, int]:
        where: dict[str, int] = {}
        for i, h in enumerate(self.header):
            if h in self.requested and h not in where:
                where[h] = i
        return where

    def _arrow_read(self, buffer: pa.Buffer, newlines_in_values: bool, on_invalid: list) -> pa.Table:
        ncols = len(self.header)
        names = [f"c{i}" for i in range(ncols)]
        sel = self._selection()
        include = [names[i] for i in sel.values()] or [names[0]]

        def handler(row) -> str:
            on_invalid.append(row)
            return "skip"

        return pa_csv.read_csv(
            pa.BufferReader(buffer),
            read_options=pa_csv.ReadOptions(column_names=names, block_size=1 << 24),
            parse_options=pa_csv.ParseOptions(newlines_in_values=newlines_in_values, invalid_row_handler=handler),
            convert_options=pa_csv.ConvertOptions(column_types={c: pa.string() for c in include},
                                                  include_columns=include, check_utf8=False),
        )

    def _columns(self, table: pa.Table, lo: int, hi: int) -> dict[str, pa.Array]:
        out = {}
        for name, i in self._selection().items():
            col = table.column(f"c{i}").slice(lo, hi - lo)
            out[name] = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
        return out

    def _fast(self) -> bool:
        """One-line records, no blank lines, valid UTF-8: one Arrow pass, line = row + 2."""
        data, buf, nls = self.data, self.buf, self.nl
        if data[:1] in (b"\n", b"\r"):
            return False
        gaps = np.diff(nls)
        if (gaps == 1).any() or ((gaps == 2) & (buf[nls[1:] - 1] == 13)).any():
            return False  # blank lines: Arrow skips them, so rows would not be lines
        if not utf8_ok(data):
            return False
        nl = int(nls[0]) if len(nls) else -1
        self.header = _parse_header(data if nl < 0 else data[:nl], self.path)
        if not self.header:
            return False
        body = memoryview(data)[nl + 1:] if nl >= 0 else memoryview(b"")
        nlines = len(nls) - 1 + (0 if data.endswith(b"\n") else 1) if len(body) else 0
        invalid: list = []
        try:
            table = self._arrow_read(pa.py_buffer(body), False, invalid) if nlines else None
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return False
        if invalid or (table is not None and table.num_rows != nlines):
            return False

        def plan() -> Iterator[RawChunk]:
            for lo in range(0, nlines, self.chunk_rows):
                hi = min(nlines, lo + self.chunk_rows)
                rows = np.arange(lo + 1, hi + 1, dtype=np.int64)
                yield RawChunk(self._columns(table, lo, hi), hi - lo, rows + 1, rows)

        self._plan = plan
        return True

    def _general(self) -> bool:
        """Record boundaries from numpy (quote parity), then Arrow per chunk."""
        data, buf, nl = self.data, self.buf, self.nl
        quotes = None
        quoted_newlines = False
        if b'"' in data:
            quotes = np.flatnonzero(buf == 34)
            if len(quotes) % 2 or not _quotes_well_formed(buf, quotes):
                return False
            parity = np.searchsorted(quotes, nl) % 2
            term = nl[parity == 0]
            quoted_newlines = bool(parity.any())
        else:
            term = nl
        starts = np.concatenate(([0], term + 1)).astype(np.int64)
        ends = np.concatenate((term, [len(buf)])).astype(np.int64)
        has_cr = (ends > starts) & (buf[np.clip(ends - 1, 0, None)] == 13)
        ends = ends - has_cr
        keep = ends > starts
        starts, ends = starts[keep], ends[keep]
        if len(starts) == 0:
            return True
        lines = np.searchsorted(nl, starts) + 1
        self.header = _parse_header(data[starts[0]: ends[0]], self.path)
        starts, ends, lines = starts[1:], ends[1:], lines[1:]
        nrec = len(starts)
        bad_utf8 = bad_utf8_records(data, buf, starts, ends)
        commas = np.flatnonzero(buf == 44)
        if quotes is not None:
            commas = commas[np.searchsorted(quotes, commas) % 2 == 0]
        ncols = np.searchsorted(commas, ends) - np.searchsorted(commas, starts) + 1
        want = len(self.header)
        bad_cols = (ncols != want) & ~bad_utf8

        def plan() -> Iterator[RawChunk]:
            for lo in range(0, nrec, self.chunk_rows):
                hi = min(nrec, lo + self.chunk_rows)
                sl = slice(lo, hi)
                good = ~bad_utf8[sl] & ~bad_cols[sl]
                rejects = [(int(lines[lo + i]), "invalid UTF-8") for i in np.flatnonzero(bad_utf8[sl])]
                rejects += [(int(lines[lo + i]), f"expected {want} columns, got {int(ncols[lo + i])}")
                            for i in np.flatnonzero(bad_cols[sl])]
                ngood = int(good.sum())
                columns: dict[str, pa.Array] = {}
                if ngood:
                    invalid: list = []
                    try:
                        table = self._arrow_read(runs_buffer(data, starts[sl], ends[sl], good), quoted_newlines,
                                                 invalid)
                    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                        raise SlowPathNeeded() from None
                    if invalid or table.num_rows != ngood:
                        raise SlowPathNeeded()
                    columns = self._columns(table, 0, ngood)
                rows = np.arange(lo + 1, hi + 1, dtype=np.int64)
                yield RawChunk(columns, ngood, lines[sl][good].astype(np.int64), rows[good], sorted(rejects))

        self._plan = plan
        return True

    def _slow(self) -> None:
        """Python's csv module, record by record: exact physical lines for odd files."""
        text = self.data.decode("utf-8", "surrogateescape")
        surrogate = re.compile("[\udc80-\udcff]")
        reader = csv.reader(io.StringIO(text, newline=""))
        records: list[tuple[int, list[str] | None, str]] = []  # (line, fields or None, reason)
        prev = 0
        header: list[str] | None = None
        while True:
            try:
                fields = next(reader)
                reason = ""
            except StopIteration:
                break
            except csv.Error as exc:
                fields, reason = None, f"malformed CSV: {exc}"
            start, prev = prev + 1, reader.line_num
            if fields is not None and not fields:
                continue  # a blank line
            if header is None:
                if fields is None or surrogate.search("".join(fields)):
                    raise InputError(f"{self.path}: the header line cannot be read")
                header = check_header([h.strip() for h in fields], self.path)
                continue
            if fields is not None and surrogate.search("".join(fields)):
                fields, reason = None, "invalid UTF-8"
            elif fields is not None and len(fields) != len(header):
                reason = f"expected {len(header)} columns, got {len(fields)}"
                fields = None
            records.append((start, fields, reason))
        self.header = header or []

        def plan() -> Iterator[RawChunk]:
            sel = self._selection()
            for lo in range(0, len(records), self.chunk_rows):
                part = records[lo: lo + self.chunk_rows]
                good = [(k, r) for k, r in enumerate(part) if r[1] is not None]
                columns = {name: pa.array([r[1][i] for _, r in good], pa.string()) for name, i in sel.items()}
                yield RawChunk(columns, len(good), np.array([r[0] for _, r in good], dtype=np.int64),
                               np.array([lo + k + 1 for k, _ in good], dtype=np.int64),
                               [(r[0], r[2]) for r in part if r[1] is None])

        self._plan = plan


def _quotes_well_formed(buf: np.ndarray, q: np.ndarray) -> bool:
    """Every quote opens a field, closes one, or is half of a doubled quote.

    Under this condition a newline is a record end exactly when an even number
    of quotes precede it, which is how Arrow (and RFC 4180) read the file.
    """
    n = len(buf)
    seps = np.array([44, 10, 13], dtype=np.uint8)
    opening, closing = q[0::2], q[1::2]
    prev = buf[np.clip(opening - 1, 0, None)]
    prev_ok = (opening == 0) | np.isin(prev, seps) | ((prev == 34) & np.isin(opening - 1, closing))
    nxt = buf[np.clip(closing + 1, None, n - 1)]
    next_ok = (closing == n - 1) | np.isin(nxt, seps) | ((nxt == 34) & np.isin(closing + 1, opening))
    return bool(prev_ok.all() and next_ok.all())
