"""The durable-rules glue: a synchronous host, sharded session ids and message ids (docs/design.md §7).

durable-rules 2.0.28 identifies a message by a 32-bit FNV-1a hash of its id and allows at most 1024
live session ids per ruleset; these helpers keep the executor inside both limits.
"""

from __future__ import annotations

import functools
import json
import sys
import weakref
import zlib
from collections.abc import Callable
from json.encoder import encode_basestring
from typing import Any

import durable_rules_engine
from durable import engine as dr_engine

MAX_SIDS = 1024  # durable-rules 2.0.28: the 1025th live sid of a ruleset is a MemoryError (then a segfault)
RULESET = "fraudrules"
MAX_ID_TRIES = 16
DURABLE_MESSAGE_BYTES = 8192  # measured: every stored durable message costs ~8 KB
# durable-rules 2.0.28 as third_party/durable_rules/install.py builds it, with two loops bounded and a session's
# action context set: PyPI's build reads and writes past a join's frame when a second fact of a fired chain is
# retracted, and aborts deleting a session that never ran an action (docs/streaming.md)
FIXED_BUILD = "2.0.28+fraudrules.2"
_warned_unfixed = False


@functools.cache
def durable_rules_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("durable-rules")
    except PackageNotFoundError:  # importable without metadata (a path entry): not a build we know
        return "of unknown version"


def warn_unless_fixed_build() -> None:
    """Say once per process, on stderr, when sequences will run on durable-rules without the memory fixes."""
    global _warned_unfixed
    if _warned_unfixed:
        return
    _warned_unfixed = True
    found = durable_rules_version()
    if found != FIXED_BUILD:
        print(f"warning: durable-rules {found} is not the build with fraudrules' memory fixes ({FIXED_BUILD}): "
              "sequence rules can crash the process (a segfault) when the facts of a fired chain are retracted; "
              "install it with `python third_party/durable_rules/install.py` (docs/streaming.md)", file=sys.stderr)


def fnv1a32(text: str) -> int:
    """The 32-bit FNV-1a hash durable-rules uses for message ids and sids."""
    h = 0x811C9DC5
    for b in text.encode("utf-8"):
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def shard_of(key: str, shards: int) -> str:
    """Stable sid for a key (crc32, not Python's salted hash)."""
    return str(zlib.crc32(key.encode("utf-8")) % shards)


def fact_id(record_id: str, rule_index: int, step: int) -> str:
    """The durable message id of one record's fact for one rule step (before any nonce)."""
    return f"{record_id}~{rule_index}.{step}"


def join_value(value: Any) -> str:
    """A join value as durable sees it: strings as they are, anything else tagged."""
    if isinstance(value, str):
        return value
    return f"\x1f{type(value).__name__}:{value!r}"



_JSON_SCALAR: dict[type, Callable[[Any], str]] = {
    str: encode_basestring, int: int.__repr__, bool: lambda v: "true" if v else "false"}


def encode_message(msg: dict[str, Any]) -> str:
    """``json.dumps(msg, ensure_ascii=False)`` for the flat messages the executor sends (str, int and
    bool values), the same text at about a third of the cost: durable's own call builds a new
    JSONEncoder per message (ensure_ascii=False is not the cached default)."""
    return "{" + ", ".join([encode_basestring(k) + ": " + _JSON_SCALAR[type(v)](v) for k, v in msg.items()]) + "}"


def free_rulesets(handles: list[int], sids: set[str]) -> None:
    """Give back what durable-rules' C engine holds for these rulesets: each session's state (its stored
    messages and join frames), then the ruleset. durable-rules never frees either; each executor a process
    dropped (a guard's rollback, a ``serve`` reload, an inline test) kept them: 27 MB after 2,000 records of
    tests/packs/props, and a process could make no more than 131,071 rulesets. Only for rulesets nothing will
    call again. The sessions only on :data:`FIXED_BUILD`: other builds abort deleting a session that never ran
    an action (third_party/durable_rules/install.py, fix 3), so there the ruleset alone is freed."""
    sessions = sids if durable_rules_version() == FIXED_BUILD else ()  # others abort deleting some (install.py)
    for handle in handles:
        for sid in sessions:
            try:
                durable_rules_engine.delete_state(handle, sid)
            except durable_rules_engine.error:  # no state for this sid (its first message was refused)
                pass
        durable_rules_engine.delete_ruleset(handle)


class SyncHost(dr_engine.Host):
    """durable Host without its two timer threads: actions run inside post/assert_fact.

    ``post``, ``assert_fact`` and ``retract_fact`` of one message take the steps of durable's
    (engine call, result check, then each action the state has to run) with :func:`encode_message` for the
    JSON text, and hand an action the matched messages by alias (what ``Closure._m`` holds) without durable's
    Closure, Promise and callbacks (measured: a trigger that fires two chains, 19 µs with its retraction
    instead of 47; one that fires none, 6.0 instead of 7.6).
    They reach into ``Ruleset._handle``, ``_handle_result`` and the engine's action calls, so they are tied to
    the pinned durable-rules 2.0.28. An action must not change the session state (ours record the chain)."""

    def __init__(self, actions: dict[str, Callable[[dict], None]]):
        self._named_actions = actions
        super().__init__()

    def _run(self) -> None:  # no dispatcher or timer threads: durable timers decide nothing
        pass

    def free_when_dropped(self, sids: set[str]) -> None:
        """Free the C engine's rulesets (:func:`free_rulesets`) with the sessions ``sids`` (a set the caller
        keeps adding to) once this host is garbage, or at :meth:`free`, whichever comes first. Once garbage,
        nothing can call them; not at exit, where the process gives everything back anyway."""
        handles = [rs._handle for rs in self._ruleset_list]
        self._freer = weakref.finalize(self, free_rulesets, handles, sids)
        self._freer.atexit = False

    def free(self) -> None:
        """Free the C engine's rulesets now: the caller drops this host and never calls it again."""
        freer = getattr(self, "_freer", None)
        if freer is not None:
            freer()

    def get_action(self, action_name: str) -> Callable:
        return self._named_actions[action_name]  # durable's Ruleset wraps it in a Promise; _direct calls it

    def _direct(self, engine_call: Callable, ruleset_name: str, msg: dict) -> Any:
        rules = self.get_ruleset(ruleset_name)
        handle = rules._handle
        state = rules._handle_result(engine_call(handle, encode_message(msg)), msg)
        result = durable_rules_engine.start_action_for_state(handle, state)
        while result:  # (state JSON, {action: {alias: message}}): as Ruleset.do_actions, one action at a time
            try:
                name, matched = next(iter(json.loads(result[1]).items()))  # one rule's chain a time
                rules._actions[name]._func(matched)  # the rule's Promise wraps what get_action gave
                durable_rules_engine.update_state(handle, result[0])  # unchanged, as durable hands it back
                more = durable_rules_engine.complete_and_start_action(handle, state)
            except BaseException:
                durable_rules_engine.abandon_action(handle, state)
                raise
            result = (result[0], more) if more else None
        return state

    def post(self, ruleset_name: str, message: Any, complete: Callable | None = None) -> Any:
        if complete is not None or not isinstance(message, dict):
            return super().post(ruleset_name, message, complete)
        return self._direct(durable_rules_engine.assert_event, ruleset_name, message)

    def assert_fact(self, ruleset_name: str, fact: Any, complete: Callable | None = None) -> Any:
        if complete is not None or not isinstance(fact, dict):
            return super().assert_fact(ruleset_name, fact, complete)
        return self._direct(durable_rules_engine.assert_fact, ruleset_name, fact)

    def retract_fact(self, ruleset_name: str, fact: Any, complete: Callable | None = None) -> Any:
        if complete is not None or not isinstance(fact, dict):
            return super().retract_fact(ruleset_name, fact, complete)
        return self._direct(durable_rules_engine.retract_fact, ruleset_name, fact)
