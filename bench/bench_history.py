#!/usr/bin/env python
"""History and chunking benchmark: daily runs against one run, the store's size, and peak memory
when one ``score`` call holds more records than fit (docs/design.md §8), beside DuckDB.

A benchmark, not a test: it prints timings and memory, it asserts nothing about them. It does
check, and print, that the alerts are the same bytes however the records were cut.

    python bench/bench_history.py                          # as in docs/benchmarks.md (20M takes long)
    python bench/bench_history.py --records 300000         # smoke run: every part, small
    python bench/bench_history.py --parts daily,store,fit,hold
    python bench/bench_history.py --parts big              # the one-call run alone

Parts (``--parts``, default all):

* ``daily``: ``--daily-records`` records over ``--days`` days (generated, then cut into one folder
  per local day of the data, every row's bytes kept), scored one day at a time with
  ``fraudrules score day_k/ --history H --out out_k -q``, one subprocess per day; then one run over
  the whole folder, in memory (``--memory-rows`` above its size). Prints total and per-run time,
  the peak RSS of the largest run, and whether the daily alert files, concatenated, are the one
  run's file byte for byte (and the scored records, but for their input file and line).
* ``store``: the history store after the daily runs: bytes of Parquet on disk, the records and
  columns it keeps, and bytes per 1M kept records.
* ``fit``: ``--fit-records`` records scored unchunked (``--memory-rows`` above the size) and
  chunked (``--memory-rows --chunk-memory-rows``): time, peak RSS, and whether alerts and scored
  records are the same bytes.
* ``hold``: records held in memory, beside a peer. The engine reads and types every record
  (``read_inputs``, what a run holds before it evaluates); DuckDB reads the same CSV files into
  in-memory tables (``CREATE TABLE t AS SELECT * FROM read_csv(...)``). Peak RSS, and RSS held
  after the read above the process's RSS before it, per 1M records.
* ``big``: ``--records`` records in one ``score`` call with ``--memory-rows --chunk-memory-rows``
  (spilled, scored in chunks). The child logs its RSS when the read ends, as each chunk starts
  and when the chunks are done, with the peak RSS since the mark before (it resets its high-water
  mark through /proc/self/clear_refs), so the table gives each phase's own peak and says which
  phase sets the run's. This run is slow: a chunk is evaluated together with the context carried
  from the chunks before it (20M records: about 30 min here).

Every contender runs in its own subprocess; peak RSS is that process's ``ru_maxrss`` (from
``os.wait4``), wall time includes interpreter start-up. Data are generated once per size with
``fraudrules.synth.generate`` (about 7.6 records per customer-day) and cached in ``--workdir``;
the rule pack is ``rules/`` as committed at ``--rules-rev`` (HEAD), exported there too, so that
rule edits in the work tree do not change the figures.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
from bench_batch import ensure_data, export_rules, fmt_table, machine  # noqa: E402

CLI = [sys.executable, "-m", "fraudrules"]
STREAM_FILES = ("call.csv", "payment.csv", "sim_event.csv", "sms.csv")
LOCAL = dt.timezone(dt.timedelta(hours=8))  # the generator writes local times at +08:00
PARTS = ("daily", "store", "fit", "hold", "big")


# --- running one contender ----------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    rss_mb: float  # peak RSS, ru_maxrss of the child (and the children it waited for)
    cpu: float  # user + system seconds
    stdout: str
    stderr: str


def measure(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> Run:
    """Run ``cmd`` in its own process, to the end; its wall time, peak RSS and CPU time."""
    out, err = log.with_suffix(".stdout"), log.with_suffix(".stderr")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as fo, open(err, "wb") as fe:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=fo, stderr=fe, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    run = Run(seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, out.read_text(), err.read_text())
    if code != 0:
        raise SystemExit(f"failed ({code}): {' '.join(cmd)}\n{run.stderr[-3000:]}")
    return run


def score_cmd(inputs: Path, out: Path, rules: Path, *extra: str) -> list[str]:
    return [*CLI, "score", str(inputs), "--rules", str(rules), "--out", str(out), "-q", *extra]


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    return path


# Files are compared by streaming digests: this process must stay small, because a child's ru_maxrss
# starts from the high-water mark of the process it was forked from (Linux keeps it across exec).


def digest(paths: list[Path], strip: re.Pattern | None = None) -> tuple[str, int]:
    """SHA-256 and line count of the files, one after the other (optionally with ``strip`` removed per line)."""
    h = hashlib.sha256()
    lines = 0
    for path in paths:
        with open(path, "rb") as fh:
            for line in fh:
                h.update(strip.sub(b"", line) if strip is not None else line)
                lines += 1
    return h.hexdigest(), lines


def same_bytes(a: Path, b: Path) -> bool:
    return digest([a]) == digest([b])


# a scored record without its input file and line (each day's run has its own)
WHERE = re.compile(rb'"input":"(?:[^"\\]|\\.)*","line":\d+,')


def own_hwm() -> float:
    """This process's RSS high-water mark, MB: the floor of every child's peak RSS."""
    with open("/proc/self/status") as fh:
        return next(int(ln.split()[1]) / 1024 for ln in fh if ln.startswith("VmHWM:"))


def mb(x: float) -> str:
    return f"{x:,.0f}"


def dataset(a, records: int) -> tuple[Path, dict]:
    """The cached generated folder of about ``records`` records, generated in a child process (the
    generator holds the whole data set; this process should not keep that memory)."""
    subprocess.run([sys.executable, __file__, "_generate", str(a.workdir), str(records), str(a.days), str(a.seed)],
                   cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return ensure_data(a.workdir, records, a.days, a.seed, None)


def child_generate(workdir: str, records: str, days: str, seed: str) -> None:
    ensure_data(Path(workdir), int(records), int(days), int(seed), None)


# --- cutting a generated folder into days ---------------------------------------------------------


def split_days(data: Path, dest: Path) -> list[Path]:
    """One folder per local day of the generated window, with each stream's rows of that day.

    Rows keep their bytes and their order; rows before the window (the generator writes payment and
    SIM history years back) go to the first day, rows after it to the last. Each folder holds the
    same four files, so the input order inside a day is the one-run order.
    """
    done = dest / "days.json"
    if done.exists():
        return [dest / d for d in json.loads(done.read_text())]
    shutil.rmtree(dest, ignore_errors=True)
    window = _window(data / "call.csv")
    names = [f"day{i + 1:02d}" for i in range(len(window))]
    for name in names:
        (dest / name).mkdir(parents=True)
    for fname in STREAM_FILES:
        with open(data / fname, encoding="utf-8", newline="") as fh:
            header = fh.readline()
            col = next(csv.reader([header])).index("ts")
            outs = [open(dest / n / fname, "w", encoding="utf-8", newline="") for n in names]  # noqa: SIM115
            try:
                for out in outs:
                    out.write(header)
                for line in fh:
                    day = _local_day(next(csv.reader([line]))[col])
                    i = 0 if day < window[0] else min(len(window) - 1, (day - window[0]).days)
                    outs[i].write(line)
            finally:
                for out in outs:
                    out.close()
    done.write_text(json.dumps(names))
    return [dest / n for n in names]


def _local_day(ts: str) -> dt.date:
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(LOCAL).date()


def _window(calls: Path) -> list[dt.date]:
    """The local days of the generated window: those of the first and last call, and between."""
    with open(calls, encoding="utf-8", newline="") as fh:
        rows = csv.DictReader(fh)
        first = last = None
        for row in rows:
            day = _local_day(row["ts"])
            first = day if first is None or day < first else first
            last = day if last is None or day > last else last
    assert first is not None and last is not None, f"{calls}: no calls"
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def count_records(folder: Path) -> int:
    n = 0
    for fname in STREAM_FILES:
        with open(folder / fname, "rb") as fh:
            n += sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 20), b"")) - 1
    return n


# --- children -------------------------------------------------------------------------------------


def rss_now() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process in MB: resident now, and the high-water mark so far."""
    vals = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                vals[key] = int(value.split()[0]) / 1024
    return vals.get("VmRSS", 0.0), vals.get("VmHWM", 0.0)


def child_hold_engine(folder: str, rules: str) -> None:
    """Read and type every record of ``folder`` and keep them: what a run holds before it evaluates."""
    import gc

    from fraudrules.io.records import parse_inputs, read_inputs
    from fraudrules.pack.loader import load_pack

    pack = load_pack(rules)
    specs = parse_inputs([folder], pack.schema)
    gc.collect()
    before = rss_now()[0]
    records = read_inputs(specs, pack.schema)
    gc.collect()
    after = rss_now()[0]
    try:  # what is live, once the allocators hand back what they keep (chunked scoring does this)
        from fraudrules.io.arrow import release_memory
    except ImportError:  # an engine from before release_memory
        release_memory = gc.collect
    release_memory()
    print(json.dumps({"records": records.total, "rss_before": before, "rss_after": after,
                      "rss_released": rss_now()[0]}))


def child_hold_duckdb(folder: str) -> None:
    """DuckDB reads the same CSV files into in-memory tables (every column, types sniffed)."""
    import duckdb

    con = duckdb.connect()
    con.execute("SELECT 1").fetchall()
    before = rss_now()[0]
    n = 0
    for fname in STREAM_FILES:
        table = fname.removesuffix(".csv")
        path = str(Path(folder) / fname).replace("'", "''")
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_csv('{path}', header = true)")
        n += con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    after = rss_now()[0]
    print(json.dumps({"records": n, "rss_before": before, "rss_after": after,
                      "threads": con.execute("SELECT current_setting('threads')").fetchone()[0]}))


def reset_hwm() -> bool:
    """Reset this process's RSS high-water mark to its RSS now (Linux >= 4.0), so that the next
    reading of VmHWM is the peak of what ran in between."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def child_score_logged(log: str, *args: str) -> None:
    """``fraudrules score ARGS``, logging one JSON line when the read ends, as each chunk starts and
    when the chunks are done: the time, RSS, and the RSS peak since the line before (the high-water
    mark is reset after each line), to tell which phase sets the peak."""
    from fraudrules.cli import main
    from fraudrules.io import spill

    chunks = spill.Spill.chunks
    t0 = time.perf_counter()

    def note(fh, what: str, **more: object) -> None:
        rss, hwm = rss_now()
        reset = reset_hwm()
        fh.write(json.dumps({"at": what, "s": round(time.perf_counter() - t0, 1), "rss": rss, "peak": hwm,
                             "reset": reset, **more}) + "\n")
        fh.flush()

    def logged(self):
        with open(log, "a", encoding="utf-8") as fh:
            note(fh, "read done", rows=self.rows)
            for i, tables in enumerate(chunks(self), start=1):
                note(fh, f"chunk {i} starts", rows=sum(t.n for t in tables.values()))
                yield tables
            note(fh, "chunks done")

    spill.Spill.chunks = logged
    sys.argv = ["fraudrules", "score", *args]
    main()


# --- parts ------------------------------------------------------------------------------------------


def part_daily(a, rules: Path, out: dict) -> None:
    data, info = dataset(a, a.daily_records)
    root = a.workdir / f"history-{data.name.removeprefix('data-')}"
    days = split_days(data, root / "days")
    n = count_records(data)
    print(f"\n## daily: {n:,} records, {len(days)} daily runs against one run ({data})", flush=True)
    hist = fresh(root / "hist")
    outs = []
    runs: list[Run] = []
    for day in days:
        o = fresh(root / f"out-{day.name}")
        runs.append(measure(score_cmd(day, o, rules, "--history", str(hist)), root / "logs" / day.name))
        outs.append(o)
        print(f"  {day.name}: {count_records(day):,} records, {runs[-1].seconds:.2f} s, {runs[-1].rss_mb:,.0f} MB",
              flush=True)
    one_out = fresh(root / "out-one")
    one = measure(score_cmd(data, one_out, rules, "--memory-rows", str(2 * n + 1000)), root / "logs" / "one")
    print(f"  one run: {one.seconds:.2f} s, {one.rss_mb:,.0f} MB", flush=True)

    daily_alerts, one_alerts = digest([o / "alerts.jsonl" for o in outs]), digest([one_out / "alerts.jsonl"])
    same_alerts = daily_alerts == one_alerts
    same_scored = digest([o / "scored.jsonl" for o in outs], WHERE) == digest([one_out / "scored.jsonl"], WHERE)
    alerts, one_alerts = daily_alerts[1], one_alerts[1]
    largest = max(range(len(runs)), key=lambda i: runs[i].rss_mb)
    secs = [r.seconds for r in runs]
    rows = [
        [f"{len(runs)} daily runs", f"{sum(secs):.1f}", f"{statistics.median(secs):.2f}", f"{max(secs):.2f}",
         f"{sum(r.cpu for r in runs):.1f}", mb(runs[largest].rss_mb), f"{alerts:,}",
         f"largest: {days[largest].name}"],
        ["one run", f"{one.seconds:.1f}", f"{one.seconds:.2f}", f"{one.seconds:.2f}", f"{one.cpu:.1f}",
         mb(one.rss_mb), f"{one_alerts:,}", "in memory"],
    ]
    print()
    print(fmt_table(["runs", "total s", "median s/run", "max s/run", "CPU s", "peak RSS MB", "alerts", "notes"],
                    rows, {1, 2, 3, 4, 5, 6}))
    print(f"\nconcatenated daily alerts.jsonl == one-run alerts.jsonl, byte for byte: {'yes' if same_alerts else 'NO'}")
    print(f"concatenated daily scored.jsonl == one-run scored.jsonl, but for input and line: "
          f"{'yes' if same_scored else 'NO'}")
    out["daily"] = {"records": n, "days": len(runs), "seconds": secs, "rss_mb": [r.rss_mb for r in runs],
                    "cpu": [r.cpu for r in runs], "one": {"seconds": one.seconds, "rss_mb": one.rss_mb, "cpu": one.cpu},
                    "alerts": alerts, "same_alerts": same_alerts, "same_scored": same_scored,
                    "largest_day": days[largest].name, "hist": str(hist), "generated": info}


def child_store_stats(hist: str) -> None:
    """Per stream of the store's live state: files, records kept, columns, bytes on disk."""
    import pyarrow.parquet as pq

    root = Path(hist)
    manifest = json.loads((root / "manifest.json").read_text())
    state = manifest["state"]
    streams = {}
    for stream, files in sorted(state["records"].items()):
        streams[stream] = {"files": len(files), "columns": len(state["columns"].get(stream, [])),
                           "rows": sum(pq.ParquetFile(root / f).metadata.num_rows for f in files),
                           "bytes": sum((root / f).stat().st_size for f in files)}
    last = root / state["last_alerts"] if state.get("last_alerts") else None
    print(json.dumps({"runs": len(manifest["runs"]), "streams": streams,
                      "last_alerts": last.stat().st_size if last else 0,
                      "all_parquet": sum(p.stat().st_size for p in root.rglob("*.parquet"))}))


def part_store(a, rules: Path, out: dict) -> None:
    hist = Path(out.get("daily", {}).get("hist", ""))
    if not (hist / "manifest.json").exists():
        data, _ = dataset(a, a.daily_records)
        hist = a.workdir / f"history-{data.name.removeprefix('data-')}" / "hist"
    if not (hist / "manifest.json").exists():
        print("\n## store: no history store yet; run the daily part first")
        return
    stats = json.loads(subprocess.run([sys.executable, __file__, "_store_stats", str(hist)], cwd=REPO, check=True,
                                      capture_output=True, text=True).stdout)
    rows, total_rows, total_bytes = [], 0, 0
    for stream, st in stats["streams"].items():
        total_rows += st["rows"]
        total_bytes += st["bytes"]
        rows.append([stream, f"{st['rows']:,}", str(st["columns"]), f"{st['files']}", f"{st['bytes'] / 2**20:,.1f}",
                     f"{st['bytes'] / max(st['rows'], 1) * 1e6 / 2**20:,.0f}"])
    rows.append(["all kept records", f"{total_rows:,}", "", "", f"{total_bytes / 2**20:,.1f}",
                 f"{total_bytes / max(total_rows, 1) * 1e6 / 2**20:,.0f}"])
    print(f"\n## store: {hist} after {stats['runs']} runs")
    print()
    print(fmt_table(["stream", "records kept", "columns (and _order)", "files", "MB on disk", "MB per 1M records"],
                    rows, {1, 2, 3, 4, 5}))
    print(f"\nlast alerts: {stats['last_alerts'] / 1024:,.1f} KB; every Parquet file the store holds (this state "
          f"and the one before, for --replace-run): {stats['all_parquet'] / 2**20:,.1f} MB")
    out["store"] = {"kept": total_rows, "bytes": total_bytes, **stats}


def part_fit(a, rules: Path, out: dict) -> None:
    data, _ = dataset(a, a.fit_records)
    n = count_records(data)
    root = a.workdir / f"fit-{data.name.removeprefix('data-')}"
    print(f"\n## fit: {n:,} records, unchunked against chunked ({data})", flush=True)
    whole = measure(score_cmd(data, fresh(root / "out-whole"), rules, "--memory-rows", str(2 * n + 1000)),
                    root / "logs" / "whole")
    print(f"  unchunked: {whole.seconds:.1f} s, {whole.rss_mb:,.0f} MB", flush=True)
    chunked = measure(score_cmd(data, fresh(root / "out-chunked"), rules, "--memory-rows", str(a.chunk_memory_rows),
                                "--spill-dir", str(root / "spill")), root / "logs" / "chunked")
    print(f"  chunked: {chunked.seconds:.1f} s, {chunked.rss_mb:,.0f} MB", flush=True)
    summary = json.loads((root / "out-chunked" / "summary.json").read_text())
    same_alerts = same_bytes(root / "out-whole" / "alerts.jsonl", root / "out-chunked" / "alerts.jsonl")
    same_scored = same_bytes(root / "out-whole" / "scored.jsonl", root / "out-chunked" / "scored.jsonl")
    alerts = digest([root / "out-whole" / "alerts.jsonl"])[1]
    rows = [["unchunked", f"--memory-rows {2 * n + 1000:,}", f"{whole.seconds:.1f}", f"{whole.cpu:.1f}",
             f"{n / whole.seconds:,.0f}", mb(whole.rss_mb), f"{alerts:,}"],
            ["chunked", f"--memory-rows {a.chunk_memory_rows:,}", f"{chunked.seconds:.1f}", f"{chunked.cpu:.1f}",
             f"{n / chunked.seconds:,.0f}", mb(chunked.rss_mb),
             f"{summary['alerts']:,}"]]
    print()
    print(fmt_table(["run", "options", "seconds", "CPU s", "records/s", "peak RSS MB", "alerts"], rows,
                    {2, 3, 4, 5, 6}))
    print(f"\nchunked == unchunked, byte for byte: alerts.jsonl {'yes' if same_alerts else 'NO'}, "
          f"scored.jsonl {'yes' if same_scored else 'NO'}")
    out["fit"] = {"records": n, "whole": vars(whole) | {"stdout": "", "stderr": ""},
                  "chunked": vars(chunked) | {"stdout": "", "stderr": ""}, "memory_rows": a.chunk_memory_rows,
                  "alerts": alerts, "same_alerts": same_alerts, "same_scored": same_scored}


def part_hold(a, rules: Path, out: dict) -> None:
    sizes = sorted({a.daily_records, a.fit_records})
    print(f"\n## hold: records held in memory, engine and DuckDB ({', '.join(f'{s:,}' for s in sizes)} records)",
          flush=True)
    rows = []
    res = {}
    for size in sizes:
        data, _ = dataset(a, size)
        logs = a.workdir / f"hold-{data.name.removeprefix('data-')}"
        for name, cmd in (("engine", [sys.executable, __file__, "_hold_engine", str(data), str(rules)]),
                          ("duckdb", [sys.executable, __file__, "_hold_duckdb", str(data)])):
            run = measure(cmd, logs / name)
            info = json.loads(run.stdout.strip().splitlines()[-1])
            n = info["records"]
            held = info["rss_after"] - info["rss_before"]
            live = info.get("rss_released", info["rss_after"]) - info["rss_before"]
            rows.append([name, f"{n:,}", f"{run.seconds:.1f}", mb(run.rss_mb), mb(info["rss_before"]), mb(held),
                         f"{held / n * 1e6:,.0f}", f"{live / n * 1e6:,.0f}" if "rss_released" in info else "-",
                         f"{run.rss_mb / n * 1e6:,.0f}"])
            res[f"{name}-{size}"] = {"records": n, "seconds": run.seconds, "peak": run.rss_mb, **info}
            print(f"  {name} {n:,}: {run.seconds:.1f} s, peak {run.rss_mb:,.0f} MB, held {held:,.0f} MB", flush=True)
    print()
    print(fmt_table(["who", "records", "seconds", "peak RSS MB", "RSS before read MB", "held after read MB",
                     "held MB per 1M", "after release, per 1M", "peak MB per 1M"], rows, {1, 2, 3, 4, 5, 6, 7, 8}))
    print("\nengine: read_inputs of every record, typed (numpy; text as shared Python str); 'after release' is "
          "after io.arrow.release_memory(), what is live. duckdb: CREATE TABLE ... AS SELECT * FROM read_csv(...) "
          "per file, in memory, default threads. Held = RSS after the read - RSS before it.")
    out["hold"] = res


def part_big(a, rules: Path, out: dict) -> None:
    data, info = dataset(a, a.records)
    n = count_records(data)
    root = a.workdir / f"big-{data.name.removeprefix('data-')}"
    log = fresh(root) / "phases.jsonl"
    size = sum((data / f).stat().st_size for f in STREAM_FILES)
    print(f"\n## big: {n:,} records ({size / 2**30:.2f} GiB of CSV) in one score call, --memory-rows "
          f"{a.chunk_memory_rows:,} ({data}; generated in {info.get('seconds', '?')} s)", flush=True)
    args = [str(data), "--rules", str(rules), "--out", str(root / "out"), "-q",
            "--memory-rows", str(a.chunk_memory_rows), "--spill-dir", str(root / "spill")]
    run = measure([sys.executable, __file__, "_score_logged", str(log), *args], root / "score")
    phases = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    summary = json.loads((root / "out" / "summary.json").read_text())
    print(f"  {run.seconds:,.0f} s ({n / run.seconds:,.0f} records/s), CPU {run.cpu:,.0f} s, "
          f"{summary['alerts']:,} alerts", flush=True)
    # each logged peak is that of the phase that ended at the line (the mark is reset at every line);
    # what ran after the last line (writing alerts and the summary) is in ru_maxrss
    rows = []
    for p in phases:
        if p["at"] == "read done":
            name = "read: parse, type and spill every input"
        elif p["at"] == "chunk 1 starts":
            name = "chunk 1: read back"
        elif p["at"].endswith(" starts"):
            k = int(p["at"].split()[1])
            name = f"chunk {k - 1}: evaluate, write; chunk {k}: read back"
        else:
            name = "last chunk: evaluate, write"
        rows.append([name, f"{p['s']:,.0f}", f"{p['rows']:,}" if "rows" in p else "", mb(p["rss"]), mb(p["peak"])])
    resets = bool(phases) and all(p.get("reset") for p in phases)
    if resets:
        rows.append(["after the chunks: alerts, summary", f"{run.seconds:,.0f}", "", "", mb(run.rss_mb)])
    peak = max([run.rss_mb, *(p["peak"] for p in phases)])
    print(f"  peak RSS of the run: {peak:,.0f} MB" + ("" if resets else " (the high-water mark could not be "
                                                       "reset: each peak below is the peak so far)"))
    if rows:
        print()
        print(fmt_table(["phase", "ends at s", "rows read", "RSS at its end MB", "peak RSS in it MB"], rows,
                        {1, 2, 3, 4}))
        worst = max(range(len(rows)), key=lambda i: float(rows[i][4].replace(",", "") or 0))
        print(f"\nthe peak is set in: {rows[worst][0]}")
    out["big"] = {"records": n, "csv_bytes": size, "seconds": run.seconds, "cpu": run.cpu, "rss_mb": peak,
                  "alerts": summary["alerts"], "memory_rows": a.chunk_memory_rows, "phases": phases,
                  "generated": info}


# --- main ------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    children = {"_hold_engine": child_hold_engine, "_hold_duckdb": child_hold_duckdb,
                "_score_logged": child_score_logged, "_generate": child_generate,
                "_store_stats": child_store_stats}
    if argv[:1] and argv[0] in children:
        children[argv[0]](*argv[1:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=20_000_000,
                    help="records of the one-call chunked run (big); the other sizes are capped at it")
    ap.add_argument("--fit-records", type=int, default=3_000_000,
                    help="records scored both unchunked and chunked (fit), and held (hold)")
    ap.add_argument("--daily-records", type=int, default=1_000_000, help="records of the daily runs (daily)")
    ap.add_argument("--days", type=int, default=30, help="days of generated data, for every size")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--chunk-memory-rows", type=int, default=500_000,
                    help="--memory-rows of the chunked runs (fit, big)")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {', '.join(PARTS)}")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/fraudrules-bench"))
    ap.add_argument("--rules", type=Path, default=None,
                    help="rule pack folder (default: rules/ as committed at --rules-rev, not the work tree)")
    ap.add_argument("--rules-rev", default="HEAD")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here (default: WORKDIR/...)")
    a = ap.parse_args(argv)
    parts = [p.strip() for p in a.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        ap.error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    a.fit_records = min(a.fit_records, a.records)
    a.daily_records = min(a.daily_records, a.records)
    a.workdir.mkdir(parents=True, exist_ok=True)
    if a.rules is None:
        rules, about = export_rules(a.workdir, a.rules_rev)
    else:
        rules, about = a.rules.resolve(), str(a.rules)
    head = subprocess.run(["git", "rev-parse", "--short=7", "HEAD"], cwd=REPO, capture_output=True,
                          text=True).stdout.strip()
    where = subprocess.run([sys.executable, "-c", "import fraudrules; print(fraudrules.__file__)"], cwd=REPO,
                           capture_output=True, text=True).stdout.strip()  # PYTHONPATH may point elsewhere
    print(f"fraudrules: {where} (work tree at {head}); rules: {about}; load average {os.getloadavg()[0]:.2f}",
          flush=True)
    out: dict = {"head": head, "fraudrules": where, "rules": about, "args": {k: str(v) for k, v in vars(a).items()}}
    for part in PARTS:
        if part in parts:
            globals()[f"part_{part}"](a, rules, out)
    m = machine()
    out["machine"] = m
    print(f"\nthis process's own peak RSS (the floor under every child's): {own_hwm():,.0f} MB")
    print(f"machine: {m['nproc']} cpus ({m['cpu']}), {m['ram']} RAM, Python {m['python']}; {m['packages']}; "
          f"load average at the end {os.getloadavg()[0]:.2f}")
    path = a.json or a.workdir / f"bench_history-{'-'.join(parts)}-{a.records}.json"
    path.write_text(json.dumps(out, indent=1, default=str))
    print(f"figures: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
