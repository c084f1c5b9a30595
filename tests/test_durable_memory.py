"""The C memory durable-rules holds for a stream executor is given back when the executor goes.

durable-rules 2.0.28 never frees a ruleset or a session's state: its Python ``Ruleset`` has no finaliser. Every
executor a process dropped kept the messages and join frames of its sequence rules: a guard's rollback (a new
host per poison record), a ``serve`` reload (the old pack's executor), each inline test case, each resumed
checkpoint in a test. A fuzz of checkpoints grew to 11 GB that way. The host now frees them when it is garbage
(``SyncHost.free_when_dropped``) and the guard frees the host it replaces at once."""

from __future__ import annotations

import gc

import pytest

from fraudrules.executors.stream import StreamExecutor
from fraudrules.executors.stream import durable as durable_mod
from fraudrules.executors.stream.durable import RULESET
from fraudrules.io.records import parse_inputs
from fraudrules.jobs.watch import ordered_records
from tests.test_eval_errors import raise_in_process
from tests.test_properties import PLAN as PROPS_PLAN
from tests.test_stream import PACK, PLAN, SAMPLES


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return ordered_records(parse_inputs([str(SAMPLES)], PACK.schema), PACK.schema)


@pytest.fixture
def freed(monkeypatch) -> dict[str, list]:
    """durable-rules' delete_state and delete_ruleset, still called, each call noted."""
    calls: dict[str, list] = {"state": [], "ruleset": []}
    engine = durable_mod.durable_rules_engine
    real_state, real_ruleset = engine.delete_state, engine.delete_ruleset

    def delete_state(handle, sid):
        calls["state"].append((handle, sid))
        return real_state(handle, sid)

    def delete_ruleset(handle):
        calls["ruleset"].append(handle)
        return real_ruleset(handle)

    monkeypatch.setattr(engine, "delete_state", delete_state)
    monkeypatch.setattr(engine, "delete_ruleset", delete_ruleset)
    return calls


def _handle(ex: StreamExecutor) -> int:
    return ex._host.get_ruleset(RULESET)._handle


def test_a_dropped_executor_frees_its_rulesets_and_every_session(records, freed):
    ex = StreamExecutor(PLAN)
    ex.feed_many(records)
    ex.flush()
    handle, sids = _handle(ex), set(ex.sids_used)
    assert len(sids) > 10 and ex.durable_fact_count() > 0  # sessions that hold facts: something to free
    gc.collect()  # other tests' executors, garbage by now, are freed here (handles are reused after)
    assert handle not in freed["ruleset"] and handle not in {h for h, _ in freed["state"]}  # it lives
    freed["ruleset"].clear()
    freed["state"].clear()
    del ex
    gc.collect()
    assert freed["ruleset"] == [handle]
    assert {sid for h, sid in freed["state"] if h == handle} == sids


def test_a_rollback_frees_the_host_it_replaces_without_waiting_for_the_collector(records, freed, monkeypatch):
    raise_in_process(monkeypatch, records[3000]["id"])
    ex = StreamExecutor(PLAN, on_reject=lambda rec, reason: None)
    first = _handle(ex)
    gc.disable()  # only the guard's own call can free it now
    try:
        ex.feed_many(records[:4000])
        assert ex._guard.rollbacks == 2  # the release, then the record alone
        assert first in freed["ruleset"] and _handle(ex) not in freed["ruleset"]
        assert len(freed["ruleset"]) == 2  # each host it replaced, not the one running
        ex.feed_many(records[4000:])  # the running host still works
        ex.flush()
    finally:
        gc.enable()


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / (1 << 20)


def test_executors_made_and_dropped_one_after_another_do_not_grow_the_process(records):
    """Before the fix each round kept ~27 MB of C memory (the messages of tests/packs/props' sequences)."""
    assert PROPS_PLAN.schema.streams.keys() >= {r["stream"] for r in records[:2000]}
    grown = []
    for _ in range(6):
        ex = StreamExecutor(PROPS_PLAN)
        ex.feed_many(records[:2000])
        ex.flush()
        del ex
        gc.collect()
        grown.append(_rss_mb())
    assert grown[-1] - grown[1] < 40, grown  # five more rounds: ~135 MB kept before
