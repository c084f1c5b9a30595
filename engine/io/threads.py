"""Threads for the parts of reading that run in Arrow's C++ (the GIL released): the next block is
parsed while this one is normalised, and a whole read runs while the rule pack loads."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
A = TypeVar("A")
_END = object()


def read_ahead(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """``items`` as they are, produced one step ahead on a thread: the next block is parsed
    (Arrow's CSV and JSON parsers release the GIL) while the caller normalises this one. The
    sequence, and every exception (SlowPathNeeded included), is the one ``items`` gives; a caller
    that stops early stops the thread and closes ``items``."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    finished = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_END, None))
        except BaseException as exc:  # handed to the caller, raised there
            put((_END, exc))
        finally:
            try:
                close = getattr(items, "close", None)
                if close is not None:
                    close()
            finally:
                finished.set()

    thread = threading.Thread(target=produce, name="fraudrules-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, exc = q.get()
            if item is _END:
                if exc is not None:
                    raise exc
                return
            yield item
    finally:
        stop.set()
        wait_for(thread, finished)


AHEAD_MAX = 2  # threads of a map_ahead: each holds a block or a slice in flight, so memory grows with them


def ahead_threads() -> int:
    """The threads ``map_ahead`` uses by default: every core, up to AHEAD_MAX."""
    return min(cores(), AHEAD_MAX)


def map_ahead(fn: Callable[[T], A], items: Iterator[T], threads: int | None = None) -> Iterator[tuple[T, A]]:
    """``(x, fn(x))`` for each of ``items``, in order, with ``fn`` run on up to ``threads`` threads
    (default :func:`ahead_threads`): a read block is normalised on one core while the one before it is
    on the other, a JSON Lines slice rendered while the one before it is (most of that work is in Arrow
    and numpy, the GIL released). At most ``threads`` results wait ahead of the caller, so memory
    stays a few blocks. The first exception, from ``items`` or from ``fn``, is raised in order; a
    caller that stops early cancels what has not started and waits for the rest."""
    threads = ahead_threads() if threads is None else threads
    if threads <= 1:
        for x in items:
            yield x, fn(x)
        return
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    items = iter(items)
    pending: deque = deque()
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fraudrules-ahead")
    failure: BaseException | None = None
    try:
        while True:
            try:
                x = next(items)
            except StopIteration:
                break
            except Exception as exc:  # raised once the items before it are handed over
                failure = exc
                break
            pending.append((x, pool.submit(fn, x)))
            if len(pending) >= threads:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()
        if failure is not None:
            raise failure
    finally:
        for _, future in pending:
            future.cancel()
        pending.clear()
        pool.shutdown(wait=True)
        close = getattr(items, "close", None)
        if close is not None:  # a read_ahead stops its thread now, not when collected
            close()


def wait_for(thread: threading.Thread, finished: threading.Event) -> None:
    """Wait until ``thread`` has set ``finished`` (its last step), then join it. Not ``join()`` alone:
    on Python 3.11 a Ctrl-C during ``join()`` can mark a thread that still runs as stopped (bpo-45274's
    fix releases its lock), and a thread left in Arrow's C++ as the interpreter exits aborts the
    process ("terminate called without an active exception")."""
    finished.wait()
    thread.join()


class Cancelled(Exception):
    """Raised inside background work whose result is no longer wanted (Background.cancel)."""


class Background(Generic[T]):
    """``work(check)`` on a thread, started at once; ``result()`` waits for it and returns its value
    or raises its exception. ``check()`` raises Cancelled once ``cancel`` was called: the work calls it
    between its steps, so that a cancelled run stops at the next one. ``discard`` frees a value that
    was made but never taken (a spill folder)."""

    def __init__(self, work: Callable[[Callable[[], None]], T], name: str,
                 discard: Callable[[T], None] | None = None):
        self._stop = threading.Event()
        self._finished = threading.Event()
        self._discard = discard
        self._value: T | None = None
        self._exc: BaseException | None = None
        self._taken = False
        # not a daemon: an interpreter that exits while the work runs (a second Ctrl-C during cancel)
        # waits for it to stop at its next check rather than killing it inside Arrow
        self._thread = threading.Thread(target=self._run, args=(work,), name=name)
        try:
            self._thread.start()
        except BaseException:  # a Ctrl-C while it starts: nobody will take or cancel it, so stop it
            self._stop.set()
            raise

    def _run(self, work: Callable[[Callable[[], None]], T]) -> None:
        try:
            self._value = work(self._check)
        except BaseException as exc:  # handed to result()
            self._exc = exc
        finally:
            self._finished.set()

    def _check(self) -> None:
        if self._stop.is_set():
            raise Cancelled()

    def result(self) -> T:
        wait_for(self._thread, self._finished)
        self._taken = True
        if self._exc is not None:
            raise self._exc
        return self._value  # type: ignore[return-value]

    def cancel(self) -> None:
        """Stop the work at its next check and wait for it; a value made but not taken is discarded."""
        if self._taken:
            return
        self._stop.set()
        wait_for(self._thread, self._finished)
        self._taken = True
        if self._exc is None and self._value is not None and self._discard is not None:
            self._discard(self._value)
        # a result() after this raises Cancelled; the value, or the exception and the frames its
        # traceback holds (a reader's generator among them), go now
        self._value, self._exc = None, Cancelled()


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def map_on_threads(fn: Callable[[A], T], items: list[A], threads: int | None = None) -> list[T]:
    """``[fn(x) for x in items]``, in order, on up to ``threads`` threads (default: every core), for
    work that spends its time in Arrow or numpy with the GIL released; the first exception is raised."""
    threads = min(cores() if threads is None else threads, len(items))
    if threads <= 1:
        return [fn(x) for x in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fraudrules-map") as pool:
        return list(pool.map(fn, items))
