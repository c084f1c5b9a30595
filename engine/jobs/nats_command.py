"""``fraudrules watch --source nats://...``: option checks and the run (kept out of cli.py)."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

import click

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _fail(msg: str) -> None:
    click.echo(f"error: {msg}", err=True)
    sys.exit(EXIT_USAGE)


def run_nats_watch(*, rules: str, out_file: str, lateness: str, region: str, rule_ids: tuple, late_file: str | None,
                   rejects_file: str | None, state_file: str | None, checkpoint_every: str, shards: int,
                   source: str | None, subject: str | None, durable: str | None, alerts_subject: str | None,
                   stop_when_idle: str | None, input_path: str, follow: bool, map_file: str | None,
                   summary_file: str | None, max_future: str = "1d") -> None:
    from ..errors import FraudRulesError, RuleError, RuleErrors
    from ..pack.loader import load_pack
    from ..runtime.heap import settle_heap
    from ..runtime.plan import compile_pack
    from .watch import parse_duration

    if not source or not source.startswith(("nats://", "tls://")):
        _fail("--source takes a NATS URL such as nats://127.0.0.1:4222")
    missing = [name for name, v in (("--subject", subject), ("--durable", durable), ("--state", state_file)) if not v]
    if missing:
        _fail(f"--source needs {', '.join(missing)}: acknowledgements wait for a checkpoint in --state")
    if input_path != "-" or follow or map_file:
        _fail("--source reads from NATS: give no INPUT, --follow or --map")
    try:
        import nats  # noqa: F401
    except ImportError as exc:
        _fail(f"the NATS source needs the 'nats' extra: pip install 'fraudrules[nats]' ({exc})")
    from .nats_source import NatsOptions, NatsWatchJob

    try:
        opts = NatsOptions(url=source, subject=subject, durable=durable, out=Path(out_file), state=Path(state_file),
                           alerts_subject=alerts_subject, lateness=parse_duration(lateness),
                           checkpoint_every=parse_duration(checkpoint_every), shards=shards,
                           stop_when_idle=parse_duration(stop_when_idle) if stop_when_idle else None,
                           late=Path(late_file) if late_file else None,
                           rejects=Path(rejects_file) if rejects_file else None,
                           max_future=None if max_future.strip().lower() == "off" else parse_duration(max_future))
    except ValueError as exc:
        _fail(str(exc))
    try:
        plan = compile_pack(load_pack(rules, tests=False, region=region), region, set(rule_ids) or None)
    except (RuleErrors, RuleError) as exc:
        for e in exc.errors if isinstance(exc, RuleErrors) else [exc]:
            click.echo(str(e), err=True)
        sys.exit(EXIT_USAGE)
    job = NatsWatchJob(plan, opts, region=region, log=lambda msg: click.echo(msg, err=True))
    settle_heap()  # the pack and modules live to the end: full collections skip them (runtime/heap.py)
    stopped_by: list[int] = []

    def stop(signum: int, frame: Any) -> None:
        stopped_by.append(signum)
        job.stop = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        summary = asyncio.run(job.run())
    except FraudRulesError as exc:
        _fail(str(exc))
    click.echo(json.dumps(summary), err=True)
    if summary_file:
        Path(summary_file).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if signal.SIGINT in stopped_by:  # a clean stop, but an interrupted run: 130, as the file watch
        sys.exit(EXIT_INTERRUPTED)
