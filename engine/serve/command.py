"""``fraudrules serve``: the click command (FastAPI and uvicorn are imported only when it runs)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

EXIT_USAGE = 2


def _fail(msg: str) -> None:
    click.echo(f"error: {msg}", err=True)
    sys.exit(EXIT_USAGE)


def read_token(token_file: str | None) -> str:
    """The bearer token from --token-file, else $FRAUDRULES_TOKEN; refusing to run without one."""
    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            _fail(f"--token-file {token_file}: {exc.strerror}")
    else:
        token = os.environ.get("FRAUDRULES_TOKEN", "").strip()
    if not token:
        _fail("a bearer token is required: --token-file FILE or the FRAUDRULES_TOKEN environment variable")
    from .app import MIN_TOKEN

    if len(token) < MIN_TOKEN:
        _fail(f"the token must have at least {MIN_TOKEN} characters (e.g. openssl rand -hex 32)")
    return token


@click.command("serve")
@click.option("--rules", "rules", default="rules", show_default=True, type=click.Path(file_okay=False),
              help="Rule pack folder (reloaded on SIGHUP or POST /v1/admin/reload).")
@click.option("--state-dir", required=True, type=click.Path(file_okay=False),
              help="Folder for the write-ahead log and checkpoints; the service resumes from it.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option("--token-file", type=click.Path(dir_okay=False), help="File holding the bearer token "
              "(default: $FRAUDRULES_TOKEN). Required: the service does not start without a token.")
@click.option("--region", default="CN", show_default=True, help="Default region for numbers written without +.")
@click.option("--max-body", default=1 << 20, show_default=True, type=click.IntRange(1),
              help="Largest request body in bytes (413 beyond).")
@click.option("--max-batch", default=1000, show_default=True, type=click.IntRange(1),
              help="Most records in one request (413 beyond).")
@click.option("--checkpoint-every", default="60s", show_default=True,
              help="How often to checkpoint the executor state (the log after it is replayed on start).")
@click.option("--retain", default=None,
              help="Event time of records kept, in memory and in the log, to rebuild state on a rule reload and to "
                   "refuse a reused id (default: the pack's longest window, within or suppress; set it lower "
                   "for many records a day).")
@click.option("--wal-window", default="0s", show_default=True,
              help="How long a group commit waits for more requests before its fsync (requests that arrive "
                   "during an fsync are committed together by the next one in any case).")
@click.option("--shards", default=256, show_default=True, type=click.IntRange(1, 1024),
              help="durable-rules session ids to shard keys over (at most 1024).")
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]), help="uvicorn's log level.")
def serve(rules, state_dir, host, port, token_file, region, max_body, max_batch, checkpoint_every, retain,
          wal_window, shards, log_level) -> None:
    """Decide records over HTTP as they arrive: risk score, decision and alerts.

    POST /v1/records takes one record ({"stream": "payment", "id": ..., "ts": ...})
    or {"records": [...]}, and answers after the records are in the write-ahead
    log on disk, so an answered record survives kill -9. Every endpoint but
    /healthz needs "Authorization: Bearer TOKEN". See docs/streaming.md.

    \b
    Example:
      openssl rand -hex 32 > token && chmod 600 token
      fraudrules serve --rules rules/ --state-dir state/ --token-file token --port 8080
      curl -s -H "Authorization: Bearer $(cat token)" localhost:8080/v1/records \\
           -d '{"stream":"payment","id":"p1","ts":"2026-03-01T10:00:00+08:00","payer_account":"A1","amount":48000}'
      kill -HUP <pid>     # reload rules/; a pack that fails to load leaves the old one running
    """
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        _fail(f"fraudrules serve needs the 'serve' extra: pip install 'fraudrules[serve]' ({exc})")
    from ..errors import FraudRulesError, RuleError, RuleErrors
    from ..jobs.watch import parse_duration
    from ..runtime.heap import settle_heap
    from .app import run_server
    from .service import DecisionService, ServeOptions

    token = read_token(token_file)
    try:
        opts = ServeOptions(rules=Path(rules), state_dir=Path(state_dir), region=region, shards=shards,
                            checkpoint_every=parse_duration(checkpoint_every),
                            retain=parse_duration(retain) if retain else None,
                            wal_window=parse_duration(wal_window), max_batch=max_batch)
    except ValueError as exc:
        _fail(str(exc))
    service = DecisionService(opts, log=lambda msg: click.echo(msg, err=True))
    try:
        service.open()
    except (RuleErrors, RuleError) as exc:
        errors = exc.errors if isinstance(exc, RuleErrors) else [exc]
        for e in errors:
            click.echo(str(e), err=True)
        _fail(f"{len(errors)} error(s) in the rule pack")
    except FraudRulesError as exc:
        _fail(str(exc))
    click.echo(f"serve: listening on http://{host}:{port} (rule pack {service.plan.digest[:12]})", err=True)
    settle_heap()  # the pack, modules and recovered state live on: full collections skip them
    run_server(service, token, host, port, max_body=max_body, log_level=log_level)
