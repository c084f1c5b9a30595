"""runtime/heap.py: what a settled process still collects."""

import gc
import weakref

from fraudrules.runtime.heap import resettle_heap, settle_heap


class _Node:
    pass


def test_settle_freezes_and_resettle_collects_what_was_dropped_since():
    try:
        a, b = _Node(), _Node()
        a.other, b.other = b, a  # a cycle: only the collector frees it
        ref = weakref.ref(a)
        settle_heap()
        assert gc.get_freeze_count() > 0
        del a, b
        gc.collect()
        assert ref() is not None  # frozen: a full collection no longer sees it
        resettle_heap()  # thaws, collects, freezes again (a serve reload)
        assert ref() is None
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_resettle_does_nothing_in_a_process_that_never_settled():
    gc.unfreeze()
    resettle_heap()
    assert gc.get_freeze_count() == 0
