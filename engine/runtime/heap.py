"""The garbage collector's view of a long-running decision process (watch, serve, NATS).

Once the pack is loaded, a process holds ~180k objects that live to its end (modules, the
grammar, the Plan, numpy and pandas). Every full collection walks them all: ~90 ms of CPU on the
2-vCPU bench machine, one of them every few thousand records, which was the slowest single
``feed`` by far (109 ms against a 0.14 ms median) and ~15% of the one-record path's CPU.
``gc.freeze()`` moves them out of the collector's sight; reference counting still frees
them, only a reference cycle created before the freeze and dropped after it stays until
the next :func:`settle_heap`.

What the process builds after that (a stream executor's window state) grows too, and CPython
walks all of it again at each full collection, one each time the survivors grow by a quarter:
18% of the CPU of 1000-record micro-batches on 100k generated records. So a settled process also
freezes what survives each full collection (:func:`_freeze_survivors`), and each full collection
walks only what is new since the last one. A cycle frozen that way and dropped later stays until
the next settle; :func:`settle_again_if_due` settles again once as many objects have been frozen
by collections as the last settle froze, so what is kept is bounded and the full walks that remain
are amortised over at least as many objects as they walk.

A settled process also collects its young generation less often (:data:`SETTLED_THRESHOLDS`). CPython
collects it after every 700 new containers, a size for short scripts: a micro-batch of 1,000 records
makes several containers per record (window entries, keys' entry lists), most of them long-lived, and
young collections walked them again and again. At 20,000 the young collections stay short (well
under a millisecond), and the collector took ~12% less of the CPU of 1000-record micro-batches on
100k generated records (median of 5 runs, 2.77 against 3.14 s).
"""

from __future__ import annotations

import functools
import gc
import os
import sys
from typing import Any

# objects frozen by the last settle_heap(collect=True), and by full collections since (0, 0: not settled)
_frozen = {"settled": 0, "promoted": 0}
_paused = [False]  # pause_collection() turned the collector off: settle_heap turns it on again
SETTLED_THRESHOLDS = (20_000, 20, 10)  # gc.set_threshold of a settled long-running process
_thresholds_before: list[tuple[int, ...]] = []  # the thresholds settle_heap replaced, for unsettle_heap


def pause_collection() -> None:
    """No collection from now to :func:`settle_heap`, in a run that ends soon (``score``): what its imports
    and pack load build lives to its end, so the full collections they set off (three at 1M records,
    ~0.17 s, on the critical path before the read's tables are joined) find almost nothing.
    :func:`resume_collection` (or the settle) turns the collector on again."""
    if gc.isenabled():
        gc.disable()
        _paused[0] = True


def resume_collection() -> None:
    """Undo :func:`pause_collection`; nothing if it did not pause."""
    if _paused[0]:
        _paused[0] = False
        gc.enable()


def settle_heap(collect: bool = True) -> None:
    """Collect once, then freeze what is live, so later full collections skip it.

    Safe to call again (a serve reload does): it thaws first, so what became garbage since the
    last call (the executor a reload swapped out, with its cycles) is collected, not kept.
    ``collect=False``: a run that ends soon (``score``) freezes without the ~0.1 s collection;
    the few cycles loading left are then kept to its end."""
    if gc.get_freeze_count():
        gc.unfreeze()
    if collect:
        gc.collect()
    gc.freeze()
    resume_collection()
    if collect:  # a long-running process: keep what later full collections leave frozen too
        _frozen["settled"], _frozen["promoted"] = gc.get_freeze_count(), 0
        if _freeze_survivors not in gc.callbacks:
            gc.callbacks.append(_freeze_survivors)
        if not _thresholds_before:
            _thresholds_before.append(gc.get_threshold())
            gc.set_threshold(*SETTLED_THRESHOLDS)


def _freeze_survivors(phase: str, info: dict[str, Any]) -> None:
    """A gc callback: when a full collection ends, everything still tracked has survived it (the young
    generations were merged into the old one), so freezing now keeps no garbage."""
    if phase == "stop" and info["generation"] == 2 and _frozen["settled"]:
        _frozen["promoted"] += len(gc.get_objects(2))
        gc.freeze()


class collection_deferred:
    """``with collection_deferred():`` -- no collection inside the block (the stream executor's calls): a
    release of many records builds a temporary list, tuple or dict per record and step, which die when it
    ends, and a young collection in its middle walks them all for nothing (at 10,000 records per call most of
    the collector's CPU). The collector goes back on at the end only if this block turned it off; what
    survived counts towards the next young collection, which comes at the next allocation if due. A slotted
    class rather than ``contextlib``: a one-record ``feed`` enters it twice, and contextlib's generator costs
    several times as much."""

    __slots__ = ("_off",)

    def __enter__(self) -> None:
        self._off = gc.isenabled()
        if self._off:
            gc.disable()

    def __exit__(self, *exc: object) -> None:
        if self._off:
            gc.enable()


def settle_again_if_due() -> None:
    """Thaw, collect and freeze again once full collections have frozen as many objects as the last
    settle did (what they froze and later dropped in a cycle is then collected). One comparison
    otherwise; nothing in a process that never settled."""
    if _frozen["promoted"] > _frozen["settled"] > 0:
        settle_heap()


def unsettle_heap(thaw: bool = True) -> None:
    """Undo :func:`settle_heap`: full collections stop freezing their survivors, the thresholds are CPython's
    again (or what they were before the settle), the collector runs, and
    with ``thaw`` what was frozen is in its sight again (an in-process command that settled has ended:
    tests; they keep the heap frozen between tests, where thawing would make every later full collection
    walk the whole test session's heap)."""
    if _freeze_survivors in gc.callbacks:
        gc.callbacks.remove(_freeze_survivors)
    _frozen.update(settled=0, promoted=0)
    if _thresholds_before:
        gc.set_threshold(*_thresholds_before.pop())
    if thaw:
        gc.unfreeze()
    resume_collection()


def resettle_heap() -> None:
    """:func:`settle_heap` again, in a process that settled before (a reload); nothing otherwise."""
    if gc.get_freeze_count():
        settle_heap()


_M_ARENA_MAX = -8  # glibc's mallopt parameter


@functools.cache
def _glibc() -> Any:
    """The C library when it is glibc (it has ``malloc_trim``), else None; looked up once."""
    try:
        import ctypes

        lib = ctypes.CDLL(None)
    except OSError:  # pragma: no cover - no C library to load
        return None
    return lib if hasattr(lib, "malloc_trim") else None


def trim_c_heap() -> None:
    """Give the C heap's free pages back to the system (glibc ``malloc_trim(0)``, which also releases whole free
    pages inside the heap, not only at its top); nothing where there is no glibc."""
    lib = _glibc()
    if lib is not None:
        lib.malloc_trim(0)


def trim_thread_heaps() -> None:
    """:func:`trim_c_heap`, and Arrow's pool as the calling thread holds it when Arrow is loaded: mimalloc (the
    wheels' pool) keeps freed pages per thread, and only that thread's release hands them back. A worker
    thread calls it as each task ends (executors.batch prepare: 50 MB less at its end at 1M records)."""
    pa = sys.modules.get("pyarrow")
    if pa is not None:
        pa.default_memory_pool().release_unused()
    trim_c_heap()


# mimalloc (Arrow's pool in the wheels) reads its options from the environment once, as pyarrow loads.
# By default it keeps a freed page 10 ms and then only resets it (MADV_FREE), and an arena's memory is
# committed up front: such pages still count in RSS. 1M records over one day peaked at 405-410 MB with the
# defaults and 392-395 with these; the same records in Parquet (a row group per file) at 417-428 and 383-386.
ARROW_POOL_OPTIONS = {"MIMALLOC_PURGE_DELAY": "0", "MIMALLOC_ARENA_EAGER_COMMIT": "0"}


def arrow_pool_returns_pages() -> bool:
    """Have Arrow's pool hand freed pages back to the system at once (:data:`ARROW_POOL_OPTIONS`), for a batch
    run whose blocks, joins and rules free large buffers on several threads. A value already in the
    environment is kept. Only before pyarrow is imported: False, and nothing done, after."""
    if "pyarrow" in sys.modules:
        return False
    for name, value in ARROW_POOL_OPTIONS.items():
        os.environ.setdefault(name, value)
    return True


def one_c_arena() -> bool:
    """Make every thread allocate from glibc's main arena (``mallopt(M_ARENA_MAX, 1)``), before any
    thread starts. ``score`` runs its read and its shared preparation on threads; each would
    otherwise get an arena of its own, whose freed numpy buffers no other thread reuses and
    ``malloc_trim`` rarely returns: +150 MB peak at 1M records. numpy allocates few, large blocks,
    so one arena's lock costs nothing measurable. False where there is no glibc."""
    lib = _glibc()
    return lib is not None and bool(lib.mallopt(_M_ARENA_MAX, 1))
