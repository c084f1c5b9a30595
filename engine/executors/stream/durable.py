"""The durable-rules glue: a synchronous host, sharded session ids and message ids (docs/design.md §7).

durable-rules 2.0.28 identifies a message by a 32-bit FNV-1a hash of its id and allows at most 1024
live session ids per ruleset; these helpers keep the executor inside both limits.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

from durable import engine as dr_engine

MAX_SIDS = 1024  # durable-rules 2.0.28: the 1025th live sid of a ruleset is a MemoryError (then a segfault)
RULESET = "fraudrules"
MAX_ID_TRIES = 16
DURABLE_MESSAGE_BYTES = 8192  # measured: every stored durable message costs ~8 KB

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



class SyncHost(dr_engine.Host):
    """durable Host without its two timer threads: actions run inside post/assert_fact."""

    def __init__(self, actions: dict[str, Callable]):
        self._named_actions = actions
        super().__init__()

    def _run(self) -> None:  # no dispatcher or timer threads: durable timers decide nothing
        pass

    def get_action(self, action_name: str) -> Callable:
        return self._named_actions[action_name]
