"""runtime/heap.py: what a settled process still collects."""

import gc
import weakref

from fraudrules.runtime.heap import resettle_heap, settle_heap, unsettle_heap


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
        unsettle_heap()


def test_resettle_does_nothing_in_a_process_that_never_settled():
    gc.unfreeze()
    resettle_heap()
    assert gc.get_freeze_count() == 0


def test_a_settled_process_freezes_what_survives_each_full_collection_and_settles_again_when_due():
    from fraudrules.runtime import heap

    try:
        settle_heap()
        settled = heap._frozen["settled"]  # (the freeze count itself drops as frozen objects are freed)
        assert settled > 0 and heap._frozen["promoted"] == 0
        state = [[i] for i in range(20_000)]  # window state built after the settle: acyclic, long-lived
        a, b = _Node(), _Node()
        a.other, b.other = b, a
        ref = weakref.ref(a)
        gc.collect()  # a full collection: its survivors are frozen, the next ones will not walk them
        in_sight = {id(o) for o in gc.get_objects()}  # every generation but the frozen one
        assert id(state[0]) not in in_sight and id(state[-1]) not in in_sight and id(state) not in in_sight
        del in_sight
        assert heap._frozen["promoted"] >= len(state)
        del a, b
        gc.collect()
        assert ref() is not None  # a cycle frozen with the survivors and dropped after: kept for now
        heap.settle_again_if_due()  # not yet due: fewer frozen by collections than by the settle
        assert ref() is not None
        heap._frozen["promoted"] = settled + 1  # as if collections had frozen more than the settle did
        heap.settle_again_if_due()
        assert ref() is None  # settled again: the dropped cycle is collected
        assert heap._frozen["promoted"] == 0 and heap._frozen["settled"] >= len(state)
        assert state[-1] == [19_999]
    finally:
        heap.unsettle_heap()
    assert heap._freeze_survivors not in gc.callbacks and gc.get_freeze_count() == 0


def test_full_collections_freeze_nothing_in_a_process_that_never_settled():
    from fraudrules.runtime import heap

    gc.unfreeze()
    heap._freeze_survivors("stop", {"generation": 2, "collected": 0, "uncollectable": 0})
    heap.settle_again_if_due()
    assert gc.get_freeze_count() == 0


def test_pause_collection_lasts_until_the_settle_and_leaves_a_collector_it_did_not_turn_off_alone():
    from fraudrules.runtime import heap

    try:
        assert gc.isenabled()
        heap.pause_collection()
        assert not gc.isenabled()
        settle_heap(collect=False)  # score's settle: what is loaded is frozen, the collector runs again
        assert gc.isenabled()
        heap.resume_collection()  # a second resume (score's finally) changes nothing
        assert gc.isenabled()
        gc.disable()  # the caller's own choice: neither pause nor resume turns it back on
        heap.pause_collection()
        heap.resume_collection()
        assert not gc.isenabled()
    finally:
        gc.enable()
        unsettle_heap()


def test_a_score_that_fails_before_its_settle_turns_the_collector_back_on(tmp_path):
    from click.testing import CliRunner

    from fraudrules import cli
    from tests.helpers import REPO

    bad = tmp_path / "rules"
    bad.mkdir()
    (bad / "streams.yaml").write_text((REPO / "rules" / "streams.yaml").read_text())
    (bad / "broken.yaml").write_text("id: [unclosed\n")
    result = CliRunner().invoke(cli.main, ["score", str(REPO / "samples"), "--rules", str(bad), "-q"])
    assert result.exit_code != 0 and "broken.yaml" in result.output
    assert gc.isenabled()


ARROW_POOL_PROBE = """
import json, os, sys
from fraudrules.runtime.heap import ARROW_POOL_OPTIONS, arrow_pool_returns_pages
os.environ["MIMALLOC_PURGE_DELAY"] = "25"  # the user's own value stays
first = arrow_pool_returns_pages()
set_then = {k: os.environ.get(k) for k in ARROW_POOL_OPTIONS}
for k in ARROW_POOL_OPTIONS:
    os.environ.pop(k)
import pyarrow
late = arrow_pool_returns_pages()
print(json.dumps({"first": first, "set": set_then, "late": late,
                  "after": {k: os.environ.get(k) for k in ARROW_POOL_OPTIONS}}))
"""


def test_arrow_pool_options_are_set_only_before_pyarrow_loads_and_keep_the_users_own():
    import json
    import os
    import subprocess
    import sys

    from fraudrules.runtime.heap import ARROW_POOL_OPTIONS

    env = {k: v for k, v in os.environ.items() if not k.startswith("MIMALLOC_")}  # none set by a score before
    proc = subprocess.run([sys.executable, "-c", ARROW_POOL_PROBE], capture_output=True, text=True, timeout=120,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["first"] is True
    assert report["set"] == {**ARROW_POOL_OPTIONS, "MIMALLOC_PURGE_DELAY": "25"}
    assert report["late"] is False
    assert report["after"] == {k: None for k in ARROW_POOL_OPTIONS}


def test_a_settled_process_collects_its_young_generation_less_often_until_unsettled():
    from fraudrules.runtime import heap

    before = gc.get_threshold()
    try:
        gc.set_threshold(900, 11, 12)  # the caller's own thresholds come back after
        settle_heap()
        assert gc.get_threshold() == heap.SETTLED_THRESHOLDS
        resettle_heap()  # a reload settles again: the thresholds to restore are still the caller's
        assert gc.get_threshold() == heap.SETTLED_THRESHOLDS
        unsettle_heap(thaw=False)
        assert gc.get_threshold() == (900, 11, 12)
        settle_heap(collect=False)  # score's settle: a short run keeps the thresholds it had
        assert gc.get_threshold() == (900, 11, 12)
    finally:
        unsettle_heap(thaw=False)
        gc.set_threshold(*before)
