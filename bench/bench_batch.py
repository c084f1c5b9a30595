#!/usr/bin/env python
"""Batch benchmark: ``cli.py score`` against DuckDB SQL of the same rules and a plain pyarrow read.

A benchmark, not a test: it prints timings, it asserts nothing about them.

    python bench/bench_batch.py                      # 1,000,000 records
    python bench/bench_batch.py --records 100000     # quick check
    python bench/bench_batch.py --repeat 3 --split   # as in docs/benchmarks.md

1. Data: ``fraudrules.synth.generate.generate`` writes call, sms, sim_event and payment
   CSV files (about 7.6 records per customer-day; all four streams are kept,
   as the engine scores every record it reads). The files are cached in
   ``--workdir`` under a name made of the size, days and seed, so reruns do
   not regenerate.
2. Contenders, each in its own subprocess so that peak RSS and CPU time
   (``os.wait4``'s ``ru_maxrss``, ``ru_utime + ru_stime``) are that
   contender's alone; wall time includes interpreter start-up and imports:

   * ``engine``: ``python cli.py score DIR --rules PACK --out OUT -q``, end to
     end (read, normalise, evaluate, write alerts, scored records, rejects and
     summary). PACK is ``rules/`` as committed at ``--rules-rev`` (HEAD; the
     work tree may hold rules in progress), or ``--rules DIR``. Rules of the
     pack that have no SQL below are left out of the engine run too.
   * ``duckdb``: the same CSV files read with ``read_csv`` (all columns, all
     four streams), then one SQL query per rule (window functions, range
     joins, an ASOF join and a recursive CTE for suppression) following
     docs/design.md §5: total order (ts, input position, line); windows
     (ts - w, ts] up to the current record; sequences with ``within``,
     ``follows`` and ``unless``; greedy per-key suppression. The alerting
     record ids are written to a CSV file. DuckDB does not score or write the
     records, and does no phone normalisation nor reject checking.
   * ``pyarrow``: ``pyarrow.csv.read_csv`` of every input file, all columns:
     the floor for anything that reads these CSV files.

3. Per rule, the alerting record ids of engine and DuckDB are compared. The
   table says which rules the SQL reproduces exactly and which only
   approximately (see ``RULE_SQL``).
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
RECORDS_PER_CUSTOMER_DAY = 7.6  # all four streams, fraudrules.synth.generate defaults
HUGE_TS = 1 << 40  # seq = ts_ns * 2^40 + input * 2^32 + row: the total order as one HUGEINT
HUGE_INPUT = 1 << 32


# --- data --------------------------------------------------------------------------------


def ensure_data(workdir: Path, records: int, days: int, seed: int, case_rate: float | None) -> tuple[Path, dict]:
    """Generate (once) about ``records`` records; return the folder and the counts per file."""
    customers = max(10, round(records / (RECORDS_PER_CUSTOMER_DAY * days)))
    data = workdir / (f"data-n{records}-d{days}-s{seed}" + (f"-c{case_rate:g}" if case_rate is not None else ""))
    done = data / "bench-counts.json"
    if done.exists():
        return data, json.loads(done.read_text())
    sys.path.insert(0, str(REPO))
    from fraudrules.synth.generate import generate

    t0 = time.perf_counter()
    extra = {"case_rate": case_rate} if case_rate is not None else {}
    counts = generate(data, customers=customers, days=days, seed=seed, **extra)
    info = {"customers": customers, "days": days, "seed": seed, "case_rate": case_rate, "files": counts,
            "seconds": round(time.perf_counter() - t0, 1)}
    done.write_text(json.dumps(info, indent=1))
    return data, info


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
    sys.path.insert(0, str(REPO))
    from fraudrules.io.records import parse_inputs
    from fraudrules.pack.loader import load_pack

    pack = load_pack(rules)
    specs = parse_inputs([str(data)], pack.schema)
    bad = [s for s in specs if s.format != "csv"]
    if bad:
        raise SystemExit(f"only CSV inputs are benchmarked, not {bad[0].path}")
    return [(s.stream, s.path) for s in specs]


def count_rows(path: Path) -> int:
    """Data rows of a CSV file without quoted newlines: lines after the header."""
    with open(path, "rb") as fh:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
        fh.seek(0, os.SEEK_END)
        if fh.tell():
            fh.seek(-1, os.SEEK_END)
            lines += fh.read(1) != b"\n"
    return max(lines - 1, 0)


# --- DuckDB SQL of the starter rules -------------------------------------------------------


def q(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


DUCK_TYPES = {"string": "VARCHAR", "phone": "VARCHAR", "enum": "VARCHAR", "int": "DOUBLE", "float": "DOUBLE",
              "duration": "DOUBLE", "bool": "BOOLEAN", "timestamp": "TIMESTAMPTZ"}


def load_statements(inputs: list[tuple[str, Path]], schema) -> list[tuple[str, str]]:
    """read_csv every input (all columns) and give each stream a view with t (ns) and seq (total order)."""
    out = [("setup", "SET TimeZone = 'UTC'")]
    streams: dict[str, list[tuple[int, Path]]] = {}
    for i, (stream, path) in enumerate(inputs):
        streams.setdefault(stream, []).append((i, path))
    for stream, files in streams.items():
        fields = schema.streams[stream].fields
        parts = []
        for i, path in files:
            with open(path, encoding="utf-8") as fh:
                header = fh.readline().rstrip("\r\n").split(",")
            cols = ", ".join(f"{q(c)}: {q(DUCK_TYPES[fields[c].type] if c in fields else 'VARCHAR')}"
                             for c in header)
            table = f"raw_{stream}_{i}"
            out.append((f"read {path.name}",
                        f"CREATE TABLE {table} AS SELECT * FROM read_csv({q(path)}, header = true, delim = ',', "
                        f"quote = '\"', escape = '\"', columns = {{{cols}}})"))
            names = ", ".join(f'"{f}"' if f in header else f'NULL::{DUCK_TYPES[spec.type]} AS "{f}"'
                              for f, spec in fields.items())
            parts.append(f"SELECT {names}, epoch_ns(ts) AS t, "
                         f"epoch_ns(ts)::HUGEINT * {HUGE_TS} + {i * HUGE_INPUT} + rowid AS seq "
                         f"FROM {table} WHERE id IS NOT NULL AND ts IS NOT NULL")
        out.append((f"view {stream}", f"CREATE VIEW {stream} AS " + " UNION ALL ".join(parts)))
    for stream, spec in schema.streams.items():  # rules may name a stream absent from the input
        if stream not in streams:
            names = ", ".join(f'NULL::{DUCK_TYPES[f.type]} AS "{name}"' for name, f in spec.fields.items())
            out.append((f"view {stream}", f"CREATE VIEW {stream} AS SELECT {names}, 0::BIGINT AS t, "
                                          f"0::HUGEINT AS seq WHERE false"))
    return out


def in_list(expr: str, matcher) -> str:
    """``expr in @list`` with the engine's own list values (exact, or any prefix)."""
    values = sorted(matcher.values)
    if not values:
        return "false"
    if matcher.list.kind == "prefix":
        return "(" + " OR ".join(f"starts_with({expr}, {q(v)})" for v in values) + ")"
    return f"{expr} IN ({', '.join(q(v) for v in values)})"


def suppressed(cand: str, suppress_ns: int) -> str:
    """Ids emitted after greedy per-key suppression (docs/design.md §5) of the matches in ``cand``.

    ``cand`` selects (id, k, t, seq) of every match. Per key in total order:
    the first match is emitted; the next emitted one is the first match at
    least ``suppress`` later (ASOF join); the chain is walked with a
    recursive CTE, one step per emitted alert of the busiest key.
    """
    if suppress_ns <= 0:
        return f"SELECT id FROM ({cand})"
    return f"""WITH RECURSIVE m AS (
        SELECT id, k, t, row_number() OVER (PARTITION BY k ORDER BY seq) AS rn FROM ({cand})),
    firsts AS (SELECT k, t, min(rn) AS rn FROM m GROUP BY k, t),
    nx AS MATERIALIZED (SELECT m.k, m.rn, firsts.rn AS nxt FROM m ASOF LEFT JOIN firsts
           ON m.k = firsts.k AND firsts.t >= m.t + {suppress_ns}),
    walk(k, rn) AS (SELECT k, rn FROM m WHERE rn = 1
                    UNION ALL
                    SELECT nx.k, nx.nxt FROM walk JOIN nx ON nx.k = walk.k AND nx.rn = walk.rn
                    WHERE nx.nxt IS NOT NULL)
    SELECT m.id FROM walk JOIN m ON m.k = walk.k AND m.rn = walk.rn"""


def window_total(value: str, w_ns: int) -> str:
    """Sum of ``value`` over the same key, ts in (t - w, t], at or before the row in the total order.

    Rows are ordered by seq; everything with t <= t_r - w lies before r, so
    the window is the running total by seq minus the running total up to
    t_r - w (a RANGE frame on t). Exact with ties in ts.
    """
    return (f"(sum({value}) OVER (PARTITION BY k ORDER BY seq ROWS UNBOUNDED PRECEDING) - "
            f"coalesce(sum({value}) OVER (PARTITION BY k ORDER BY t RANGE BETWEEN UNBOUNDED PRECEDING "
            f"AND {w_ns} PRECEDING), 0))")


S = 1_000_000_000
H = 3600 * S
D = 24 * H


@dataclass
class RuleSQL:
    version: int
    exact: bool
    note: str
    candidates: object  # (plan, rule plan) -> SELECT id, k, t, seq of every match before suppression


def _hrj(plan, rp) -> str:
    return (f"SELECT id, payer_account AS k, t, seq FROM payment "
            f"WHERE payer_account IS NOT NULL AND {in_list('upper(payee_country)', plan.lists['fatf_high_risk'])}")


def _rep(plan, rp) -> str:
    return (f"SELECT id, payer_account AS k, t, seq FROM payment "
            f"WHERE payer_account IS NOT NULL AND {in_list('payee_account', plan.lists['reported_accounts'])}")


def _rep_number(plan, rp) -> str:
    return (f"SELECT id, callee AS k, t, seq FROM call WHERE callee IS NOT NULL AND direction = 'in' "
            f"AND {in_list('caller', plan.lists['reported_numbers'])}")


def _night(plan, rp) -> str:
    return ("SELECT id, payer_account AS k, t, seq FROM payment WHERE payer_account IS NOT NULL "
            "AND hour(timezone('Asia/Shanghai', ts)) < 5 AND amount % 1000 = 0 AND amount >= 5000")


def _struct(plan, rp) -> str:
    # sums on integers scaled by 10^4, as fraudrules.runtime.windows does
    return f"""SELECT id, k, t, seq FROM (
        SELECT id, k, t, seq, {window_total('x', D)} AS total FROM (
            SELECT id, payer_account AS k, t, seq, round(amount * 10000)::BIGINT AS x FROM payment
            WHERE payer_account IS NOT NULL AND amount >= 45000 AND amount < 50000))
        WHERE total::DOUBLE / 10000 >= 135000"""


def _wangiri(plan, rp) -> str:
    # v2: one-ring calls from an overseas caller to >= 10 distinct callees in 10 min (distinct() as a self-join)
    one_ring = "direction = 'in' AND NOT coalesce(answered, false) AND duration <= 5"
    return f"""WITH f AS (SELECT id, caller AS k, callee, t, seq FROM call WHERE caller IS NOT NULL AND {one_ring})
        SELECT r.id, r.k, r.t, r.seq FROM f AS r JOIN f AS j
            ON j.k = r.k AND j.t > r.t - {10 * 60 * S} AND j.t <= r.t AND j.seq <= r.seq
        WHERE regexp_matches(r.k, '^[+]([0-79]|8[0-57-9])')
        GROUP BY r.id, r.k, r.t, r.seq
        HAVING count(DISTINCT j.callee) >= 10"""


def _dialer(plan, rp) -> str:
    # distinct() as a range self-join: callees of the key's short out calls in (t - 1h, t], seq <= seq_r
    return f"""WITH f AS (SELECT id, caller AS k, callee, t, seq FROM call
                      WHERE caller IS NOT NULL AND direction = 'out' AND duration < 15)
        SELECT r.id, r.k, r.t, r.seq FROM f AS r JOIN f AS j
            ON j.k = r.k AND j.t > r.t - {H} AND j.t <= r.t AND j.seq <= r.seq
        GROUP BY r.id, r.k, r.t, r.seq
        HAVING count(DISTINCT j.callee) >= 30"""


def _irsf(plan, rp) -> str:
    return (f"SELECT id, caller AS k, t, seq FROM call WHERE caller IS NOT NULL AND direction = 'out' "
            f"AND coalesce(answered, false) AND {in_list('callee', plan.lists['irsf_ranges'])} AND duration >= 60")


def _is_new(w_ns: int) -> str:
    """is_new(payee_account, w) of a payment step keyed by payer_phone."""
    return (f"(payee_account IS NOT NULL AND coalesce(lag(t) OVER (PARTITION BY payer_phone, payee_account "
            f"ORDER BY seq) <= t - {w_ns}, true))")


def _app(plan, rp) -> str:
    within = rp.within_ns
    return f"""WITH c AS (
            SELECT callee, t, seq FROM call
            WHERE callee IS NOT NULL AND direction = 'in' AND duration >= 600
              AND (regexp_matches(caller, '^[+]([0-79]|8[0-57-9])') OR trunk = 'international')),
        p AS (SELECT * FROM (SELECT id, payer_phone, t, seq, amount, {_is_new(180 * D)} AS new_payee FROM payment)
              WHERE payer_phone IS NOT NULL AND amount >= 10000 AND new_payee),
        u AS (SELECT caller, seq FROM call
              WHERE caller IS NOT NULL AND {in_list('callee', plan.lists['bank_hotlines'])})
        SELECT DISTINCT p.id, p.payer_phone AS k, p.t, p.seq FROM c JOIN p
            ON c.callee = p.payer_phone AND c.t >= p.t - {within} AND c.t <= p.t AND c.seq < p.seq
        WHERE NOT EXISTS (SELECT 1 FROM u WHERE u.caller = c.callee AND u.seq > c.seq AND u.seq < p.seq)"""


def _pass(plan, rp) -> str:
    within = rp.within_ns
    return f"""WITH i AS (SELECT payer_account, payee_account, amount, t, seq FROM payment
                      WHERE payee_account IS NOT NULL AND amount >= 5000),
             o AS (SELECT id, payer_account, payee_account, amount, t, seq FROM payment
                   WHERE payer_account IS NOT NULL)
        SELECT DISTINCT o.id, o.payer_account AS k, o.t, o.seq FROM i JOIN o
            ON i.payee_account = o.payer_account AND i.t >= o.t - {within} AND i.t <= o.t AND i.seq < o.seq
        WHERE o.amount >= 0.9::DOUBLE * i.amount AND o.payee_account != i.payer_account"""


def _swap(plan, rp) -> str:
    within = rp.within_ns
    return f"""WITH s AS (SELECT msisdn, t, seq FROM sim_event WHERE msisdn IS NOT NULL AND event = 'swap'),
             p AS (SELECT * FROM (SELECT id, payer_phone, t, seq, amount, {_is_new(90 * D)} AS new_payee
                                  FROM payment)
                   WHERE payer_phone IS NOT NULL AND (amount >= 20000 OR new_payee))
        SELECT DISTINCT p.id, p.payer_phone AS k, p.t, p.seq FROM s JOIN p
            ON s.msisdn = p.payer_phone AND s.t >= p.t - {within} AND s.t <= p.t AND s.seq < p.seq"""


EXACT_NOTE = "exact"
RULE_SQL: dict[str, RuleSQL] = {
    "TF-HRJ-001": RuleSQL(2, True, EXACT_NOTE, _hrj),
    "TF-REP-001": RuleSQL(1, True, EXACT_NOTE, _rep),
    "TF-REP-002": RuleSQL(1, True, EXACT_NOTE, _rep_number),
    "TF-NIGHT-001": RuleSQL(1, True, "exact (hour() with ICU time zones)", _night),
    "TF-STRUCT-001": RuleSQL(1, True, "exact (window sum on scaled integers, ties in ts handled)", _struct),
    "TF-WANGIRI-001": RuleSQL(2, True, "exact (distinct() as a range self-join)", _wangiri),
    "TF-DIALER-001": RuleSQL(1, True, "exact (distinct() as a range self-join)", _dialer),
    "TF-IRSF-001": RuleSQL(1, True, EXACT_NOTE, _irsf),
    "TF-APP-001": RuleSQL(4, True, "exact (overseas() is the same prefix regex)", _app),
    "TF-PASS-001": RuleSQL(1, True, "exact (follows = join on inflow.payee_account)", _pass),
    "TF-SWAP-001": RuleSQL(1, True, EXACT_NOTE, _swap),
}
ALL_EXACT_CAVEAT = ("The SQL compares phone numbers as written, without E.164 normalisation, and checks no "
                    "rejects: exact for inputs whose numbers are already E.164 and that have no bad rows, "
                    "as the generator writes them.")


def rule_statements(plan) -> tuple[list[tuple[str, str]], dict[str, str], list[str]]:
    stmts, status = [], {}
    selects = []
    for rp in plan.rules:
        spec = RULE_SQL.get(rp.id)
        if spec is None:
            status[rp.id] = "no SQL"
            continue
        if spec.version != rp.rule.version:
            status[rp.id] = f"SQL written for v{spec.version}, rule is v{rp.rule.version}"
        else:
            status[rp.id] = "exact" if spec.exact else "approx"
        table = "alerts_" + re.sub(r"\W", "_", rp.id)
        sql = suppressed(spec.candidates(plan, rp), rp.suppress_ns)
        stmts.append((rp.id, f"CREATE TABLE {table} AS SELECT {q(rp.id)} AS rule_id, id AS record_id FROM ({sql})"))
        selects.append(f"SELECT * FROM {table}")
    return stmts, status, selects


def duckdb_script(inputs, rules: Path, out_csv: Path) -> tuple[list[tuple[str, str]], dict[str, str]]:
    sys.path.insert(0, str(REPO))
    from fraudrules.pack.loader import load_pack
    from fraudrules.runtime.plan import compile_pack

    pack = load_pack(rules)
    plan = compile_pack(pack)
    stmts = load_statements(inputs, pack.schema)
    rule_stmts, status, selects = rule_statements(plan)
    stmts += rule_stmts
    union = " UNION ALL ".join(selects) if selects else "SELECT NULL AS rule_id, NULL AS record_id WHERE false"
    stmts.append(("write ids", f"COPY ({union} ORDER BY rule_id, record_id) TO {q(out_csv)} (HEADER, DELIMITER ',')"))
    return stmts, status


# --- children (run in their own process) ----------------------------------------------------


def child_duckdb(script: str) -> None:
    import duckdb

    stmts = json.loads(Path(script).read_text())
    con = duckdb.connect()
    timings = {}
    for label, sql in stmts:
        t0 = time.perf_counter()
        con.execute(sql)
        timings[label] = time.perf_counter() - t0
    print(json.dumps({"timings": timings, "threads": con.execute("SELECT current_setting('threads')").fetchone()[0]}))


def child_pyarrow(paths: list[str]) -> None:
    import pyarrow.csv as pa_csv

    rows = 0
    for p in paths:
        rows += pa_csv.read_csv(p).num_rows
    print(json.dumps({"rows": rows}))


# engine functions whose CPU time --split reports: (module, attribute, label); few calls each, so the
# wrappers cost nothing measurable (unlike cProfile, which inflates phonenumbers' many small calls ~5x)
SPLIT = [
    ("fraudrules.jobs.score", "load_pack", "load rules"),
    ("fraudrules.jobs.score", "read_inputs", "read: total (records.read_inputs)"),
    ("fraudrules.io.records", "normalise_native", "read: typing of every column (records.normalise_native)"),
    ("fraudrules.io.records", "_phones", "read: E.164 normalisation (records._phones)"),
    ("fraudrules.jobs.score", "evaluate", "evaluate: total (job.evaluate)"),
    ("fraudrules.executors.batch.BatchExecutor", "run", "evaluate: executor (BatchExecutor.run)"),
    ("fraudrules.executors.batch.AggregateStore", "_compute", "evaluate: window aggregates (AggregateStore._compute)"),
    ("fraudrules.runtime.windows", "composite_searchsorted",
     "evaluate: window starts (windows.composite_searchsorted)"),
    ("fraudrules.columns.phones", "country", "evaluate: country() (phones.country)"),
    ("fraudrules.runtime.evaluate.ListMatcher", "contains", "evaluate: @list membership (ListMatcher.contains)"),
    ("fraudrules.executors.batch.BatchExecutor", "_extend", "evaluate: sequence joins (BatchExecutor._extend)"),
    ("fraudrules.runtime.windows", "previous_same", "evaluate: distinct()/is_new() (windows.previous_same)"),
    ("fraudrules.jobs.score", "build_alerts", "evaluate: build_alerts"),
    ("fraudrules.jobs.score", "scored_frame", "evaluate: scored_frame"),
    ("fraudrules.jobs.score", "write_outputs", "write: total (job.write_outputs)"),
    ("fraudrules.jobs.score", "write_frame", "write: scored + rejects (sinks.write_frame)"),
]


def child_split(data: str, rules: str, out: str, *rule_ids: str) -> None:
    """CPU time of one in-process engine score + write, split over the functions in SPLIT."""
    import functools
    import importlib

    sys.path.insert(0, str(REPO))
    acc: dict[str, float] = {}
    for target, attr, label in SPLIT:
        parts = target.split(".")
        try:
            owner = importlib.import_module(".".join(parts[:2]))
            for p in parts[2:]:
                owner = getattr(owner, p)
            fn = getattr(owner, attr)
        except (ImportError, AttributeError):
            continue  # the engine changed: skip what is gone

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

    c0, w0 = time.process_time(), time.perf_counter()
    pack = load_pack(rules)
    result = job.score(rules, parse_inputs([data], pack.schema), pack=pack, rule_ids=set(rule_ids) or None)
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


def measure(run: Run, cmd: list[str], logdir: Path) -> None:
    """Run ``cmd`` once; wall seconds and peak RSS of that process (and the children it waited for)."""
    out, err = logdir / f"{run.name}.stdout", logdir / f"{run.name}.stderr"
    with open(out, "wb") as fo, open(err, "wb") as fe:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=fo, stderr=fe)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    run.stdout, run.stderr = out.read_text(), err.read_text()
    if proc.returncode != 0:
        raise SystemExit(f"{run.name} failed ({proc.returncode}): {' '.join(cmd)}\n{run.stderr[-3000:]}")
    run.seconds.append(seconds)
    run.rss_mb.append(usage.ru_maxrss / 1024)  # Linux: KiB
    run.cpu.append(usage.ru_utime + usage.ru_stime)


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
        child_duckdb(argv[1])
        return 0
    if argv[:1] == ["_split"]:
        child_split(*argv[1:])
        return 0
    if argv[:1] == ["_pyarrow"]:
        child_pyarrow(argv[1:])
        return 0
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
    ap.add_argument("--rules", type=Path, default=None,
                    help="rule pack folder (default: rules/ as committed at --rules-rev, not the work tree)")
    ap.add_argument("--rules-rev", default="HEAD", help="git revision whose rules/ is benchmarked (default HEAD)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per contender; the median time is shown")
    ap.add_argument("--contenders", default="pyarrow,engine,duckdb",
                    help="comma-separated subset of pyarrow, engine, duckdb")
    ap.add_argument("--profile", action="store_true",
                    help="also run the engine once under cProfile and print its top functions by cumulative time")
    ap.add_argument("--split", action="store_true",
                    help="also run the engine once in-process and print its CPU time split by stage")
    a = ap.parse_args(argv)
    py = sys.executable
    a.workdir.mkdir(parents=True, exist_ok=True)
    if a.rules is None:
        a.rules, rules_about = export_rules(a.workdir, a.rules_rev)
    else:
        a.rules, rules_about = a.rules.resolve(), str(a.rules)
    if a.data is not None:
        data = a.data.resolve()
        inputs = input_files(data, a.rules)
        info = {"files": {p.name: count_rows(p) for _, p in inputs}}
        run_dir = a.workdir / ("run-" + re.sub(r"\W+", "_", str(data)).strip("_"))
        about = "given folder"
    else:
        data, info = ensure_data(a.workdir, a.records, a.days, a.seed, a.case_rate)
        inputs = input_files(data, a.rules)
        run_dir = a.workdir / ("run-" + data.name.removeprefix("data-"))
        about = (f"{info['customers']:,} customers x {info['days']} days, seed {info['seed']}"
                 + (f", case rate {a.case_rate:g}" if a.case_rate is not None else ""))
    n = sum(info["files"][p.name] for _, p in inputs)
    run_dir.mkdir(exist_ok=True)
    print(f"data: {data} ({n:,} records: " + ", ".join(f"{s} {info['files'][p.name]:,}" for s, p in inputs)
          + f"; {about})", flush=True)
    print(f"rules: {rules_about} ({a.rules})", flush=True)

    duck_ids_csv = run_dir / "duckdb_alert_ids.csv"
    stmts, status = duckdb_script(inputs, a.rules, duck_ids_csv)
    script = run_dir / "duckdb_statements.json"
    script.write_text(json.dumps(stmts, indent=1))
    (run_dir / "duckdb_rules.sql").write_text(";\n\n".join(f"-- {label}\n{sql}" for label, sql in stmts) + ";\n")
    engine_out = run_dir / "engine-out"
    # the engine evaluates the same rules as the SQL: a pack rule without SQL is left out of both
    with_sql = [r for r, st in status.items() if st != "no SQL"]
    rule_args = [x for r in with_sql for x in ("--rule", r)] if len(with_sql) < len(status) else []
    if rule_args:
        print(f"rules without SQL, left out of the engine run too: "
              f"{', '.join(r for r, st in status.items() if st == 'no SQL')}", flush=True)
    commands = {
        "pyarrow": [py, str(Path(__file__).resolve()), "_pyarrow", *[str(p) for _, p in inputs]],
        "engine": [py, "cli.py", "score", str(data), "--rules", str(a.rules), "--out", str(engine_out), "-q",
                   *rule_args],
        "duckdb": [py, str(Path(__file__).resolve()), "_duckdb", str(script)],
    }
    wanted = [c.strip() for c in a.contenders.split(",") if c.strip()]
    unknown = [c for c in wanted if c not in commands]
    if unknown:
        ap.error(f"unknown contender(s): {', '.join(unknown)}")
    runs = {name: Run(name) for name in wanted}
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    for _ in range(a.repeat):
        for name in wanted:
            measure(runs[name], commands[name], run_dir)
            r = runs[name]
            print(f"  {name}: {r.seconds[-1]:.2f} s, CPU {r.cpu[-1]:.2f} s, {r.rss_mb[-1]:.0f} MB", flush=True)

    ids: dict[str, dict[str, set[str]]] = {}
    notes: dict[str, str] = {}
    if "engine" in runs:
        ids["engine"] = engine_alert_ids(engine_out / "alerts.jsonl")
        m = re.search(r"in ([0-9.]+)s = ", runs["engine"].stderr)
        if m:
            notes["engine"] = f"score() {float(m.group(1)):.2f} s (read + evaluate + build alerts)"
    if "duckdb" in runs:
        ids["duckdb"] = duckdb_alert_ids(duck_ids_csv)
        info_d = json.loads(runs["duckdb"].stdout.strip().splitlines()[-1])
        t = info_d["timings"]
        load = sum(v for k, v in t.items() if k.startswith(("read ", "view ", "setup")))
        rules_s = sum(v for k, v in t.items() if k in status)
        notes["duckdb"] = f"read_csv {load:.2f} s, rules {rules_s:.2f} s, {info_d['threads']} threads"
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
        for rule_id, spec in RULE_SQL.items():
            if rule_id in status and not spec.exact:
                print(f"{rule_id}: {spec.note}")
        print(ALL_EXACT_CAVEAT)
        for rule_id, (only_e, only_d) in disagreements.items():
            print(f"{rule_id}: only engine {only_e[:10]}{' ...' if len(only_e) > 10 else ''}; "
                  f"only duckdb {only_d[:10]}{' ...' if len(only_d) > 10 else ''}")
        print(f"(SQL in {run_dir / 'duckdb_rules.sql'}, ids in {duck_ids_csv})")

    if a.profile:
        prof = run_dir / "fraudrules.pstats"
        cmd = [py, "-m", "cProfile", "-o", str(prof), "cli.py", "score", str(data), "--rules", str(a.rules),
               "--out", str(run_dir / "engine-profile-out"), "-q", *rule_args]
        subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import pstats

        print()
        print(f"engine under cProfile ({prof}), top 30 by cumulative time:")
        pstats.Stats(str(prof)).sort_stats("cumulative").print_stats(30)
    if a.split:
        print()
        subprocess.run([py, str(Path(__file__).resolve()), "_split", str(data), str(a.rules),
                        str(run_dir / "engine-split-out"), *rule_args[1::2]], cwd=REPO, check=True)
    m = machine()
    print()
    print(f"machine: {m['nproc']} cpus ({m['cpu']}), {m['ram']} RAM, Python {m['python']}; {m['packages']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
