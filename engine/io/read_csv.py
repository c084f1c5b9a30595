"""The CSV reader, block by block: pyarrow in one pass when it can, numpy record boundaries when it must, and
Python's csv module for a block, or a file, that neither reads as the csv module would."""

from __future__ import annotations

import csv
import functools
import io
import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from ..errors import InputError
from .raw import (
    ARROW_BLOCK_BYTES,
    BLOCK_BYTES,
    READ_ERRORS,
    LongRecord,
    RawChunk,
    SlowPathNeeded,
    bad_utf8_records,
    one_array,
    open_binary,
    record_blocks,
    runs_buffer,
    text_encoding,
    utf8_ok,
)
from .threads import map_ahead

# CSV -----------------------------------------------------------------------------------


def _parse_header(raw: bytes, path: Path, delimiter: str, encoding: str | None) -> list[str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: the header line is not valid {encoding or 'UTF-8'}") from None
    rows = list(csv.reader([text.rstrip("\r\n")], delimiter=delimiter))
    return check_header([h.strip() for h in rows[0]] if rows else [], path)


def check_header(header: list[str], path: Path) -> list[str]:
    """A column named twice is refused: which of the two holds the field would be a guess."""
    seen: set[str] = set()
    twice = [h for h in header if h and (h in seen or seen.add(h))]
    if twice:
        raise InputError(f"{path}: column {twice[0]!r} appears more than once; rename or remove the repeated "
                         f"column")
    return header


DELIMITER = ","  # between the fields of a CSV record; a mapping may name another (``;``, ``|``, a tab)


def csv_record_end(buf: bytes, delimiter: str = DELIMITER) -> int:
    """``cut`` for CSV blocks: just after the last newline outside a quoted value (``quote_toggles``), else
    after the last newline. A block then ends inside a quoted value, which every vectorised path declines
    (its toggling quotes are odd), so the csv module reads the file: a quote never closed, or a value longer
    than a block. Waiting for the value's end instead held a file with an unclosed quote whole in one block
    (a 73 MB input peaked at 730 MB against 420)."""
    last = buf.rfind(b"\n")
    if last < 0 or b'"' not in buf:
        return last + 1
    arr = np.frombuffer(buf, dtype=np.uint8)
    toggles = quote_toggles(arr, delimiter)
    nls = np.flatnonzero(arr == 10)
    even = nls[np.searchsorted(toggles, nls) % 2 == 0]
    return int(even[-1]) + 1 if len(even) else last + 1


def quote_toggles(arr: np.ndarray, delimiter: str = DELIMITER) -> np.ndarray:
    """The offsets of the quotes where a quoted field opens or closes, as Python's csv module reads the bytes
    ``arr`` (the default dialect, from a record start). A newline or comma is inside a quoted field when an odd
    number of toggles precede it. A quote opens a field only at the field's start, inside one a doubled quote
    is a quote of the text, and any other quote is text (``5" screen``); quote parity alone would take every
    newline after a stray quote for a quoted one.

    Vectorised over runs of adjacent quotes: each run acts on the state (inside a quoted field or not) as one
    of three maps. An even run keeps it (quotes doubled inside a field, or an empty ``""`` outside); an odd run
    at a field's start flips it (it opens a field, or closes one); an odd run anywhere else leaves any field
    (it closes one, or is text outside one). So the state after a run is the parity of the flips since the
    last run that left, and a run toggles where the state changes. Most files hold regular quotes only
    (RFC 4180: ``_regular``), where every quote toggles: that check alone costs a fifth of the runs'."""
    quotes = np.flatnonzero(arr == 34)
    separator = _separators(delimiter)
    if not len(quotes) or _regular(arr, quotes, separator):
        return quotes
    first = np.ones(len(quotes), dtype=bool)  # each run's first quote
    first[1:] = quotes[1:] != quotes[:-1] + 1
    at = np.flatnonzero(first)
    starts = quotes[at]
    odd = (np.diff(np.append(at, len(quotes))) & 1).astype(bool)
    field_start = separator[arr[starts - 1]]  # the run at offset 0 reads the last byte: set below
    field_start[0] |= starts[0] == 0
    flips = np.cumsum(odd & field_start)
    leaves = odd & ~field_start
    last_leave = np.maximum.accumulate(np.where(leaves, np.arange(len(starts)), -1))
    inside = ((flips - np.where(last_leave >= 0, flips[last_leave], 0)) & 1).astype(bool)
    changed = inside.copy()
    changed[1:] ^= inside[:-1]
    return starts[changed]


@functools.cache
def _separators(delimiter: str) -> np.ndarray:
    """By byte: whether a quote after it opens a field (the delimiter or a line end); one gather tests a quote's
    neighbour."""
    table = np.zeros(256, dtype=bool)
    table[[ord(delimiter), 10, 13]] = True
    return table


@functools.cache
def _blank_lines(delimiter: str) -> re.Pattern[bytes]:
    """Lines of white space before the header, skipped; a tab is a field's end where it is the delimiter."""
    space = re.escape(" \t\r\x0b\x0c".replace(delimiter, "").encode())
    return re.compile(rb"(?:[" + space + rb"]*\n)*")


def _regular(arr: np.ndarray, q: np.ndarray, separator: np.ndarray) -> bool:
    """Whether the quotes ``q`` (from a record start) follow RFC 4180's pattern, so that each opens or closes a
    quoted field. Taken in pairs, each first quote starts a field (after a comma, a line end, or the closing
    quote of a doubled pair), and each second one ends it (before a comma, a line end, the end of the bytes,
    or the opening quote of a doubled pair)."""
    n = len(arr)
    opening, closing = q[0::2], q[1::2]
    # a byte table per neighbour, then the rare exceptions on the few quotes it refuses
    bad_open = np.flatnonzero(~separator[arr[opening - 1]])  # opening 0 reads the last byte: forgiven below
    if len(bad_open):
        at = opening[bad_open]
        doubled = np.zeros(len(at), dtype=bool)  # ``""``: right after the pair before's closing quote
        later = bad_open > 0
        doubled[later] = closing[bad_open[later] - 1] == at[later] - 1
        if not ((at == 0) | doubled).all():
            return False
    bad_close = np.flatnonzero(~separator[np.take(arr, closing + 1, mode="clip")])
    if len(bad_close):
        at = closing[bad_close]
        after = bad_close + 1  # the next pair's opening quote, right after: ``""``
        followed = (after < len(opening)) & (opening[np.minimum(after, len(opening) - 1)] == at + 1)
        if not ((at == n - 1) | followed).all():
            return False
    return True


class CsvReader:
    """A CSV input: the header, and chunks of rows as Arrow text columns.

    The file is read a block at a time (``block_bytes``, cut where the csv module ends a record:
    ``quote_toggles``), and each block is parsed on its own: by Arrow in one pass when its records are
    clean one-line records, else with record boundaries from numpy, else (a record over lines of the
    wrong width) by Python's csv module, that block alone. A bare CR line end, or a quote still open
    at a block's end, sends the whole input again through the csv module (SlowPathNeeded), also
    streaming. Lines are physical lines of the file whatever the block size."""

    def __init__(self, path: Path, requested: list[str], chunk_rows: int, *, slow: bool = False,
                 block_bytes: int = BLOCK_BYTES, delimiter: str = DELIMITER, encoding: str | None = None):
        self.path, self.chunk_rows, self.block_bytes = path, chunk_rows, block_bytes
        self.delimiter = delimiter
        # a source in another text encoding is transcoded to UTF-8 as it is read (``raw.Transcoded``)
        self.encoding = None if encoding is None or text_encoding(encoding) == "utf-8" else encoding
        self.undecodable = f"invalid {self.encoding or 'UTF-8'}"  # the reject reason of a row that does not decode
        self.requested = requested
        self.header: list[str] = []
        self._blocks: Iterator[tuple[bytes, int]] = iter(())
        self._records: Iterator[tuple[int, list[str] | None, str]] = iter(())
        self.slow = slow
        if slow:
            self._open_slow()
        else:
            self._open()

    def chunks(self) -> Iterator[RawChunk]:
        if self.slow:
            yield from self._slow_chunks()
            return
        row = 0
        blocks, self._blocks = self._blocks, iter(())
        try:
            # blocks parsed two at a time (Arrow releases the GIL), then cut into chunks in file order
            for (block, line), parsed in map_ahead(lambda b: self._fast_table(b[0]), blocks):
                for chunk in self._block_chunks(block, line, row, parsed):
                    row += chunk.read
                    yield chunk
        except LongRecord:  # an open quote that never closes, say: the csv module reads it record by record
            raise SlowPathNeeded() from None

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
            read_options=pa_csv.ReadOptions(column_names=names, block_size=ARROW_BLOCK_BYTES, use_threads=False),
            parse_options=pa_csv.ParseOptions(delimiter=self.delimiter, newlines_in_values=newlines_in_values,
                                              invalid_row_handler=handler),
            convert_options=pa_csv.ConvertOptions(column_types={c: pa.string() for c in include},
                                                  include_columns=include, check_utf8=False),
        )

    def _columns(self, table: pa.Table, lo: int, hi: int) -> dict[str, pa.Array]:
        out = {}
        for name, i in self._selection().items():
            col = table.column(f"c{i}").slice(lo, hi - lo)
            out[name] = one_array(col)
        return out

    def _open(self) -> None:
        """Find the header: the first record after any blank lines."""
        blocks = record_blocks(self.path, self.block_bytes,
                               functools.partial(csv_record_end, delimiter=self.delimiter), encoding=self.encoding)
        try:
            for block, line in blocks:
                skip = _blank_lines(self.delimiter).match(block).end()
                if skip == len(block) or block[skip:].isspace():
                    continue  # blank so far (a file of blanks has no header, and no records)
                line += block.count(b"\n", 0, skip)
                first_nl = block.find(b"\n", skip)
                if b'"' in block:
                    # the header's own end: the first newline with an even number of quotes before it
                    arr = np.frombuffer(block, dtype=np.uint8)[skip:]
                    nls = np.flatnonzero(arr == 10)
                    even = nls[np.searchsorted(quote_toggles(arr, self.delimiter), nls) % 2 == 0]
                    first_nl = skip + int(even[0]) if len(even) else -1
                head_end = len(block) if first_nl < 0 else first_nl
                raw = block[skip:head_end]
                if b"\r" in raw[:-1] or (raw.endswith(b"\r") and first_nl < 0):
                    raise SlowPathNeeded()  # a bare CR line end: the csv module counts those lines
                self.header = _parse_header(raw[:-1] if raw.endswith(b"\r") else raw, self.path, self.delimiter,
                                            self.encoding)
                body = block[head_end + 1:] if first_nl >= 0 else b""
                body_line = line + block.count(b"\n", skip, head_end + 1)
                self._blocks = itertools.chain([(body, body_line)], blocks)
                return
        except LongRecord:
            raise SlowPathNeeded() from None

    @staticmethod
    def _blank(data: bytes) -> bool:
        """Nothing but line ends; the first byte decides most blocks without copying the block (strip does)."""
        return not data or (data[:1] == b"\n" and not data.strip(b"\n"))

    def _block_chunks(self, data: bytes, first_line: int, first_row: int,
                      parsed: tuple[pa.Table, int] | None) -> Iterator[RawChunk]:
        if not self.header or self._blank(data):
            return  # nothing, or blank lines only (a file of them is read a block at a time)
        if parsed is not None:
            yield from self._fast(parsed, first_line, first_row)
            return
        buf = np.frombuffer(data, dtype=np.uint8)
        nl = np.flatnonzero(buf == 10)  # every physical line end
        if self._bare_cr(data, buf):
            raise SlowPathNeeded()  # a bare CR line end: only the slow path counts lines as Arrow reads them
        parts = self._general(data, buf, nl, first_line, first_row)
        yield from parts if parts is not None else self._block_records(data, first_line, first_row)

    @staticmethod
    def _bare_cr(data: bytes, buf: np.ndarray) -> bool:
        if b"\r" not in data:
            return False
        cr = np.flatnonzero(buf == 13)
        return bool(cr[-1] == len(data) - 1 or not (buf[cr + 1] == 10).all())

    def _fast_table(self, data: bytes) -> tuple[pa.Table, int] | None:
        """One-line records, no blank lines, valid UTF-8: one Arrow pass, a row per line; the table and its
        line count, or None (the block then goes by record boundaries, ``_general``, or the slow path).
        Depends on the block alone, so blocks are parsed on several threads."""
        if not self.header or not data or data[:1] in (b"\n", b"\r"):
            return None  # a blank block starts with a line end too
        buf = np.frombuffer(data, dtype=np.uint8)
        nls = np.flatnonzero(buf == 10)
        if self._bare_cr(data, buf):
            return None
        gaps = np.diff(nls)
        if (gaps == 1).any() or ((gaps == 2) & (buf[nls[1:] - 1] == 13)).any():
            return None  # blank lines: Arrow skips them, so rows would not be lines
        if not utf8_ok(data):
            return None
        if b'"' in data and len(quote_toggles(buf, self.delimiter)) % 2:
            return None  # a quote left open at the file's end: Arrow would close it there, the csv module never
        nlines = len(nls) + (0 if data.endswith(b"\n") else 1)
        invalid: list = []
        try:
            table = self._arrow_read(pa.py_buffer(data), False, invalid)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
        if invalid or table.num_rows != nlines:
            return None
        return table, nlines

    def _fast(self, parsed: tuple[pa.Table, int], first_line: int, first_row: int) -> Iterator[RawChunk]:
        table, nlines = parsed

        def plan() -> Iterator[RawChunk]:
            for lo in range(0, nlines, self.chunk_rows):
                hi = min(nlines, lo + self.chunk_rows)
                local = np.arange(lo, hi, dtype=np.int64)
                yield RawChunk(self._columns(table, lo, hi), hi - lo, local + first_line, local + first_row + 1)

        return plan()

    def _general(self, data: bytes, buf: np.ndarray, nl: np.ndarray, first_line: int, first_row: int
                 ) -> Iterator[RawChunk] | None:
        """Record boundaries from numpy (the quotes that toggle a quoted field), then Arrow per chunk."""
        quotes = None
        quoted_newlines = False
        if b'"' in data:
            quotes = quote_toggles(buf, self.delimiter)
            if len(quotes) % 2:
                return None  # the file ends inside a quoted value: the slow path rejects its line
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
        lines = np.searchsorted(nl, starts) + first_line
        nrec = len(starts)
        bad_utf8 = bad_utf8_records(data, buf, starts, ends)
        commas = np.flatnonzero(buf == ord(self.delimiter))  # the delimiters, a comma by default
        if quotes is not None:
            commas = commas[np.searchsorted(quotes, commas) % 2 == 0]
        ncols = np.searchsorted(commas, ends) - np.searchsorted(commas, starts) + 1
        want = len(self.header)
        bad_cols = (ncols != want) & ~bad_utf8
        if quoted_newlines and bad_cols.any() and (np.searchsorted(nl, ends[bad_cols]) >
                                                    np.searchsorted(nl, starts[bad_cols])).any():
            return None  # a bad record over several lines: the slow path rejects its first line alone (csv_records)

        def plan() -> Iterator[RawChunk]:
            for lo in range(0, nrec, self.chunk_rows):
                hi = min(nrec, lo + self.chunk_rows)
                sl = slice(lo, hi)
                good = ~bad_utf8[sl] & ~bad_cols[sl]
                rejects = [(int(lines[lo + i]), self.undecodable) for i in np.flatnonzero(bad_utf8[sl])]
                rejects += [(int(lines[lo + i]), width_reason(want, int(ncols[lo + i])))
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
                rows = np.arange(lo + 1, hi + 1, dtype=np.int64) + first_row
                yield RawChunk(columns, ngood, lines[sl][good].astype(np.int64), rows[good], sorted(rejects))

        return plan()

    # -- the slow path: Python's csv module, record by record, streaming ----------------------------
    def _open_slow(self) -> None:
        self._records = self._slow_records()
        for _line, fields, _ in self._records:
            if fields is None:
                raise InputError(f"{self.path}: the header line cannot be read")
            if _SURROGATE.search("".join(fields)):
                raise InputError(f"{self.path}: the header line cannot be read")
            if len(fields) == 1 and not fields[0].strip():
                continue  # blank (spaces only) lines before the header, as the block path skips them
            self.header = check_header([h.strip() for h in fields], self.path)
            return

    def _slow_records(self) -> Iterator[tuple[int, list[str] | None, str]]:
        """(first physical line, fields or None, reason) per record; blank lines skipped."""
        fh = open_binary(self.path, self.encoding)
        text = io.TextIOWrapper(fh, encoding="utf-8-sig", errors="surrogateescape", newline="")
        with text:
            try:
                yield from csv_records(text, lambda: len(self.header) or None, self.delimiter)
            except READ_ERRORS as exc:
                raise InputError(f"{self.path}: cannot read: {exc}") from None

    def _slow_chunks(self) -> Iterator[RawChunk]:
        if self.header:
            yield from self._record_chunks(self._records, 0)

    def _block_records(self, data: bytes, first_line: int, first_row: int) -> Iterator[RawChunk]:
        """A block the vectorised paths decline (a record over several lines of the wrong width), read by the
        csv module alone. It starts and ends where the csv module's reading of the file has a record end
        (``quote_toggles``), so its records are the file's; unless a record in it ends inside a quote or breaks
        the csv module's field limit, after which the file's reading depends on what follows the block: then
        the whole input goes by the slow path."""
        # decoded as the csv module reads it (a StringIO of the whole block held it as 4 bytes a character)
        text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="surrogateescape", newline="")

        def records() -> Iterator[tuple[int, list[str] | None, str]]:
            for line, fields, reason in csv_records(text, lambda: len(self.header), self.delimiter):
                if fields is None and reason.startswith(MALFORMED):
                    raise SlowPathNeeded()
                yield line + first_line - 1, fields, reason

        return self._record_chunks(records(), first_row)

    def _record_chunks(self, records: Iterator[tuple[int, list[str] | None, str]], row: int
                       ) -> Iterator[RawChunk]:
        """Chunks of records from ``csv_records``; ``row``: the records before the first."""
        sel = self._selection()
        size = min(self.chunk_rows, SLOW_CHUNK_ROWS)
        while True:
            part: list[tuple[int, list[str] | None, str]] = []
            for start, fields, reason in records:
                if fields is not None and _SURROGATE.search("".join(fields)):
                    fields, reason = None, self.undecodable
                elif fields is not None and len(fields) != len(self.header):
                    reason = width_reason(len(self.header), len(fields))
                    fields = None
                part.append((start, fields, reason))
                if len(part) >= size:
                    break
            if not part:
                return
            good = [(k, r) for k, r in enumerate(part) if r[1] is not None]
            columns = {name: pa.array([r[1][i] for _, r in good], pa.string()) for name, i in sel.items()}
            yield RawChunk(columns, len(good), np.array([r[0] for _, r in good], dtype=np.int64),
                           np.array([row + k + 1 for k, _ in good], dtype=np.int64),
                           [(r[0], r[2]) for r in part if r[1] is None])
            row += len(part)


class _Lines:
    """The physical lines a ``csv.reader`` takes from a text, kept (``taken``) until the record they make is
    known; ``ended``: the reader asked for a line past the last one."""

    __slots__ = ("_source", "taken", "ended")

    def __init__(self, source: Iterator[str]):
        self._source, self.taken, self.ended = source, [], False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        try:
            line = next(self._source)
        except StopIteration:
            self.ended = True
            raise
        self.taken.append(line)
        return line


MALFORMED = "malformed CSV"  # the reasons of records the csv module could not read, or ended inside a quote
UNCLOSED_QUOTE = f"{MALFORMED}: a quoted field opened on this line is never closed"


def width_reason(want: int, got: int) -> str:
    return f"expected {want} columns, got {got}"


def csv_records(text: Iterable[str], width: Callable[[], int | None], delimiter: str = DELIMITER
                ) -> Iterator[tuple[int, list[str] | None, str]]:
    """(first physical line, fields or None, reason) per record of a CSV text (lines with their ends); blank
    lines skipped. ``width()``: the header's column count once known, else None.

    A quoted field may span lines (RFC 4180), so a stray quote at the start of a field would take every line
    up to the next quote into one bad record. A record that spans lines and then is refused by the csv module
    (its field limit), ends the file inside its quote, or has not ``width()`` fields, is therefore its first
    line's reject alone, and the other lines it took are read again, each as a record of its own line. Each
    line is read at most twice, and every line is a record, a blank or a reject."""
    source = iter(text)
    lines = _Lines(source)
    reader = csv.reader(lines, delimiter=delimiter)
    line = 0  # physical lines before the record being read
    while True:
        lines.taken.clear()
        try:
            fields, reason = next(reader), ""
        except StopIteration:
            return
        except csv.Error as exc:
            fields, reason = None, f"{MALFORMED}: {exc}"
        taken = lines.taken
        unclosed = fields is not None and lines.ended  # the quote still open when the lines ran out
        want = width()
        spread = len(taken) > 1 and (fields is None or unclosed or (want is not None and len(fields) != want))
        if not spread:
            start, line = line + 1, line + len(taken)
            if unclosed:
                yield start, None, UNCLOSED_QUOTE
            elif fields is None or fields:
                yield start, fields, reason
            continue
        if fields is None and "field limit" in reason:
            reason = f"{UNCLOSED_QUOTE[:-len('never closed')]}not closed within {csv.field_size_limit():,} characters"
        yield line + 1, None, reason or (UNCLOSED_QUOTE if unclosed else width_reason(want or 0, len(fields or ())))
        for again in taken[1:]:  # each on its own now
            line += 1
            one = _Lines(iter((again,)))
            try:
                fields, reason = next(csv.reader(one, delimiter=delimiter), []), ""
            except csv.Error as exc:
                fields, reason = None, f"{MALFORMED}: {exc}"
            if fields is not None and one.ended:
                yield line + 1, None, UNCLOSED_QUOTE
            elif fields is None or fields:
                yield line + 1, fields, reason
        line += 1
        lines = _Lines(source)  # a fresh reader: the last one's state is the bad record's
        reader = csv.reader(lines, delimiter=delimiter)


SLOW_CHUNK_ROWS = 65_536  # Python lists of str cost ~100 B a value: keep the slow path's chunks small
_SURROGATE = re.compile("[\udc80-\udcff]")
