"""fraudrules command line: a thin click layer over the ``engine`` package.

Exit codes: 0 ok; 1 rule tests failed, or alerts found under --fail-on-alerts;
2 usage errors, rule errors and unreadable inputs.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from engine import __version__
from engine.errors import FraudRulesError, RuleError, RuleErrors

DEFAULT_RULES = "rules"
EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


def _fail_rules(exc: RuleErrors | RuleError) -> None:
    errors = exc.errors if isinstance(exc, RuleErrors) else [exc]
    for e in errors:
        err.print(str(e), markup=False)
    err.print(f"[red]{len(errors)} error(s) in the rule pack[/red]")
    sys.exit(EXIT_USAGE)


def _load_pack(rules: str):
    from engine.loader import load_pack

    try:
        return load_pack(rules)
    except (RuleErrors, RuleError) as exc:
        _fail_rules(exc)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="fraudrules")
def main() -> None:
    """fraudrules: declarative rules that flag telecom and online fraud.

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
@click.option("--fail-on-alerts", is_flag=True, help="Exit 1 when any non-shadow alert fires (for CI gates).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar, no alert lines; just the summary.")
def score(inputs, rules, map_file, out_dir, fmt, region, rule_ids, chunk_rows, fail_on_alerts, quiet) -> None:
    """Score record files: every record gets a risk score and a decision.

    INPUTS are files given as STREAM=PATH, files named after their stream
    (call.csv, payment.parquet, sms.jsonl, ...), or folders of such files.

    \b
    Examples:
      fraudrules score samples/ --out out/
      fraudrules score call=cdr_2026-03-01.csv payment=pay.parquet --out out/ --format parquet
      fraudrules score ../shared/data/paysim/paysim_sample.csv --map samples/maps/paysim.yaml --out out/
    """
    from engine.job import score as run_score
    from engine.job import summary, write_outputs
    from engine.mapping import load_mapping
    from engine.records import parse_inputs

    pack = _load_pack(rules)
    try:
        mapping = load_mapping(map_file, pack.schema) if map_file else None
        specs = parse_inputs(list(inputs), pack.schema, mapping=mapping)
    except (RuleErrors, RuleError) as exc:
        _fail_rules(exc)
    except FraudRulesError as exc:
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(EXIT_USAGE)
    total_bytes = sum(s.path.stat().st_size for s in specs if s.path.exists())
    show_progress = not quiet and total_bytes > 5_000_000 and err.is_terminal
    started = time.perf_counter()
    try:
        if show_progress:
            with Progress(TextColumn("reading"), BarColumn(), TextColumn("{task.completed:,} rows"),
                          TimeElapsedColumn(), console=err, transient=True) as progress:
                task = progress.add_task("read", total=None)
                result = run_score(rules, specs, mapping=mapping, region=region, chunk_rows=chunk_rows,
                                   rule_ids=set(rule_ids) or None, pack=pack,
                                   progress=lambda n: progress.update(task, completed=n))
        else:
            result = run_score(rules, specs, mapping=mapping, region=region, chunk_rows=chunk_rows,
                               rule_ids=set(rule_ids) or None, pack=pack)
    except (RuleErrors, RuleError) as exc:
        _fail_rules(exc)
    except FraudRulesError as exc:
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(EXIT_USAGE)
    elapsed = time.perf_counter() - started
    if out_dir:
        paths = write_outputs(result, Path(out_dir), fmt)
    if not quiet:
        for a in result.alerts[:50]:
            tag = "shadow " if a["shadow"] else ""
            out.print(f"[bold]{a['severity']:>8}[/bold] {tag}{a['rule_id']} {a['ts']} {a['key']}: {a['explain']}",
                      markup=True, highlight=False)
        if len(result.alerts) > 50:
            out.print(f"... and {len(result.alerts) - 50} more alerts" + (f" in {paths['alerts']}" if out_dir else ""))
    _print_summary(summary(result), elapsed)
    if out_dir:
        err.print(f"wrote {', '.join(str(p) for p in paths.values())}")
    live = [a for a in result.alerts if not a["shadow"]]
    sys.exit(EXIT_FINDINGS if fail_on_alerts and live else EXIT_OK)


def _print_summary(s: dict, elapsed: float) -> None:
    t = Table(title="inputs", title_justify="left")
    for col in ("input", "stream", "read", "scored", "rejected"):
        t.add_column(col, justify="right" if col in ("read", "scored", "rejected") else "left")
    for i in s["inputs"]:
        t.add_row(i["path"], i["stream"], f"{i['read']:,}", f"{i['scored']:,}", f"{i['rejected']:,}")
    err.print(t)
    t = Table(title="alerts by rule", title_justify="left")
    for col in ("rule", "alerts", "suppressed"):
        t.add_column(col, justify="left" if col == "rule" else "right")
    for rule, n in s["matches_by_rule"].items():
        if n:
            t.add_row(rule, f"{s['alerts_by_rule'].get(rule, 0):,}", f"{s['suppressed_by_rule'].get(rule, 0):,}")
    err.print(t)
    sev = ", ".join(f"{k} {v}" for k, v in s["alerts_by_severity"].items()) or "none"
    dec = ", ".join(f"{k} {v:,}" for k, v in s["decisions"].items()) or "none"
    read = s["records"]["read"]
    rate = read / elapsed if elapsed > 0 else 0.0
    err.print(f"{read:,} records ({s['records']['rejected']:,} rejected) in {elapsed:.2f}s = {rate:,.0f} records/s; "
              f"{s['alerts']:,} alerts ({sev}); decisions: {dec}")


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.option("--rules", "rules", default=DEFAULT_RULES, show_default=True, type=click.Path(file_okay=False),
              help="Rule pack folder (streams, lists, macros) the files belong to.")
def lint(paths, rules) -> None:
    """Check rule files: schema, types, lists, durations, regexes, templates.

    Errors are printed as file:line:col: message. Exit 2 on any error.

    \b
    Examples:
      fraudrules lint                    # the whole pack in rules/
      fraudrules lint rules/payments/structuring.yaml
    """
    from engine.lint import lint_pack

    findings = lint_pack(Path(rules), [Path(p) for p in paths])
    for f in findings:
        err.print(str(f), markup=False)
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        err.print(f"[red]{len(errors)} error(s)[/red], {len(findings) - len(errors)} warning(s)")
        sys.exit(EXIT_USAGE)
    err.print(f"[green]ok[/green] ({len(findings)} warning(s))")


@main.command("test")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.option("--rules", "rules", default=DEFAULT_RULES, show_default=True, type=click.Path(file_okay=False))
@click.option("--executor", type=click.Choice(["batch", "stream", "both"]), default="batch", show_default=True,
              help="Which executor(s) run the cases.")
@click.option("--region", default="CN", show_default=True)
def test_cmd(paths, rules, executor, region) -> None:
    """Run the inline tests of rules; print each failing case.

    \b
    Examples:
      fraudrules test
      fraudrules test rules/telecom/wangiri.yaml
    """
    from engine.testing import EXECUTORS, run_rule_tests

    pack = _load_pack(rules)
    wanted = {str(Path(p).resolve()) for p in paths}
    selected = [r for r in pack.rules
                if not wanted or str(Path(r.path).resolve()) in wanted
                or any(str(Path(r.path).resolve()).startswith(w.rstrip("/") + "/") for w in wanted)]
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
    n, failed = len(report.results), len(report.failed)
    rules_n = len({r.rule.id for r in report.results})
    err.print(f"{n - failed} passed, {failed} failed ({rules_n} rules, executors: {', '.join(names)})")
    sys.exit(EXIT_FINDINGS if failed else EXIT_OK)



@main.command()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder to write into.")
@click.option("--customers", default=2000, show_default=True, type=click.IntRange(60), help="Number of customers.")
@click.option("--days", default=7, show_default=True, type=click.IntRange(1), help="Days of activity.")
@click.option("--seed", default=1, show_default=True, type=int, help="Random seed: same seed, same bytes.")
@click.option("--start", default="2026-03-01", show_default=True, help="First day (local time, UTC+8).")
@click.option("--case-rate", default=0.001, show_default=True, type=float,
              help="Injected cases per typology, as a share of customers (at least 3 each).")
def generate(out_dir, customers, days, seed, start, case_rate) -> None:
    """Generate labelled synthetic calls, SMS, SIM events and payments.

    Writes call.csv, sms.csv, sim_event.csv, payment.csv and labels.csv
    (stream, record_id, typology, case_id), deterministic for a seed.

    \b
    Example:
      fraudrules generate --out data/ --customers 20000 --days 7 --seed 1
    """
    from engine.generate import generate as run_generate

    started = time.perf_counter()
    counts = run_generate(Path(out_dir), customers=customers, days=days, seed=seed, start=start, case_rate=case_rate)
    t = Table(title=f"generated in {out_dir}", title_justify="left")
    t.add_column("file")
    t.add_column("rows", justify="right")
    for name, n in counts.items():
        t.add_row(name, f"{n:,}")
    err.print(t)
    err.print(f"done in {time.perf_counter() - started:.1f}s")

if __name__ == "__main__":
    main()
