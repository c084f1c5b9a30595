"""The JSON Lines reader: one object per line, typed by Arrow where the values allow."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.json as pa_json

from ..errors import InputError
from .convert import ARROW_JSON_TYPES, dict_rows_to_columns, json_type, loads_json
from .raw import (
    ARROW_BLOCK_BYTES,
    BLOCK_BYTES,
    LongRecord,
    RawChunk,
    bad_utf8_records,
    last_line_end,
    one_array,
    record_blocks,
    runs_buffer,
    utf8_ok,
)
from .threads import map_ahead


class JsonlReader:
    """A JSON Lines input: one object per line, read a block of lines at a time (``block_bytes``)."""

    def __init__(self, path: Path, kinds: dict[str, str], chunk_rows: int, *, block_bytes: int = BLOCK_BYTES):
        self.path, self.kinds, self.chunk_rows = path, kinds, chunk_rows
        self.header = None
        self.schema = pa.schema([(k, ARROW_JSON_TYPES.get(kind, pa.string())) for k, kind in kinds.items()])
        # numbers and booleans written as JSON strings ("amount": "12.5"), as many exports write them:
        # Arrow refuses them under the typed schema, and one json.loads a line cost 15 s a million lines
        self.text_schema = pa.schema([(k, pa.string()) for k in kinds])
        self._blocks = record_blocks(path, block_bytes, last_line_end)

    def chunks(self) -> Iterator[RawChunk]:
        row = 0
        blocks, self._blocks = self._blocks, iter(())
        try:
            # Arrow's JSON parse is most of a JSON Lines read (4-5 times CSV's per record) and releases the
            # GIL: blocks are parsed two at a time, then cut into chunks in file order
            texts = ((data, line) for data, line in blocks if not data.isspace())
            for (data, line), parsed in map_ahead(lambda text: self._fast_table(text[0]), texts):
                parts = self._fast(parsed, line, row) if parsed is not None else self._general(data, line, row)
                for chunk in parts:
                    row += chunk.read
                    yield chunk
        except LongRecord as exc:
            raise InputError(f"{self.path}: a line longer than {exc.limit:,} bytes; JSON Lines holds one record "
                             f"per line") from None

    def _arrow(self, buffer: pa.Buffer) -> pa.Table:
        """The block's lines typed by Arrow: JSON numbers and booleans under the typed schema, or, where
        every value is a string or null, as text (converted as a CSV's text is, as the per-line path
        converts a string value)."""
        if not len(self.schema):
            raise pa.ArrowInvalid("no columns")
        try:
            return self._read(buffer, self.schema)
        except pa.ArrowInvalid:
            if self.text_schema.equals(self.schema):
                raise
            return self._read(buffer, self.text_schema)

    @staticmethod
    def _read(buffer: pa.Buffer, schema: pa.Schema) -> pa.Table:
        return pa_json.read_json(pa.BufferReader(buffer),
                                 read_options=pa_json.ReadOptions(block_size=ARROW_BLOCK_BYTES, use_threads=False),
                                 parse_options=pa_json.ParseOptions(explicit_schema=schema,
                                                                    unexpected_field_behavior="ignore"))

    def _fast_table(self, data: bytes) -> tuple[pa.Table, int] | None:
        """A block of one record per line, no blank line, valid UTF-8, that Arrow parses whole: its table and
        its line count; None otherwise (the block then goes line by line, ``_general``). Depends on the
        block alone, so blocks are parsed on several threads."""
        buf = np.frombuffer(data, dtype=np.uint8)
        ends = np.flatnonzero(buf == 10)
        starts = np.concatenate(([0], ends + 1))
        first = buf[starts[starts < len(buf)]]  # each line's first byte
        # a blank line starts with white space (or is a line end): JSON Lines seldom has such a line, and the
        # regular expressions (a pass over the block each) decide only then
        if ((first == 32) | (first == 9) | (first == 13) | (first == 10)).any():
            tail = data[data.rfind(b"\n") + 1:]
            if re.match(rb"[ \t\r]*\n", data) or re.search(rb"\n[ \t\r]*\n", data) or (tail and not tail.strip()):
                return None
        del buf, first
        if not utf8_ok(data):
            return None
        nlines = len(ends) + (0 if data.endswith(b"\n") else 1)
        try:
            table = self._arrow(pa.py_buffer(data))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
        if table.num_rows != nlines:
            return None
        return table, nlines

    def _fast(self, parsed: tuple[pa.Table, int], first_line: int, first_row: int) -> Iterator[RawChunk]:
        table, nlines = parsed

        def plan() -> Iterator[RawChunk]:
            for lo in range(0, nlines, self.chunk_rows):
                hi = min(nlines, lo + self.chunk_rows)
                cols = {}
                for name in table.column_names:
                    col = table.column(name).slice(lo, hi - lo)
                    cols[name] = one_array(col)
                local = np.arange(lo, hi, dtype=np.int64)
                yield RawChunk(cols, hi - lo, local + first_line, local + first_row + 1)

        return plan()

    def _general(self, data: bytes, first_line: int, first_row: int) -> Iterator[RawChunk]:
        buf = np.frombuffer(data, dtype=np.uint8)
        nl = np.flatnonzero(buf == 10)
        starts = np.concatenate(([0], nl + 1)).astype(np.int64)
        ends = np.concatenate((nl, [len(buf)])).astype(np.int64)
        if starts[-1] == len(buf):
            starts, ends = starts[:-1], ends[:-1]
        lines = np.arange(first_line, first_line + len(starts), dtype=np.int64)
        nonws = ~np.isin(buf, np.array([9, 10, 13, 32], dtype=np.uint8))
        seg = np.logical_or.reduceat(nonws, starts) if len(starts) else np.zeros(0, dtype=bool)
        seg &= ends > starts
        starts, ends, lines = starts[seg], ends[seg], lines[seg]
        bad_utf8 = bad_utf8_records(data, buf, starts, ends)
        nrec = len(starts)

        def plan() -> Iterator[RawChunk]:
            for lo in range(0, nrec, self.chunk_rows):
                hi = min(nrec, lo + self.chunk_rows)
                sl = slice(lo, hi)
                good = ~bad_utf8[sl]
                rejects = [(int(lines[lo + i]), "invalid UTF-8") for i in np.flatnonzero(bad_utf8[sl])]
                rows = np.arange(lo + 1, hi + 1, dtype=np.int64) + first_row
                ngood = int(good.sum())
                table = None
                if ngood:
                    try:
                        table = self._arrow(runs_buffer(data, starts[sl], ends[sl], good))
                        if table.num_rows != ngood:
                            table = None
                    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                        table = None
                if table is not None or not ngood:
                    cols = {c: one_array(table.column(c)) for c in table.column_names} if table else {}
                    yield RawChunk(cols, ngood, lines[sl][good], rows[good], rejects)
                    continue
                # per-line parsing of this chunk only: find the bad lines and type the rest
                parsed: list[dict] = []
                keep_lines, keep_rows = [], []
                for i in np.flatnonzero(good):
                    raw = data[starts[lo + i]: ends[lo + i]]
                    try:
                        obj = loads_json(raw)
                    except ValueError as exc:
                        msg = getattr(exc, "msg", str(exc))
                        col = getattr(exc, "colno", None)
                        where = f" (column {col})" if col else ""
                        rejects.append((int(lines[lo + i]), f"invalid JSON: {msg}{where}"))
                        continue
                    if not isinstance(obj, dict):
                        rejects.append((int(lines[lo + i]), f"not a JSON object (got {json_type(obj)})"))
                        continue
                    parsed.append(obj)
                    keep_lines.append(lines[lo + i])
                    keep_rows.append(rows[i])
                cols, pre = dict_rows_to_columns(parsed, self.kinds, len(parsed))
                yield RawChunk(cols, len(parsed), np.array(keep_lines, dtype=np.int64),
                               np.array(keep_rows, dtype=np.int64), sorted(rejects), pre)

        return plan()
