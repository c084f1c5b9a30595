"""A value's answer, kept: the stream's micro-batches see the same numbers and texts again and again."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

_MISS = object()


def memo_map(values: Sequence[Hashable], memo: dict, fn: Callable[[Any], Any], max_entries: int) -> list:
    """``[fn(x) for x in values]``, each answer looked up in ``memo`` first and kept there; the memo is
    emptied when it holds ``max_entries`` (a bound on memory, not an LRU: the hot values come back)."""
    get = memo.get
    out = [get(x, _MISS) for x in values]
    if _MISS in out:
        if len(memo) >= max_entries:
            memo.clear()
        for k, got in enumerate(out):
            if got is _MISS:
                x = values[k]
                out[k] = memo[x] = fn(x)
    return out
