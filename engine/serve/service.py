"""The decision service behind ``fraudrules serve``: stream executor + write-ahead log + checkpoints.

Everything here runs on one asyncio event loop: requests are decided one
after another in arrival order, so the executor needs no lock and the
write-ahead log order is the decision order.

**Deciding at arrival.** The executor runs with lateness 0: the watermark is
the largest ``ts`` seen, so a record whose ``ts`` is at or after it is
processed by the very ``feed`` that takes it (nothing can come before it any
more) and its answer is final: ``risk_score``, ``decision``, the rules that
matched (suppressed matches count, as in batch scoring) and the alerts it
triggered. A record with a ``ts`` *before* the largest seen is late: it is
answered ``"status": "late"`` without a decision, logged and counted (docs/design.md
§5). Records given in the batch total order are never late, and get exactly
the ``risk_score``/``decision`` of ``fraudrules score``.

**Durability.** A record is appended to the write-ahead log (wal.py) before
its answer is sent, and the answer waits for the fsync of that entry. On
start the service loads the last checkpoint (the executor's ``state_dict``,
written atomically) and replays the log after it, so windows, ``is_new``,
sequences and suppression resume. A checkpoint rotates the log; segments
are deleted once they are older than both the checkpoint and the retention
(``retain``, default: the pack's horizon), because a rule reload rebuilds the
new pack's state from the retained records, which it reads back from the log
(only their ids and event times are held in memory).

**Retries.** A client that lost an answer sends the record again. The last
``ANSWERS_KEPT`` answers are kept: the same record again (its stream, id and
fields) gets the answer it had, marked ``"replayed": true``, and is not applied.
Each answer is logged with its record and the kept ones are in the checkpoint,
so a restart keeps them: a crash is when clients lose answers. A retry whose
answer is no longer kept (older) is a duplicate id, as ``score`` refuses it: the
ids of the retained records are kept (``check``); behind the watermark it is
late, applied to nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import FraudRulesError, RuleError, RuleErrors
from ..executors.stream import StreamExecutor
from ..executors.stream.intake import ScalarIntake
from ..io.convert import duplicate_id_reason
from ..io.records import records_from_dicts
from ..pack.loader import load_pack
from ..runtime.heap import resettle_heap
from ..runtime.plan import Plan, compile_pack
from .metrics import Metrics
from .wal import Segment, WriteAheadLog, entries_since, log_entries

CHECKPOINT_KIND = "fraudrules-serve-checkpoint"
ANSWERS_KEPT = 10_000  # the newest answers, for retries (~0.5 KB an answer, ~5 KB with an alert)
EVALUATION_ERROR = "evaluation error:"  # the executor's reason for a record whose evaluation raised
REPLAY_CHUNK = 4096


def retry_key(rec: dict) -> tuple[Any, str]:
    """What makes a record the same record again, for :meth:`DecisionService.check`: its stream and its id as
    sent (a retry sends the same JSON)."""
    rid = rec.get("id")
    return rec.get("stream"), rid if isinstance(rid, str) else json.dumps(rid, sort_keys=True)


def _only_ts(rs: Any) -> int:
    """The ts of the one record that ``records_from_dicts`` read (a RecordSet of one table, one row)."""
    (table,) = rs.tables.values()
    return int(table.columns["ts"].values[0])


def horizon_ns(plan: Plan) -> int:
    """How far back in event time the pack's state reaches: the longest window (with an is_new inside its where=,
    both windows), within or suppress."""
    spans = [spec.reach_ns for spec in plan.aggregates()]  # an is_new in where= reaches further back
    for rp in plan.rules:
        spans.append(rp.within_ns or 0)
        spans.append(rp.suppress_ns or 0)
        if rp.absent is not None:  # a chain waits this much longer for its absent record
            spans.append((rp.within_ns or 0) + rp.absent.within_ns)
    return max(spans, default=0)


@dataclass
class Checked:
    """A request's records as :meth:`DecisionService.check` found them."""

    records: list
    bad: list[dict]  # the records that would be rejected: [{index, id, reason}], as rejects.csv words them
    # per record, what deciding it needs and check() found already (None where it does not apply):
    kept: list[tuple[dict, int] | None]  # the answer given to this very record before, and its log ticket
    ts: list[int | None]  # its ts
    # the intake's (stream, ts, row), so that the executor does not type it again; None for a record the
    # intake declined (typed by the vectorised path), a retry, or a bad record
    typed: list[tuple[str, int, tuple] | None]


@dataclass
class ServeOptions:
    rules: Path
    state_dir: Path
    region: str = "CN"
    shards: int = 256
    checkpoint_every: float = 60.0  # seconds of wall time between checkpoints (when records arrived)
    retain: float | None = None  # seconds of event time kept for reloads; None: the pack's horizon
    wal_window: float = 0.0  # seconds a group commit waits for more requests (0: requests that arrive
    # during an fsync form the next group anyway, without adding latency to a lone request)
    max_batch: int = 1000


class DecisionService:
    def __init__(self, opts: ServeOptions, log: Callable[[str], None] | None = None):
        self.opts = opts
        self.log = log or (lambda msg: print(msg, flush=True))
        self.metrics = Metrics()
        self.plan: Plan | None = None
        self.ex: StreamExecutor | None = None
        self.intake: ScalarIntake | None = None
        self.retain_ns = 0  # event time of decided records kept for a reload (--retain, else the pack's horizon)
        self.wal: WriteAheadLog | None = None
        self.next_seq = 0
        # (ts, retry key) of the records applied inside the retention; the records themselves are in the log
        self.retained: deque = deque()
        self.max_ts: int | None = None
        # retry_key -> the newest ts of the retained records with it: a record with one of these ids is refused
        # as a duplicate (``check``), as ``score`` refuses it, within the retention
        self.retained_ids: dict[tuple[Any, str], int] = {}
        # retry_key -> (the record, its answer, its log ticket) of the last ANSWERS_KEPT records decided or late
        self.answers: OrderedDict[tuple[Any, str], tuple[dict, dict, int]] = OrderedDict()
        self._late: list[dict] = []
        self._rejected: list[tuple[Any, str]] = []
        self._ckpt_lock: asyncio.Lock | None = None
        self._reload_lock: asyncio.Lock | None = None
        # set but while a reload reads the retained records back from the log: requests wait at admit()
        self._admitting: asyncio.Event | None = None
        self._ckpt_seq = -1  # seq of the last checkpoint
        self._task: asyncio.Task | None = None
        self.started = time.time()

    @property
    def checkpoint_path(self) -> Path:
        return self.opts.state_dir / "checkpoint.json"

    # -- setup ---------------------------------------------------------------------------------
    def _new_executor(self, plan: Plan) -> StreamExecutor:
        ex = StreamExecutor(plan, lateness=0.0, shards=self.opts.shards, region=self.opts.region,
                            on_late=lambda rec, info: self._late.append(info),
                            on_reject=lambda rec, reason: self._rejected.append((rec, reason)))
        ex.match_log = []
        ex.on_eval_error = lambda rec, reason: self.log(
            f"serve: warning: {rec.get('stream')} record {rec.get('id')!r} not applied: {reason}")
        return ex

    def _install(self, plan: Plan, ex: StreamExecutor) -> None:
        """Make ``plan`` and its executor the running ones, with what derives from the plan: the intake and the
        event time retained (computed here once: it walks every aggregate, and every applied record reads it)."""
        self.plan, self.ex = plan, ex
        self.intake = ScalarIntake(plan.schema, self.opts.region)
        self.retain_ns = int(self.opts.retain * 1e9) if self.opts.retain is not None else horizon_ns(plan)

    def open(self) -> dict[str, Any]:
        """Load the pack, then recover: the checkpoint, then the log after it. Synchronous."""
        state_dir = self.opts.state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        plan = compile_pack(load_pack(self.opts.rules, tests=False, region=self.opts.region), self.opts.region)
        ex = self._new_executor(plan)
        ckpt = None
        if self.checkpoint_path.exists():
            try:
                ckpt = json.loads(self.checkpoint_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise FraudRulesError(f"{self.checkpoint_path}: cannot read the checkpoint: {exc}") from None
            if not isinstance(ckpt, dict) or ckpt.get("kind") != CHECKPOINT_KIND:
                raise FraudRulesError(f"{self.checkpoint_path}: not a serve checkpoint")
        start = 0
        rebuilt = False
        if ckpt is not None:
            if ckpt["rule_pack"] == plan.digest:
                ex.load_state(ckpt["executor"])
                start = int(ckpt["seq"])
                self._ckpt_seq = start
            else:  # the pack changed since (a reload, then a restart): rebuild from the retained log
                rebuilt = True
                self.log(f"checkpoint {self.checkpoint_path} was taken with another rule pack: rebuilding the "
                         f"state from the records in the log")
        self._install(plan, ex)
        self._restore_answers(ckpt)
        segments: list[Segment] = []
        last: int | None = None  # the seq of the last entry read
        after = int(ckpt["seq"]) if ckpt is not None else 0

        def recovered() -> Iterator[tuple[int, dict]]:
            """The log in one pass, a segment in memory at a time: each entry's answer kept (those logged after
            the checkpoint) and its id retained, and the records after the checkpoint (all, when rebuilding)
            fed again."""
            nonlocal last
            for e in log_entries(state_dir, segments):
                seq = e["seq"]
                if last is None and seq > start and not rebuilt:
                    raise FraudRulesError(f"{state_dir}: the log starts at record {seq} but the checkpoint "
                                          f"ends at {start}: records are missing")
                last = seq
                if seq >= after and isinstance(e.get("ans"), dict):  # entries of older versions have none
                    self._keep_answer(e["rec"], e["ans"], 0)  # a retry gets the answer it was given
                self._retain(e["ts"], e["rec"])
                if rebuilt or seq >= start:
                    yield e["ts"], e["rec"]

        try:
            replayed = self._replay(ex, recovered())
        except FraudRulesError as exc:
            raise FraudRulesError(f"{exc}; refusing to start") from None
        self.next_seq = max(start, last + 1 if last is not None else 0)
        self.wal = WriteAheadLog(state_dir, segments, self.next_seq, window=self.opts.wal_window)
        info = {"rule_pack": plan.digest, "checkpoint_seq": start if ckpt is not None else None,
                "replayed": replayed, "next_seq": self.next_seq, "rebuilt": rebuilt}
        self.log(f"serve: state {state_dir}: checkpoint at record {info['checkpoint_seq']}, replayed "
                 f"{replayed:,} records from the log, next record {self.next_seq:,}")
        return info

    def _restore_answers(self, ckpt: dict | None) -> None:
        """The answers kept at the checkpoint (those logged after it are taken as the log is read: ``open``)."""
        kept = ckpt.get("answers", []) if ckpt is not None else []
        pairs = isinstance(kept, list) and all(
            isinstance(k, list) and len(k) == 2 and isinstance(k[0], dict) and isinstance(k[1], dict) for k in kept)
        if not pairs:
            raise FraudRulesError(f"{self.checkpoint_path}: its answers are not [record, answer] pairs")
        for rec, answer in kept:
            self._keep_answer(rec, answer, 0)

    def _replay(self, ex: StreamExecutor, items: Iterable[tuple[int, dict]]) -> int:
        """Feed records as they were fed at arrival, alerts discarded; how many. Runs of non-decreasing ts go
        together (same result as one by one at lateness 0); a record behind them goes alone (late)."""
        top = ex.max_ts
        run: list[dict] = []
        fed = 0
        for ts, rec in items:
            fed += 1
            if top is not None and ts < top:
                if run:
                    ex.feed_many(run)
                    run = []
                ex.feed(dict(rec))
                continue
            top = ts
            run.append(dict(rec))
            if len(run) >= REPLAY_CHUNK:
                ex.feed_many(run)
                run = []
        if run:
            ex.feed_many(run)
        ex.match_log = []
        self._late.clear()
        # a logged record whose evaluation raises now (it did not when it was decided: another engine)
        # is left out with the warning the executor gave, rather than keep the service from starting
        rejected = [r for _, r in self._rejected if not r.startswith(EVALUATION_ERROR)]
        self._rejected.clear()
        if rejected:
            raise FraudRulesError(f"a logged record was rejected on replay: {'; '.join(rejected[:3])}")
        return fed

    def _retain(self, ts: int, rec: dict) -> None:
        """A record applied: its id is refused for the retention (``check``), and a reload feeds it again (read
        back from the log by :meth:`_retained_records`, which picks the same records)."""
        if self.max_ts is not None and ts < self.max_ts:
            return  # late: it changed nothing but counters
        self.max_ts = ts
        key = retry_key(rec)
        self.retained.append((ts, key))
        self.retained_ids[key] = ts
        floor = ts - self.retain_ns
        r, ids = self.retained, self.retained_ids
        while r and r[0][0] < floor:
            key = r.popleft()[1]
            if ids.get(key, floor) < floor:  # not if a later record has the id (reused beyond the retention)
                del ids[key]

    def _retained_records(self) -> Iterator[tuple[int, dict]]:
        """(ts, record) of the records :meth:`_retain` holds, read back from the log, in their order: the
        entries not behind an earlier one (late) and at most the retention before the newest. A segment whose
        records are all older is not read. The log must be on disk (``WriteAheadLog.settle``)."""
        assert self.wal is not None
        if self.max_ts is None:
            return
        floor = self.max_ts - self.retain_ns
        top = None
        for e in entries_since(self.wal.segments, floor):
            ts = e["ts"]
            if top is not None and ts < top:
                continue  # answered late: applied to nothing
            top = ts
            if ts >= floor:
                yield ts, e["rec"]

    async def start(self) -> None:
        assert self.wal is not None
        self._ckpt_lock = asyncio.Lock()
        self._reload_lock = asyncio.Lock()
        self._admitting = asyncio.Event()
        self._admitting.set()
        self.wal.start()
        await self.checkpoint()  # recovery is complete: start the next log segment from here
        if self.opts.checkpoint_every > 0:
            self._task = asyncio.get_running_loop().create_task(self._periodic())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.checkpoint()
        assert self.wal is not None
        await self.wal.close()

    async def _periodic(self) -> None:
        while True:
            await asyncio.sleep(self.opts.checkpoint_every)
            if self.next_seq != self._ckpt_seq:
                try:
                    await self.checkpoint()
                except Exception as exc:  # keep serving; the log still holds everything
                    self.log(f"serve: checkpoint failed: {exc!r}")

    # -- requests --------------------------------------------------------------------------------
    async def admit(self, records: list) -> Checked:
        """:meth:`check`, once no reload is reading the log back: a request waits for it here, then is checked
        and (:meth:`submit`) decided by the pack it swapped in, with no wait between the two."""
        if self._admitting is not None and not self._admitting.is_set():
            await self._admitting.wait()
        return self.check(records)

    def check(self, records: list) -> Checked:
        """The records that would be rejected, with the reasons rejects.csv gives (``bad``: [{index, id, reason}]),
        and each good record as the intake typed it (``typed``), for :meth:`submit`.

        A record whose id (with its stream) an applied record within the retention has, the same record sent
        again (a client's retry after a lost answer, or twice in one request) or another one, is a duplicate id,
        as in ``score``: alert ids hash the record's id, and a retry applied again would count twice; unless its
        answer is still kept (``_answered``), which the retry then gets again. Whether it is a duplicate depends
        on event time alone (the earlier record at most the retention before it), not on the requests that
        carried them."""
        assert self.plan is not None and self.intake is not None
        schema = self.plan.schema
        bad = []
        kept = [self._answered(rec) for rec in records]
        typed: list[tuple[str, int, tuple] | None] = [None] * len(records)
        tss: list[int | None] = [None] * len(records)
        # the watermark and the ids as the request's records, applied in order, would leave them
        top, added = self.max_ts, {}
        for i, rec in enumerate(records):
            if kept[i] is not None:
                continue  # a retry of a record answered before: its answer again, nothing applied
            reason = None
            ts = None
            if not isinstance(rec, dict):
                reason = "not a JSON object"
            elif rec.get("stream") not in schema.streams:
                reason = f"unknown or missing stream {rec.get('stream')!r} (streams: {', '.join(schema.streams)})"
            elif (got := self.intake.convert(rec)) is not None:
                ts = got[1]
                typed[i] = got
            else:  # not clean for the scalar path: ask the vectorised one
                try:
                    rs = records_from_dicts([rec], schema, region=self.opts.region)
                except (FraudRulesError, TypeError, ValueError) as exc:
                    reason = str(exc)
                else:
                    if rs.rejects:
                        reason = rs.rejects[0].reason
                    else:
                        ts = _only_ts(rs)
            if ts is not None and (top is None or ts >= top):  # not late: it will be applied
                key = retry_key(rec)
                before = added.get(key, self.retained_ids.get(key))
                if before is not None and before >= ts - self.retain_ns:
                    reason = duplicate_id_reason(rec["stream"], rec.get("id"))
                else:
                    top = ts
                    added[key] = ts
            if reason is not None:
                typed[i] = None
                bad.append({"index": i, "id": rec.get("id") if isinstance(rec, dict) else None, "reason": reason})
            else:
                tss[i] = ts
        return Checked(records, bad, kept, tss, typed)

    def _answered(self, rec: Any) -> tuple[dict, int] | None:
        """The answer given to this very record (same stream, id and fields) and its log ticket, if kept."""
        if not isinstance(rec, dict):
            return None
        kept = self.answers.get(retry_key(rec))
        if kept is None or kept[0] != rec:
            return None
        return kept[1], kept[2]

    def _keep_answer(self, rec: dict, answer: dict, ticket: int) -> None:
        key = retry_key(rec)
        self.answers.pop(key, None)  # a reused id (another record): the newest answer is the one kept
        self.answers[key] = (rec, answer, ticket)
        while len(self.answers) > ANSWERS_KEPT:
            self.answers.popitem(last=False)

    def decide(self, checked: Checked) -> tuple[list[dict], int]:
        """Feed the checked records (none bad) one by one; their answers and the log ticket to wait for."""
        ex, plan, wal = self.ex, self.plan, self.wal
        assert ex is not None and plan is not None and wal is not None
        rules = plan.rules
        results = []
        ticket = 0
        m = self.metrics
        for rec, answered, ts, got in zip(checked.records, checked.kept, checked.ts, checked.typed):
            t0 = time.perf_counter()
            if answered is not None:  # a retry: check() let it through for this
                answer, kept_ticket = answered
                results.append({**answer, "replayed": True})
                ticket = max(ticket, kept_ticket)  # its first request may still wait for the fsync
                m.records[(rec["stream"], "replayed")] += 1
                continue
            self._late.clear()
            ex.match_log = []
            top = ex.max_ts
            alerts = ex.feed_converted(rec, got) if got is not None else ex.feed(rec)
            if self._rejected:
                (_, reason), = self._rejected
                self._rejected.clear()
                if not reason.startswith(EVALUATION_ERROR):  # check() let it through: a bug, never a silent drop
                    raise FraudRulesError(f"record {rec.get('id')!r} passed validation but the executor rejected it")
                # its evaluation raised: the executor rolled its effects back (guard.py); its ts must not
                # move the watermark either, as a replay of the log (which will not hold it) would not
                ex.max_ts = top
                m.rejects += 1
                m.records[(rec["stream"], "rejected")] += 1
                results.append({"id": rec.get("id"), "stream": rec["stream"], "status": "rejected",
                                "risk_score": None, "decision": None, "rules": [], "alerts": [], "reason": reason})
                continue
            seq = self.next_seq
            self.next_seq += 1
            stream = rec["stream"]
            if self._late:
                info = self._late[0]
                m.records[(stream, "late")] += 1
                m.late += 1
                results.append({"id": rec.get("id"), "stream": stream, "status": "late", "risk_score": None,
                                "decision": None, "rules": [], "alerts": [],
                                "reason": f"ts is {info['behind_s']:g}s behind the watermark"})
                ticket = wal.append(seq, ts, rec, results[-1])
                self._keep_answer(rec, results[-1], ticket)
                continue
            self._retain(ts, rec)
            matched = sorted({rules[i].id for _, i in ex.match_log})
            score = min(100, sum(rules[i].rule.score for i in {i for _, i in ex.match_log}
                                 if not rules[i].rule.shadow))
            decision = plan.policy.decide(score)
            m.records[(stream, "decided")] += 1
            m.decisions[decision] += 1
            for a in alerts:
                m.alerts[a["rule_id"]] += 1
            results.append({"id": rec.get("id"), "stream": stream, "status": "decided", "risk_score": score,
                            "decision": decision, "rules": matched, "alerts": alerts})
            ticket = wal.append(seq, ts, rec, results[-1])
            self._keep_answer(rec, results[-1], ticket)
            m.decide_seconds.observe(time.perf_counter() - t0)
        return results, ticket

    async def submit(self, records: list[dict] | Checked) -> list[dict]:
        """Decide records that :meth:`check` found good, then wait until they are on disk (the answer may only
        go out after that)."""
        checked = records if isinstance(records, Checked) else await self.admit(records)
        if checked.bad:
            raise FraudRulesError(f"{len(checked.bad)} records would be rejected: check() them first")
        results, ticket = self.decide(checked)
        assert self.wal is not None
        await self.wal.durable(ticket)
        return results

    # -- checkpoints and reloads ------------------------------------------------------------------
    async def checkpoint(self) -> None:
        assert self._ckpt_lock is not None and self.wal is not None and self.ex is not None
        async with self._ckpt_lock:
            seq = self.next_seq
            state = {"kind": CHECKPOINT_KIND, "seq": seq, "rule_pack": self.plan.digest,
                     "executor": self.ex.state_dict(),
                     "answers": [[rec, answer] for rec, answer, _ in self.answers.values()]}
            text = json.dumps(state, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
            self.wal.rotate(seq)  # records from here on go to a segment the checkpoint does not cover
            await self.wal.durable()
            await asyncio.to_thread(_write_atomic, self.checkpoint_path, text)
            self._ckpt_seq = seq
            self.metrics.checkpoints += 1
            floor = None if self.max_ts is None else self.max_ts - self.retain_ns
            self.wal.prune(seq, floor)

    async def reload(self) -> dict[str, Any]:
        """Load and check the pack again; swap only if it loads and its state rebuilds from the retained records.
        Never leaves the service without a pack. One reload at a time."""
        if self._reload_lock is None:
            self._reload_lock = asyncio.Lock()
        async with self._reload_lock:
            return await self._reload()

    async def _reload(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        assert self.plan is not None and self.wal is not None
        try:
            plan = compile_pack(load_pack(self.opts.rules, tests=False, region=self.opts.region), self.opts.region)
        except (RuleErrors, RuleError) as exc:
            return self._refused([str(e) for e in exc.errors] if isinstance(exc, RuleErrors) else [str(exc)])
        except (FraudRulesError, OSError) as exc:
            return self._refused([str(exc)])
        if plan.digest == self.plan.digest:
            return {"reloaded": False, "rule_pack": plan.digest, "errors": [], "unchanged": True}
        ex = self._new_executor(plan)
        if self._admitting is not None:
            self._admitting.clear()  # new requests wait (admit) while the log is read back
        try:
            try:
                await self.wal.settle()  # every record applied so far is on disk, none in flight
                # from here to the swap, no await: no request is decided in between, and none is lost
                replayed = self._replay(ex, self._retained_records())
            except (FraudRulesError, OSError) as exc:  # the log failed, or cannot be read back
                ex.close()  # never installed: nothing else holds it
                return self._refused([f"the new pack's state could not be rebuilt from the log: {exc}"])
            old = self.plan.digest
            self._install(plan, ex)
        finally:
            if self._admitting is not None:
                self._admitting.set()
        self.metrics.reloads["ok"] += 1
        resettle_heap()  # a frozen heap (the serve command's) would keep the old executor's cycles, and so its
        # durable-rules memory, which is freed when it is collected (durable.py: free_when_dropped)
        await self.checkpoint()
        secs = time.perf_counter() - t0
        self.log(f"serve: reloaded {self.opts.rules}: rule pack {old[:12]} -> {plan.digest[:12]}, "
                 f"{len(plan.rules)} rules, state rebuilt from {replayed:,} retained records in {secs:.2f}s")
        return {"reloaded": True, "rule_pack": plan.digest, "previous": old, "rules": len(plan.rules),
                "replayed": replayed, "seconds": round(secs, 3), "errors": []}

    def _refused(self, errors: list[str]) -> dict[str, Any]:
        """A reload that did not swap: counted, logged, and answered with why."""
        assert self.plan is not None
        self.metrics.reloads["failed"] += 1
        self.log("serve: reload refused, the running pack stays:\n  " + "\n  ".join(errors))
        return {"reloaded": False, "rule_pack": self.plan.digest, "errors": errors}

    def gauges(self) -> dict[str, tuple[str, float]]:
        st = self.ex.stats if self.ex is not None else {}
        return {
            "fraudrules_live_facts": ("Facts held in durable-rules.", st.get("live_facts", 0)),
            "fraudrules_state_entries": ("Python state entries (windows, is_new, unless, suppression).",
                                         st.get("state_entries", 0)),
            "fraudrules_retained_records": ("Records retained to rebuild state on a reload.", len(self.retained)),
            "fraudrules_wal_segments": ("Write-ahead log segment files.", len(self.wal.segments) if self.wal else 0),
            "fraudrules_next_seq": ("Records accepted since the state folder was created.", self.next_seq),
        }


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
