"""fraudrules command line: a thin click layer over the library (the subpackages beside it).

Exit codes: 0 ok; 1 rule tests failed, or alerts found under --fail-on-alerts;
2 usage errors, rule errors, unreadable inputs, unwritable outputs and runs whose inputs
are mostly rejected; 3 an internal error (a bug: one line, the traceback with --debug);
130 interrupted (SIGINT).
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.errors import MarkupError
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import __version__
from .errors import FraudRulesError, RuleError, RuleErrors
from .runtime.heap import settle_heap

DEFAULT_RULES = "rules"
EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
MAX_REJECT_SHARE = 0.5  # an input rejecting more than this fails the run, unless --accept-rejects


def _max_reject_share(accept_rejects: bool) -> float | None:
    return None if accept_rejects else MAX_REJECT_SHARE


# C0 and C1 control characters (but newline and tab) and the bidirectional overrides: data that
# holds them could move the cursor, recolour or retitle the terminal, or reorder what is shown
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with control characters written as escapes (``\\x1b``), safe to print."""
    return _UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                            else f"\\u{ord(m.group()):04x}", text)


def printable_data(value: Any) -> Any:
    """A JSON value with every string made printable."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable_data(k): printable_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [printable_data(v) for v in value]
    return value


class _Console(Console):
    """A console for text that comes from data: control characters are escaped, and text that is
    not valid markup (an account named ``[/]``) prints as written instead of raising. Call sites
    still escape the data they put into markup, so that ``[red]`` in data is not a style."""

    def render_str(self, text: str, **kwargs: Any):  # type: ignore[override]
        text = printable(text)
        try:
            return super().render_str(text, **kwargs)
        except MarkupError:
            return super().render_str(text, **{**kwargs, "markup": False})


# emoji off: rich reads ":100:" and ":id:" as emoji codes, and a rule error at line 100 (file.yaml:100:7) or a
# timestamp written 00:id:00 in a message printed as a picture instead of its text
err = _Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
out = _Console(highlight=False, soft_wrap=True, emoji=False)
if not err.is_terminal:  # logs and CI: tables at full width, not folded at 80 columns
    err.width = 160
if not out.is_terminal:
    out.width = 160


def _fail_rules(exc: RuleErrors | RuleError) -> None:
    errors = exc.errors if isinstance(exc, RuleErrors) else [exc]
    for e in errors:
        err.print(str(e), markup=False)
    err.print(f"[red]{len(errors)} error(s) in the rule pack[/red]")
    sys.exit(EXIT_USAGE)


def _load_pack(rules: str, tests: bool = False, region: str = "CN"):
    """The pack, or exit 2 with its errors. ``tests``: read and check the rules' inline tests too (lint and test
    do; the commands that only evaluate rules skip them, most of a pack's YAML: pack.loader.load_pack).
    ``region``: the run's --region, in which phone literals are checked."""
    from .pack.loader import load_pack

    try:
        return load_pack(rules, tests=tests, region=region)
    except (RuleErrors, RuleError) as exc:
        _fail_rules(exc)


def _usage(message: str) -> None:
    """Exit 2 with one error line (no markup: rule ids and paths hold brackets)."""
    err.print(f"error: {message}", markup=False, highlight=False)
    sys.exit(EXIT_USAGE)


def _tuned(pack, sets: tuple[str, ...], lists: tuple[str, ...]):
    """The pack as --set and --list make it for this run."""
    if not sets and not lists:
        return pack
    from .pack.params import tune

    try:
        return tune(pack, sets, lists)
    except (RuleErrors, RuleError) as exc:
        _fail_rules(exc)
    except FraudRulesError as exc:
        _usage(str(exc))


def _check_rule_ids(pack, rule_ids: tuple[str, ...]) -> None:
    """--rule names rules that run: an unknown or deprecated id would silently run nothing."""
    import difflib

    known = {r.id: r for r in pack.rules}
    for rule_id in rule_ids:
        if rule_id not in known:
            close = difflib.get_close_matches(rule_id, list(known), n=1, cutoff=0.5)
            _usage(f"--rule {rule_id}: no such rule in the pack" + (f"; did you mean {close[0]}?" if close else ""))
        if known[rule_id].status == "deprecated":
            _usage(f"--rule {rule_id}: the rule is deprecated and does not run")


def tuning_options(fn):
    """--set and --list: tune rules for one run without editing them."""
    fn = click.option("--list", "list_files", multiple=True, metavar="NAME=FILE",
                      help="Use these values for list NAME this run (a list YAML, or TXT/CSV with one value a "
                           "line; repeatable).")(fn)
    return click.option("--set", "param_sets", multiple=True, metavar="RULE.PARAM=VALUE",
                        help="Override a rule's param this run, e.g. --set TF-MULE-001.min_payers=8 "
                             "(repeatable).")(fn)


class _Main(click.Group):
    """The command group, with the exit codes of crashes and interrupts (3 and 130).

    ``--debug`` anywhere before ``--`` (or FRAUDRULES_DEBUG=1) shows the traceback of an
    internal error; without it the error is one line."""

    debug = False

    def main(self, args: Any = None, *rest: Any, **kwargs: Any) -> Any:
        args = list(sys.argv[1:] if args is None else args)
        end = args.index("--") if "--" in args else len(args)
        _Main.debug = "--debug" in args[:end] or os.environ.get("FRAUDRULES_DEBUG", "") not in ("", "0")
        args = [a for i, a in enumerate(args) if i >= end or a != "--debug"]
        return super().main(args, *rest, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            err.print("interrupted", markup=False, highlight=False)
            sys.exit(EXIT_INTERRUPTED)
        except Exception as exc:  # a bug: say so in one line, not a traceback
            if _Main.debug:
                import traceback

                err.print(traceback.format_exc(), markup=False, highlight=False)
            detail = " ".join(str(exc).split())[:300]
            err.print(f"internal error: {type(exc).__name__}: {detail} (a bug in fraudrules "
                      f"{__version__}; run again with --debug for the traceback)", markup=False, highlight=False)
            sys.exit(EXIT_INTERNAL)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="fraudrules")
def main() -> None:
    """fraudrules: declarative rules that flag telecom and online fraud.

    --debug (anywhere on the line) shows the traceback of an internal error (exit 3).

    \b
    Example:
      fraudrules score samples/ --out out/
      fraudrules lint rules/
      fraudrules test rules/
    """


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--rules", "rules", default=DEFAULT_RULES, show_default=True, type=click.Path(file_okay=False),
              help="Rule pack folder.")
@click.option("--map", "map_file", type=click.Path(dir_okay=False, exists=True),
              help="Mapping file that reads a foreign format (e.g. samples/maps/paysim.yaml).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Write alerts, scored, rejects, summary here.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "parquet"]), default="jsonl", show_default=True)
@click.option("--region", default="CN", show_default=True, help="Default region for numbers written without +.")
@click.option("--rule", "rule_ids", multiple=True, help="Run only this rule id (repeatable).")
@click.option("--chunk-rows", default=1_000_000, show_default=True, type=click.IntRange(1), help="Rows per read chunk.")
@click.option("--history", "history", type=click.Path(file_okay=False),
              help="History store: continue the windows, is_new and suppression of earlier runs, and keep "
                   "this run's records for the next (created on first use; needs --out).")
@click.option("--replace-run", is_flag=True, help="With --history: replace the newest run, scored from these inputs.")
@click.option("--history-wait", default=0.0, show_default=True, type=click.FloatRange(0),
              help="Seconds to wait for another run that holds the history store.")
@click.option("--memory-rows", type=click.IntRange(1000),
              help="Most records held in memory; a larger input is spilled and scored in time-ordered chunks "
                   "[default: what 40% of the available memory holds, at 640 bytes a record after 256 MiB for the "
                   "process, at least 500,000].")
@click.option("--spill-dir", type=click.Path(file_okay=False),
              help="Where chunked scoring spills records [default: the system's temporary folder].")
@click.option("--jobs", "jobs", type=click.IntRange(1),
              help="Rules evaluated at once, in worker processes (a run of fewer than 250,000 records keeps "
                   "them in one); the outputs are the same for any number "
                   "[default: every core, no more than there are rules].")
@click.option("--engine", type=click.Choice(["batch", "spark"]), default="batch", show_default=True,
              help="spark: score on Apache Spark (pip install 'fraudrules[spark]'); Parquet datasets in --out "
                   "(docs/spark.md).")
@click.option("--spark-master", help="With --engine spark: the master URL [default: spark-submit's, else local[*]].")
@click.option("--fail-on-alerts", is_flag=True, help="Exit 1 when any non-shadow alert fires (for CI gates).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar, no alert lines; just the summary.")
@click.option("--accept-rejects", is_flag=True,
              help="Score inputs even when more than half of their records are rejected (else exit 2; an input "
                   "past 1,000,000 rejects, most of what it read, stops the read there).")
@click.option("--allow-empty", is_flag=True,
              help="Exit 0 when the run scores no record: every input empty, or each record late or left out by "
                   "the mapping (else exit 2, and the history store does not change).")
@tuning_options
def score(inputs, rules, map_file, out_dir, fmt, region, rule_ids, chunk_rows, history, replace_run, history_wait,
          memory_rows, spill_dir, jobs, fail_on_alerts, quiet, accept_rejects, allow_empty, param_sets, list_files,
          engine="batch", spark_master=None) -> None:
    """Score record files: every record gets a risk score and a decision.

    INPUTS are files given as STREAM=PATH, files named after their stream
    (call.csv, payment.parquet, sms.jsonl, call_2026-03-01.csv, ...), or
    folders of such files (a data file named after no stream is skipped, with
    a warning).

    \b
    Examples:
      fraudrules score samples/ --out out/
      fraudrules score call=cdr_2026-03-01.csv payment=pay.parquet --out out/ --format parquet
      fraudrules score ../shared/data/paysim/paysim_sample.csv --map samples/maps/paysim.yaml --out out/
      fraudrules score day1/ --history hist/ --out out1/ && fraudrules score day2/ --history hist/ --out out2/
      fraudrules score samples/ --set TF-MULE-001.min_payers=8 --list reported_accounts=today.txt
    """
    from .runtime.heap import arrow_pool_returns_pages, one_c_arena, pause_collection, resume_collection

    arrow_pool_returns_pages()  # before pyarrow loads (io.spill imports it)
    one_c_arena()  # before the read's thread starts
    from .io.spill import auto_memory_rows

    memory_rows = memory_rows or auto_memory_rows()
    if engine == "batch":
        pause_collection()  # to the settle: the start-up's objects live to the end (runtime/heap.py)
    reading = _start_read(rules, inputs, map_file, region, chunk_rows, memory_rows, spill_dir, accept_rejects) \
        if engine == "batch" else None
    try:
        _score(reading, inputs, rules, map_file, out_dir, fmt, region, rule_ids, chunk_rows, history, replace_run,
               history_wait, memory_rows, spill_dir, jobs, fail_on_alerts, quiet, accept_rejects, allow_empty,
               param_sets, list_files, engine, spark_master)
    finally:  # a run that stopped before scoring (a bad rule, a usage error): the read stops too
        if reading is not None:
            reading.cancel()
        resume_collection()


def _start_read(rules: str, inputs: tuple[str, ...], map_file: str | None, region: str, chunk_rows: int,
                memory_rows: int, spill_dir: str | None, accept_rejects: bool):
    """The inputs' read, started before the rule pack loads (io.records.start_read); None when the
    streams, mapping or inputs do not load: the run then reports that in its usual order."""
    # only what reading needs: the read runs while the rest of the engine imports and the pack loads
    # (the mapping's module only for --map: it brings the expression parser, ~0.15 s before the read starts)
    from .io.records import parse_inputs, start_read
    from .pack.streams import load_schema

    try:
        schema = load_schema(Path(rules) / "streams.yaml")
        mapping = None
        if map_file:
            from .io.mapping import load_mapping

            mapping = load_mapping(map_file, schema)
        specs = parse_inputs(list(inputs), schema, mapping=mapping)
    except (FraudRulesError, OSError):
        return None
    return start_read(specs, schema, mapping=mapping, region=region, chunk_rows=chunk_rows, memory_rows=memory_rows,
                      spill_dir=Path(spill_dir) if spill_dir else None,
                      max_reject_share=_max_reject_share(accept_rejects))


def _score(reading, inputs, rules, map_file, out_dir, fmt, region, rule_ids, chunk_rows, history, replace_run,
           history_wait, memory_rows, spill_dir, jobs, fail_on_alerts, quiet, accept_rejects, allow_empty, param_sets,
           list_files, engine, spark_master) -> None:
    from .io.mapping import load_mapping
    from .io.records import parse_inputs, skipped_in_folders
    from .jobs.score import score_job, summary
    from .runtime.alerts import alert_fields

    pack = _tuned(_load_pack(rules, region=region), param_sets, list_files)
    _check_rule_ids(pack, rule_ids)
    if reading is not None and reading.schema == pack.schema:  # what the read started from holds
        mapping, specs = reading.mapping, reading.inputs
    else:
        try:
            mapping = load_mapping(map_file, pack.schema) if map_file else None
            specs = parse_inputs(list(inputs), pack.schema, mapping=mapping)
        except (RuleErrors, RuleError) as exc:
            _fail_rules(exc)
        except FraudRulesError as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}")
            sys.exit(EXIT_USAGE)
    if history and not out_dir:
        err.print("[red]error:[/red] --history needs --out: a run commits to the history only after its outputs")
        sys.exit(EXIT_USAGE)
    for skipped in skipped_in_folders(list(inputs), specs):  # data a folder holds that this run does not score
        err.print(f"[yellow]warning:[/yellow] {escape(str(skipped))} is not read: its name is no stream's (call.csv, "
                  f"call_2026-03-01.csv; or give it as STREAM=PATH)")
    if engine == "spark":
        _score_spark(pack, specs, mapping, out_dir, fmt, region, rule_ids, chunk_rows, spark_master,
                     fail_on_alerts, accept_rejects, allow_empty, history=Path(history) if history else None,
                     replace_run=replace_run, wait=history_wait)
    # what is loaded by now (modules, grammar, the pack: ~175k objects) lives to the end: the full
    # collections of a run (one per input read, at least) then skip it, ~0.3 s CPU at 1M records
    settle_heap(collect=False)
    total_bytes = sum(s.path.stat().st_size for s in specs if s.path.exists())
    show_progress = not quiet and total_bytes > 5_000_000 and err.is_terminal
    started = time.perf_counter()

    def run(report):
        return score_job(rules, specs, Path(out_dir) if out_dir else None, fmt, mapping=mapping, region=region,
                         chunk_rows=chunk_rows, rule_ids=set(rule_ids) or None, pack=pack, progress=report,
                         history=Path(history) if history else None, replace_run=replace_run, wait=history_wait,
                         memory_rows=memory_rows, spill_dir=Path(spill_dir) if spill_dir else None, jobs=jobs,
                         started=reading,
                         max_reject_share=_max_reject_share(accept_rejects), allow_empty=allow_empty)

    try:
        if show_progress:
            with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,}"),
                          TimeElapsedColumn(), console=err, transient=True) as progress:
                task = progress.add_task("reading rows", total=None)

                def report(phase: str, done: int, total: int | None) -> None:
                    label = {"read": "reading rows", "chunks": "scoring chunks"}.get(phase, "evaluating rules")
                    progress.update(task, description=label, completed=done, total=total)

                result, paths = run(report)
        else:
            result, paths = run(None)
    except (RuleErrors, RuleError) as exc:
        _fail_rules(exc)
    except FraudRulesError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        sys.exit(EXIT_USAGE)
    elapsed = time.perf_counter() - started  # read, evaluate and write: the whole job
    if not quiet:
        for a in result.alerts[:50]:
            tag = "shadow " if a["shadow"] else ""
            out.print(f"[bold]{a['severity']:>8}[/bold] {tag}{a['rule_id']} {a['ts']} {escape(a['key'])}: "
                      f"{escape(a['explain'])}", markup=True, highlight=False)
        if len(result.alerts) > 50:
            out.print(f"... and {len(result.alerts) - 50} more alerts" + (f" in {paths['alerts']}" if out_dir else ""))
    _print_summary(summary(result), elapsed)
    for stats in result.records.inputs:  # the run scored others' records; this one held none
        if not stats.read:
            err.print(f"[yellow]warning:[/yellow] {escape(stats.path)} holds no records")
    if result.late:
        err.print(f"[yellow]warning:[/yellow] {len(result.late):,} records are at or before the history's "
                  f"high-water mark and were not scored; they are listed in {paths['late']}")
    if out_dir:
        err.print(f"wrote {escape(', '.join(str(p) for p in paths.values()))}")
    live = any(not shadow for shadow, in alert_fields(result.alerts, "shadow"))
    sys.exit(EXIT_FINDINGS if fail_on_alerts and live else EXIT_OK)


def _score_spark(pack, specs, mapping, out_dir, fmt, region, rule_ids, chunk_rows, master,
                 fail_on_alerts, accept_rejects, allow_empty, **history) -> None:
    """``score --engine spark`` (docs/spark.md); pyspark is imported only here. Always exits."""
    import importlib.util

    if not out_dir:
        err.print("[red]error:[/red] --engine spark needs --out: its results are Parquet datasets")
        sys.exit(EXIT_USAGE)
    source = click.get_current_context().get_parameter_source("fmt")
    if source is not None and source != click.core.ParameterSource.DEFAULT and fmt != "parquet":
        err.print(f"[red]error:[/red] --engine spark writes Parquet datasets, not --format {fmt}")
        sys.exit(EXIT_USAGE)
    if importlib.util.find_spec("pyspark") is None:
        err.print("[red]error:[/red] --engine spark needs pyspark: " + escape("pip install 'fraudrules[spark]'"))
        sys.exit(EXIT_USAGE)
    from .jobs.score import summary
    from .jobs.spark_job import score_spark, spark_session

    started = time.perf_counter()
    spark = spark_session(master)
    try:
        result, paths = score_spark(spark, pack, specs, out_dir, mapping=mapping, region=region,
                                    rule_ids=set(rule_ids) or None, chunk_rows=chunk_rows,
                                    max_reject_share=_max_reject_share(accept_rejects), allow_empty=allow_empty,
                                    **history)
        _print_summary(summary(result), time.perf_counter() - started)
        err.print(f"wrote {escape(', '.join(paths.values()))}")
    except (RuleErrors, RuleError) as exc:
        _fail_rules(exc)
    except FraudRulesError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        sys.exit(EXIT_USAGE)
    finally:
        spark.stop()
    shadow = {rp.id for rp in result.plan.rules if rp.rule.shadow}
    live = [a for a in result.alerts if a["rule_id"] not in shadow]
    sys.exit(EXIT_FINDINGS if fail_on_alerts and live else EXIT_OK)


def _print_summary(s: dict, elapsed: float) -> None:
    t = Table(title="inputs", title_justify="left")
    for col in ("input", "stream", "read", "scored", "rejected"):
        t.add_column(col, justify="right" if col in ("read", "scored", "rejected") else "left")
    for i in s["inputs"]:
        t.add_row(escape(i["path"]), i["stream"], f"{i['read']:,}", f"{i['scored']:,}", f"{i['rejected']:,}")
    err.print(t)
    t = Table(title="alerts by rule", title_justify="left")
    for col in ("rule", "alerts", "suppressed"):
        t.add_column(col, justify="left" if col == "rule" else "right")
    for rule in s["matches_by_rule"]:  # every rule that ran: a quiet rule is news too
        t.add_row(rule, f"{s['alerts_by_rule'].get(rule, 0):,}", f"{s['suppressed_by_rule'].get(rule, 0):,}")
    err.print(t)
    sev = ", ".join(f"{k} {v}" for k, v in s["alerts_by_severity"].items()) or "none"
    dec = ", ".join(f"{k} {v:,}" for k, v in s["decisions"].items()) or "none"
    read = s["records"]["read"]
    rate = read / elapsed if elapsed > 0 else 0.0
    err.print(f"{read:,} records ({s['records']['rejected']:,} rejected) in {elapsed:.2f}s = {rate:,.0f} records/s; "
              f"{s['alerts']:,} alerts ({sev}); decisions: {dec}")


def _pack_as_path(paths: tuple[str, ...], rules: str) -> tuple[tuple[str, ...], str]:
    """``lint DIR`` and ``test DIR`` where DIR is a whole pack (it holds streams.yaml) and --rules is not given:
    DIR is the pack, as ``--rules DIR`` (else the default ./rules would be the pack, and DIR not in it)."""
    source = click.get_current_context().get_parameter_source("rules")
    if len(paths) == 1 and source == click.core.ParameterSource.DEFAULT and (Path(paths[0]) / "streams.yaml").is_file():
        return (), paths[0]
    return paths, rules


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.option("--rules", "rules", default=DEFAULT_RULES, show_default=True, type=click.Path(file_okay=False),
              help="Rule pack folder (streams, lists, macros) the files belong to.")
@click.option("--region", default="CN", show_default=True,
              help="The region score/watch/serve will read numbers written without + in: phone literals are "
                   "checked as they read them.")
def lint(paths, rules, region) -> None:
    """Check rule files: schema, types, lists, durations, regexes, templates.

    Errors are printed as file:line:col: message. Exit 2 on any error.

    \b
    Examples:
      fraudrules lint                    # the whole pack in rules/
      fraudrules lint rules/payments/structuring.yaml
      fraudrules lint bench/packs/other/ # another pack: a folder that holds streams.yaml
      fraudrules lint --region US        # a pack run with --region US
    """
    from .pack.lint import lint_and_load

    paths, rules = _pack_as_path(paths, rules)

    findings, pack = lint_and_load(Path(rules), [Path(p) for p in paths], region)
    for f in findings:
        err.print(str(f), markup=False)
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        err.print(f"[red]{len(errors)} error(s)[/red], {len(findings) - len(errors)} warning(s)")
        sys.exit(EXIT_USAGE)
    err.print(f"[green]ok[/green] ({len(findings)} warning(s))")
    if not paths and pack is not None:  # the whole pack: what a history store (score --history) keeps for it
        from .runtime.plan import compile_pack
        from .store.horizon import plan_horizon

        err.print("history horizon (what score --history keeps per stream):")
        for line in plan_horizon(compile_pack(pack, region)).describe():
            err.print(f"  {line}", markup=False, highlight=False)


@main.command("test")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.option("--rules", "rules", default=DEFAULT_RULES, show_default=True, type=click.Path(file_okay=False))
@click.option("--executor", type=click.Choice(["batch", "stream", "both"]), default="both", show_default=True,
              help="Which executor(s) run the cases; with both, any difference between them fails too.")
@click.option("--region", default="CN", show_default=True)
@tuning_options
def test_cmd(paths, rules, executor, region, param_sets, list_files) -> None:
    """Run the inline tests of rules; print each failing case.

    \b
    Examples:
      fraudrules test
      fraudrules test rules/telecom/wangiri.yaml
      fraudrules test rules/payments/mule_fan_in.yaml --set TF-MULE-001.min_payers=8
      fraudrules test ../rules-v1/        # another pack: a folder that holds streams.yaml
    """
    from .jobs.rule_tests import EXECUTORS, run_rule_tests

    paths, rules = _pack_as_path(paths, rules)

    root = Path(rules).resolve()
    for p in paths:  # a file outside the pack would select no rule, and 0 rules would pass
        if root != Path(p).resolve() and root not in Path(p).resolve().parents:
            _usage(f"{p} is not in the rule pack {rules}/: test runs rules of the pack given by --rules "
                   f"(e.g. fraudrules test {p} --rules DIR, where DIR holds streams.yaml)")
    pack = _tuned(_load_pack(rules, tests=True, region=region), param_sets, list_files)
    wanted = {str(Path(p).resolve()) for p in paths}
    selected = [r for r in pack.rules
                if not wanted or str(Path(r.path).resolve()) in wanted
                or any(str(Path(r.path).resolve()).startswith(w.rstrip("/") + "/") for w in wanted)]
    if not selected:
        _usage(f"no rules in {', '.join(paths) or rules}: rule files are the YAML files of the pack other than "
               "streams.yaml, policy.yaml, macros.yaml and lists/")
    names = ["batch", "stream"] if executor == "both" else [executor]
    missing = [n for n in names if n not in EXECUTORS]
    if missing:
        err.print(f"[red]error:[/red] executor {', '.join(missing)} is not available")
        sys.exit(EXIT_USAGE)
    report = run_rule_tests(pack, selected, names, region)
    for r in report.failed:
        err.print(f"FAIL {r.case.loc} {r.rule.id} [{r.executor}] {r.case.name!r}", markup=False)
        if r.error:
            err.print(f"     error: {r.error}", markup=False)
        else:
            err.print(f"     expected: {r.expected}\n     actual:   {r.actual}", markup=False)
            if r.missing:
                err.print(f"     missing:    {r.missing}", markup=False)
            if r.unexpected:
                err.print(f"     unexpected: {r.unexpected}", markup=False)
    for a, b in report.disagreements:
        err.print(f"DISAGREE {a.case.loc} {a.rule.id} {a.case.name!r}: [{a.executor}] {a.actual} "
                  f"!= [{b.executor}] {b.actual}", markup=False)
    n, failed = len(report.results), len(report.failed)
    rules_n = len({r.rule.id for r in report.results})
    disagree = len(report.disagreements)
    untested = sorted(r.id for r in selected if not r.tests)
    if not n:
        _usage(f"no test cases ran: {', '.join(untested)} {'has' if len(untested) == 1 else 'have'} no tests: "
               "(see docs/rules.md, section 5)")
    if untested and paths:
        err.print(f"note: no tests in {', '.join(untested)}", markup=False)
    err.print(f"{n - failed} passed, {failed} failed" + (f", {disagree} disagreement(s)" if disagree else "")
              + f" ({rules_n} rules, executors: {', '.join(names)})")
    sys.exit(EXIT_FINDINGS if failed or disagree else EXIT_OK)



@main.command()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder to write into.")
@click.option("--customers", default=2000, show_default=True, type=click.IntRange(60), help="Number of customers.")
@click.option("--days", default=7, show_default=True, type=click.IntRange(1), help="Days of activity.")
@click.option("--seed", default=1, show_default=True, type=int, help="Random seed: same seed, same bytes.")
@click.option("--start", default="2026-03-01", show_default=True, callback=lambda c, p, v: _iso_date(v),
              help="First day (local time, UTC+8), as YYYY-MM-DD.")
@click.option("--case-rate", default=0.001, show_default=True, type=click.FloatRange(0, 1),
              callback=lambda c, p, v: _finite(v),
              help="Injected cases per typology, as a share of customers (at least 3 each).")
@click.option("--lookalike-rate", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              callback=lambda c, p, v: _finite(v),
              help="Hard negatives: ordinary behaviour that looks like fraud (payroll, merchants, families sharing "
                   "a device, travellers, call centres), per kind as a share of customers (at least 2 each). "
                   "Also writes lookalikes.csv, collection_accounts.txt and enterprise_lines.txt.")
def generate(out_dir, customers, days, seed, start, case_rate, lookalike_rate) -> None:
    """Generate labelled synthetic calls, SMS, SIM events and payments.

    Writes call.csv, sms.csv, sim_event.csv, payment.csv and labels.csv
    (stream, record_id, typology, case_id), deterministic for a seed.

    \b
    Example:
      fraudrules generate --out data/ --customers 20000 --days 7 --seed 1
      fraudrules generate --out hard/ --customers 20000 --lookalike-rate 0.002   # with hard negatives
    """
    from .synth.generate import generate as run_generate

    started = time.perf_counter()
    counts = run_generate(Path(out_dir), customers=customers, days=days, seed=seed, start=start, case_rate=case_rate,
                          lookalike_rate=lookalike_rate)
    t = Table(title=f"generated in {out_dir}", title_justify="left")
    t.add_column("file")
    t.add_column("rows", justify="right")
    for name, n in counts.items():
        t.add_row(name, f"{n:,}")
    err.print(t)
    err.print(f"done in {time.perf_counter() - started:.1f}s")


@main.command()
@click.argument("inputs", nargs=-1)
@click.option("--rules", "rules", default=DEFAULT_RULES, show_default=True, type=click.Path(file_okay=False))
@click.option("--expected", default="samples/expected/alerts.jsonl", show_default=True,
              type=click.Path(dir_okay=False), help="The golden alert file.")
@click.option("--update", is_flag=True, help="Rewrite the golden file with the current alerts.")
@click.option("--region", default="CN", show_default=True)
@click.option("--against", "against", metavar="REV|DIR",
              help="Compare with the alerts of another pack on the same inputs instead of the golden file: a "
                   "folder, or a git revision of the --rules folder (HEAD, main~3, a tag).")
def regress(inputs, rules, expected, update, region, against) -> None:
    """Compare current alerts on sample data with the golden alert file.

    Prints the difference by rule (added, removed, changed alerts) and exits 1
    on any difference, so a CI job catches every changed rule.

    \b
    Examples:
      fraudrules regress                  # samples/ against samples/expected/alerts.jsonl
      fraudrules regress --update         # accept the current alerts as golden
      fraudrules regress --against HEAD   # what the uncommitted rule edits change
      fraudrules regress data/ --against ../rules-v1/
    """
    from .io.records import parse_inputs
    from .io.sinks import write_alerts
    from .jobs.regress import compare, describe, read_alerts
    from .jobs.score import score as run_score

    if against and update:
        _usage("--update rewrites the golden file; it does not combine with --against")
    pack = _load_pack(rules, region=region)
    try:
        specs = parse_inputs(list(inputs) or ["samples"], pack.schema)
        result = run_score(rules, specs, region=region, pack=pack)
    except FraudRulesError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        sys.exit(EXIT_USAGE)
    if against:
        _regress_against(against, rules, list(inputs) or ["samples"], region, result.alerts)
        return
    golden = Path(expected)
    if update:
        write_alerts(result.alerts, golden, "jsonl")
        err.print(f"wrote {len(result.alerts)} alerts to {escape(str(golden))}")
        return
    if not golden.exists():
        err.print(f"[red]error:[/red] no golden file {escape(str(golden))}; create it with --update")
        sys.exit(EXIT_USAGE)
    reg = compare(read_alerts(golden), result.alerts)
    if reg.pack_changed:
        err.print("note: the rule pack changed since the golden file was written (hash differs)")
    for line in describe(reg):
        out.print(line, markup=False, highlight=False)
    if reg.clean:
        err.print(f"[green]no difference[/green]: {reg.actual_count} alerts match {escape(str(golden))}")
        return
    err.print(f"[red]alerts differ[/red] from {escape(str(golden))} ({reg.expected_count} expected, "
              f"{reg.actual_count} now); review, then run with --update to accept")
    sys.exit(EXIT_FINDINGS)


def _regress_against(against: str, rules: str, inputs: list[str], region: str, alerts: list) -> None:
    import tempfile

    from .io.records import parse_inputs
    from .jobs.regress import compare, describe, pack_at
    from .jobs.score import score as run_score

    with tempfile.TemporaryDirectory(prefix="fraudrules-against-") as tmp:
        try:
            old_dir = pack_at(against, Path(rules), Path(tmp))
        except FraudRulesError as exc:
            _usage(str(exc))
        old = _load_pack(str(old_dir), region=region)
        try:
            before = run_score(old_dir, parse_inputs(inputs, old.schema), region=region, pack=old).alerts
        except FraudRulesError as exc:
            _usage(str(exc))
    reg = compare(before, alerts)
    for line in describe(reg):
        out.print(line, markup=False, highlight=False)
    if reg.clean:
        err.print(f"no difference: {reg.actual_count} alerts, the same as with the pack at {against}",
                  markup=False, highlight=False)
        return
    err.print(f"alerts differ from the pack at {against} ({reg.expected_count} then, {reg.actual_count} now)",
              markup=False, highlight=False)
    sys.exit(EXIT_FINDINGS)


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--labels", "labels_file", required=True, type=click.Path(dir_okay=False, exists=True),
              help="CSV: stream,record_id,typology[,case_id] or key,typology[,case_id].")
@click.option("--rules", "rules", default=DEFAULT_RULES, show_default=True, type=click.Path(file_okay=False))
@click.option("--baseline", type=click.Path(file_okay=False, exists=True), help="Another rule pack to compare with.")
@click.option("--map", "map_file", type=click.Path(dir_okay=False, exists=True), help="Mapping file for the inputs.")
@click.option("--region", default="CN", show_default=True)
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Also write the report as JSON.")
@click.option("--sweep", "sweep_spec", metavar="RULE.PARAM=LO..HI",
              help="Backtest one rule at each value of a param (3..8, 3..8..2, or 10m,30m,1h): precision, "
                   "recall and alert volume per value.")
@tuning_options
def backtest(inputs, labels_file, rules, baseline, map_file, region, json_out, sweep_spec, param_sets,
             list_files) -> None:
    """Measure rules against labelled data: precision per rule, recall per typology.

    \b
    Examples:
      fraudrules generate --out data/ --customers 20000 --days 7
      fraudrules backtest data/ --labels data/labels.csv
      fraudrules backtest data/ --labels data/labels.csv --baseline ../rules-v1/
      fraudrules backtest data/ --labels data/labels.csv --sweep TF-MULE-001.min_payers=3..8 --json bt.json
    """
    from .io.mapping import load_mapping
    from .io.records import parse_inputs, read_inputs
    from .jobs.backtest import backtest as run_backtest
    from .jobs.backtest import check_labels, load_labels
    from .jobs.score import evaluate
    from .runtime.plan import compile_pack

    packs = {"current": _tuned(_load_pack(rules, region=region), param_sets, list_files)}
    if baseline:
        base = _load_pack(baseline, region=region)
        # --list describes the data, so it holds for both packs (where the baseline has that list);
        # --set tunes the current pack's rules only
        shared_lists = tuple(spec for spec in list_files if spec.partition("=")[0].strip() in base.lists)
        packs["baseline"] = _tuned(base, (), shared_lists)
    sweep_target = None
    if sweep_spec:
        from .pack.params import parse_sweep, with_params

        try:
            sweep_target = parse_sweep(packs["current"], sweep_spec)
            for value in sweep_target[2]:  # every value must make a valid rule before any is run
                with_params(packs["current"], {(sweep_target[0], sweep_target[1]): value})
        except (RuleErrors, RuleError) as exc:
            _fail_rules(exc)
        except FraudRulesError as exc:
            _usage(str(exc))
    try:
        labels = load_labels(labels_file)
        schema = packs["current"].schema
        mapping = load_mapping(map_file, schema) if map_file else None
        records = read_inputs(parse_inputs(list(inputs), schema, mapping=mapping), schema, region=region,
                              mapping=mapping)
        key_fields: dict[str, set[str]] = {}
        for pack in packs.values():
            for r in pack.rules:
                for step in r.steps:
                    key_fields.setdefault(step.stream, set()).add(step.key)
        labels, warnings = check_labels(labels, records, key_fields)
    except (RuleErrors, RuleError) as exc:
        _fail_rules(exc)
    except FraudRulesError as exc:
        _usage(str(exc))
    for w in warnings:
        err.print(f"warning: labels: {w}", markup=False, highlight=False)
    reports = {}
    for name, pack in packs.items():
        alerts, *_ = evaluate(compile_pack(pack, region), records)
        rule_meta = [(r.id, r.severity, r.status) for r in sorted(pack.rules, key=lambda r: r.id)]
        reports[name] = run_backtest(alerts, rule_meta, records.total, labels)
    _print_backtest(reports)
    result = {k: v.to_dict() for k, v in reports.items()}
    if sweep_target:
        from dataclasses import replace

        from .jobs.backtest import sweep
        from .pack.params import with_params

        rule_id, param, values = sweep_target
        rule = packs["current"].rule(rule_id)
        meta = [(rule.id, rule.severity, rule.status)]
        runs = []
        for value in values:
            tuned = with_params(packs["current"], {(rule_id, param): value})
            alerts, *_ = evaluate(compile_pack(tuned, region, {rule_id}), records)
            shown = value if rule.params[param].kind == "number" else replace(rule.params[param], value=value).text
            runs.append((shown, run_backtest(alerts, meta, records.total, labels).rules[rule_id]))
        result["sweep"] = sweep(rule_id, param, runs, reports["current"].rules[rule_id]).to_dict()
        _print_sweep(result["sweep"], rule.params[param].text)
    if json_out:
        from .io.sinks import write_json

        write_json(result, Path(json_out))


def _print_sweep(sw: dict, written: str) -> None:
    t = Table(title=f"sweep {sw['rule']}.{sw['param']} (written: {written}; recall of "
                    f"{sw['typology'] or 'no typology it catches'})", title_justify="left")
    for c in ("value", "alerts", "TP", "FP", "precision", "recall", "per 1k"):
        t.add_column(c, justify="right")
    for p in sw["points"]:
        t.add_row(str(p["value"]), f"{p['alerts']:,}", f"{p['tp']:,}", f"{p['fp']:,}", _fmt(p["precision"]),
                  _fmt(p["recall"]), f"{p['alerts_per_1k']:.3f}")
    out.print(t)


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _print_backtest(reports: dict) -> None:
    current = reports["current"]
    base = reports.get("baseline")
    t = Table(title=f"rules ({current.records:,} records, {current.alerts:,} alerts)", title_justify="left")
    cols = ["rule", "sev", "alerts", "TP", "FP", "precision", "per 1k", "best typology", "case recall"]
    if base:
        cols += ["baseline alerts", "baseline precision"]
    for c in cols:
        t.add_column(c, justify="left" if c in ("rule", "sev", "best typology") else "right")
    for rid in sorted(set(current.rules) | set(base.rules if base else {})):
        r = current.rules.get(rid)
        b = base.rules.get(rid) if base else None
        main = r.main_typology if r else None
        row = [rid, r.severity if r else "", *(
            [f"{r.alerts:,}", f"{r.true_positives:,}", f"{r.false_positives:,}", _fmt(r.precision), f"{r.per_1k:.3f}"]
            if r else ["-"] * 5), main[0] if main else "-", _fmt(main[1]) if main else "-"]
        if base:
            row += [f"{b.alerts:,}" if b else "-", _fmt(b.precision) if b else "-"]
        t.add_row(*row)
    out.print(t)
    t = Table(title="typologies", title_justify="left")
    for c in ("typology", "cases", "caught", "case recall", "records", "record recall"):
        t.add_column(c, justify="left" if c == "typology" else "right")
    for ts in current.typologies.values():
        t.add_row(escape(ts.typology), f"{ts.cases:,}", f"{ts.cases_caught:,}", f"{ts.case_recall:.3f}",
                  f"{ts.records:,}", f"{ts.record_recall:.3f}")
    out.print(t)


@main.command()
@click.argument("input_path", metavar="[INPUT|-]", default="-")
@click.option("--rules", "rules", default=DEFAULT_RULES, show_default=True, type=click.Path(file_okay=False),
              help="Rule pack folder.")
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False),
              help="Alert file (JSON Lines); each alert is appended and flushed as it fires.")
@click.option("--lateness", default="0s", show_default=True,
              help="Allowed lateness (30s, 5m, 1h): records up to this much behind the newest ts are reordered; "
                   "older ones are late.")
@click.option("--map", "map_file", type=click.Path(dir_okay=False, exists=True),
              help="Mapping file: read the lines as source rows of a foreign format.")
@click.option("--region", default="CN", show_default=True, help="Default region for numbers written without +.")
@click.option("--rule", "rule_ids", multiple=True, help="Run only this rule id (repeatable).")
@click.option("--follow", "-f", is_flag=True, help="Keep reading INPUT as it grows (like tail -f) until interrupted.")
@click.option("--late", "late_file", type=click.Path(dir_okay=False),
              help="Write late records here (JSON Lines with a reason); default: stderr.")
@click.option("--rejects", "rejects_file", type=click.Path(dir_okay=False),
              help="Write rejected lines here (JSON Lines with a reason); default: stderr.")
@click.option("--state", "state_file", type=click.Path(dir_okay=False),
              help="Checkpoint file: resume from it if it exists, save to it periodically and at shutdown.")
@click.option("--checkpoint-every", default="10s", show_default=True, help="How often to save --state.")
@click.option("--stats-every", default="10s", show_default=True, help="How often to print stats to stderr (0: never).")
@click.option("--shards", default=256, show_default=True, type=click.IntRange(1, 1024),
              help="durable-rules session ids to shard keys over (at most 1024).")
@click.option("--summary", "summary_file", type=click.Path(dir_okay=False), help="Also write the summary as JSON.")
@click.option("--source", help="Read records from NATS JetStream instead of INPUT: nats://HOST:PORT (needs --state).")
@click.option("--subject", help="With --source: the subject the records are published on (e.g. records.>).")
@click.option("--durable", help="With --source: name of the durable pull consumer.")
@click.option("--alerts-subject", help="With --source: also publish each alert on this subject.")
@click.option("--stop-when-idle", help="With --source: stop after this long without a record (e.g. 5s).")
@click.option("--history", "history", type=click.Path(file_okay=False, exists=True),
              help="Start from a history store that `score --history` filled (on a fresh start, not a resume).")
@click.option("--max-future", default="1d", show_default=True,
              help="Reject a record whose ts is further than this ahead of both the newest ts so far and the "
                   "clock (it would push the watermark and make everything after it late); off: no bound.")
def watch(input_path, rules, out_file, lateness, map_file, region, rule_ids, follow, late_file, rejects_file,
          state_file, checkpoint_every, stats_every, shards, summary_file, source, subject, durable, alerts_subject,
          stop_when_idle, history, max_future) -> None:
    """Evaluate records as they arrive (durable-rules) and append alerts as they fire.

    INPUT is a JSON Lines file (or - for stdin), one record per line with a
    "stream" field: {"stream": "call", "id": "c1", "ts": "...", ...}. The
    alerts are the ones `score` produces for the same records. On end of input,
    SIGINT or SIGTERM every pending record is processed and a summary printed;
    the exit code is then 0, or 130 after SIGINT.

    \b
    Examples:
      fraudrules watch records.jsonl --out alerts.jsonl --lateness 5m
      tail -F /var/log/cdr.jsonl | fraudrules watch - --out alerts.jsonl --lateness 5m --late late.jsonl
      fraudrules watch feed.jsonl --follow --out alerts.jsonl --state watch.state --lateness 2m
      fraudrules watch today.jsonl --history hist/ --out alerts.jsonl   # after score --history hist/ ...
      fraudrules watch --source nats://127.0.0.1:4222 --subject 'records.>' --durable fraud \\
          --alerts-subject alerts --out alerts.jsonl --state nats.state
    """
    if (source or subject or durable or alerts_subject or stop_when_idle) and history:
        err.print("[red]error:[/red] --history works with a file or stdin input, not yet with --source")
        sys.exit(EXIT_USAGE)
    if source or subject or durable or alerts_subject or stop_when_idle:
        from .jobs.nats_command import run_nats_watch  # nats-py is an optional extra

        run_nats_watch(rules=rules, out_file=out_file, lateness=lateness, region=region, rule_ids=rule_ids,
                       late_file=late_file, rejects_file=rejects_file, state_file=state_file,
                       checkpoint_every=checkpoint_every, shards=shards, source=source, subject=subject,
                       durable=durable, alerts_subject=alerts_subject, stop_when_idle=stop_when_idle,
                       input_path=input_path, follow=follow, map_file=map_file, summary_file=summary_file,
                       max_future=max_future)
        return
    import json
    import signal

    from .jobs.watch import WatchJob, WatchOptions, parse_duration
    from .runtime.plan import compile_pack

    try:
        opts = WatchOptions(
            input=input_path, out=Path(out_file), lateness=parse_duration(lateness), follow=follow,
            late=Path(late_file) if late_file else None, rejects=Path(rejects_file) if rejects_file else None,
            state=Path(state_file) if state_file else None, stats_every=parse_duration(stats_every),
            checkpoint_every=parse_duration(checkpoint_every), shards=shards,
            summary=Path(summary_file) if summary_file else None, history=Path(history) if history else None,
            max_future=None if max_future.strip().lower() == "off" else parse_duration(max_future))
    except ValueError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        sys.exit(EXIT_USAGE)
    if follow and input_path == "-":
        err.print("[red]error:[/red] --follow needs a file (stdin is followed anyway)")
        sys.exit(EXIT_USAGE)
    pack = _load_pack(rules, region=region)
    try:
        mapping = None
        if map_file:
            from .io.mapping import load_mapping

            mapping = load_mapping(map_file, pack.schema)
        _check_rule_ids(pack, rule_ids)
        plan = compile_pack(pack, region, set(rule_ids) or None)
        job = WatchJob(plan, opts, mapping=mapping, region=region,
                       log=lambda msg: err.print(msg, markup=False, highlight=False))
        settle_heap()  # the pack and modules live to the end: full collections skip them (runtime/heap.py)
    except (RuleErrors, RuleError) as exc:
        _fail_rules(exc)
    except (FraudRulesError, ValueError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        sys.exit(EXIT_USAGE)

    stopped_by: list[int] = []

    def stop(signum, frame) -> None:
        stopped_by.append(signum)
        job.stop = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        summary = job.run()
    except FraudRulesError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        sys.exit(EXIT_USAGE)
    err.print(json.dumps(summary), markup=False, highlight=False)
    err.print(f"{summary['records']:,} records ({summary['rejected']:,} rejected, {summary['late']:,} late) in "
              f"{summary['seconds']:.2f}s; {summary['alerts']:,} alerts appended to {summary['out']}",
              markup=False, highlight=False)
    if signal.SIGINT in stopped_by:  # a clean stop, but an interrupted run: 130, as every command
        sys.exit(EXIT_INTERRUPTED)


def _tz_option(ctx, param, value: str):
    from .report.data import parse_tz

    try:
        return parse_tz(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None  # click exits 2


@main.command()
@click.argument("out_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--backtest", "backtest_file", type=click.Path(dir_okay=False, exists=True),
              help="A backtest result (fraudrules backtest ... --json FILE) to chart beside the alerts.")
@click.option("--tz", "tz", default="+08:00", show_default=True, callback=_tz_option,
              help="Time zone the page shows times and days in: +08:00, -05:30, UTC or a name like Asia/Shanghai.")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False),
              help="HTML file to write [default: OUT_DIR/report.html].")
@click.option("--max-alerts", default=500, show_default=True, type=click.IntRange(0),
              help="Alerts given a section of their own (the first by event time); charts count them all.")
def report(out_dir, backtest_file, tz, output, max_alerts) -> None:
    """Write one self-contained HTML report of a `score` output folder (works offline).

    It shows a summary, alerts per rule per day, severities and decisions, the
    top keys, and each alert with its evidence timeline and conditions; with
    --backtest also precision and recall per rule and typology, and the
    comparison with the baseline. Needs plotly: pip install 'fraudrules[report]'.

    \b
    Examples:
      fraudrules score samples/ --out out/
      fraudrules report out/ -o report.html
      fraudrules backtest samples/ --labels samples/labels.csv --baseline ../rules-v1/ --json bt.json
      fraudrules report out/ --backtest bt.json --tz UTC -o report.html
    """
    from .report.page import write_report

    target = Path(output) if output else Path(out_dir) / "report.html"
    try:
        path, data = write_report(out_dir, target, backtest=backtest_file, tz=tz, max_alerts=max_alerts)
    except FraudRulesError as exc:
        from rich.markup import escape

        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)  # "[report]" is not markup
        sys.exit(EXIT_USAGE)
    err.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): {len(data.alerts):,} alerts, "
              f"{len(data.sections):,} shown in full", markup=False, highlight=False)


@main.command()
@click.argument("alert_id")
@click.argument("out_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--tz", "tz", default="+08:00", show_default=True, callback=_tz_option,
              help="Time zone to show times in: +08:00, -05:30, UTC or a name like Asia/Shanghai.")
def show(alert_id, out_dir, tz) -> None:
    """Print one alert: rule, key, time, explain, evidence per step, conditions.

    ALERT_ID is the alert's id, or a prefix of it that names one alert.

    \b
    Example:
      fraudrules show afc32d796edf7fee12d45e3aa8e8ab0b out/
      fraudrules show afc32d out/ --tz UTC
    """
    from .report.data import find_alert, find_outputs
    from .report.show import print_alert

    try:
        alert = find_alert(find_outputs(out_dir), alert_id)
    except KeyError as exc:
        err.print(f"error: {exc.args[0]}", markup=False, highlight=False)
        sys.exit(EXIT_USAGE)
    except FraudRulesError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        sys.exit(EXIT_USAGE)
    print_alert(out, printable_data(alert), tz)  # Text, not markup; escapes in data are escaped here


def _iso_date(value: str) -> str:
    import datetime as dt

    try:
        dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise click.BadParameter(f"{value!r} is not a date written YYYY-MM-DD") from None  # click exits 2
    return value


def _finite(value: float) -> float:
    import math

    if not math.isfinite(value):  # FloatRange lets nan through: nan < 0 and nan > 1 are both false
        raise click.BadParameter(f"{value} is not a number between 0 and 1")
    return value


def _region_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A region phonenumbers knows (CN, GB, US); CHN or a typo would silently normalise nothing."""
    if value is None:
        return None
    region = value.strip().upper()
    if region == "CN":  # the default: phonenumbers' import (~15 ms) waits until a number needs it
        return region
    import phonenumbers

    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise click.BadParameter(f"{value!r} is not a region code phonenumbers knows: two letters, e.g. CN, GB, "
                                 f"US")
    return region


def _check_regions() -> None:
    """Every command's --region is checked the same way (the option is declared per command)."""
    for command in main.commands.values():
        for param in command.params:
            if param.name == "region" and isinstance(param, click.Option) and param.callback is None:
                param.callback = _region_option


def _add_serve() -> None:
    from .serve.command import serve  # click only: FastAPI and uvicorn load when serve runs

    main.add_command(serve)


_add_serve()
_check_regions()


if __name__ == "__main__":
    main()
