"""Scaling of ``fraudrules score --engine spark`` against the local batch executor, with identity checked.

    python bench/bench_spark.py --records 100000            # quick check
    python bench/bench_spark.py --records 1000000           # what docs/benchmarks.md reports

Generates (once, under --workdir) about N records with ``fraudrules generate`` (7.6 records per
customer-day), then runs, each in a fresh process:

- ``fraudrules score DIR --out ...`` (the local batch executor, default options);
- ``fraudrules score DIR --engine spark --spark-master local[C]`` for each C of --cores (1 then 2):
  one Spark executor with C cores on this machine, the driver in the same JVM.

It prints wall seconds, records per second, Spark's time over the local run's, and whether the Spark
alerts (sorted as the local file is) are byte-identical to the local ``alerts.jsonl``, and the
summaries equal. Timings mean something only on a quiet machine; nothing here asserts on them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
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


def run(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        sys.exit(f"failed: {' '.join(cmd)}\n{done.stderr[-3000:]}")
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000, help="records to generate (approximately)")
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cores", type=int, nargs="+", default=[1, 2], help="Spark cores per run: local[C]")
    ap.add_argument("--driver-memory", default="6g", help="the local Spark JVM's heap")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/fraudrules-bench"))
    a = ap.parse_args(argv)

    from fraudrules.jobs.spark_job import alert_lines

    data = ensure_data(a.workdir, a.records, a.days, a.seed)
    n = sum(max(0, sum(1 for _ in open(p, "rb")) - 1) for p in data.glob("*.csv") if p.name != "labels.csv")
    print(f"data: {data} ({n:,} records)")
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable,
           "PYSPARK_SUBMIT_ARGS": f"--driver-memory {a.driver_memory} pyspark-shell"}
    cli = [sys.executable, str(ROOT / "cli.py"), "score", str(data), "-q", "--accept-rejects"]
    local_out = a.workdir / "out-local"
    shutil.rmtree(local_out, ignore_errors=True)
    rows = [("local batch", run(cli + ["--out", str(local_out)], env), "", "")]
    want = (local_out / "alerts.jsonl").read_bytes()
    want_summary = json.loads((local_out / "summary.json").read_text())
    for cores in a.cores:
        out = a.workdir / f"out-spark-{cores}"
        shutil.rmtree(out, ignore_errors=True)
        seconds = run(cli + ["--engine", "spark", "--spark-master", f"local[{cores}]", "--out", str(out)], env)
        same = alert_lines(out) == want and json.loads((out / "summary.json").read_text()) == want_summary
        rows.append((f"spark local[{cores}]", seconds, f"{seconds / rows[0][1]:.1f}x", "yes" if same else "NO"))
    alerts = want.count(b"\n")
    print(f"{n:,} records, {alerts:,} alerts")
    print("| run | seconds | records/s | vs local | alerts and summary identical |")
    print("|---|---:|---:|---:|---|")
    for name, seconds, ratio, same in rows:
        print(f"| {name} | {seconds:.1f} | {n / seconds:,.0f} | {ratio or '1.0x'} | {same or '(the reference)'} |")
    return 0 if all(r[3] in ("", "yes") for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
