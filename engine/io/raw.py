"""Raw chunks as readers produce them, and the byte-level helpers the readers share."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from ..errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    pass


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


def read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
        if path.name.lower().endswith(".gz"):
            data = gzip.decompress(data)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data


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
