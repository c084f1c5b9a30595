"""Peak RSS of scoring one chunk after a carried context of M synthetic payments over 400 days
(id, ts, payer_account; 200,000 accounts), with the shipped pack: run it for two values of M, each in
its own process, and the difference of the peaks is the cost per carried payment (docs/benchmarks.md,
issue #8 "Third round").

    fraudrules generate --out /tmp/gen7 --customers 2000 --days 7 --seed 1
    python bench/context_slope.py 500000 /tmp/gen7
    python bench/context_slope.py 1500000 /tmp/gen7
"""
import gc
import resource
import sys
import time

import numpy as np
import pyarrow as pa

from fraudrules.io.arrow import TS_TYPE
from fraudrules.io.records import parse_inputs, read_time_chunks
from fraudrules.jobs.score import score_records
from fraudrules.pack.loader import load_pack
from fraudrules.runtime.plan import compile_pack
from fraudrules.store.context import ORDER, Context
from fraudrules.store.horizon import plan_horizon

M, data = int(sys.argv[1]), sys.argv[2]
pack = load_pack("rules")
plan = compile_pack(pack, "CN")
hz = plan_horizon(plan)
recs = read_time_chunks(parse_inputs([data], pack.schema), pack.schema).whole()
t0 = int(min(t.ts().min() for t in recs.tables.values()))
rng = np.random.default_rng(1)
accounts = np.array([f"62{n:017d}" for n in rng.integers(0, 10**15, 200_000)], dtype=object)
ts = np.sort(t0 - rng.integers(1, 399 * 86400 * 10**9, M))
ctx_pay = pa.table({"id": pa.array([f"px{i:09d}" for i in range(M)]), "ts": pa.array(ts).cast(TS_TYPE),
                    "payer_account": pa.array(accounts[rng.integers(0, len(accounts), M)], pa.string()),
                    ORDER: pa.array(np.arange(M, dtype=np.int64))})
ctx = Context(hz, {"payment": ctx_pay}, high_water=int(ts[-1]), next_order=M)
gc.collect()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
rss_now = int(open("/proc/self/statm").read().split()[1]) * 4096 // 2**20
c = time.process_time()
res = score_records(plan, recs, context=ctx)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
print(f"M={M:,} rss before {rss_now} MB (peak so far {base}), peak after {peak} MB, "
      f"cpu {time.process_time()-c:.1f}s, alerts {len(res.alerts)}")
