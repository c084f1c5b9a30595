"""``fraudrules score --engine spark``: the score job on Apache Spark (docs/spark.md).

The stages, each a Spark job over the cluster:

1. **Read.** One task per input file runs the local reader and converters (``engine/io``) on it, so
   every value is typed, and every bad row rejected with its reason, exactly as ``fraudrules score``
   does. Records leave in the wide Arrow schema of ``executors.spark.partition``.
2. **Duplicate ids.** Per (stream, id), every record but the first in (input, line) order is a
   reject, as locally (``io.records.SeenIds``).
3. **Route and evaluate.** Each record is sent once per role it plays in a family of rules
   (``executors.spark.routing``), grouped by (family, routing value), and each group is evaluated
   by the batch executor (``groupBy(...).applyInArrow``). One shuffle carries every family.
4. **Score and write.** Matches are summed per trigger record into risk scores and decisions
   (``runtime.scoring.decisions``); alerts, scored records and rejects are written as Parquet
   datasets sorted by the total order, then ``summary.json``.

pyspark is imported inside the functions that need it: the core imports without it.
"""

from __future__ import annotations

import os
import pickle
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from ..errors import InputError
from ..executors.spark import Family, evaluate_group, group_output_schema, plan_routing, record_schema
from ..executors.spark.partition import ROUTE_COLUMNS, column_name, records_batch, with_decision
from ..executors.spark.routing import ALL
from ..io.arrow import arrow_to_columns, arrow_to_vec
from ..io.convert import duplicate_id_reason
from ..io.output_set import OutputSet, staged_path
from ..io.records import _read_one
from ..io.sinks import write_json
from ..io.tables import InputSpec, InputStats, RecordSet, Table
from ..pack.model import RulePack
from ..runtime.plan import Plan, compile_pack
from ..runtime.scoring import decisions
from ..store.context import ORDER, Context, LateRecord
from .score import SCORE_OUTPUTS, HistoryRun, ScoreResult, check_run, late_frame, summary

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

    from ..io.mapping import Mapping

OUTPUTS = ("alerts", "scored", "rejects")
CONTEXT_INPUT = -1  # the _input of a history store's context row: it feeds windows, never triggers
_PLANS: dict[str, Any] = {}  # per Python worker: the unpickled plan and mapping, by run token


def spark_session(master: str | None = None, app: str = "fraudrules") -> SparkSession:
    """The session spark-submit made, or a new one: ``master`` if given, else local[*] outside spark-submit."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # executors run this Python, with fraudrules
    builder = SparkSession.builder.appName(app)
    under_submit = "PYSPARK_GATEWAY_PORT" in os.environ  # spark-submit chose the master and the confs
    if master or not under_submit:
        master = master or "local[*]"
        builder = builder.master(master)
        if master.startswith("local"):  # this machine only: no UI, 127.0.0.1, a few shuffle partitions
            builder = builder.config("spark.driver.host", "127.0.0.1") \
                .config("spark.driver.bindAddress", "127.0.0.1").config("spark.ui.enabled", "false") \
                .config("spark.sql.shuffle.partitions", "8")  # 200 tiny tasks cost more than they split
    return builder.getOrCreate()


def _cached(token: str, payload: bytes) -> tuple[Plan, Mapping | None, list[Family], dict | None]:
    if token not in _PLANS:
        _PLANS.clear()
        _PLANS[token] = pickle.loads(payload)  # noqa: S301 - our own driver's plan, handed over by Spark
    return _PLANS[token]


def _read_schema(wide: pa.Schema) -> pa.Schema:
    return pa.schema(list(wide) + [pa.field("_kind", pa.string()), pa.field("_reason", pa.string()),
                                   pa.field("_read", pa.int64()), pa.field("_filtered", pa.int64())])


def _reader(token: str, payload: bytes, region: str, chunk_rows: int, wide: pa.Schema):
    """The mapInArrow function of stage 1: each input row becomes its records, rejects and counts."""
    out_schema = _read_schema(wide)

    def extra(batch: pa.RecordBatch, kind: str, reason=None, read=None, filtered=None) -> pa.RecordBatch:
        n = batch.num_rows
        cols = batch.columns + [pa.array([kind] * n, pa.string()), pa.array(reason or [None] * n, pa.string()),
                                pa.array(read or [None] * n, pa.int64()),
                                pa.array(filtered or [None] * n, pa.int64())]
        return pa.RecordBatch.from_arrays(cols, schema=out_schema)

    def empty(n: int, **known: pa.Array) -> pa.RecordBatch:
        return pa.RecordBatch.from_arrays([known.get(f.name, pa.nulls(n, f.type)) for f in wide], schema=wide)

    def run(batches):
        plan, mapping = _cached(token, payload)[:2]
        for batch in batches:
            for row in batch.to_pylist():
                spec = InputSpec(Path(row["path"]), row["stream"] or None, row["format"])
                res = _read_one(spec, plan.schema, region, mapping, chunk_rows, None, 0)
                index = int(row["index"])
                cols = res.columns(plan.schema.streams[res.stream])
                line = res.line()
                step = 65_536
                for lo in range(0, max(len(line), 1), step):
                    if not len(line):
                        break
                    part = {k: v.take(np.arange(lo, min(lo + step, len(line)))) for k, v in cols.items()}
                    yield extra(records_batch(plan.schema, res.stream, part, index, line[lo: lo + step], wide),
                                "rec")
                idx = pa.array([index], pa.int32())
                yield extra(empty(1, _input=idx, _stream=pa.array([res.stream])), "stat",
                            read=[res.stats.read], filtered=[res.stats.filtered])
                if len(res.rejects):
                    lines, reasons = res.rejects.sorted()
                    yield extra(empty(len(lines), _input=pa.array(np.full(len(lines), index, np.int32)),
                                      _line=pa.array(lines, pa.int64())),
                                "rej", reason=reasons.tolist())
    return run


def _evaluator(token: str, payload: bytes):
    def run(table: pa.Table) -> pa.Table:
        plan, _, families, prior = _cached(token, payload)
        family = families[table.column("_family")[0].as_py()]
        return evaluate_group(plan, family, table, prior)
    return run


def _scorer(token: str, payload: bytes, names: list[str]):
    """mapInArrow: risk score capped at 100 and the policy's decision, as ``runtime.scoring`` does."""
    def run(batches):
        plan = _cached(token, payload)[0]
        for b in batches:
            raw = b.column(b.schema.get_field_index("_sum")).to_numpy(zero_copy_only=False)
            capped = np.minimum(np.nan_to_num(raw.astype(np.float64)).astype(np.int64), 100)
            rules = b.column(b.schema.get_field_index("_rules")).fill_null("")
            inp = b.column(b.schema.get_field_index("_input")).to_numpy()
            inputs = pa.array(np.asarray(names, dtype=object)[inp], pa.string())
            yield pa.RecordBatch.from_arrays([
                b.column(b.schema.get_field_index("_stream")), b.column(b.schema.get_field_index("_id")),
                inputs, b.column(b.schema.get_field_index("_line")),
                pa.array(capped, pa.int64()), pa.array(decisions(plan.policy, capped), pa.string()), rules,
                b.column(b.schema.get_field_index("_ts")), pa.array(inp, pa.int32()),
            ], schema=SCORED_SCHEMA)
    return run


def _decider(token: str, payload: bytes):
    """mapInArrow: each alert line with its record's risk score and decision over every rule."""
    def run(batches):
        plan = _cached(token, payload)[0]
        for b in batches:
            sums = b.column(b.schema.get_field_index("_sum")).to_pylist()
            lines = b.column(b.schema.get_field_index("alert")).to_pylist()
            yield pa.RecordBatch.from_arrays(
                [b.column(b.schema.get_field_index(n)) for n in ("ts", "input_index", "line", "rule_id")]
                + [pa.array([with_decision(plan, a, s) for a, s in zip(lines, sums)], pa.string())],
                schema=ALERTS_SCHEMA)
    return run


ALERTS_SCHEMA = pa.schema([("ts", pa.int64()), ("input_index", pa.int32()), ("line", pa.int64()),
                           ("rule_id", pa.string()), ("alert", pa.string())])


SCORED_SCHEMA = pa.schema([("stream", pa.string()), ("id", pa.string()), ("input", pa.string()),
                           ("line", pa.int64()), ("risk_score", pa.int64()), ("decision", pa.string()),
                           ("rules", pa.string()), ("ts", pa.int64()), ("input_index", pa.int32())])


DUP_REJECTS = "_input int, _line long, _reason string"  # the rows _dup_reasons yields


def _dup_reasons(batches):
    for b in batches:
        ids = b.column(b.schema.get_field_index("_id")).to_pylist()
        streams = b.column(b.schema.get_field_index("_stream")).to_pylist()
        reasons = [duplicate_id_reason(s, i) for i, s in zip(ids, streams)]
        yield pa.RecordBatch.from_arrays([b.column(b.schema.get_field_index("_input")),
                                          b.column(b.schema.get_field_index("_line")),
                                          pa.array(reasons, pa.string())],
                                         names=["_input", "_line", "_reason"])


def _spark_schema(schema: pa.Schema):
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)


def score_spark(spark: SparkSession, pack: RulePack, inputs: list[InputSpec], out_dir: Path | str, *,
                mapping: Mapping | None = None, region: str = "CN", rule_ids: set[str] | None = None,
                chunk_rows: int = 1_000_000, buckets: int | None = None, history: Path | None = None,
                replace_run: bool = False, wait: float = 0.0, max_reject_share: float | None = None,
                allow_empty: bool = True) -> tuple[ScoreResult, dict[str, str]]:
    """Score ``inputs`` on ``spark``; write ``out_dir``/{alerts,scored,rejects} (Parquet) and summary.json.

    A local ``out_dir`` gets the four as one set, like a local run's (io.output_set, docs/design.md §6):
    Spark writes its datasets into the staging folder, and the set is committed when all are there.
    With ``history``, the run continues from the history store and commits to it after its outputs,
    exactly as a local ``score --history`` does (docs/design.md §8), plus a ``late`` dataset. The run's checks
    (``max_reject_share``, ``allow_empty``: jobs.score.check_run) come after the outputs, before that commit."""
    out = str(out_dir)
    plan = compile_pack(pack, region, rule_ids)
    options = dict(mapping=mapping, region=region, chunk_rows=chunk_rows, buckets=buckets)
    if "://" in out:  # a cluster file system: Spark writes in place, and summary.json through Spark
        if history is not None:
            raise InputError("--history with --engine spark needs a local --out: the run commits its outputs "
                             "and the store together on this machine")
        result, paths = _score_spark(spark, plan, inputs, out, None, context=None, **options)
        check_run(result, paths, max_reject_share, allow_empty)
        return result, paths
    run = HistoryRun(history, inputs, plan, replace_run, wait) if history is not None else None
    try:
        outputs = [*OUTPUTS, "late"] if run is not None else list(OUTPUTS)
        outset = OutputSet(Path(out), [*outputs, "summary.json"], known=SCORE_OUTPUTS, folders=tuple(outputs))
        try:
            result, _ = _score_spark(spark, plan, inputs, str(outset.staging), outset,
                                     context=run.context if run is not None else None, **options)
            outset.commit()
        except BaseException:
            outset.abort()
            raise
        paths = {**{name: str(outset.target(name)) for name in outputs}, "summary": str(outset.target("summary.json"))}
        check_run(result, paths, max_reject_share, allow_empty)
        if run is not None:
            run.commit(result)
    finally:
        if run is not None:
            run.close()
    return result, paths


def _context_rows(plan: Plan, context: Context, wide: pa.Schema) -> pa.Table:
    """A history store's kept records in the wide schema: ``_input`` is CONTEXT_INPUT and ``_line`` their
    place in the order of all runs, so that they sort first, in order (every new record is later)."""
    parts = [records_batch(plan.schema, stream, arrow_to_columns(table, plan.schema.streams[stream]),
                           CONTEXT_INPUT, table.column(ORDER).to_numpy().astype(np.int64), wide)
             for stream, table in context.records.items() if table.num_rows]
    return pa.Table.from_batches(parts, schema=wide)


def _context_after(spark: SparkSession, plan: Plan, context: Context, everything, records, matches) -> Context:
    """The context the next run continues from, as ``Context.advance`` makes it from a local run: only the
    rows a later record can reach are collected to the driver, each with its place in this run's order
    (``everything``: every record read, late ones included, as the local order counts them)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    top = records.agg(F.max("_ts").alias("m")).collect()[0]["m"]
    high_water = int(top) if top is not None else None
    horizon = context.horizon
    tails = {}
    if high_water is not None:
        for stream in horizon.kept_streams():
            tails[stream] = records.filter((F.col("_stream") == stream)
                                           & (F.col("_ts") >= high_water - horizon.span(stream)))
    tables: dict[str, Table] = {}
    total = 0
    if tails:
        # the place of each record in the total order: a range-partitioned sort, then per partition its
        # offset plus the row's index in it (the partition id sits in the top bits of the increasing id)
        ordered = (everything.select("_ts", "_input", "_line").orderBy("_ts", "_input", "_line")
                   .withColumn("_pid", F.spark_partition_id()).withColumn("_mid", F.monotonically_increasing_id())
                   .persist(StorageLevel.MEMORY_AND_DISK))
        offsets, total = [], 0
        for row in sorted(ordered.groupBy("_pid").agg(F.count(F.lit(1)).alias("n")).collect()):
            offsets.append((row["_pid"], total))
            total += row["n"]
        offset = spark.createDataFrame(offsets, "_pid int, _off long")
        ranked = ordered.join(F.broadcast(offset), "_pid").select(
            "_input", "_line", (F.col("_off") + F.col("_mid") - F.shiftleft(F.col("_pid").cast("long"), 33))
            .alias("_rank"))
        for stream, tail in tails.items():
            spec = plan.schema.streams[stream]
            names = [n for n in horizon.columns(stream) if n in spec.fields]
            got = tail.join(ranked, ["_input", "_line"]).select(
                "_input", "_line", "_rank", *[column_name(stream, n) for n in names]).toArrow()
            if got.num_rows == 0:
                continue
            got = got.sort_by("_rank")
            cols = {n: arrow_to_vec(got.column(column_name(stream, n)), spec.fields[n].type) for n in names}
            tables[stream] = Table(stream, cols, got.column("_rank").to_numpy().astype(np.int64),
                                   got.column("_input").to_numpy().astype(np.int32),
                                   got.column("_line").to_numpy().astype(np.int64))
        ordered.unpersist()
    else:
        total = everything.count()
    import json

    emitted = [json.loads(r["alert"]) for r in matches.filter(F.col("alert").isNotNull())
               .orderBy("_ts", "_input", "_line", "rule_id").select("alert").collect()]
    return context.advance(RecordSet(tables, [], []), emitted, plan.schema, total, high_water=high_water)


def _score_spark(spark: SparkSession, plan: Plan, inputs: list[InputSpec], out: str, outset: OutputSet | None, *,
                 mapping: Mapping | None, region: str, chunk_rows: int, buckets: int | None,
                 context: Context | None) -> tuple[ScoreResult, dict[str, str]]:
    """The job, writing into ``out``: the staging folder of ``outset``, or a cluster file system's folder;
    after ``context`` (a history store's) when given."""
    from pyspark import StorageLevel
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    routing = plan_routing(plan)
    prior = context.prior_alerts() if context is not None else None
    payload = pickle.dumps((plan, mapping, routing.families, prior))
    token = f"{plan.digest}:{time.time_ns()}:{os.getpid()}"
    wide = record_schema(plan.schema)
    # enough groups per family to keep every core busy and each group's records in memory (docs/spark.md)
    buckets = buckets or max(8, 4 * spark.sparkContext.defaultParallelism)
    names = [str(s.path) for s in inputs]
    timings["plan"] = time.perf_counter() - t0

    # 1. read: one task per input file, the local readers and converters
    t0 = time.perf_counter()
    files = spark.createDataFrame(
        [(i, str(s.path), s.stream or "", s.format) for i, s in enumerate(inputs)],
        "index int, path string, stream string, format string")
    files = files.repartition(max(1, len(inputs)), "index")
    read = files.mapInArrow(_reader(token, payload, region, chunk_rows, wide), _spark_schema(_read_schema(wide)))
    read = read.persist(StorageLevel.MEMORY_AND_DISK)  # filled by the first action below
    counts = {r["_input"]: (r["_read"], r["_filtered"]) for r in
              read.filter(F.col("_kind") == "stat").select("_input", "_read", "_filtered").collect()}

    # 2. duplicate ids: the first record of an id in (input, line) order stays. The window runs over
    #    four narrow columns, not the wide records, and most runs have no duplicate: then no join
    recs = read.filter(F.col("_kind") == "rec").drop("_kind", "_reason", "_read", "_filtered")
    first = Window.partitionBy("_stream", "_id").orderBy("_input", "_line")
    dups = (recs.select("_input", "_line", "_id", "_stream").withColumn("_n", F.row_number().over(first))
            .filter(F.col("_n") > 1).drop("_n").persist(StorageLevel.MEMORY_AND_DISK))
    dup_rejects = dups.mapInArrow(_dup_reasons, DUP_REJECTS)
    records = recs if dups.isEmpty() else recs.join(dups.select("_input", "_line"), ["_input", "_line"], "left_anti")
    everything, late, evaluated = records, None, records
    cached = [dups, read]  # unpersisted at the end
    if context is not None and context.high_water is not None:
        # at or before the store's high-water mark: too late to be scored in order (as Context.split_late)
        late = records.filter(F.col("_ts") <= context.high_water).select("_input", "_line", "_stream", "_id", "_ts")
        records = records.filter(F.col("_ts") > context.high_water)
    if context is not None and context.rows:
        kept_rows = spark.createDataFrame(_context_rows(plan, context, wide))
        # a record (not late) that reuses the id of a record the store holds: a duplicate id, as one run over both
        # rejects it (as store.context.KnownIds for a local run); left out of the order, as the read's duplicates
        again = (records.select("_input", "_line", "_id", "_stream")
                 .join(kept_rows.select("_stream", "_id"), ["_stream", "_id"], "left_semi")
                 .persist(StorageLevel.MEMORY_AND_DISK))  # read by the check, two anti joins and the reasons
        cached.append(again)
        if not again.isEmpty():
            records = records.join(again.select("_input", "_line"), ["_input", "_line"], "left_anti")
            everything = everything.join(again.select("_input", "_line"), ["_input", "_line"], "left_anti")
            dup_rejects = dup_rejects.unionByName(again.mapInArrow(_dup_reasons, DUP_REJECTS))
        evaluated = records.unionByName(kept_rows)
    rejects = read.filter(F.col("_kind") == "rej").select("_input", "_line", "_reason").unionByName(dup_rejects)
    rejects = rejects.persist(StorageLevel.MEMORY_AND_DISK)

    # 3. route by key family and evaluate each group with the batch executor. A group is one bucket of
    #    routing values (a hash of the value): whole keys, many per group, so each batch run is not tiny
    entries = []
    for family in routing.families:
        for bit, (stream, fname) in enumerate(family.roles):
            cond = F.col("_stream") == stream
            if fname == ALL:
                bucket, roles = F.lit(0), F.lit(-1)
            else:
                col = F.col(column_name(stream, fname))
                cond = cond & col.isNotNull()  # a null key is never evaluated (docs/design.md §5)
                bucket, roles = F.pmod(F.xxhash64(col.cast("string")), F.lit(buckets)), F.lit(1 << bit)
            entries.append(F.when(cond, F.struct(F.lit(family.index).cast("int").alias("f"),
                                                 bucket.cast("int").alias("b"), roles.cast("long").alias("r"))))
    routed = None
    if entries:
        routed = evaluated.select(F.explode(F.filter(F.array(*entries), lambda e: e.isNotNull())).alias("_e"),
                                *[F.col(f.name) for f in wide])
        routed = routed.select(F.col("_e.f").alias("_family"), F.col("_e.b").alias("_bucket"),
                               F.col("_e.r").alias("_roles"), *[F.col(f.name) for f in wide])
    out_schema = _spark_schema(group_output_schema())
    if routed is None:
        matches = spark.createDataFrame([], out_schema)
    else:
        assert [n for n, _ in ROUTE_COLUMNS] == routed.columns[:3]
        matches = routed.groupBy("_family", "_bucket").applyInArrow(_evaluator(token, payload), out_schema)
    matches = matches.persist(StorageLevel.MEMORY_AND_DISK)
    by_rule = {r["rule_id"]: (r["n"], r["alerts"]) for r in
               matches.groupBy("rule_id").agg(F.count(F.lit(1)).alias("n"), F.count("alert").alias("alerts")).collect()}
    timings["evaluate"] = time.perf_counter() - t0

    # 4. scores, then the outputs
    t0 = time.perf_counter()
    per_record = matches.groupBy("_input", "_line").agg(
        F.sum("score").alias("_sum"),
        F.array_join(F.array_sort(F.array_distinct(F.collect_list("rule_id"))), ",").alias("_rules"))
    scored = records.select("_stream", "_id", "_input", "_line", "_ts").join(per_record, ["_input", "_line"], "left")
    scored = scored.mapInArrow(_scorer(token, payload, names), _spark_schema(SCORED_SCHEMA))
    scored = scored.persist(StorageLevel.MEMORY_AND_DISK)
    paths = {name: f"{out.rstrip('/')}/{name}" for name in OUTPUTS}
    (matches.filter(F.col("alert").isNotNull())
     .join(per_record.select("_input", "_line", "_sum"), ["_input", "_line"], "left")
     .select(F.col("_ts").alias("ts"), F.col("_input").alias("input_index"), F.col("_line").alias("line"),
             "rule_id", "alert", "_sum")
     .mapInArrow(_decider(token, payload), _spark_schema(ALERTS_SCHEMA))
     .orderBy("ts", "input_index", "line", "rule_id").write.mode("overwrite").parquet(paths["alerts"]))
    scored.orderBy("ts", "input_index", "line").write.mode("overwrite").parquet(paths["scored"])
    names_col = F.element_at(F.array(*[F.lit(n) for n in names]), F.col("_input") + 1) if names else F.lit("")
    (rejects.select(names_col.alias("input"), F.col("_line").alias("line"), F.col("_reason").alias("reason"),
                    F.col("_input").alias("input_index"))
     .orderBy("input_index", "line", "reason").write.mode("overwrite").parquet(paths["rejects"]))
    kept = {r["_input"]: r["n"] for r in records.groupBy("_input").agg(F.count(F.lit(1)).alias("n")).collect()}
    rejected = {r["_input"]: r["n"] for r in rejects.groupBy("_input").agg(F.count(F.lit(1)).alias("n")).collect()}
    decided = Counter({r["decision"]: r["n"] for r in
                       scored.groupBy("decision").agg(F.count(F.lit(1)).alias("n")).collect()})
    late_records = None
    if context is not None:  # with a history store; outset is set then (score_spark refuses a URI --out)
        assert outset is not None
        rows = late.orderBy("_input", "_line").collect() if late is not None else []
        late_records = [LateRecord(names[r["_input"]], r["_line"], r["_stream"], r["_id"], r["_ts"]) for r in rows]
        frame = late_frame(late_records)
        frame["input_index"] = np.array([r["_input"] for r in rows], dtype=np.int32)
        paths["late"] = str(outset.path("late"))
        Path(paths["late"]).mkdir(parents=True, exist_ok=True)
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), Path(paths["late"]) / "part-00000.parquet")
    timings["write"] = time.perf_counter() - t0

    stats = []
    late_by_input = Counter(frame["input_index"].tolist()) if late_records else Counter()
    for i, spec in enumerate(inputs):
        if i not in counts:
            raise InputError(f"{spec.path}: the Spark read of this input reported nothing")
        n_read, n_filtered = counts[i]
        stream = spec.stream or (mapping.stream if mapping is not None else "")
        stats.append(InputStats(names[i], stream, spec.format if spec.stream else (mapping.format or spec.format)
                                if mapping is not None else spec.format,
                                read=n_read, rejected=rejected.get(i, 0), scored=kept.get(i, 0),
                                filtered=n_filtered, late=late_by_input.get(i, 0)))
    severity = {rp.id: rp.rule.severity for rp in plan.rules}
    alerts = [{"rule_id": rid, "severity": severity[rid]} for rid, (_, a) in sorted(by_rule.items()) for _ in range(a)]
    result = ScoreResult(plan, RecordSet({}, stats, []), alerts, {rp.id: by_rule.get(rp.id, (0, 0))[0]
                                                                   for rp in plan.rules},
                         {rid: n - a for rid, (n, a) in by_rule.items()}, None, timings, late_records,
                         decision_counts=decided)
    if context is not None:
        t0 = time.perf_counter()
        result.context_after = _context_after(spark, plan, context, everything, records, matches)
        timings["history"] = time.perf_counter() - t0
    for df in (matches, scored, rejects, *cached):
        df.unpersist()
    if outset is not None:
        write_json(summary(result), outset.path("summary.json"), staged_path)
        paths["summary"] = str(outset.path("summary.json"))
    else:  # a cluster file system: through Spark, as one small text file
        spark.sparkContext.parallelize([_json(summary(result))], 1).saveAsTextFile(f"{out.rstrip('/')}/summary.json")
        paths["summary"] = f"{out.rstrip('/')}/summary.json"
    return result, paths


def _json(data: Any) -> str:
    import json

    return json.dumps(data, indent=2, ensure_ascii=False)


def alert_lines(out_dir: Path | str) -> bytes:
    """The alerts of a Spark run as the local alert file's bytes: sorted by the total order, then rule id."""
    import pyarrow.dataset as ds

    table = ds.dataset(str(Path(out_dir) / "alerts"), format="parquet").to_table()
    table = table.sort_by([("ts", "ascending"), ("input_index", "ascending"), ("line", "ascending"),
                           ("rule_id", "ascending")])
    return "".join(a + "\n" for a in table.column("alert").to_pylist()).encode("utf-8")


def read_dataset(out_dir: Path | str, name: str):
    """One output dataset as a pandas frame, in the order the local file has."""
    import pyarrow.dataset as ds

    table = ds.dataset(str(Path(out_dir) / name), format="parquet").to_table()
    keys = {"scored": ["ts", "input_index", "line"], "rejects": ["input_index", "line", "reason"],
            "alerts": ["ts", "input_index", "line", "rule_id"]}[name]
    return table.sort_by([(k, "ascending") for k in keys]).to_pandas()
