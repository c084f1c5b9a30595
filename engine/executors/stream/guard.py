"""A record whose evaluation raises is a reject, not the end of the stream (docs/streaming.md).

Every release of the stream executor goes through :meth:`ReleaseGuard.process`.
When evaluating a release raises -- an engine bug, or an input no reader
foresaw -- the state the failed attempt half changed is rebuilt as it was
before the release, the release is evaluated again record by record to find
the record(s) that raise on their own (given everything before them), each
such record goes to the rejects with the reason
``evaluation error: <ExcType>: <message>`` and a one-line warning, and the
rest is evaluated as if the record had never come.
The process does not die, and because evaluation is deterministic a restart
that meets the record again rejects it again instead of crashing.

Rolling back: the guard keeps a snapshot (:meth:`StreamExecutor.state_dict`)
and a journal of the release batches evaluated since. To undo a failed
attempt it rebuilds the executor's evaluation state from the snapshot and
evaluates the journal again (their alerts were already returned, so they are
dropped), then puts back the intake side -- the reorder buffer, the
watermark, the ids seen, the counters as they were before the attempt --
which a release does not change. A new snapshot is taken once the journal
holds ``JOURNAL_RECORDS`` records or ``SNAPSHOT_PER_ENTRY`` times as many as
the state has entries, whichever is more, so the snapshots cost a bounded
share of the work. On the happy path the guard costs those snapshots and the
journal's memory (the records since the last snapshot), nothing else.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ...runtime.alerts import iso_utc

if TYPE_CHECKING:  # pragma: no cover
    from .executor import StreamExecutor

JOURNAL_RECORDS = 20_000  # least records between two snapshots
# records between two snapshots per entry of the state: a snapshot costs about 9 µs of CPU per state
# entry and a record 60-130 µs, so snapshots cost about 5% of the work; a rollback replays at most
# this many records per entry (bench/bench_guard.py on 108k generated records: docs/streaming.md)
SNAPSHOT_PER_ENTRY = 2
MESSAGE_CHARS = 300  # of an exception's text in a reason
# What a release does not change (the intake side, hooks, this guard): kept across a rebuild.
KEEP = ("_heap", "max_ts", "next_arrival", "seen_ids", "on_late", "on_reject", "late_records",
        "rejected_records", "match_log", "clock", "scalar_max", "on_eval_error", "_guard")

Entry = tuple  # (ts, arrival, stream, row) as the reorder buffer holds it


def error_reason(exc: BaseException) -> str:
    """``evaluation error: ValueError: text`` on one line, bounded."""
    text = " ".join(str(exc).split())
    if len(text) > MESSAGE_CHARS:
        text = text[:MESSAGE_CHARS] + "..."
    return f"evaluation error: {type(exc).__name__}: {text}" if text else f"evaluation error: {type(exc).__name__}"


class ReleaseGuard:
    """The evaluation of releases with a way back. ``init`` holds the executor's constructor arguments,
    with which its evaluation state is made afresh on a rollback."""

    def __init__(self, ex: StreamExecutor, init: dict[str, Any]):
        self.ex = ex
        self.init = init
        self.snapshot: dict[str, Any] | None = None
        self.journal: list = []  # release batches (lists of entries) and ("fire", limit) markers
        self.journal_records = 0
        self.snapshot_after = JOURNAL_RECORDS  # journal records that call for the next snapshot
        self.rollbacks = 0  # for tests and stats
        self.errors = 0

    def forget(self) -> None:
        """The state was changed outside a release (load_state, prime): snapshot again before the next."""
        self.snapshot = None
        self.journal = []
        self.journal_records = 0

    def process(self, batch: list[Entry]) -> list[dict]:
        """Evaluate a release; the alerts of what could be evaluated."""
        if self.snapshot is None or self.journal_records >= self.snapshot_after:
            self._snapshot()
        return self._attempt(batch)

    def fire(self, limit: int) -> list[dict]:
        """Fire the absence deadlines event time has passed (StreamExecutor.fire_due), journaled like a
        release so that a rollback replays it in its place."""
        if self.snapshot is None:
            self._snapshot()
        alerts = self.ex.fire_due(limit)
        self.journal.append(("fire", limit))
        return alerts

    def _snapshot(self) -> None:
        ex = self.ex
        snap = ex.state_dict()
        snap["pending"], snap["seen_ids"] = [], None  # the intake side is kept, not restored (KEEP)
        self.snapshot = snap
        self.journal = []
        self.journal_records = 0
        self.snapshot_after = max(JOURNAL_RECORDS, SNAPSHOT_PER_ENTRY * ex.stats["state_entries"])

    def _attempt(self, batch: list[Entry]) -> list[dict]:
        """The release whole; if it raises, record by record from the state before it."""
        ex = self.ex
        counters = ex.counters.copy()
        logged = None if ex.match_log is None else len(ex.match_log)
        try:
            alerts = ex._process(batch)
        except Exception as exc:  # noqa: BLE001 - whatever evaluation raises must not end the stream
            self._rollback(counters, logged)
            if len(batch) == 1:
                self._reject(batch[0], exc)
                return []
        else:
            self._journal(batch)
            return alerts
        # Split all the way down rather than in halves: a rollback reloads the whole state (about a
        # second per 100k entries) and a halving search needs two per level, while a record
        # evaluated alone costs ~0.1 ms. A snapshot first, so that a second record that raises in
        # this release rolls back over this release only. The alerts equal the release's whole.
        self._snapshot()
        out: list[dict] = []
        for entry in batch:
            counters = ex.counters.copy()
            logged = None if ex.match_log is None else len(ex.match_log)
            try:
                alerts = ex._process([entry])
            except Exception as exc:  # noqa: BLE001
                self._rollback(counters, logged)
                self._reject(entry, exc)
                continue
            self._journal([entry])
            out.extend(alerts)
        return out

    def _journal(self, batch: list[Entry]) -> None:
        self.journal.append(batch)
        self.journal_records += len(batch)

    def _rollback(self, counters: Any, logged: int | None) -> None:
        """The executor's evaluation state as it was before the failed attempt."""
        ex = self.ex
        self.rollbacks += 1
        keep = {name: ex.__dict__[name] for name in KEEP if name in ex.__dict__}
        ex.close()  # the host it drops, now: in a settled process its garbage could wait for the next settle
        type(ex).__init__(ex, ex.plan, **self.init)  # fresh evaluation state (a new durable host too)
        assert self.snapshot is not None
        ex.load_state(self.snapshot)
        for batch in self.journal:  # deterministic: the same state again; the alerts were returned already
            if isinstance(batch, tuple):  # ("fire", limit): absence deadlines fired between releases
                ex.fire_due(batch[1])
            else:
                ex._process(batch)
        ex.__dict__.update(keep)
        ex.counters = counters
        if logged is not None:
            del ex.match_log[logged:]

    def _reject(self, entry: Entry, exc: Exception) -> None:
        ex = self.ex
        self.errors += 1
        record = record_of(ex, entry)
        reason = error_reason(exc)
        ex._reject(record, reason)
        warn: Callable[[dict, str], None] | None = getattr(ex, "on_eval_error", None)
        if warn is not None:
            warn(record, reason)
        else:
            print(f"warning: {record.get('stream')} record {record.get('id')!r} rejected: {reason}",
                  file=sys.stderr, flush=True)


def record_of(ex: StreamExecutor, entry: Entry) -> dict:
    """A buffered record as a JSON-ready dict (timestamps in ISO form), for its reject line."""
    _ts, _arrival, stream, row = entry
    spec = ex.plan.schema.streams[stream]
    out: dict[str, Any] = {"stream": stream}
    for name, value in zip(spec.fields, row):
        if value is None:
            continue
        if spec.fields[name].type == "timestamp" and isinstance(value, int):
            value = str(iso_utc(np.array([value], dtype=np.int64))[0])
        out[name] = value
    return out
