"""A value's answer, kept: the stream's micro-batches see the same numbers and texts again and again."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from itertools import repeat
from typing import Any

_MISS = object()


def memo_map(values: Sequence[Hashable], memo: dict, fn: Callable[[Any], Any], max_entries: int) -> list:
    """``[fn(x) for x in values]``, each answer looked up in ``memo`` first and kept there; the memo is
    emptied when it holds ``max_entries`` (a bound on memory, not an LRU: the hot values come back)."""
    out = list(map(memo.get, values, repeat(_MISS)))  # map: no Python frame a value (40% less than a listcomp)
    if _MISS in out:
        if len(memo) >= max_entries:
            memo.clear()
        for k, got in enumerate(out):
            if got is _MISS:
                x = values[k]
                out[k] = memo[x] = fn(x)
    return out


def memo_many(values: Sequence[Hashable], memo: dict, many: Callable[[list], list], max_entries: int) -> list:
    """:func:`memo_map` whose misses are answered together: ``many`` takes the distinct values not in ``memo``
    and gives their answers in order (a function whose cost is mostly per call, such as Arrow's). The memo
    never holds more than ``max_entries``: it is emptied when the new answers would not fit."""
    out = list(map(memo.get, values, repeat(_MISS)))  # one read a value: a thread emptying the memo costs a recompute
    if _MISS not in out:
        return out
    misses = list(dict.fromkeys(x for x, got in zip(values, out) if got is _MISS))
    answers = dict(zip(misses, many(misses)))
    if len(memo) + len(answers) > max_entries:
        memo.clear()
    if len(answers) <= max_entries:
        memo.update(answers)
    return [answers[x] if got is _MISS else got for x, got in zip(values, out)]
