"""The durable-rules host of the stream executor (engine/executors/stream/durable.py): its own action dispatch
against durable-rules' Host on the same rules and messages, and a failing action that leaves the session usable.

The messages keep to the executor's discipline, because durable-rules 2.0.28 corrupts memory when a partial chain
of two or more facts meets a fact that the join's conditions then refuse: asserting, in one session, a three-step
rule's last-step fact (q 3), then a first-step fact (q 1), then a second-step fact (q 5) that joins both, segfaults
in about two runs of three, durable-rules' own Host included, depending on the heap's layout. So positions only
grow and a last-step fact (a trigger) is retracted at once, as the executor does (executor.py, ``steps_on``)."""

from __future__ import annotations

import copy

import pytest
from durable import engine as dr_engine
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudrules.executors.stream.durable import SyncHost

RULES = {"t": {
    "pair": {"all": [{"a0": {"$and": [{"r": 0}, {"st": 0}]}},
                     {"a1": {"$and": [{"r": 0}, {"st": 1}, {"k": {"a0": "k"}}, {"$gt": {"q": {"a0": "q"}}}]}}],
             "run": "pair"},
    "three": {"all": [{"a0": {"$and": [{"r": 1}, {"st": 0}]}},
                      {"a1": {"$and": [{"r": 1}, {"st": 1}, {"k": {"a0": "k"}}, {"$gt": {"q": {"a0": "q"}}}]}},
                      {"a2": {"$and": [{"r": 1}, {"st": 2}, {"k": {"a1": "k"}}, {"$gt": {"q": {"a1": "q"}}}]}}],
              "run": "three"},
}}


class _DurableHost(dr_engine.Host):
    """durable-rules' own Host, without its timer threads: actions through its Closure and Promise."""

    def __init__(self, actions):
        self._named_actions = actions
        super().__init__()

    def _run(self):
        pass

    def get_action(self, name):
        return self._named_actions[name]


def _recorder(name: str, fired: list, closure: bool):
    """An action of one argument (durable's Promise takes a second one for a callback): SyncHost hands it the
    matched messages by alias, durable's Host a Closure whose ``_m`` holds them."""
    def action(got) -> None:
        matched = got._m if closure else got
        fired.append((name, *(matched[a]["q"] for a in sorted(matched))))
    return action


def _fired_by(host_class, messages: list[tuple[str, dict]]) -> list[tuple]:
    fired: list[tuple] = []
    host = host_class({n: _recorder(n, fired, host_class is not SyncHost) for n in ("pair", "three")})
    host.set_rulesets(copy.deepcopy(RULES))
    for op, msg in messages:
        if op == "assert":
            host.assert_fact("t", dict(msg))
        else:
            host.retract_fact("t", {"id": msg["id"], "sid": msg["sid"]})
    return fired


@st.composite
def _messages(draw) -> list[tuple[str, dict]]:
    out, live = [], []
    for q in range(draw(st.integers(1, 30))):
        if live and draw(st.booleans()) and draw(st.booleans()):
            msg = live.pop(draw(st.integers(0, len(live) - 1)))
            out.append(("retract", msg))
            continue
        r = draw(st.integers(0, 1))
        msg = {"id": f"m{q}", "sid": draw(st.sampled_from(["0", "1"])), "r": r,
               "st": draw(st.integers(0, 1 + r)), "k": draw(st.sampled_from(["x", "y"])), "q": q}
        out.append(("assert", msg))
        if msg["st"] == 1 + r:  # the last step: a trigger, retracted at once
            out.append(("retract", msg))
        else:
            live.append(msg)
    return out


@settings(max_examples=80, deadline=None)
@given(messages=_messages())
def test_the_host_fires_what_durable_rules_own_host_fires(messages):
    """Asserts and retractions over two sessions, for a two-step and a three-step join: every chain durable-rules
    fires reaches the action, in the same order, through SyncHost's dispatch as through durable's Host."""
    assert _fired_by(SyncHost, messages) == _fired_by(_DurableHost, messages)


def test_a_failing_action_is_abandoned_and_delivered_again():
    """An action that raises: the assert raises it and the action is abandoned, so the session is not left
    locked; durable-rules hands the abandoned chain back with the next one."""
    fired, fail = [], [True]

    def pair(matched: dict) -> None:
        if fail and fail.pop():
            raise RuntimeError("boom")
        fired.append(matched["a1"]["q"])

    host = SyncHost({"pair": pair, "three": _recorder("three", [], False)})
    host.set_rulesets(copy.deepcopy(RULES))
    host.assert_fact("t", {"id": "a", "sid": "0", "r": 0, "st": 0, "k": "x", "q": 0})
    with pytest.raises(RuntimeError, match="boom"):
        host.assert_fact("t", {"id": "b", "sid": "0", "r": 0, "st": 1, "k": "x", "q": 1})
    host.assert_fact("t", {"id": "c", "sid": "0", "r": 0, "st": 1, "k": "x", "q": 2})
    assert fired == [2, 1]
