"""One run's output files, committed as a unit (docs/design.md §6, "Outputs").

Every file of a run is written into a staging folder beside the output folder DIR, on the same
file system (``PARENT/.NAME.fraudrules-<host>-<pid>-<rand>``), and fsynced, then the folder. The
commit swaps the staging folder and DIR in one step (Linux ``renameat2(RENAME_EXCHANGE)``) and
fsyncs PARENT; the old set, now at the staging path, is deleted afterwards. A reader, or a crash
at any moment, sees the old complete set or the new one, never a mix.

What else DIR holds survives the swap: before it, every entry that is not an output of a run is
mirrored into the staging folder (regular files hard-linked, links re-created, sub-folders
re-created and their contents mirrored the same way), so no byte of it is copied and none is ever
held only by the staging folder. An older run's output that this run does not write (an
``alerts.parquet`` when this run writes ``alerts.jsonl``, a ``late.csv`` without ``--history``) is
dropped: left beside the new set it would read as part of it.

When the swap is impossible (not Linux, no ``renameat2``, DIR is a mount point, DIR is the current
folder or holds it, DIR belongs to another user, no folder can be made beside DIR, an entry that
cannot be hard-linked, or the swap itself fails with ENOSYS, EINVAL, EXDEV, EPERM, ...), the
files go into a staging folder inside DIR and are renamed into place one by one with
``summary.json`` last, and a one-line warning says that the set is not committed as a unit and
why. Staging folders left by a killed run are deleted by the next run into the same DIR, once
their process is gone (or after :data:`STALE_AFTER` seconds when it ran on another host).
"""

from __future__ import annotations

import ctypes
import errno
import functools
import hashlib
import os
import shutil
import socket
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from ..errors import OutputError

# a staging folder of a process on another host (a shared file system) is stale after this long
STALE_AFTER = 24 * 3600
# errors of the swap that mean "not here", not "something is wrong": commit file by file instead
EXCHANGE_UNSUPPORTED = {errno.ENOSYS, errno.EINVAL, errno.EXDEV, errno.EPERM, errno.EBUSY, errno.ENOTSUP,
                        errno.EACCES}
# errors of a hard link or a new folder that mean "not here" (another file system, not ours)
CANNOT_LINK = {errno.EXDEV, errno.EPERM, errno.EACCES, errno.EMLINK, errno.ENOTSUP}
INNER_PREFIX = ".fraudrules-staging-"  # a staging folder inside DIR (the file-by-file commit)
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def check_out_dir(out_dir: Path, names: Iterable[str]) -> None:
    """Fail before the work, not after it: ``out_dir`` must be (or become) a folder we can write
    in, and none of ``names`` in it may be a folder (an output file cannot replace it)."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out_dir}: cannot create the output folder: {exc.strerror or exc}") from None
    if not out_dir.is_dir():
        raise OutputError(f"{out_dir}: not a folder")
    for name in names:
        target = out_dir / name
        if target.is_dir():
            raise OutputError(f"{target}: is a folder, where an output file goes; move it away or choose "
                              f"another --out")
    try:
        fd, probe = tempfile.mkstemp(prefix=".fraudrules-write-check.", dir=out_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"{out_dir}: cannot write in the output folder: {exc.strerror or exc}") from None


def fsync_path(path: Path | str) -> None:
    """fsync a file or a folder by name (a folder's fsync makes its entries durable). A file system
    that cannot fsync a folder (EINVAL) is taken as it is: it gives no stronger promise."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP) or not stat.S_ISDIR(os.fstat(fd).st_mode):
            raise
    finally:
        os.close(fd)


def start_writeback(fh: BinaryIO, start: int) -> None:
    """Hand the bytes ``fh`` holds from offset ``start`` to the disk now, without waiting for them: the
    fsync that makes the file durable finds them written. A run writes its scored records (about 150 MB
    at 1M records) and then fsyncs them; each fsync waited 0.2-0.4 s for the whole file. Written back
    slice by slice, the disk works while the next slices are rendered. ``POSIX_FADV_DONTNEED`` starts
    the writeback of the range's dirty pages (Linux) and lets its clean ones go; where the call does not
    exist or the file system refuses it, the fsync does all the work, as before."""
    fh.flush()
    advise = getattr(os, "posix_fadvise", None)
    if advise is not None:
        try:
            advise(fh.fileno(), start, fh.tell() - start, os.POSIX_FADV_DONTNEED)
        except OSError:
            pass


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2  # glibc 2.28 and later
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def exchange(a: Path | str, b: Path | str) -> None:
    """Swap the entries at ``a`` and ``b`` in one atomic step; OSError(ENOSYS) where that is unavailable."""
    fn = _renameat2()
    if fn is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available", str(a))
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(a), None, str(b))


def remove_tree(path: Path | str) -> None:
    """Delete a folder and all it holds; a link is removed, never followed; missing entries are fine.
    A folder without write access for us (a mirrored read-only one) is opened up first."""
    stack: list[tuple[str, bool]] = [(str(path), False)]
    while stack:
        folder, emptied = stack.pop()
        if emptied:
            _rmdir(folder)
            continue
        try:
            st = os.lstat(folder)
            if stat.S_IMODE(st.st_mode) & 0o700 != 0o700:
                os.chmod(folder, stat.S_IMODE(st.st_mode) | 0o700)
            entries = sorted(os.scandir(folder), key=lambda e: e.name)  # the same steps on every run
        except FileNotFoundError:
            continue
        stack.append((folder, True))
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                stack.append((entry.path, False))
            else:
                _unlink(entry.path)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _rmdir(path: str) -> None:
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


@contextmanager
def staged_path(target: Path) -> Iterator[Path]:
    """Yield ``target`` itself, a file in a staging folder that no reader looks at; fsync it when the
    block succeeds, delete it when the block fails."""
    try:
        yield target
        fsync_path(target)
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def _host() -> str:
    return hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def _printable(text: str) -> str:
    """Control characters shown escaped, so a path cannot drive the terminal."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _warn_stderr(message: str) -> None:
    sys.stderr.write(f"warning: {_printable(message)}\n")
    sys.stderr.flush()


class _NoExchange(Exception):
    """Why this commit cannot be a swap."""


class OutputSet:
    """The output folder of one run: files are written into a staging folder (:meth:`path`, then
    closed with :func:`staged_path`) and appear in ``out_dir`` together on :meth:`commit`.

    ``names`` are the files this run may write; ``known`` the names any run writes (every format):
    one of those that this run does not write is an older run's output and is dropped on commit.
    None of either may be a folder in ``out_dir`` (checked here, before the work, as an OutputError),
    except ``folders``: outputs that are folders (a Spark dataset), replaced whole.
    """

    def __init__(self, out_dir: Path | str, names: Iterable[str], known: Iterable[str] = (),
                 warn: Callable[[str], None] | None = None, folders: Iterable[str] = ()):
        self.dir = Path(out_dir)
        self.names = list(names)
        self.folders = set(folders)
        self.known = set(known) | set(self.names)
        self._warn = warn or _warn_stderr
        check_out_dir(self.dir, sorted(self.known - self.folders))
        self._real = self.dir.resolve()
        self.reason: str | None = None  # why the commit is file by file; None: one swap
        self._remove_stale()
        self.staging = self._make_staging()
        self._done = False
        self._swapped = False  # after the swap, the staging path holds the old set
        self.partial = False  # a file-by-file commit has begun: DIR may hold part of each set

    # --- set-up ----------------------------------------------------------------------------------

    def _prefix(self) -> str:
        return f".{self._real.name}.fraudrules-"

    def _make_staging(self) -> Path:
        tag = f"{_host()}-{os.getpid()}-"
        try:
            self._check_exchange()
            return Path(tempfile.mkdtemp(prefix=self._prefix() + tag, dir=self._real.parent))
        except _NoExchange as exc:
            self.reason = str(exc)
        except OSError as exc:
            self.reason = f"cannot make a folder beside it: {exc.strerror or exc}"
        self._warn_once()
        try:
            return Path(tempfile.mkdtemp(prefix=INNER_PREFIX + tag, dir=self._real))
        except OSError as exc:
            raise OutputError(f"{self.dir}: cannot write in the output folder: {exc.strerror or exc}") from None

    def _check_exchange(self) -> None:
        if _renameat2() is None:
            raise _NoExchange("renameat2 (Linux, glibc 2.28 or later) is not available")
        if os.path.ismount(self._real):
            raise _NoExchange("it is a mount point")
        try:
            cwd = Path.cwd().resolve()
        except OSError:
            cwd = None
        if cwd is not None and (cwd == self._real or self._real in cwd.parents):
            raise _NoExchange("it is the current folder or holds it, and a swap would move it from under the shell")
        if hasattr(os, "geteuid") and self._real.stat().st_uid != os.geteuid():
            raise _NoExchange("it belongs to another user, and a swap would make it ours")

    def _remove_stale(self) -> None:
        """Delete the staging folders of runs into this DIR that were killed: their process is gone,
        or they are older than STALE_AFTER. A live run's folder is left alone."""
        places = [(self._real.parent, self._prefix()), (self._real, INNER_PREFIX)]
        for folder, prefix in places:
            try:
                entries = [e for e in os.scandir(folder) if e.name.startswith(prefix)]
            except OSError:
                continue
            for entry in entries:
                if entry.is_dir(follow_symlinks=False) and self._stale(entry, prefix):
                    try:
                        remove_tree(entry.path)
                    except OSError:
                        pass  # not ours to delete (another user's): it harms nobody where it is

    @staticmethod
    def _stale(entry: os.DirEntry, prefix: str) -> bool:
        host, _, rest = entry.name[len(prefix):].partition("-")
        pid_text = rest.partition("-")[0]
        try:
            old = time.time() - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER
        except OSError:
            return False
        if host != _host() or not pid_text.isdigit():
            return old
        pid = int(pid_text)
        if pid == os.getpid():
            return False  # this process: a live set
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except OSError:  # alive, another user's process
            return old
        return old  # alive, or a new process that took a dead run's pid: only the age bound tells

    def _warn_once(self) -> None:
        if self.reason is not None and not getattr(self, "_warned", False):
            self._warned = True
            self._warn(f"{self.dir}: the outputs are not committed as a unit ({self.reason}); each file is "
                       f"renamed into place on its own, summary.json last")

    # --- writing ---------------------------------------------------------------------------------

    def path(self, name: str) -> Path:
        """Where to write output ``name`` now (in the staging folder); close it with :func:`staged_path`."""
        assert name in self.names, name
        return self.staging / name

    def target(self, name: str) -> Path:
        """Where output ``name`` is after the commit."""
        return self.dir / name

    # --- commit ----------------------------------------------------------------------------------

    def commit(self, last: str = "summary.json") -> None:
        """Put the staged files in place: one swap, or file by file with ``last`` last."""
        assert not self._done
        self._done = True
        written = [n for n in self.names if (self.staging / n).exists()]
        for name in self.folders & set(written):  # written by others (Spark), not through staged_path
            _fsync_tree(self.staging / name)
        if self.reason is None:
            try:
                self._swap(written)
                return
            except _NoExchange as exc:
                self.reason = str(exc)
            except OSError as exc:
                if self._swapped:  # the staging path holds the old set
                    self.abort()
                    raise OutputError(f"{self.dir}: the new outputs are in place, but not known to be on disk: "
                                      f"{exc.strerror or exc}") from exc
                if exc.errno not in EXCHANGE_UNSUPPORTED:
                    self.abort()  # the new set: DIR keeps the old one
                    raise
                self.reason = f"the swap failed: {exc.strerror or exc}"
            self._warn_once()
        self._file_by_file(written, last)

    def _swap(self, written: list[str]) -> None:
        skip = set(written) | self.folders | {n for n in self.known - self.folders if not (self._real / n).is_dir()}
        for entry in os.scandir(self._real):
            if entry.name in skip or entry.name.startswith(INNER_PREFIX):
                continue
            _mirror(entry, self.staging / entry.name)
        os.chmod(self.staging, stat.S_IMODE(os.stat(self._real).st_mode))
        fsync_path(self.staging)
        try:
            exchange(self.staging, self._real)
        except FileNotFoundError:  # DIR went away meanwhile: the set simply appears
            os.rename(self.staging, self._real)
            self._swapped = True
            fsync_path(self._real.parent)
            return
        self._swapped = True
        fsync_path(self._real.parent)
        try:
            self._settle(self.staging, skip)
        except OSError as exc:  # the new set is in place; the next run deletes what is left of the old
            self._warn(f"{self.staging}: the previous output set could not be deleted: {exc.strerror or exc}")

    def _settle(self, old: Path, skip: set[str]) -> None:
        """Delete the old set, now at ``old``. What was added to DIR after the mirror was taken (a
        file not in the new DIR, or a file replaced since) is moved into the new DIR first."""
        for entry in os.scandir(old):
            if entry.name in skip or entry.name.startswith(INNER_PREFIX):
                continue
            new = self._real / entry.name
            try:
                if not os.path.lexists(new):
                    os.rename(entry.path, new)
                elif entry.is_file(follow_symlinks=False) and not os.path.samefile(entry.path, new):
                    os.replace(entry.path, new)
            except OSError:
                pass  # best effort: the mirror in the new DIR stands
        remove_tree(old)

    def _file_by_file(self, written: list[str], last: str) -> None:
        self.partial = True
        order = [n for n in written if n != last]
        for name in order:
            if name in self.folders and os.path.lexists(self._real / name):  # a rename cannot replace a folder
                os.rename(self._real / name, self.staging / f".replaced.{name}")
            _move(self.staging / name, self._real / name)
        fsync_path(self._real)
        for name in sorted(self.known - set(written) - self.folders):  # an older run's outputs would read as this run's
            old = self._real / name
            if os.path.lexists(old) and not old.is_dir():
                _unlink(str(old))
        if last in written:
            _move(self.staging / last, self._real / last)
        fsync_path(self._real)
        remove_tree(self.staging)

    def abort(self) -> None:
        """Forget the staged files: DIR keeps the set it had."""
        self._done = True
        if self.staging.exists():
            remove_tree(self.staging)


def _mirror(entry: os.DirEntry, dst: Path) -> None:
    """``entry`` at ``dst`` without copying a byte: a hard link, a new link, a folder mirrored the same way."""
    try:
        if entry.is_symlink():
            os.symlink(os.readlink(entry.path), dst)
        elif entry.is_dir(follow_symlinks=False):
            st = entry.stat(follow_symlinks=False)
            if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
                raise _NoExchange(f"{entry.path} belongs to another user, and its copy would be ours")
            os.mkdir(dst)
            for sub in os.scandir(entry.path):
                _mirror(sub, dst / sub.name)
            os.chmod(dst, stat.S_IMODE(st.st_mode))
            os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
            fsync_path(dst)
        elif entry.is_file(follow_symlinks=False):
            os.link(entry.path, dst, follow_symlinks=False)
        else:
            raise _NoExchange(f"{entry.path} is not a file, folder or link, and cannot be carried over")
    except OSError as exc:
        if exc.errno not in CANNOT_LINK:
            raise  # a full disk, an I/O error: the run fails and DIR keeps its set
        raise _NoExchange(f"{entry.path} cannot be carried over: {exc.strerror or exc}") from None


def _fsync_tree(folder: Path) -> None:
    for root, _, names in os.walk(folder):
        for name in names:
            fsync_path(os.path.join(root, name))
        fsync_path(root)


def _move(src: Path, dst: Path) -> None:
    """Rename ``src`` over ``dst``; across file systems, a copy that replaces ``dst`` atomically."""
    try:
        os.replace(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
        os.close(fd)
        try:
            shutil.copyfile(src, tmp)
            shutil.copymode(src, tmp)
            fsync_path(tmp)
            os.replace(tmp, dst)
        except BaseException:
            _unlink(tmp)
            raise
