"""Alert text as bytes: held in memory while it is small, in a temporary file once it is not.

A batch run writes its alerts' lines once and reads them a few times, in order (stamped with their
risk score, written out). Held as Python strings, an alert storm's lines were held two or three times
over at its peak: 430k alerts took 2.2 GB (docs/benchmarks.md, twentieth pass). A :class:`ByteSpool`
keeps the first :data:`SPOOL_MEMORY_BYTES` in memory and the rest in a file of the temporary folder
(``TMPDIR``); a :class:`ByteSource` reads it back by offsets through a window of
:data:`READ_WINDOW` bytes, so that reading never maps a storm into the process's memory either.

A spool's file is named while it is written (a forked worker hands its name to the parent, which
cannot inherit the worker's open files); :meth:`ByteSource.hold` opens it and removes its name, so that
the system frees it when its reader lets it go, whatever ends the process.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import IO

SPOOL_MEMORY_BYTES = 32 << 20  # a spool's bytes held in memory before it moves them to a file
READ_WINDOW = 4 << 20  # bytes a file-backed source reads at once: in-order reads cost one call per window
FILE_PREFIX = "fraudrules-alerts-"


class ByteSpool:
    """Bytes appended one piece after another; :meth:`close` gives them as a :class:`ByteSource`."""

    def __init__(self, folder: str | None = None, memory_bytes: int | None = None):
        self._folder = folder
        self._limit = SPOOL_MEMORY_BYTES if memory_bytes is None else memory_bytes
        self._pieces: list[bytes] = []
        self._file: IO[bytes] | None = None
        self._path: str | None = None
        self.size = 0

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self._file is not None:
            self._file.write(data)
            return
        self._pieces.append(data)
        if self.size > self._limit:
            fd, self._path = tempfile.mkstemp(prefix=FILE_PREFIX, dir=self._folder)
            self._file = os.fdopen(fd, "wb", buffering=1 << 20)
            self._file.writelines(self._pieces)
            self._pieces = []

    def close(self) -> ByteSource:
        if self._file is None:
            return ByteSource(data=b"".join(self._pieces))
        self._file.close()
        return ByteSource(path=self._path, size=self.size)


class ByteSource:
    """What a :class:`ByteSpool` wrote: its bytes, or the name of its file until :meth:`hold` opens it.
    It pickles (a forked worker's result) only before it is held."""

    def __init__(self, data: bytes = b"", path: str | None = None, size: int | None = None):
        self._data = data
        self._path = path
        self._file: IO[bytes] | None = None
        self.size = len(data) if path is None else int(size or 0)
        self._window_at = 0
        self._window = b""

    @property
    def in_file(self) -> bool:
        return self._path is not None

    def hold(self) -> ByteSource:
        """Open the file (if any) and remove its name: from now on it lasts as long as this source."""
        if self._path is not None and self._file is None:
            self._file = open(self._path, "rb", buffering=0)  # noqa: SIM115 - held for the source's life
            os.unlink(self._path)
        return self

    def read(self, start: int, end: int) -> bytes:
        """The bytes from ``start`` to ``end``."""
        if self._path is None:
            return self._data[start:end]
        window = self._window
        at = start - self._window_at
        if at < 0 or end - self._window_at > len(window):
            self.hold()
            assert self._file is not None
            self._window = window = os.pread(self._file.fileno(), max(READ_WINDOW, end - start), start)
            self._window_at, at = start, 0
        return window[at:at + end - start]

    def blocks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The bytes from ``start`` to ``end`` (the end), a window at a time."""
        end = self.size if end is None else end
        if self._path is None:
            yield self._data[start:end]
            return
        self.hold()
        assert self._file is not None
        for at in range(start, end, READ_WINDOW):
            yield os.pread(self._file.fileno(), min(READ_WINDOW, end - at), at)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def __getstate__(self) -> dict:
        if self._file is not None:
            raise TypeError("a held ByteSource stays in its process")
        return {**self.__dict__, "_window": b""}
