"""``fraudrules watch --source nats://...``: records from NATS JetStream, alerts to a file and a subject.

Needs the optional extra ``nats`` (nats-py); imported only when used.

One durable pull consumer (``--durable NAME``) on the stream that holds
``--subject``. Each fetched batch is fed to the stream executor in stream
order; the alerts that fire are appended to ``--out`` and fsynced, then
published to ``--alerts-subject`` (with the ``Nats-Msg-Id`` header set to the
``alert_id``, so a JetStream stream on that subject drops a repeat). Messages
are acknowledged only after a checkpoint that covers them is on disk: the
alerts they caused fsynced first, then the executor's state (windows, the
reorder buffer) and the stream sequence reached, written atomically to
``--state``.

Restart after ``kill -9``: the executor resumes from the checkpoint and the
durable consumer is re-created to deliver from the message after the
checkpointed stream sequence, in order (an unacknowledged message would
otherwise come back only after its ack wait, behind newer ones). Records after
the checkpoint are processed again and give the same alerts, because
``alert_id`` is deterministic; the ids already in the alert file past the
checkpointed length are skipped, so the file never holds one twice. A message
redelivered while running (its ack wait expired) is recognised by its stream
sequence and skipped.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..errors import FraudRulesError, InputError
from ..executors.stream import StreamExecutor
from ..io.files import read_json_document, write_json_durably
from ..io.sinks import alert_line
from ..runtime.plan import Plan

STATE_KIND = "fraudrules-nats-checkpoint"


@dataclass
class NatsOptions:
    url: str  # nats://127.0.0.1:4222
    subject: str  # records.>
    durable: str
    out: Path
    state: Path
    alerts_subject: str | None = None
    lateness: float = 0.0
    checkpoint_every: float = 5.0  # seconds; acknowledgements wait for the next checkpoint
    batch: int = 500  # messages per fetch
    poll: float = 1.0  # seconds a fetch waits for messages
    stop_when_idle: float | None = None  # stop after this long without a message (draining, tests)
    shards: int = 256
    late: Path | None = None
    rejects: Path | None = None


def _append(path: Path | None, log: Callable[[str], None], what: str) -> Callable[[str], None]:
    if path is None:
        return lambda line: log(f"{what}: {line}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a", encoding="utf-8")

    def write(line: str) -> None:
        fh.write(line + "\n")
        fh.flush()

    return write


class NatsWatchJob:
    def __init__(self, plan: Plan, opts: NatsOptions, *, region: str = "CN", log: Callable[[str], None] | None = None):
        self.plan = plan
        self.opts = opts
        self.log = log or print
        self.stop = False
        self.late_out = _append(opts.late, self.log, "late")
        self.rejects_out = _append(opts.rejects, self.log, "rejected")
        self.executor = StreamExecutor(
            plan, lateness=opts.lateness, shards=opts.shards, region=region,
            on_late=lambda rec, info: self.late_out(json.dumps({"reason": "late", **info, "record": rec},
                                                               ensure_ascii=False, default=str)),
            on_reject=lambda rec, reason: self.rejects_out(json.dumps({"reason": reason, "record": rec},
                                                                      ensure_ascii=False, default=str)))
        self.last_seq = 0  # stream sequence of the last message fed
        self.seen: set[str] = set()  # alert ids in the file past the checkpointed length
        self.fh: IO[bytes] | None = None
        self.length = 0
        self.written = self.skipped = self.published = self.duplicates = self.checkpoints = 0
        self.resumed = False

    # -- checkpoints and the alert file ---------------------------------------------------------
    def _restore(self) -> int | None:
        path = self.opts.state
        if not path.exists():
            return None
        state = read_json_document(path, "kind", STATE_KIND, "NATS watch checkpoint")
        if (state.get("subject"), state.get("durable")) != (self.opts.subject, self.opts.durable):
            raise FraudRulesError(f"{path}: the checkpoint was taken on subject {state.get('subject')!r} with "
                                  f"consumer {state.get('durable')!r}")
        self.executor.load_state(state["executor"])
        self.last_seq = int(state["stream_seq"])
        self.resumed = True
        return int(state["alerts_bytes"])

    def _open_alerts(self, checkpointed: int | None) -> None:
        out = self.opts.out
        out.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(out, "a+b")
        size = self.fh.seek(0, os.SEEK_END)
        if checkpointed is not None and size < checkpointed:
            raise FraudRulesError(f"{out} is shorter ({size} bytes) than the checkpoint says ({checkpointed})")
        start = checkpointed or 0
        self.fh.seek(start)
        tail = self.fh.read()
        if tail and not tail.endswith(b"\n"):  # a line cut by the crash: it is written again below
            cut = tail.rfind(b"\n") + 1
            self.fh.truncate(start + cut)
            tail = tail[:cut]
        for line in tail.splitlines():
            self.seen.add(json.loads(line)["alert_id"])
        self.length = self.fh.seek(0, os.SEEK_END)

    def checkpoint(self) -> None:
        assert self.fh is not None
        self.fh.flush()
        os.fsync(self.fh.fileno())
        state = {"kind": STATE_KIND, "source": self.opts.url, "subject": self.opts.subject,
                 "durable": self.opts.durable, "stream_seq": self.last_seq, "alerts_bytes": self.length,
                 "executor": self.executor.state_dict()}
        write_json_durably(self.opts.state, state)
        self.checkpoints += 1

    async def _emit(self, nc, alerts: list[dict]) -> None:
        """Append (fsync) the new alerts, then publish them."""
        assert self.fh is not None
        lines = []
        for a in alerts:
            line = alert_line(a)
            if a["alert_id"] in self.seen:  # written before the crash: not again
                self.seen.discard(a["alert_id"])
                self.skipped += 1
            else:
                data = (line + "\n").encode("utf-8")
                self.fh.write(data)
                self.length += len(data)
                self.written += 1
            lines.append((a["alert_id"], line))
        if alerts:
            self.fh.flush()
            os.fsync(self.fh.fileno())
        if self.opts.alerts_subject:
            for aid, line in lines:
                await nc.publish(self.opts.alerts_subject, line.encode("utf-8"), headers={"Nats-Msg-Id": aid})
                self.published += 1

    # -- the loop ---------------------------------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        import nats
        from nats.errors import NoServersError
        from nats.errors import TimeoutError as NatsTimeout
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
        from nats.js.errors import NotFoundError

        t0 = time.perf_counter()
        self._open_alerts(self._restore())
        opts = self.opts
        try:
            nc = await nats.connect(opts.url, connect_timeout=5, max_reconnect_attempts=3, allow_reconnect=True)
        except (NoServersError, OSError, asyncio.TimeoutError) as exc:
            raise InputError(f"{opts.url}: cannot connect to NATS: {exc!r}") from None
        try:
            js = nc.jetstream()
            try:
                stream = await js.find_stream_name_by_subject(opts.subject)
            except NotFoundError:
                raise InputError(f"{opts.url}: no JetStream stream holds subject {opts.subject!r}") from None
            try:  # re-create the consumer at the checkpoint: in order, without waiting for ack timeouts
                await js.delete_consumer(stream, opts.durable)
            except NotFoundError:
                pass
            start = self.last_seq + 1
            config = ConsumerConfig(
                durable_name=opts.durable, filter_subject=opts.subject, ack_policy=AckPolicy.EXPLICIT,
                ack_wait=max(30.0, 4 * opts.checkpoint_every), max_ack_pending=-1,
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE if self.last_seq else DeliverPolicy.ALL,
                opt_start_seq=start if self.last_seq else None)
            await js.add_consumer(stream, config)
            sub = await js.pull_subscribe_bind(opts.durable, stream)
            if self.resumed:
                self.log(f"resumed from {opts.state} at stream sequence {self.last_seq:,}; "
                         f"{len(self.seen):,} alerts already in {opts.out} after it")
            held: list = []  # messages fed but not yet acknowledged
            last_ckpt = last_msg = time.monotonic()
            while not self.stop:
                try:
                    msgs = await sub.fetch(opts.batch, timeout=opts.poll)
                except (NatsTimeout, asyncio.TimeoutError):
                    msgs = []
                now = time.monotonic()
                if msgs:
                    last_msg = now
                    records = []
                    for m in msgs:
                        seq = m.metadata.sequence.stream
                        if seq <= self.last_seq:  # redelivered, already in the state
                            self.duplicates += 1
                            held.append(m)
                            continue
                        self.last_seq = seq
                        held.append(m)
                        try:
                            records.append(json.loads(m.data))
                        except ValueError as exc:
                            self.executor.counters["records_in"] += 1
                            self.executor.counters["rejected"] += 1
                            self.rejects_out(json.dumps({"reason": f"invalid JSON: {exc}", "stream_seq": seq,
                                                         "text": m.data[:200].decode("utf-8", "replace")}))
                    await self._emit(nc, self.executor.feed_many(records))
                if held and (not msgs or now - last_ckpt >= opts.checkpoint_every):
                    self.checkpoint()  # alerts fsynced, then the state: only now may the messages go
                    last_ckpt = now
                    for m in held:
                        await m.ack()
                    held = []
                if opts.stop_when_idle is not None and not msgs and now - last_msg >= opts.stop_when_idle:
                    break
            # shutdown: checkpoint with the reorder buffer still pending, then flush it (as watch does)
            self.checkpoint()
            for m in held:
                await m.ack()
            await self._emit(nc, self.executor.flush())
            await nc.flush(timeout=5)
        finally:
            await nc.close()
            if self.fh is not None:
                self.fh.close()
        s = self.executor.stats
        return {"source": opts.url, "subject": opts.subject, "durable": opts.durable, "resumed": self.resumed,
                "stream_seq": self.last_seq, "records": s["records_in"], "processed": s["processed"],
                "rejected": s["rejected"], "late": s["late"], "alerts": s["alerts"], "alerts_written": self.written,
                "alerts_already_written": self.skipped, "alerts_published": self.published,
                "redelivered_skipped": self.duplicates, "checkpoints": self.checkpoints,
                "seconds": round(time.perf_counter() - t0, 3), "out": str(opts.out)}
