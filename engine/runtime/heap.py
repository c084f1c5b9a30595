"""The garbage collector's view of a long-running decision process (watch, serve, NATS).

Once the pack is loaded, a process holds ~180k objects that live to its end (modules, the
grammar, the Plan, numpy and pandas). Every full collection walks them all: ~90 ms of CPU on the
2-vCPU bench machine, one of them every few thousand records, which was the slowest single
``feed`` by far (109 ms against a 0.14 ms median) and ~15% of the one-record path's CPU.
``gc.freeze()`` moves them out of the collector's sight; reference counting still frees
them, only a reference cycle created before the freeze and dropped after it stays until
the next :func:`settle_heap`.
"""

from __future__ import annotations

import gc


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


def resettle_heap() -> None:
    """:func:`settle_heap` again, in a process that settled before (a reload); nothing otherwise."""
    if gc.get_freeze_count():
        settle_heap()


_M_ARENA_MAX = -8  # glibc's mallopt parameter


def one_c_arena() -> bool:
    """Make every thread allocate from glibc's main arena (``mallopt(M_ARENA_MAX, 1)``), before any
    thread starts. ``score`` runs its read and its shared preparation on threads; each would
    otherwise get an arena of its own, whose freed numpy buffers no other thread reuses and
    ``malloc_trim`` rarely returns: +150 MB peak at 1M records. numpy allocates few, large blocks,
    so one arena's lock costs nothing measurable. False where there is no glibc."""
    try:
        import ctypes

        return bool(ctypes.CDLL(None).mallopt(_M_ARENA_MAX, 1))
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return False
