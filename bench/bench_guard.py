"""What the stream executor's release guard (engine/executors/stream/guard.py) costs, counted inside one run.

On the happy path: the CPU time of its snapshots, as a share of the run, and the journal's length.
With ``poison``: one record (a payment near the end) made to raise, and the CPU time of its rollbacks.

Run from the repository root:
  fraudrules generate --out /tmp/gen --customers 2000 --days 7
  python bench/bench_guard.py /tmp/gen 1000            # feed_many of 1,000 records
  python bench/bench_guard.py /tmp/gen 1000 poison
  python bench/bench_guard.py samples 1                # one record at a time
"""
import sys
import time

from fraudrules.executors.stream import StreamExecutor
from fraudrules.executors.stream import executor as exmod
from fraudrules.executors.stream import guard as g
from fraudrules.io.records import parse_inputs
from fraudrules.jobs.watch import ordered_records
from fraudrules.pack.loader import load_pack
from fraudrules.runtime.plan import compile_pack

pack = load_pack("rules")
plan = compile_pack(pack, "CN")
recs = ordered_records(parse_inputs([sys.argv[1]], pack.schema), pack.schema)
chunk = int(sys.argv[2])
spent = {"snap": 0.0, "n": 0, "rollback": 0.0, "rb": 0}
real_snap, real_rb = g.ReleaseGuard._snapshot, g.ReleaseGuard._rollback


def snap(self) -> None:
    t = time.process_time()
    real_snap(self)
    spent["snap"] += time.process_time() - t
    spent["n"] += 1


def rb(self, *a) -> None:
    t = time.process_time()
    real_rb(self, *a)
    spent["rollback"] += time.process_time() - t
    spent["rb"] += 1


g.ReleaseGuard._snapshot, g.ReleaseGuard._rollback = snap, rb
poison = [r for r in recs if r["stream"] == "payment"][-2000]["id"] if len(sys.argv) > 3 else None
if poison:
    real_p = exmod.StreamExecutor._process

    def proc(self, batch):
        if any(e[3][0] == poison for e in batch):
            raise RuntimeError("poison")
        return real_p(self, batch)
    exmod.StreamExecutor._process = proc
ex = StreamExecutor(plan)
ex.on_eval_error = lambda r, why: None
t = time.process_time()
for i in range(0, len(recs), chunk):
    ex.feed_many(recs[i:i + chunk])
ex.flush()
total = time.process_time() - t
print(f"{len(recs):,} records, feed_many({chunk}): {total:.2f} s CPU ({len(recs)/total:,.0f} rec/s); "
      f"{spent['n']} snapshots {spent['snap']:.2f} s = {100*spent['snap']/total:.1f}% of the run; "
      f"journal at the end {ex._guard.journal_records:,} records; state entries {ex.stats['state_entries']:,}; "
      f"rollbacks {spent['rb']} in {spent['rollback']:.2f} s; rejected {[r['id'] for r, _ in ex.rejected_records]}")
