"""Scaling of ``fraudrules score --engine spark`` against the local batch executor, with identity checked.

    python bench/bench_spark.py --records 100000            # quick check
    python bench/bench_spark.py --records 1000000           # what docs/benchmarks.md reports

Generates (once, under --workdir) about N records with ``fraudrules generate`` (7.6 records per
customer-day), then runs, each in a fresh process:

- ``fraudrules score DIR --out ...`` (the local batch executor, default options);
- ``fraudrules score DIR --engine spark --spark-master local[C]`` for each C of --cores (1 then 2):
  one Spark executor with C cores on this machine, the driver in the same JVM;
- the same with ``--spark-master URL`` for each --master, e.g. a standalone cluster started by hand
  (``spark-class org.apache.spark.deploy.master.Master --host 127.0.0.1`` and workers; the peak
  memory then counts the driver only, the workers are not below it).

It prints wall seconds, records per second, the peak resident memory of each run's whole process tree
(sampled every 0.5 s: the Spark JVM and its Python workers together), Spark's time over the local run's,
and whether the Spark alerts (sorted as the local file is) are byte-identical to the local
``alerts.jsonl``, and the summaries equal. Timings mean something only on a quiet machine; nothing here asserts on them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORDS_PER_CUSTOMER_DAY = 7.6


def ensure_data(workdir: Path, records: int, days: int, seed: int) -> Path:
    from fraudrules.synth.generate import generate

    customers = max(60, round(records / (RECORDS_PER_CUSTOMER_DAY * days)))
    data = workdir / f"spark-data-n{records}-d{days}-s{seed}"
    if not (data / "payment.csv").exists():
        shutil.rmtree(data, ignore_errors=True)
        generate(data, customers=customers, days=days, seed=seed)
    return data


def tree_rss_mb(root: int) -> float:
    """Resident MB of ``root`` and every process below it (a Spark run is a JVM and Python workers)."""
    parent: dict[int, int] = {}
    rss: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        parent[int(d.name)] = int(fields[1])  # ppid
        rss[int(d.name)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")  # rss in pages
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(child for child, ppid in parent.items() if ppid == pid)
    return total / 2**20


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds, and the peak over the run of the whole process tree's resident memory (sampled)."""
    t0 = time.perf_counter()
    with open(os.devnull, "w") as out, subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out,
                                                          stderr=subprocess.PIPE, text=True) as proc:
        peak = [0.0]
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.5):
                peak[0] = max(peak[0], tree_rss_mb(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        err = proc.stderr.read()
        proc.wait()
        stop.set()
        sampler.join()
    if proc.returncode not in (0, 1):
        sys.exit(f"failed: {' '.join(cmd)}\n{err[-3000:]}")
    return time.perf_counter() - t0, peak[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000, help="records to generate (approximately)")
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cores", type=int, nargs="*", default=[1, 2], help="Spark cores per run: local[C]")
    ap.add_argument("--master", action="append", default=[],
                    help="also run on this master, e.g. a standalone cluster's spark://127.0.0.1:7077")
    ap.add_argument("--driver-memory", default="6g", help="the local Spark JVM's heap")
    ap.add_argument("--executor-memory", default="2g", help="with --master: each executor's heap on the cluster")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/fraudrules-bench"))
    a = ap.parse_args(argv)

    from fraudrules.jobs.spark_job import alert_lines

    data = ensure_data(a.workdir, a.records, a.days, a.seed)
    n = sum(max(0, sum(1 for _ in open(p, "rb")) - 1) for p in data.glob("*.csv") if p.name != "labels.csv")
    print(f"data: {data} ({n:,} records)")
    # a cluster master gets what a local one gets inside spark_session: loopback, no UI, 8 partitions
    confs = "".join(f"--conf {c} " for c in (
        "spark.driver.host=127.0.0.1", "spark.driver.bindAddress=127.0.0.1", "spark.ui.enabled=false",
        "spark.sql.shuffle.partitions=8", f"spark.executor.memory={a.executor_memory}")) if a.master else ""
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable,
           "PYSPARK_SUBMIT_ARGS": f"--driver-memory {a.driver_memory} {confs}pyspark-shell"}
    cli = [sys.executable, str(ROOT / "cli.py"), "score", str(data), "-q", "--accept-rejects"]
    local_out = a.workdir / "out-local"
    shutil.rmtree(local_out, ignore_errors=True)
    rows = [("local batch", *run(cli + ["--out", str(local_out)], env), "", "")]
    want = (local_out / "alerts.jsonl").read_bytes()
    want_summary = json.loads((local_out / "summary.json").read_text())
    for i, master in enumerate([f"local[{cores}]" for cores in a.cores] + a.master):
        out = a.workdir / f"out-spark-{i}"
        shutil.rmtree(out, ignore_errors=True)
        seconds, peak = run(cli + ["--engine", "spark", "--spark-master", master, "--out", str(out)], env)
        same = alert_lines(out) == want and json.loads((out / "summary.json").read_text()) == want_summary
        rows.append((f"spark {master}", seconds, peak, f"{seconds / rows[0][1]:.1f}x", "yes" if same else "NO"))
    alerts = want.count(b"\n")
    print(f"{n:,} records, {alerts:,} alerts")
    print("| run | seconds | records/s | peak RSS MB (process tree) | vs local | alerts and summary identical |")
    print("|---|---:|---:|---:|---:|---|")
    for name, seconds, peak, ratio, same in rows:
        print(f"| {name} | {seconds:.1f} | {n / seconds:,.0f} | {peak:,.0f} | {ratio or '1.0x'} "
              f"| {same or '(the reference)'} |")
    return 0 if all(r[4] in ("", "yes") for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
