"""Raw chunks as readers produce them, and the byte-level helpers the readers share."""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import lzma
import os
import stat
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa

from ..errors import InputError

# --- raw readers ------------------------------------------------------------------------


@dataclass
class RawChunk:
    """Rows of one input as read, before typing: text or typed Arrow columns."""

    columns: dict[str, pa.Array]  # requested source columns present in the input
    n: int  # parsed rows
    line: np.ndarray  # int64 per parsed row
    row: np.ndarray  # int64 1-based ordinal of the row among the input's records
    rejects: list[tuple[int, str]] = field(default_factory=list)  # rows that could not be parsed
    # values of the wrong type found while parsing (JSON), by column ("" = the whole record)
    pre: dict[str, tuple[np.ndarray, Callable[[int], str]]] = field(default_factory=dict)

    @property
    def read(self) -> int:
        return self.n + len(self.rejects)


class SlowPathNeeded(Exception):
    """The vectorised path cannot read this input exactly: use the slow one."""


BLOCK_BYTES = 1 << 23  # bytes of a file parsed at a time: the reader's memory does not grow with the file (8 MB:
# three blocks are in flight, parsed, queued and normalised; 16 MB held 20 MB more at the read's peak, no faster)
# Arrow's own parse block: a block of the file parses to one chunk per column, or to several when a long
# record held over makes the block longer than this (one_array joins them)
ARROW_BLOCK_BYTES = 1 << 24
READ_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError)
COMPRESSED = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}  # decompressed as they are read


def one_array(col: pa.ChunkedArray) -> pa.Array:
    """A parsed column as one array: its chunk, or its chunks joined (a copy) when it has several."""
    return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)


def open_binary(path: Path, encoding: str | None = None) -> BinaryIO:
    """The file's bytes, decompressed as they are read when the name ends in ``.gz``, ``.bz2`` or
    ``.xz``; with an ``encoding`` (GBK, say), transcoded to UTF-8 as they are read (``Transcoded``)."""
    try:
        for ext, opener in COMPRESSED.items():
            if path.name.lower().endswith(ext):
                fh = opener(path, "rb")
                break
        else:
            fh = open(path, "rb")
    except READ_ERRORS as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    return fh if encoding is None else Transcoded(fh, encoding)


def text_encoding(name: str) -> str | None:
    """Python's name of a text encoding a source may be written in (``GBK``, ``gb18030``, ``latin-1``), or
    None if it is none (``rot13`` and ``base64`` are codecs, not text encodings)."""
    try:
        info = codecs.lookup(name)
    except (LookupError, TypeError):
        return None
    return info.name if getattr(info, "_is_text_encoding", True) else None


# A byte the source's encoding does not have becomes 0xFF, which UTF-8 never holds, so its row is rejected as
# text that does not decode; passed through as it is, it could make valid UTF-8 with the byte after it.
codecs.register_error("fraudrules.undecodable", lambda exc: ("\udcff" * (exc.end - exc.start), exc.end))


class Transcoded(io.RawIOBase):
    """A file in another text encoding, read as UTF-8: decoded incrementally (a character split between two
    reads is whole in the output), so every reader after it sees the UTF-8 it parses, and cuts, quotes and
    delimiters keep their bytes whatever the encoding's multibyte characters hold."""

    PIECE = 1 << 20

    def __init__(self, raw: BinaryIO, encoding: str) -> None:
        super().__init__()
        self._raw = raw
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="fraudrules.undecodable")
        self._out = b""
        self._pos = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:
        while self._pos >= len(self._out) and not self._done:
            data = self._raw.read(self.PIECE)
            self._done = not data
            self._out = self._decoder.decode(data, final=self._done).encode("utf-8", "surrogateescape")
            self._pos = 0
        n = min(len(buffer), len(self._out) - self._pos)
        buffer[:n] = self._out[self._pos: self._pos + n]
        self._pos += n
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


def read_pieces(path: Path, size: int, head: Callable[[], bytes | bytearray] = bytes,
                encoding: str | None = None) -> Iterator[bytearray]:
    """The file's (decompressed, transcoded) bytes in pieces of ``size``, without a leading UTF-8 BOM, each read
    into a new buffer after ``head()`` (what the caller carries over from the piece before): one copy of the
    file's bytes, where reading a bytes object and joining it to the carry made three."""
    with open_binary(path, encoding) as fh:
        left = _bytes_left(fh)
        first = True
        while True:
            carry = head()
            # a regular file's size caps the buffer: a small file or the end of a big one gets no buffer of
            # ``size`` (bytearray(n) writes n zeros, a page fault per 4 KB); one byte more shows the end
            want = max(size, 3) if left is None or left < 0 else min(max(size, 3), left + 1)
            buf = bytearray(len(carry) + want)
            buf[:len(carry)] = carry
            view = memoryview(buf)
            got = len(carry)
            try:
                while got < len(buf):  # a full read unless at the end (a pipe or a decompressor gives less)
                    n = fh.readinto(view[got:])
                    if not n:
                        break
                    got += n
            except READ_ERRORS as exc:
                raise InputError(f"{path}: cannot read: {exc}") from None
            finally:
                view.release()
            new = got - len(carry)
            if left is not None:
                left -= new  # below 0 when the file grew while read: sizes are then ``size`` again
            del buf[got:]
            if first:
                first = False
                if buf.startswith(b"\xef\xbb\xbf"):
                    del buf[:3]
                    new -= 3
                    if not new:
                        continue
            if not new:
                return
            yield buf


def _bytes_left(fh: BinaryIO) -> int | None:
    """Bytes from here to the end of a regular file; None for a decompressor or anything else."""
    if not isinstance(fh, io.BufferedReader):
        return None
    try:
        st = os.fstat(fh.fileno())
        return st.st_size - fh.tell() if stat.S_ISREG(st.st_mode) else None
    except (OSError, ValueError):
        return None


def newlines(data: bytes | bytearray, start: int = 0, end: int | None = None) -> int:
    """How many line ends ``data[start:end]`` holds: numpy's count takes half the time of ``bytes.count``."""
    view = np.frombuffer(data, dtype=np.uint8)
    return int(np.count_nonzero(view[start:end] == 10))


BLOCK_LINES = 1 << 18  # and lines: per-line index arrays stay small however short the lines
LONG_RECORD_BYTES = 1 << 27  # a record (a line of JSON) may be this long


class LongRecord(Exception):
    """No record end within the byte limit: the reader cannot cut this input into blocks."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit  # bytes


def record_blocks(path: Path, block_bytes: int, cut: Callable[[bytes], int], max_lines: int | None = None,
                  encoding: str | None = None) -> Iterator[tuple[bytearray, int]]:
    """The file as blocks of about ``block_bytes`` and at most about ``max_lines`` lines that end
    at a record end, each with the physical line (1-based) it starts on. ``cut(buf)`` is the offset
    just after the last record end in ``buf`` (0: none). The last block ends at the end of the file.

    A block is parsed on its own, so memory stays bounded by the block whatever the file's size or
    compression ratio (the line cap bounds the per-line arrays of a file of blank lines). A record
    that spans more than ``max(8 * block_bytes, LONG_RECORD_BYTES)`` bytes raises LongRecord.
    Blocks are bytearrays that no one changes: most are the buffer read into, cut short in place."""
    limit = max(8 * block_bytes, LONG_RECORD_BYTES)
    max_lines = BLOCK_LINES if max_lines is None else max_lines
    held: list[bytes | bytearray] = [b""]  # what the last piece left after its last record end
    line = 1
    for buf in read_pieces(path, block_bytes, lambda: held[0], encoding):
        pos = cut(buf)
        lines = newlines(buf, 0, pos) if pos > 0 else 0
        if pos <= 0:
            held[0] = buf
        elif not 0 < max_lines < lines:  # the usual block: the buffer itself, its tail carried over
            held[0] = bytes(buf[pos:])
            del buf[pos:]
            yield buf, line
            line += lines
        else:  # more lines than max_lines: blocks of max_lines lines cut from the front (copies)
            start = 0
            while True:
                limited = 0 < max_lines < lines
                pos = cut(buf[start: _after_nth_newline(buf, start, max_lines)]) if limited else 0
                if pos <= 0:
                    limited = False
                    pos = cut(buf[start:])
                if pos <= 0:
                    break
                block = buf[start: start + pos]
                start += pos
                yield block, line
                k = newlines(block)
                line += k
                lines -= k
                del block
                if not limited:
                    break
            held[0] = buf[start:]
        del buf
        if len(held[0]) > limit:
            raise LongRecord(limit)
    if held[0]:
        yield bytearray(held[0]), line


def _after_nth_newline(buf: bytes, start: int, n: int) -> int:
    """The offset just after the ``n``-th newline of ``buf`` from ``start`` (it has more than n)."""
    width = 4 * n
    while True:  # a window that widens until it holds n newlines: index arrays stay about n long
        end = min(len(buf), start + width)
        found = np.flatnonzero(np.frombuffer(buf, dtype=np.uint8, count=end - start, offset=start) == 10)
        if len(found) >= n or end == len(buf):
            return start + int(found[n - 1]) + 1
        width *= 4


def last_line_end(buf: bytes) -> int:
    """``cut`` for line-based records (JSON Lines): just after the last newline."""
    return buf.rfind(b"\n") + 1


def utf8_ok(data: bytes) -> bool:
    if data.isascii():
        return True
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def bad_utf8_records(data: bytes, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Which records (byte spans) are not valid UTF-8; decodes only non-ASCII ones."""
    bad = np.zeros(len(starts), dtype=bool)
    if utf8_ok(data):
        return bad
    high = np.flatnonzero(buf >= 0x80)
    rec = np.searchsorted(starts, high, side="right") - 1
    for r in np.unique(rec[rec >= 0]):  # only records with non-ASCII bytes
        try:
            data[starts[r]: ends[r]].decode("utf-8")
        except UnicodeDecodeError:
            bad[r] = True
    return bad


def runs_buffer(data: bytes, starts: np.ndarray, ends: np.ndarray, keep: np.ndarray) -> pa.Buffer:
    """The bytes of the kept records, as few slices as possible, newline-joined."""
    idx = np.flatnonzero(keep)
    if len(idx) == 0:
        return pa.py_buffer(b"")
    breaks = np.flatnonzero(np.diff(idx) != 1)
    firsts = np.concatenate(([idx[0]], idx[breaks + 1]))
    lasts = np.concatenate((idx[breaks], [idx[-1]]))
    view = memoryview(data)
    if len(firsts) == 1:
        return pa.py_buffer(view[starts[firsts[0]]: ends[lasts[0]]])
    return pa.py_buffer(b"\n".join(view[starts[a]: ends[b]] for a, b in zip(firsts, lasts)))
