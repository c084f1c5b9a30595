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

Everything the file ``watch`` checks is checked here, by the same code
(:class:`~.watch.StreamRun`): a message that is not a record -- invalid
UTF-8 or JSON, nested too deeply, not an object, a value that does not fit
its field, a ``ts`` beyond ``--max-future``, an id its stream already had --
is a line in the rejects with its reason and its ``stream_seq``, and is
terminated (``term``: never redelivered) after the checkpoint that covers it;
a record whose evaluation raises is rejected the same way (the executor's
guard). The checkpoint has the file watch's header (kind, version, length,
SHA-256) and a checked schema, and a bad one is refused before any file is
touched; the state (through ``STATE.lock``) and every output are locked, so
a second consumer on them is refused.

Restart after ``kill -9``: the executor resumes from the checkpoint, each
output is cut back to its checkpointed length (checked: intact up to there),
and the durable consumer is re-created to deliver from the message after the
checkpointed stream sequence, in order (an unacknowledged message would
otherwise come back only after its ack wait, behind newer ones). Records
after the checkpoint are processed again and give the same alerts, lines and
rejects, because ``alert_id`` is deterministic; their alerts are published
again with the same ``Nats-Msg-Id``. A message redelivered while running
(its ack wait expired) is recognised by its stream sequence and skipped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import FraudRulesError, InputError
from ..runtime.alerts import alert_line
from ..runtime.plan import Plan
from .watch import DEFAULT_MAX_FUTURE, StreamRun, outputs_problem, read_checkpoint, write_checkpoint

STATE_KIND = "fraudrules-nats-checkpoint"
STATE_VERSION = 2  # 2: the header line with the body's SHA-256, outputs with lengths


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
    max_future: float | None = DEFAULT_MAX_FUTURE  # as watch --max-future; None: no bound


def _state_problem(state: Any) -> str | None:
    """The first field of a NATS checkpoint body that does not fit the schema, or None."""
    if not isinstance(state, dict):
        return "the body is not an object"
    for name in ("source", "subject", "durable"):
        if not isinstance(state.get(name), str):
            return f"{name}: expected text"
    seq = state.get("stream_seq")
    if type(seq) is not int or seq < 0:
        return "stream_seq: expected a count (an integer >= 0)"
    return outputs_problem(state)


class NatsWatchJob(StreamRun):
    position = "stream_seq"

    def __init__(self, plan: Plan, opts: NatsOptions, *, region: str = "CN", log: Callable[[str], None] | None = None):
        super().__init__(plan, out=opts.out, late=opts.late, rejects=opts.rejects, lateness=opts.lateness,
                         shards=opts.shards, region=region, max_future=opts.max_future, log=log)
        self.opts = opts
        self.last_seq = 0  # stream sequence of the last message fed
        self.written = self.published = self.duplicates = self.checkpoints = 0
        self.terminated = 0  # rejected messages, terminated instead of acknowledged
        self.resumed = False

    # -- checkpoints ------------------------------------------------------------------------------
    def _restore(self) -> dict[str, Any] | None:
        """Read and check the checkpoint (header, checksum, schema, subject and consumer); load nothing yet."""
        path = self.opts.state
        if not path.exists():
            return None
        state = read_checkpoint(path, STATE_KIND, STATE_VERSION, _state_problem)
        if (state["subject"], state["durable"]) != (self.opts.subject, self.opts.durable):
            raise FraudRulesError(f"{path}: the checkpoint was taken on subject {state['subject']!r} with "
                                  f"consumer {state['durable']!r}")
        return state

    def checkpoint(self) -> None:
        state = {"source": self.opts.url, "subject": self.opts.subject, "durable": self.opts.durable,
                 "stream_seq": self.last_seq, "outputs": self._outputs_state(),
                 "executor": self.executor.state_dict()}
        write_checkpoint(self.opts.state, state, STATE_KIND, STATE_VERSION)
        self.checkpoints += 1

    async def _emit(self, nc, alerts: list[dict]) -> None:
        """Append the new alerts (fsync), then publish them."""
        lines = [(a["alert_id"], alert_line(a)) for a in alerts]
        for _, line in lines:
            self.alerts.write(line)
        self.written += len(lines)
        if lines:
            self.alerts.flush(sync=True)
        self.late.flush()
        self.rejects.flush()
        if self.opts.alerts_subject:
            for aid, line in lines:
                await nc.publish(self.opts.alerts_subject, line.encode("utf-8"), headers={"Nats-Msg-Id": aid})
                self.published += 1

    def _decode(self, msgs: list, held: list) -> tuple[list[dict], dict[int, int]]:
        """The new messages' records (a redelivered one is skipped), each rejected one noted."""
        records: list[dict] = []
        lines_of: dict[int, int] = {}
        for m in msgs:
            seq = m.metadata.sequence.stream
            held.append((m, seq))
            if seq <= self.last_seq:  # redelivered, already in the state
                self.duplicates += 1
                continue
            self.last_seq = seq
            obj = self.decode(m.data, seq, blank_ok=False)
            if obj is not None:
                records.append(obj)
                lines_of[id(obj)] = seq
        return records, lines_of

    async def _settle(self, held: list) -> None:
        """After a checkpoint: acknowledge the messages it covers; terminate the rejected ones."""
        for m, seq in held:
            if seq in self.rejected_at:
                await m.term()
                self.terminated += 1
            else:
                await m.ack()
        self.rejected_at.clear()
        held.clear()

    # -- the loop ---------------------------------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        """Lock, check the checkpoint and the outputs, and only then truncate, load and consume."""
        t0 = time.perf_counter()
        opts = self.opts
        try:
            self._lock(opts.state)
            state = self._restore()
            if state is not None:
                self._check_outputs(state)
                self._load_executor(opts.state, state)
                self._truncate_outputs(state)
                self.last_seq = state["stream_seq"]
                self.resumed = True
            await self._consume()
        finally:
            self._release_locks()
        s = self.executor.stats
        return {"source": opts.url, "subject": opts.subject, "durable": opts.durable, "resumed": self.resumed,
                "stream_seq": self.last_seq, "records": s["records_in"], "processed": s["processed"],
                "rejected": s["rejected"], "late": s["late"], "alerts": s["alerts"], "alerts_written": self.written,
                "alerts_published": self.published, "redelivered_skipped": self.duplicates,
                "terminated": self.terminated, "checkpoints": self.checkpoints,
                "reconciles": s["records_in"] == s["processed"] + s["rejected"] + s["late"] + s["pending"],
                "seconds": round(time.perf_counter() - t0, 3), "out": str(opts.out)}

    async def _consume(self) -> None:
        import nats
        from nats.errors import NoServersError
        from nats.errors import TimeoutError as NatsTimeout
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
        from nats.js.errors import NotFoundError

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
                         f"{self.executor.stats['pending']:,} records pending")
            held: list = []  # (message, stream sequence) fed but not yet acknowledged
            last_ckpt = last_msg = time.monotonic()
            while not self.stop:
                try:
                    msgs = await sub.fetch(opts.batch, timeout=opts.poll)
                except (NatsTimeout, asyncio.TimeoutError):
                    msgs = []
                now = time.monotonic()
                if msgs:
                    last_msg = now
                    records, lines_of = self._decode(msgs, held)
                    await self._emit(nc, self.feed(records, lines_of))
                if held and (not msgs or now - last_ckpt >= opts.checkpoint_every):
                    self.checkpoint()  # alerts fsynced, then the state: only now may the messages go
                    last_ckpt = now
                    await self._settle(held)
                if opts.stop_when_idle is not None and not msgs and now - last_msg >= opts.stop_when_idle:
                    break
            # shutdown: checkpoint with the reorder buffer still pending, then flush it (as watch does)
            self.checkpoint()
            await self._settle(held)
            await self._emit(nc, self.executor.flush())
            await nc.flush(timeout=5)
        finally:
            await nc.close()
