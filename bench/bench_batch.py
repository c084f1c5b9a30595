#!/usr/bin/env python
"""Batch benchmark: ``cli.py score`` against DuckDB SQL of the same rules and a plain pyarrow read.

A benchmark, not a test: it prints timings, it asserts nothing about them.

    python bench/bench_batch.py                      # 1,000,000 records
    python bench/bench_batch.py --records 100000     # quick check
    python bench/bench_batch.py --repeat 3 --split   # as in docs/benchmarks.md
    python bench/bench_batch.py --pack other         # a second pack, rules the engine was not tuned for
    python bench/bench_batch.py --input-format parquet  # the same records as typed Parquet, for all three
    python bench/bench_batch.py --input-format jsonl    # ... or as JSON Lines

``--pack`` picks the rules and their SQL: ``shipped`` (the default) is ``rules/`` with
``bench/pack_sql.py``; ``other`` is ``bench/packs/other`` (OTH-* rules: median, stddev, since_prev,
is_new inside count, windows over another stream, clock and numbering-plan functions, a three-step
sequence) with ``bench/other_sql.py``. Everything else below is the same for both.

1. Data: ``fraudrules.synth.generate.generate`` writes call, sms, sim_event and payment
   CSV files (about 7.6 records per customer-day; all four streams are kept,
   as the engine scores every record it reads). The files are cached in
   ``--workdir`` under a name made of the size, days and seed, so reruns do
   not regenerate.
2. Contenders, each in its own subprocess so that peak RSS and CPU time
   (``os.wait4``'s ``ru_maxrss``, ``ru_utime + ru_stime``) are that
   contender's alone, started from a small launcher process (``bench/launch.py``:
   a child's ``ru_maxrss`` starts at its parent's peak); wall time includes
   interpreter start-up and imports:

   * ``engine``: ``python cli.py score DIR --rules PACK --out OUT -q``, end to
     end (read, normalise, evaluate, write alerts, scored records, rejects and
     summary). PACK is ``rules/`` as committed at ``--rules-rev`` (HEAD; the
     work tree may hold rules in progress), or ``--rules DIR``; with
     ``--pack other``, ``bench/packs/other`` as it is in the work tree. Rules of the
     pack that have no SQL are left out of the engine run too. Lists the data
     folder brings (``reported_accounts.txt`` ...) are given as ``--list`` to the
     engine and to the SQL alike. The engine's modules are compiled to bytecode
     before the runs, as an installed package has them (``compile_bytecode``).
   * ``duckdb``: the same files read with ``read_csv`` (``read_parquet``, ``read_json``;
     all columns, all four streams), then one SQL query per rule, from ``bench/pack_sql.py``
     (``bench/other_sql.py`` for ``--pack other``)
     (window functions, range joins, an ASOF join and a recursive CTE for
     suppression; ``tests/test_pack_sql.py`` checks the same SQL), following
     docs/design.md §5: total order (ts, input position, line); windows
     (ts - w, ts] up to the current record; sequences with ``within``,
     ``follows`` and ``unless``; greedy per-key suppression. The alerting
     record ids are written to a CSV file. DuckDB does not score or write the
     records, and does no phone normalisation nor reject checking.
   * ``pyarrow``: ``pyarrow.csv.read_csv`` (``parquet.read_table``, ``json.read_json``)
     of every input file, all columns: the floor for anything that reads these files.

3. Per rule, the alerting record ids of engine and DuckDB are compared. The
   table says which rules the SQL reproduces exactly and which only
   approximately (see ``bench.pack_sql.RULE_SQL``, ``bench.other_sql.RULE_SQL``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # bench.pack_sql, and fraudrules from this checkout's engine/ via its install
from bench.launch import Launcher  # noqa: E402
from bench.other_sql import OTHER  # noqa: E402
from bench.pack_sql import SHIPPED, SqlPack, load_statements, q  # noqa: E402

# --pack: the SQL of each rule pack; the shipped one is rules/ (exported at --rules-rev), the other a folder
PACKS: dict[str, SqlPack] = {"shipped": SHIPPED, "other": OTHER}
OTHER_RULES = REPO / "bench" / "packs" / "other"

RECORDS_PER_CUSTOMER_DAY = 7.6  # all four streams, fraudrules.synth.generate defaults


# --- data --------------------------------------------------------------------------------


def compile_bytecode() -> int:
    """The engine's modules compiled to bytecode once, before any contender runs, as an installed package
    has them (pip compiles a wheel's modules as it installs them; DuckDB's came so). An editable install
    writes its bytecode on first import, unless PYTHONDONTWRITEBYTECODE is set, as on the machines these
    figures come from: each run would then compile some 60 modules again, ~0.1 s that no install pays.
    Returns how many modules had no up-to-date bytecode."""
    import compileall
    import importlib.util

    def stale(py: Path) -> bool:
        pyc = Path(importlib.util.cache_from_source(str(py)))
        return not pyc.exists() or pyc.stat().st_mtime < py.stat().st_mtime

    missing = sum(map(stale, (REPO / "engine").rglob("*.py")))
    if not compileall.compile_dir(str(REPO / "engine"), quiet=1):
        raise SystemExit("bench_batch: the engine's modules do not compile")
    return missing


def ensure_data(workdir: Path, records: int, days: int, seed: int, case_rate: float | None) -> tuple[Path, dict]:
    """Generate (once) about ``records`` records; return the folder and the counts per file."""
    customers = max(10, round(records / (RECORDS_PER_CUSTOMER_DAY * days)))
    data = workdir / (f"data-n{records}-d{days}-s{seed}" + (f"-c{case_rate:g}" if case_rate is not None else ""))
    done = data / "bench-counts.json"
    if done.exists():
        return data, json.loads(done.read_text())
    from fraudrules.synth.generate import generate

    t0 = time.perf_counter()
    extra = {"case_rate": case_rate} if case_rate is not None else {}
    counts = generate(data, customers=customers, days=days, seed=seed, **extra)
    info = {"customers": customers, "days": days, "seed": seed, "case_rate": case_rate, "files": counts,
            "seconds": round(time.perf_counter() - t0, 1)}
    done.write_text(json.dumps(info, indent=1))
    return data, info


def ensure_parquet(data: Path, rules: Path) -> Path:
    """The CSV folder ``data`` written once as Parquet (``data``-parquet, each stream one file, pyarrow's default
    row groups, as a user's export would be): each field typed as the engine writes it (numbers float64,
    booleans bool, timestamps timestamp[ns, UTC], the rest text); the lists the folder brings are copied
    beside them."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from fraudrules.io.arrow import arrow_type

    def write(table, fields, path: Path) -> None:
        # each field as the engine writes its type to Parquet (io.arrow.arrow_type); a column it does not know, text
        columns = {name: pc.cast(table[name], arrow_type(fields[name].type)) if name in fields else table[name]
                   for name in table.column_names}
        pq.write_table(pa.table(columns), path)

    return _exported(data, rules, "parquet", write)


def ensure_jsonl(data: Path, rules: Path) -> Path:
    """The CSV folder ``data`` written once as JSON Lines (``data``-jsonl, each stream one file), as an export
    writes them: one flat object per line, numbers as JSON numbers, booleans as true/false, timestamps and the
    rest as strings, an empty value as null; the lists the folder brings are copied beside them."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from fraudrules.columns.types import NUMERIC_TYPES, LogicalType

    def write(table, fields, path: Path) -> None:
        typed = {}
        for name in table.column_names:
            kind = fields[name].type if name in fields else None
            typed[name] = (pc.cast(table[name], pa.float64()) if kind in NUMERIC_TYPES
                           else pc.cast(table[name], pa.bool_()) if kind == LogicalType.BOOL else table[name])
        with open(path, "w", encoding="utf-8") as out:
            for batch in pa.table(typed).to_batches(100_000):
                out.writelines(json.dumps(row, separators=(",", ":"), ensure_ascii=False) + "\n"
                               for row in batch.to_pylist())

    return _exported(data, rules, "jsonl", write)


def _exported(data: Path, rules: Path, fmt: str, write) -> Path:
    """``data``-``fmt``: the CSV folder's inputs written once by ``write(table of text, fields, path)``, and the
    lists and counts it brings; written under another name, then renamed, so a folder there is whole."""
    import shutil

    import pyarrow as pa
    import pyarrow.csv as pa_csv

    from fraudrules.pack.loader import load_pack

    out = data.with_name(f"{data.name}-{fmt}")
    if out.is_dir():
        return out
    schema = load_pack(rules).schema
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for stream, path in input_files(data, rules):
        with open(path, encoding="utf-8") as fh:
            header = fh.readline().rstrip("\r\n").split(",")
        table = pa_csv.read_csv(path, convert_options=pa_csv.ConvertOptions(
            column_types={c: pa.string() for c in header}, strings_can_be_null=True))  # empty: null, as in the CSV
        write(table, schema.streams[stream].fields, tmp / f"{stream}.{fmt}")
    for extra in [*data.glob("*.txt"), *data.glob("bench-counts.json")]:
        shutil.copy(extra, tmp / extra.name)
    tmp.rename(out)
    return out


def export_rules(workdir: Path, rev: str) -> tuple[Path, str]:
    """The rule pack as committed at ``rev`` (the shipped starter pack), exported once into workdir."""
    sha = subprocess.run(["git", "rev-parse", "--short=12", f"{rev}^{{commit}}"], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout.strip()
    dest = workdir / f"rules-{sha}"
    if not (dest / "rules").is_dir():
        tmp = workdir / f".rules-{sha}.tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", sha, "rules"], cwd=REPO, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
        tmp.rename(dest)
    return dest / "rules", f"rules/ at commit {sha}"


def input_files(data: Path, rules: Path) -> list[tuple[str, Path]]:
    """(stream, path) of every input in the order the engine reads a folder (docs/design.md §5 input position)."""
    from fraudrules.io.records import parse_inputs
    from fraudrules.pack.loader import load_pack

    pack = load_pack(rules)
    specs = parse_inputs([str(data)], pack.schema)
    formats = {s.format for s in specs}
    if not formats <= {"csv", "parquet", "jsonl"} or len(formats) > 1:
        raise SystemExit(f"a folder of CSV, of Parquet or of JSON Lines files is benchmarked, not {sorted(formats)}")
    return [(s.stream, s.path) for s in specs]


def count_rows(path: Path) -> int:
    """Data rows of a Parquet file, of a JSON Lines file (its lines), or of a CSV file without quoted newlines (lines
    after the header)."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    with open(path, "rb") as fh:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
        fh.seek(0, os.SEEK_END)
        if fh.tell():
            fh.seek(-1, os.SEEK_END)
            lines += fh.read(1) != b"\n"
    return lines if path.suffix == ".jsonl" else max(lines - 1, 0)


# --- DuckDB SQL of the rules: bench/pack_sql.py, bench/other_sql.py (shared with tests/test_pack_sql.py) ---


def rule_statements(plan, sql: SqlPack) -> tuple[list[tuple[str, str]], dict[str, str], list[str]]:
    stmts, status = [], {}
    selects = []
    for rp in plan.rules:
        status[rp.id] = sql.status(rp)
        if status[rp.id] == "no SQL":
            continue
        table = "alerts_" + re.sub(r"\W", "_", rp.id)
        stmts.append((rp.id, f"CREATE TABLE {table} AS SELECT {q(rp.id)} AS rule_id, id AS record_id "
                             f"FROM ({sql.emitted(plan, rp)})"))
        selects.append(f"SELECT * FROM {table}")
    return stmts, status, selects


def data_lists(data: Path, rules: Path) -> list[str]:
    """``NAME=FILE`` for each list of the pack that the data folder brings as NAME.txt (the generator
    writes the reported accounts and numbers it injected): the engine gets them as ``--list``, the SQL too."""
    names = sorted(p.stem for p in (rules / "lists").glob("*.yaml"))
    return [f"{name}={data / (name + '.txt')}" for name in names if (data / f"{name}.txt").is_file()]


def duckdb_script(inputs, rules: Path, out_csv: Path, lists: list[str],
                  sql: SqlPack) -> tuple[list[tuple[str, str]], dict[str, str]]:
    from fraudrules.pack.loader import load_pack
    from fraudrules.pack.params import tune
    from fraudrules.runtime.plan import compile_pack

    pack = tune(load_pack(rules), lists=lists)
    plan = compile_pack(pack)
    stmts = load_statements(inputs, pack.schema)
    rule_stmts, status, selects = rule_statements(plan, sql)
    stmts += rule_stmts
    union = " UNION ALL ".join(selects) if selects else "SELECT NULL AS rule_id, NULL AS record_id WHERE false"
    stmts.append(("write ids", f"COPY ({union} ORDER BY rule_id, record_id) TO {q(out_csv)} (HEADER, DELIMITER ',')"))
    return stmts, status


# --- children (run in their own process) ----------------------------------------------------


def child_duckdb(script: str, pack: str) -> None:
    import duckdb

    stmts = json.loads(Path(script).read_text())
    con = duckdb.connect()
    PACKS[pack].register(con)
    timings = {}
    for label, sql in stmts:
        t0 = time.perf_counter()
        con.execute(sql)
        timings[label] = time.perf_counter() - t0
    print(json.dumps({"timings": timings, "threads": con.execute("SELECT current_setting('threads')").fetchone()[0]}))


def child_pyarrow(paths: list[str]) -> None:
    import pyarrow.csv as pa_csv
    import pyarrow.json as pa_json
    import pyarrow.parquet as pq

    rows = 0
    for p in paths:
        read = {".parquet": pq.read_table, ".jsonl": pa_json.read_json}.get(Path(p).suffix, pa_csv.read_csv)
        rows += read(p).num_rows
    print(json.dumps({"rows": rows}))


# engine functions whose CPU time --split reports: (module, attribute, label); few calls each, so the
# wrappers cost nothing measurable (unlike cProfile, which inflates phonenumbers' many small calls ~5x)
SPLIT = [
    ("fraudrules.pack.loader", "load_pack", "load rules (loader.load_pack)"),
    ("fraudrules.jobs.score", "read_time_chunks", "read: total (records.read_time_chunks)"),
    ("fraudrules.io.records", "normalise_native", "read: typing of every column (convert.normalise_native)"),
    ("fraudrules.io.convert", "_phones", "read: E.164 normalisation (convert._phones)"),
    ("fraudrules.jobs.score", "evaluate", "evaluate: total (score.evaluate)"),
    ("fraudrules.executors.batch.BatchExecutor", "prepare", "evaluate: shared preparation (BatchExecutor.prepare)"),
    ("fraudrules.executors.batch.BatchExecutor", "run_rule", "evaluate: rules (BatchExecutor.run_rule)"),
    ("fraudrules.executors.batch.AggregateStore", "_compute", "evaluate: window aggregates (AggregateStore._compute)"),
    ("fraudrules.runtime.windows.GroupIndex", "window_start", "evaluate: window starts (GroupIndex.window_start)"),
    ("fraudrules.runtime.evaluate.ListMatcher", "contains", "evaluate: @list membership (ListMatcher.contains)"),
    ("fraudrules.executors.batch.BatchExecutor", "_extend", "evaluate: sequence joins (BatchExecutor._extend)"),
    ("fraudrules.executors.batch", "previous_same", "evaluate: distinct()/is_new() (windows.previous_same)"),
    ("fraudrules.jobs.score", "build_alerts", "evaluate: build_alerts"),
    ("fraudrules.jobs.score", "scored_frame", "evaluate: scored_frame"),
    ("fraudrules.jobs.score", "write_outputs", "write: total (score.write_outputs)"),
    ("fraudrules.io.sinks.FrameWriter", "write", "write: scored records (sinks.FrameWriter.write)"),
]


def _longest_module(parts: list[str]):
    """The module named by the longest prefix of ``parts`` that imports."""
    import importlib

    for cut in range(len(parts), 0, -1):
        try:
            return importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
    raise ImportError(".".join(parts))


def child_split(data: str, rules: str, out: str, *rest: str) -> None:
    """CPU time of one in-process engine score + write, split over the functions in SPLIT.

    ``rest``: rule ids, and ``NAME=FILE`` list overrides."""
    import functools

    acc: dict[str, float] = {}
    for target, attr, label in SPLIT:
        parts = target.split(".")
        try:
            owner = _longest_module(parts)  # then classes within it
            for p in parts[len(owner.__name__.split(".")):]:
                owner = getattr(owner, p)
            fn = getattr(owner, attr)
        except (ImportError, AttributeError):
            print(f"  (--split: {target}.{attr} is gone from the engine; not timed)")
            continue

        def wrapped(*args, _fn=fn, _label=label, **kwargs):
            t0 = time.process_time()
            try:
                return _fn(*args, **kwargs)
            finally:
                acc[_label] = acc.get(_label, 0.0) + time.process_time() - t0

        setattr(owner, attr, functools.wraps(fn)(wrapped))
    from fraudrules.io.records import parse_inputs
    from fraudrules.jobs import score as job
    from fraudrules.pack.loader import load_pack
    from fraudrules.pack.params import tune

    rule_ids = [r for r in rest if "=" not in r]
    c0, w0 = time.process_time(), time.perf_counter()
    pack = tune(load_pack(rules), lists=[r for r in rest if "=" in r])
    # one process (--jobs 1): forked workers' CPU time would not be counted here
    result = job.score(rules, parse_inputs([data], pack.schema), pack=pack, rule_ids=set(rule_ids) or None,
                       jobs=1)
    job.write_outputs(result, Path(out))
    total = time.process_time() - c0
    print(f"engine in-process: CPU {total:.2f} s, wall {time.perf_counter() - w0:.2f} s "
          f"(imports excluded), {result.records.total:,} records, {len(result.alerts)} alerts")
    for label, sec in sorted(acc.items(), key=lambda kv: -kv[1]):
        print(f"  {sec:7.2f} s {100 * sec / total:5.1f} %  {label}")


# --- measuring ------------------------------------------------------------------------------


@dataclass
class Run:
    name: str
    seconds: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # user + system seconds
    stdout: str = ""
    stderr: str = ""


def measure(run: Run, cmd: list[str], logdir: Path, launcher: Launcher) -> None:
    """Run ``cmd`` once; wall seconds and peak RSS of that process (and the children it waited for),
    started from the small launcher process (bench/launch.py says why)."""
    out, err = logdir / f"{run.name}.stdout", logdir / f"{run.name}.stderr"
    done = launcher.run(cmd, REPO, out, err)
    run.stdout, run.stderr = out.read_text(), err.read_text()
    if done.exit_code != 0:
        raise SystemExit(f"{run.name} failed ({done.exit_code}): {' '.join(cmd)}\n{run.stderr[-3000:]}")
    run.seconds.append(done.seconds)
    run.rss_mb.append(done.peak_rss_mb)
    run.cpu.append(done.cpu_seconds)


def engine_alert_ids(alerts: Path) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    with open(alerts, encoding="utf-8") as fh:
        for line in fh:
            a = json.loads(line)
            out.setdefault(a["rule_id"], set()).add(a["record_id"])
    return out


def duckdb_alert_ids(path: Path) -> dict[str, set[str]]:
    import csv

    out: dict[str, set[str]] = {}
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            out.setdefault(row["rule_id"], set()).add(row["record_id"])
    return out


def machine() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    mem = ""
    try:
        with open("/proc/meminfo") as fh:
            kb = int(fh.readline().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    pkgs = []
    for name in ("numpy", "pandas", "pyarrow", "duckdb", "phonenumbers"):
        try:
            pkgs.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            pkgs.append(f"{name} -")
    return {"nproc": str(os.cpu_count()), "cpu": cpu, "ram": mem,
            "python": platform.python_version(), "packages": ", ".join(pkgs)}


def fmt_table(header: list[str], rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda cells: "| " + " | ".join(  # noqa: E731
        str(c).rjust(w) if i in right else str(c).ljust(w) for i, (c, w) in enumerate(zip(cells, widths))) + " |"
    sep = "|" + "|".join(("-" * (w + 1) + ":") if i in right else ("-" * (w + 2)) for i, w in enumerate(widths)) + "|"
    return "\n".join([line(header), sep] + [line(r) for r in rows])


# --- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_duckdb"]:
        child_duckdb(argv[1], argv[2])
        return 0
    if argv[:1] == ["_split"]:
        child_split(*argv[1:])
        return 0
    if argv[:1] == ["_pyarrow"]:
        child_pyarrow(argv[1:])
        return 0
    launcher = Launcher()  # before anything grows this process (bench/launch.py)
    try:  # shut down on every way out (--help, errors): left to exit, its pool's wakeup pipe may be gone first
        return _bench(argv, launcher)
    finally:
        launcher.close()


def _bench(argv: list[str], launcher: Launcher) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000, help="records to generate (approximately)")
    ap.add_argument("--days", type=int, default=7, help="days of data; customers = records / (7.6 * days)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--case-rate", type=float, default=None,
                    help="injected fraud cases per customer and typology (generator default 0.001)")
    ap.add_argument("--data", type=Path, default=None,
                    help="benchmark this folder of stream CSV files instead of generating one")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/fraudrules-bench"))
    ap.add_argument("--input-format", choices=("csv", "parquet", "jsonl"), default="csv",
                    help="the generated records as CSV (default), or written once as Parquet (typed columns, one "
                         "row group per file up to pyarrow's default) or as JSON Lines (numbers and booleans typed, "
                         "the rest strings) for the engine, DuckDB and pyarrow alike")
    ap.add_argument("--pack", choices=sorted(PACKS), default="shipped",
                    help="which rules and SQL: shipped (rules/, bench/pack_sql.py) or other (bench/packs/other, "
                         "bench/other_sql.py: rules the engine was not tuned for)")
    ap.add_argument("--rules", type=Path, default=None,
                    help="rule pack folder (default: for --pack shipped, rules/ as committed at --rules-rev, not "
                         "the work tree; for --pack other, bench/packs/other as it is)")
    ap.add_argument("--rules-rev", default="HEAD", help="git revision whose rules/ is benchmarked (default HEAD)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per contender; the median time is shown")
    ap.add_argument("--contenders", default="pyarrow,engine-jobs1,engine,duckdb",
                    help="comma-separated subset of pyarrow, engine-jobs1 (score --jobs 1), engine, duckdb")
    ap.add_argument("--profile", action="store_true",
                    help="also run the engine once under cProfile and print its top functions by cumulative time")
    ap.add_argument("--split", action="store_true",
                    help="also run the engine once in-process and print its CPU time split by stage")
    a = ap.parse_args(argv)
    py = sys.executable
    a.workdir.mkdir(parents=True, exist_ok=True)
    sql = PACKS[a.pack]
    if a.rules is None and a.pack == "other":
        a.rules, rules_about = OTHER_RULES, "bench/packs/other (work tree)"
    elif a.rules is None:
        a.rules, rules_about = export_rules(a.workdir, a.rules_rev)
    else:
        a.rules, rules_about = a.rules.resolve(), str(a.rules)
    pack_suffix = "" if a.pack == "shipped" else f"-{a.pack}"  # each pack's outputs in their own run folder
    if a.data is not None:
        data = a.data.resolve()
        inputs = input_files(data, a.rules)
        info = {"files": {p.name: count_rows(p) for _, p in inputs}}
        run_dir = a.workdir / ("run-" + re.sub(r"\W+", "_", str(data)).strip("_") + pack_suffix)
        about = "given folder"
    else:
        data, info = ensure_data(a.workdir, a.records, a.days, a.seed, a.case_rate)
        if a.input_format != "csv":
            data = (ensure_parquet if a.input_format == "parquet" else ensure_jsonl)(data, a.rules)
            info = {**info, "files": {f"{Path(name).stem}.{a.input_format}": rows
                                      for name, rows in info["files"].items()}}
        inputs = input_files(data, a.rules)
        run_dir = a.workdir / ("run-" + data.name.removeprefix("data-") + pack_suffix)
        about = (f"{info['customers']:,} customers x {info['days']} days, seed {info['seed']}"
                 + (f", case rate {a.case_rate:g}" if a.case_rate is not None else ""))
    n = sum(info["files"][p.name] for _, p in inputs)
    run_dir.mkdir(exist_ok=True)
    print(f"data: {data} ({n:,} records: " + ", ".join(f"{s} {info['files'][p.name]:,}" for s, p in inputs)
          + f"; {about})", flush=True)
    print(f"rules: {rules_about} ({a.rules})", flush=True)
    print(f"bytecode: the engine's modules compiled once before the runs, as an installed package has them "
          f"({compile_bytecode()} were not)", flush=True)

    duck_ids_csv = run_dir / "duckdb_alert_ids.csv"
    lists = data_lists(data, a.rules)
    if lists:
        print(f"lists from the data folder, for the engine and the SQL: {', '.join(lists)}", flush=True)
    stmts, status = duckdb_script(inputs, a.rules, duck_ids_csv, lists, sql)
    script = run_dir / "duckdb_statements.json"
    script.write_text(json.dumps(stmts, indent=1))
    (run_dir / "duckdb_rules.sql").write_text(";\n\n".join(f"-- {label}\n{sql}" for label, sql in stmts) + ";\n")
    engine_out = run_dir / "engine-out"
    # the engine evaluates the same rules as the SQL: a pack rule without SQL is left out of both
    with_sql = [r for r, st in status.items() if st != "no SQL"]
    rule_args = [x for r in with_sql for x in ("--rule", r)] if len(with_sql) < len(status) else []
    list_args = [x for item in lists for x in ("--list", item)]
    if rule_args:
        print(f"rules without SQL, left out of the engine run too: "
              f"{', '.join(r for r, st in status.items() if st == 'no SQL')}", flush=True)
    commands = {
        "pyarrow": [py, str(Path(__file__).resolve()), "_pyarrow", *[str(p) for _, p in inputs]],
        "engine": [py, "cli.py", "score", str(data), "--rules", str(a.rules), "--out", str(engine_out), "-q",
                   *rule_args, *list_args],
        "duckdb": [py, str(Path(__file__).resolve()), "_duckdb", str(script), a.pack],
    }
    # the engine on one core: what score's default --jobs (every core, rules in parallel) gains
    jobs1_out = run_dir / "engine-jobs1-out"
    commands["engine-jobs1"] = [str(jobs1_out) if x == str(engine_out) else x for x in commands["engine"]] + [
        "--jobs", "1"]
    wanted = [c.strip() for c in a.contenders.split(",") if c.strip()]
    unknown = [c for c in wanted if c not in commands]
    if unknown:
        ap.error(f"unknown contender(s): {', '.join(unknown)}")
    runs = {name: Run(name) for name in wanted}
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    for _ in range(a.repeat):
        for name in wanted:
            measure(runs[name], commands[name], run_dir, launcher)
            r = runs[name]
            print(f"  {name}: {r.seconds[-1]:.2f} s, CPU {r.cpu[-1]:.2f} s, {r.rss_mb[-1]:.0f} MB", flush=True)

    ids: dict[str, dict[str, set[str]]] = {}
    notes: dict[str, str] = {}
    if "engine" in runs:
        ids["engine"] = engine_alert_ids(engine_out / "alerts.jsonl")
        m = re.search(r"in ([0-9.]+)s = ", runs["engine"].stderr)
        if m:
            notes["engine"] = f"score() {float(m.group(1)):.2f} s (read + evaluate + build alerts)"
    if "engine-jobs1" in runs:
        compared = "engine" in runs
        same = compared and all((jobs1_out / f).read_bytes() == (engine_out / f).read_bytes()
                                for f in ("alerts.jsonl", "scored.jsonl"))
        notes["engine-jobs1"] = "--jobs 1" + (("; alerts and scored byte-identical to engine's" if same
                                               else "; OUTPUTS DIFFER from engine's") if compared else "")
    if "duckdb" in runs:
        ids["duckdb"] = duckdb_alert_ids(duck_ids_csv)
        info_d = json.loads(runs["duckdb"].stdout.strip().splitlines()[-1])
        t = info_d["timings"]
        load = sum(v for k, v in t.items() if k.startswith(("read ", "view ", "setup")))
        rules_s = sum(v for k, v in t.items() if k in status)
        reader = {"parquet": "read_parquet", "jsonl": "read_json"}.get(inputs[0][1].suffix.lstrip("."), "read_csv")
        notes["duckdb"] = f"{reader} {load:.2f} s, rules {rules_s:.2f} s, {info_d['threads']} threads"
    if "pyarrow" in runs:
        notes["pyarrow"] = "read only, all columns"

    rows = []
    for name in wanted:
        r = runs[name]
        sec = statistics.median(r.seconds)
        alerts = str(sum(len(v) for v in ids[name].values())) if name in ids else "-"
        cpu = statistics.median(r.cpu)
        rows.append([name, f"{sec:.2f}", f"{cpu:.2f}", f"{n / sec:,.0f}", f"{max(r.rss_mb):,.0f}", alerts,
                     notes.get(name, "")])
    print()
    print(f"{n:,} records, median of {a.repeat} run(s) per contender, each in a fresh process "
          f"(wall time including interpreter start-up; CPU s = user + system); "
          f"load average before the runs: {load_before}")
    print()
    print(fmt_table(["contender", "seconds", "CPU s", "records/s", "peak RSS MB", "alerts", "notes"], rows,
                    {1, 2, 3, 4, 5}))

    if "engine" in ids and "duckdb" in ids:
        print()
        rrows = []
        disagreements = {}
        for rule_id, st in status.items():
            if st == "no SQL":
                continue
            e, d = ids["engine"].get(rule_id, set()), ids["duckdb"].get(rule_id, set())
            agree = "yes" if e == d else "NO"
            if e != d:
                disagreements[rule_id] = (sorted(e - d), sorted(d - e))
            rrows.append([rule_id, str(len(e)), str(len(d)), st, agree])
        print(fmt_table(["rule", "engine", "duckdb", "SQL", "same ids"], rrows, {1, 2}))
        print()
        for rule_id, spec in sql.rule_sql.items():
            if rule_id in status and not spec.exact:
                print(f"{rule_id}: {spec.note}")
        print(sql.caveat)
        for rule_id, (only_e, only_d) in disagreements.items():
            print(f"{rule_id}: only engine {only_e[:10]}{' ...' if len(only_e) > 10 else ''}; "
                  f"only duckdb {only_d[:10]}{' ...' if len(only_d) > 10 else ''}")
        print(f"(SQL in {run_dir / 'duckdb_rules.sql'}, ids in {duck_ids_csv})")

    if a.profile:
        prof = run_dir / "fraudrules.pstats"
        cmd = [py, "-m", "cProfile", "-o", str(prof), "cli.py", "score", str(data), "--rules", str(a.rules),
               "--out", str(run_dir / "engine-profile-out"), "-q", *rule_args, *list_args]
        subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import pstats

        print()
        print(f"engine under cProfile ({prof}), top 30 by cumulative time:")
        pstats.Stats(str(prof)).sort_stats("cumulative").print_stats(30)
    if a.split:
        print()
        subprocess.run([py, str(Path(__file__).resolve()), "_split", str(data), str(a.rules),
                        str(run_dir / "engine-split-out"), *rule_args[1::2], *lists], cwd=REPO, check=True)
    m = machine()
    print()
    print(f"machine: {m['nproc']} cpus ({m['cpu']}), {m['ram']} RAM, Python {m['python']}; {m['packages']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
