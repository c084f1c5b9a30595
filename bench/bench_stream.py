"""Benchmark of the stream executor (engine/stream.py) on durable-rules.

Two parts, each scenario in its own process so that peak RSS is its own:

``compare`` (default): on generated data (fraudrules.synth.generate), in one run,
  - ``stream``: StreamExecutor.feed_many in micro-batches (normalisation included),
  - ``stream-single``: StreamExecutor.feed one record at a time (latency mode, a prefix),
  - ``naive``: a plain durable-rules program on the same rules: every record
    (pre-normalised, not timed) asserted as a fact into one ruleset whose rules
    are the rules' simple comparisons (field op literal) plus the sequence joins,
    sharded over 256 sids, nothing retracted. It cannot express aggregates,
    lists, functions, unless or suppression, so its matches are NOT the rules'
    alerts; it is the throughput/memory baseline of "just post everything".
  Prints records/s, p50/p99 latency per record and peak RSS.
  Every scenario calls ``settle_heap()`` (gc.collect + gc.freeze) once set up, before the timed
  loop, as the watch, serve and NATS commands do once loaded; ``BENCH_NO_SETTLE=1`` leaves it out.
  The plain durable-rules program then keeps CPython's collection thresholds (the settle raises them
  for the engine, and they slowed that program).

``memory``: >= 2M synthetic records whose >= 200k keys churn (each key lives a
  few days of event time, records span ~3 years so the largest window, 400 d,
  turns over), fed to the stream executor; prints RSS every N records.

Run:
  /work/venv/bin/python bench/bench_stream.py compare --customers 2000 --days 7
  python bench/bench_stream.py compare --data samples --batches 1 16 128 1000 --single 3000
  python bench/bench_stream.py compare --batches 1000 10000 --values json   # typed JSON values, UTC Z timestamps
  fraudrules generate --out busy/ --customers 600 --days 60 --seed 7   # busier keys: each account pays often
  python bench/bench_stream.py compare --data busy/ --batches 1000 10000 --single 3000
  /work/venv/bin/python bench/bench_stream.py memory --records 2000000 --keys 250000 --every 100000
"""

from __future__ import annotations

import argparse
import copy
import gc
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from fraudrules.pack.loader import load_pack  # noqa: E402
from fraudrules.runtime.heap import settle_heap  # noqa: E402
from fraudrules.runtime.plan import compile_pack  # noqa: E402

OPS = {"==": None, "!=": "$neq", "<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1 << 20)


def cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _settle() -> None:
    if not os.environ.get("BENCH_NO_SETTLE"):
        settle_heap()


def pct(values, q) -> float:
    return float(np.percentile(np.asarray(values), q)) if len(values) else 0.0


# --- compare ------------------------------------------------------------------------------------------


def _records(data_dir: str, rules: str, values: str = "text"):
    from fraudrules.io.records import parse_inputs
    from fraudrules.jobs.watch import ordered_records

    pack = load_pack(rules)
    recs = ordered_records(parse_inputs([data_dir], pack.schema), pack.schema)
    return pack, (json_values(recs, pack.schema) if values == "json" else recs)


def json_values(recs: list[dict], schema) -> list[dict]:
    """The records as a producer that types its values sends them (``--values json``): numbers and booleans
    as JSON values (an int or duration that is whole as an int), timestamps in UTC with ``Z``, an empty
    text left out. Not timed."""
    from fraudrules.columns.types import NUMERIC_TYPES, LogicalType
    from fraudrules.executors.stream.intake import timestamp_ns

    out = []
    for r in recs:
        fields = schema.streams[r["stream"]].fields
        typed = {}
        for name, v in r.items():
            ftype = fields[name].type if name in fields else None
            if v == "" or v is None:
                continue
            if ftype in NUMERIC_TYPES:
                x = float(v)
                v = int(x) if ftype != LogicalType.FLOAT and x.is_integer() else x
            elif ftype == LogicalType.BOOL:
                v = v.strip().lower() in ("true", "yes", "1")
            elif ftype == LogicalType.TIMESTAMP:
                ns = timestamp_ns(v)
                v = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000))
                v += (f".{ns % 1_000_000_000:09d}".rstrip("0") if ns % 1_000_000_000 else "") + "Z"
            typed[name] = v
        out.append(typed)
    return out


def run_stream(data_dir: str, rules: str, batch: int, values: str = "text") -> dict:
    from fraudrules.executors.stream import StreamExecutor

    pack, recs = _records(data_dir, rules, values)
    plan = compile_pack(pack, "CN")
    ex = StreamExecutor(plan)
    _settle()  # as the watch, serve and NATS commands do once loaded (engine/runtime/heap.py)
    lat = []
    ids: list[str] = []
    c0 = cpu_s()
    t0 = time.perf_counter()
    for i in range(0, len(recs), batch):
        chunk = recs[i: i + batch]
        s = time.perf_counter()
        ids.extend(a["alert_id"] for a in ex.feed_many(chunk))
        dt = time.perf_counter() - s
        lat.extend([dt] * len(chunk))  # every record of the chunk waits for the whole chunk
    ids.extend(a["alert_id"] for a in ex.flush())
    alerts = len(ids)
    secs = time.perf_counter() - t0
    cpu = cpu_s() - c0
    st = ex.stats
    from fraudrules.executors.stream.intake import ScalarIntake  # the intake's typing share, timed apart

    intake = ScalarIntake(pack.schema, "CN")  # a fresh one: its memos start empty, as the executor's did
    n0 = cpu_s()
    for i in range(0, len(recs), batch):
        intake.convert_many(recs[i: i + batch])
    norm = cpu_s() - n0
    digest = hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:12]  # equal whatever --values
    return {"scenario": f"stream (feed_many, {batch}/batch, {values} values)", "records": len(recs), "seconds": secs,
            "cpu_s": cpu, "normalise_cpu_s": norm,
            "rec_per_s": len(recs) / secs, "p50_ms": pct(lat, 50) * 1e3, "p99_ms": pct(lat, 99) * 1e3,
            "alerts": alerts, "alert_ids_sha256": digest, "peak_rss_mb": peak_rss_mb(),
            "live_facts_end": st["live_facts"],
            "state_bytes_est": st["state_bytes_est"]}


def run_stream_single(data_dir: str, rules: str, n: int, values: str = "text") -> dict:
    from fraudrules.executors.stream import StreamExecutor

    pack, recs = _records(data_dir, rules, values)
    recs = recs[:n]
    ex = StreamExecutor(compile_pack(pack, "CN"))
    _settle()
    lat = []
    cpu_lat = []  # the CPU each call used itself: on a shared machine the wall-clock tail is other processes
    c0 = cpu_s()
    t0 = time.perf_counter()
    for r in recs:
        s = time.perf_counter()
        c = time.thread_time()
        ex.feed(r)
        cpu_lat.append(time.thread_time() - c)
        lat.append(time.perf_counter() - s)
    ex.flush()
    secs = time.perf_counter() - t0
    return {"scenario": f"stream-single (feed per record, {values} values)", "records": len(recs), "seconds": secs,
            "cpu_s": cpu_s() - c0,
            "rec_per_s": len(recs) / secs, "p50_ms": pct(lat, 50) * 1e3, "p99_ms": pct(lat, 99) * 1e3,
            "cpu_p50_ms": pct(cpu_lat, 50) * 1e3, "cpu_p99_ms": pct(cpu_lat, 99) * 1e3,
            "alerts": None, "peak_rss_mb": peak_rss_mb()}


def _naive_condition(plan, rp, j, sp) -> list:
    """The step's simple comparisons as durable tests; everything else is left out."""
    from fraudrules.lang.expr import Binary, Field, Literal, conjuncts

    tests: list = [{"stream": sp.stream}]
    if sp.local is not None:
        for c in conjuncts(sp.local):
            if (isinstance(c, Binary) and c.op in OPS and isinstance(c.left, Field) and c.left.alias is None
                    and isinstance(c.right, Literal) and c.right.kind in ("number", "string", "duration", "bool")):
                v = c.right.value
                v = float(v) if c.right.kind in ("number", "duration") else v
                tests.append({c.left.name: v} if OPS[c.op] is None else {OPS[c.op]: {c.left.name: v}})
    if j:
        link = sp.follows[1] if sp.follows else rp.steps[j - 1].key
        src = [s.alias for s in rp.steps].index(sp.follows[0]) if sp.follows else j - 1
        tests.append({sp.key: {f"a{src}": link}})
        tests.append({"$gt": {"ts": {f"a{j - 1}": "ts"}}})
        tests.append({"$lte": {"ts": {"$add": {"$l": {"a0": "ts"}, "$r": rp.within_ns or 0}}}})
    return tests


def run_naive(data_dir: str, rules: str) -> dict:
    from durable import engine as dr
    from durable.engine import MessageNotHandledException, MessageObservedException

    from fraudrules.io.records import records_from_dicts

    pack, recs = _records(data_dir, rules)
    plan = compile_pack(pack, "CN")
    fired = [0]

    class Host(dr.Host):
        def _run(self):
            pass

        def get_action(self, name):
            def act(c):
                fired[0] += 1
            return act

    ruleset = {}
    for rp in plan.rules:
        conds = [{f"a{j}": {"$and": _naive_condition(plan, rp, j, sp)}} for j, sp in enumerate(rp.steps)]
        ruleset[rp.id] = {"all": conds, "run": rp.id}
    host = Host()
    host.set_rulesets(copy.deepcopy({"naive": ruleset}))
    # normalise up front (not timed): the naive program gets clean typed values
    msgs = []
    for i in range(0, len(recs), 20000):
        rs = records_from_dicts(recs[i: i + 20000], pack.schema)
        part = []
        for stream, t in rs.tables.items():
            names = list(t.columns)
            cols = {n: (t.columns[n].values.tolist(), t.columns[n].null.tolist()) for n in names}
            for r, line in enumerate(t.line.tolist()):
                m = {"stream": stream}
                for n in names:
                    v, nu = cols[n][0][r], cols[n][1][r]
                    if not nu:
                        m[n] = v
                part.append((line, m))
        part.sort(key=lambda x: x[0])
        msgs.extend(m for _, m in part)
    shard_field = {"call": "callee", "payment": "payer_phone", "sim_event": "msisdn", "sms": "receiver"}
    thresholds = gc.get_threshold()
    _settle()  # the same for the baseline: its heap frozen too,
    # but CPython's collection thresholds, not the larger young generation a settled engine process takes
    # (runtime/heap.py), which slowed this program's run (13,600-16,200 records/s against 17,200-17,900)
    gc.set_threshold(*thresholds)
    lat = []
    refused = unhandled = 0
    c0 = cpu_s()
    t0 = time.perf_counter()
    for i, m in enumerate(msgs):
        m["id"] = f"{m['id']}@{i}"
        m["sid"] = str(zlib.crc32(str(m.get(shard_field.get(m["stream"], "id"), "")).encode()) % 256)
        s = time.perf_counter()
        try:
            host.assert_fact("naive", m)
        except MessageNotHandledException:
            unhandled += 1
        except MessageObservedException:
            refused += 1
        lat.append(time.perf_counter() - s)
    secs = time.perf_counter() - t0
    return {"scenario": "naive durable (assert every record, 256 sids, no retraction)", "records": len(msgs),
            "seconds": secs, "cpu_s": cpu_s() - c0, "rec_per_s": len(msgs) / secs, "p50_ms": pct(lat, 50) * 1e3,
            "p99_ms": pct(lat, 99) * 1e3, "alerts": fired[0], "peak_rss_mb": peak_rss_mb(),
            "refused_id_collisions": refused, "not_handled": unhandled}


def compare(args) -> None:
    data = Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="bench-stream-")) / "data"
    if not args.data:
        from fraudrules.synth.generate import generate

        generate(data, customers=args.customers, days=args.days, seed=args.seed)
    rows = []
    # micro-batch sizes of feed_many (--batches), then one record per feed, then plain durable-rules
    runs = [("stream", b) for b in (args.batches or [args.batch])] + [("stream-single", args.batch),
                                                                       ("naive", args.batch)]
    for scenario, batch in runs:
        cmd = [sys.executable, __file__, "_one", scenario, str(data), "--rules", args.rules,
               "--batch", str(batch), "--single", str(args.single), "--values", args.values]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        rows.append(json.loads(out))
        print(json.dumps(rows[-1]), flush=True)
    print()
    print("| scenario | records | seconds | CPU s | rec/s | rec/CPU s | p50 ms/record | p99 ms/record "
          "| peak RSS MiB | matches/alerts |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['scenario']} | {r['records']:,} | {r['seconds']:.2f} | {r['cpu_s']:.2f} | {r['rec_per_s']:,.0f} | "
              f"{r['records'] / r['cpu_s']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['peak_rss_mb']:,.0f} | "
              f"{r['alerts'] if r['alerts'] is not None else '-'} |")
    for r in rows:
        if "cpu_p50_ms" in r:
            print(f"\n{r['scenario']}: CPU time per call (time.thread_time) p50 {r['cpu_p50_ms']:.3f} ms, "
                  f"p99 {r['cpu_p99_ms']:.3f} ms")


def one(args) -> None:
    if args.scenario == "stream":
        res = run_stream(args.data, args.rules, args.batch, args.values)
    elif args.scenario == "stream-single":
        res = run_stream_single(args.data, args.rules, args.single, args.values)
    else:
        res = run_naive(args.data, args.rules)
    print(json.dumps(res))


# --- memory ---------------------------------------------------------------------------------------------


def churn_records(n: int, keys: int, seed: int = 1, days: float = 1100.0, life_days: float = 4.0):
    """Synthetic calls/payments/SIM events whose keys live ``life_days`` each, spread over ``days``."""
    rng = np.random.default_rng(seed)
    t0 = 1_700_000_000  # 2023-11-14
    span = days * 86400
    per_chunk = 50_000
    made = 0
    while made < n:
        m = min(per_chunk, n - made)
        pos = (made + np.arange(m)) / n  # event time advances with the record number
        ts = t0 + pos * span + rng.uniform(0, 60, m)
        # the active keys at time t: a sliding band of the key space
        band = keys * life_days / days
        k = np.minimum(keys - 1, (pos * (keys - band) + rng.uniform(0, band, m)).astype(np.int64))
        other = rng.integers(0, keys, m)
        kind = rng.random(m)
        dur = rng.integers(0, 1800, m)
        amt = np.round(rng.lognormal(6, 1.5, m), 2)
        out = []
        for i in range(m):
            iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts[i])) + "Z"
            phone = f"+86138{k[i]:08d}"
            if kind[i] < 0.6:
                out.append({"stream": "call", "id": f"c{made + i}", "ts": iso, "caller": phone,
                            "callee": f"+86139{other[i]:08d}", "direction": "out" if kind[i] < 0.4 else "in",
                            "duration": int(dur[i]), "answered": bool(dur[i] > 3), "imsi": f"46000{k[i]:010d}"})
            elif kind[i] < 0.95:
                out.append({"stream": "payment", "id": f"p{made + i}", "ts": iso, "payer_account": f"A{k[i]}",
                            "payer_phone": phone, "payee_account": f"B{other[i] % 5000}",
                            "amount": float(amt[i]), "currency": "CNY", "channel": "app"})
            else:
                out.append({"stream": "sim_event", "id": f"e{made + i}", "ts": iso, "msisdn": phone,
                            "event": "swap" if kind[i] < 0.97 else "activation", "imsi": f"46001{k[i]:010d}",
                            "id_document": f"ID{k[i]}"})
        made += m
        yield out


def _phone_caches() -> list:
    from fraudrules.columns import phones

    return [phones._parse, phones.normalise_one, phones.country_one, phones.type_one]


def memory(args) -> None:
    from fraudrules.executors.stream import StreamExecutor

    pack = load_pack(args.rules)
    ex = StreamExecutor(compile_pack(pack, "CN"))
    _settle()  # as watch, serve and NATS do: a settled heap freezes what survives full collections too
    t0 = time.perf_counter()
    done = 0
    seen = np.zeros(args.keys, dtype=bool)  # which keys appeared (fixed size: does not grow the RSS)
    print("records,event_day,rss_mb,live_facts,live_keys,state_entries,alerts,rec_per_s,phone_cache_entries",
          flush=True)
    last_t, last_n = t0, 0
    for chunk in churn_records(args.records, args.keys, seed=args.seed):
        for i in range(0, len(chunk), args.batch):
            ex.feed_many(chunk[i: i + args.batch])
        for r in chunk:
            seen[int((r.get("caller") or r.get("payer_phone") or r.get("msisdn"))[6:])] = True
        before = done
        done += len(chunk)
        if done // args.every != before // args.every:
            cached = sum(c.cache_info().currsize for c in _phone_caches())
            if args.clear_phone_caches:  # fraudrules.columns.phones memoises every distinct number (up to 1M each)
                for c in _phone_caches():
                    c.cache_clear()
            s = ex.stats
            now = time.perf_counter()
            day = (ex.max_ts / 1e9 - 1_700_000_000) / 86400
            print(f"{done},{day:.0f},{rss_mb():.0f},{s['live_facts']},{s['live_keys']},{s['state_entries']},"
                  f"{s['alerts']},{(done - last_n) / (now - last_t):.0f},{cached}", flush=True)
            last_t, last_n = now, done
    ex.flush()
    print(f"# {done:,} records, {int(seen.sum()):,} distinct subscriber keys, {time.perf_counter() - t0:.0f}s, "
          f"peak RSS {peak_rss_mb():.0f} MB", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd")
    c = sub.add_parser("compare")
    c.add_argument("--data", help="a folder of call.csv, payment.csv ... (default: generate one)")
    c.add_argument("--customers", type=int, default=2000)
    c.add_argument("--days", type=int, default=7)
    c.add_argument("--seed", type=int, default=1)
    c.add_argument("--rules", default=str(REPO / "rules"))
    c.add_argument("--batch", type=int, default=1000)
    c.add_argument("--batches", type=int, nargs="+", help="several feed_many batch sizes (e.g. 1 16 128 1000)")
    c.add_argument("--single", type=int, default=3000, help="records fed one by one in the latency scenario")
    values = {"choices": ["text", "json"], "default": "text",
              "help": "the records' values as CSV gives them (text) or as a producer that types them sends them "
                      "(json: numbers and booleans as JSON values, timestamps in UTC with Z)"}
    c.add_argument("--values", **values)
    o = sub.add_parser("_one")
    o.add_argument("scenario")
    o.add_argument("data")
    o.add_argument("--rules", default=str(REPO / "rules"))
    o.add_argument("--batch", type=int, default=1000)
    o.add_argument("--single", type=int, default=3000)
    o.add_argument("--values", **values)
    m = sub.add_parser("memory")
    m.add_argument("--records", type=int, default=2_000_000)
    m.add_argument("--keys", type=int, default=250_000)
    m.add_argument("--every", type=int, default=100_000)
    m.add_argument("--batch", type=int, default=2000)
    m.add_argument("--seed", type=int, default=1)
    m.add_argument("--rules", default=str(REPO / "rules"))
    m.add_argument("--clear-phone-caches", action="store_true",
                   help="empty fraudrules.columns.phones' lru caches at every report (shows the executor's own state)")
    args = ap.parse_args()
    if args.cmd == "_one":
        one(args)
    elif args.cmd == "memory":
        memory(args)
    else:
        if args.cmd is None:
            args = ap.parse_args(["compare"])
        compare(args)


if __name__ == "__main__":
    main()
