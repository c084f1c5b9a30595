"""The Spark executor (docs/spark.md): the same alerts, scores, rejects and summary as ``fraudrules score``.

Three levels, each against the local run as the oracle:

- a simulated shuffle in plain Python (no Spark): records routed by ``executors.spark.routing`` into
  buckets, each bucket evaluated by ``evaluate_group``; hypothesis over ``tests/packs/props`` (follows
  of a non-key field, unless, 2-4 steps, suppression, is_new) and samples with several bucket counts;
- ``score_spark`` on a local[2] session: samples, generated data with rejects, duplicate ids and
  three input formats, and random rules (tests/rulegen.py) on random records;
- a real standalone cluster (a master and two workers on 127.0.0.1 from the installed PySpark), the job
  submitted with ``spark-submit cli.py score --engine spark``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fraudrules.executors.spark import evaluate_group, plan_routing, record_schema
from fraudrules.executors.spark.partition import records_batch, with_decision
from fraudrules.executors.spark.routing import ALL
from fraudrules.io.records import parse_inputs, read_inputs, records_from_dicts
from fraudrules.jobs.score import evaluate
from fraudrules.runtime.alerts import alert_line, key_texts
from fraudrules.synth.generate import generate
from tests.rulegen import csv_frames, dense_record_lists, rule_packs, written_pack
from tests.test_properties import record_lists
from tests.test_stream import PACK, PLAN, PROPS_PLAN, batch_lines

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"


# --- a simulated shuffle: routing and group evaluation without Spark -----------------------------


def shuffled_lines(plan, records, buckets: int, *, inline: bool = False) -> list[str]:
    """Alert lines of ``records`` (a RecordSet) evaluated group by group, as the Spark job does, with a
    shuffle written here in Python (crc32 buckets instead of Spark's xxhash64). ``inline``: records from
    ``records_from_dicts``, whose order after ``ts`` is the list position (its ``line``), one input."""
    wide = record_schema(plan.schema)
    routing = plan_routing(plan)
    batches = {s: records_batch(plan.schema, s, t.columns, 0 if inline else t.input_index, t.line, wide)
               for s, t in records.tables.items() if t.n}
    got, sums = [], {}
    for family in routing.families:
        groups: dict[int, list[pa.Table]] = {}
        for bit, (stream, fname) in enumerate(family.roles):
            if stream not in batches:
                continue
            table = pa.Table.from_batches([batches[stream]])
            if fname == ALL:
                bucket, roles = np.zeros(table.num_rows, np.int32), -1
            else:
                vec = records.tables[stream].columns[fname]
                keep = np.flatnonzero(~vec.null)
                table = table.take(pa.array(keep))
                bucket = np.array([zlib.crc32(k.encode()) % buckets for k in key_texts(vec.take(keep))], np.int32)
                roles = 1 << bit
            for b in np.unique(bucket):
                rows = table.filter(pa.array(bucket == b))
                route = pa.table({"_family": pa.array(np.full(rows.num_rows, family.index, np.int32)),
                                  "_bucket": pa.array(np.full(rows.num_rows, b, np.int32)),
                                  "_roles": pa.array(np.full(rows.num_rows, roles, np.int64))})
                groups.setdefault(int(b), []).append(pa.Table.from_arrays(
                    route.columns + rows.columns, names=route.column_names + rows.column_names))
        for parts in groups.values():
            out = evaluate_group(plan, family, pa.concat_tables(parts))
            for r in out.to_pylist():  # scores add up over every group a record's matches came from
                sums[(r["_input"], r["_line"])] = sums.get((r["_input"], r["_line"]), 0) + r["score"]
            got += [(r["_ts"], r["_input"], r["_line"], r["rule_id"], r["alert"]) for r in out.to_pylist()
                    if r["alert"] is not None]
    return [with_decision(plan, a, sums[(i, line)]) for _, i, line, _, a in sorted(got)]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(records=record_lists())
def test_simulated_shuffle_equals_batch_on_every_rule_kind(records):
    want = batch_lines(PROPS_PLAN, records)
    rs = records_from_dicts(records, PROPS_PLAN.schema, region="CN")
    for buckets in (1, 2, 5):
        assert shuffled_lines(PROPS_PLAN, rs, buckets, inline=True) == want


def test_routing_of_the_shipped_pack():
    routing = plan_routing(PLAN)
    # every shipped rule spreads over the cluster but the cycles (tagged "cycle"), whose first step is
    # joined to the alert key only by a cross condition (it comes back to its payer), so each runs in
    # one group, and an absence, whose group must hold every record to know when event time passed
    # its deadline
    cycles = sorted(r.id for r in PACK.rules if "cycle" in r.tags)
    assert cycles
    assert routing.single == sorted([*cycles, "TF-NOCALLBACK-001"])
    roles = {rid: f.roles_of(rid) for f in routing.families for rid in f.rules}
    # follows: the drain step is routed by its payee (its key), the cash-out step by its payer
    assert roles["TF-CASHOUT-001"] == (("payment", "payee_account"), ("payment", "payer_account"))
    # unless keyed on the caller of the first step's stream: calls travel by callee and by caller
    assert roles["TF-APP-001"] == (("call", "callee"), ("call", "caller"), ("payment", "payer_phone"))
    props = plan_routing(PROPS_PLAN)
    # they run in one group, and still agree (above); an absence holds every record in its group
    assert set(props.single) == {"P-SEQ3F", "P-SEQ4", "P-ABSENT", "P-ABSENT1", "P-MULTIKEY-ABSENT"}
    # a key of several fields is routed by its first field (every record of one tuple has its value)
    multi = {rid: f.roles_of(rid) for f in props.families for rid in f.rules}
    assert multi["P-MULTIKEY"] == (("payment", "payer_account"),)
    assert multi["P-MULTIKEY-SEQ"] == (("payment", "payer_account"),)


RUN_FOLLOWED_BY_ANOTHER_FIELD = """\
id: R-RUN-FOLLOWED
title: three missed calls from one number, then a SIM event of the last number it called
score: 10
sequence:
  within: 10m
  steps:
    - as: rings
      stream: call
      key: caller
      runs: 3
      where: not answered
    - as: sim
      stream: sim_event
      key: msisdn
      follows: rings.callee
      where: event == "swap"
"""


def test_a_repeated_step_routed_by_a_follows_field_runs_in_one_group(pack_dir):
    """``follows: rings.callee`` reads the run's last call: the run's other calls share its caller, not its
    callee, so routing them by callee split the run over groups and lost the alert (found by
    tests/test_random_rules.py). Such a rule runs in one group."""
    from fraudrules.pack.loader import load_pack
    from fraudrules.runtime.plan import compile_pack

    plan = compile_pack(load_pack(pack_dir({"rule": RUN_FOLLOWED_BY_ANOTHER_FIELD})), "CN")
    calls = [("c1", "+8613800000001"), ("c2", "+8613800000002"), ("c3", "+8613900000003")]
    records = [{"stream": "call", "id": rid, "ts": f"2026-03-01T09:0{i}:00Z", "caller": "+85523900111",
                "callee": callee, "answered": False} for i, (rid, callee) in enumerate(calls)]
    records.append({"stream": "sim_event", "id": "s1", "ts": "2026-03-01T09:05:00Z", "msisdn": "+8613900000003",
                    "event": "swap"})
    want = batch_lines(plan, records)
    assert [json.loads(line)["record_id"] for line in want] == ["s1"]
    rs = records_from_dicts(records, plan.schema, region="CN")
    for buckets in (1, 2, 5):
        assert shuffled_lines(plan, rs, buckets, inline=True) == want, buckets
    assert "repeated step 'rings'" in plan_routing(plan).reasons["R-RUN-FOLLOWED"]


@pytest.mark.parametrize("buckets", [1, 3, 17])
def test_simulated_shuffle_equals_batch_on_samples(buckets):
    rs = read_inputs(parse_inputs([str(SAMPLES)], PACK.schema), PACK.schema)
    want = [alert_line(a) for a in evaluate(PLAN, rs)[0]]
    assert len(want) > 100
    assert shuffled_lines(PLAN, rs, buckets) == want


# --- local[2] ------------------------------------------------------------------------------------


def local_run(args: list[str], out: Path) -> Path:
    subprocess.run([sys.executable, str(ROOT / "cli.py"), "score", *args, "--out", str(out), "-q",
                    "--accept-rejects"], check=True, capture_output=True, cwd=ROOT)
    return out


def assert_same_outputs(spark_out: Path, local_out: Path, min_alerts: int = 10) -> None:
    from fraudrules.jobs.spark_job import alert_lines, read_dataset

    want = (local_out / "alerts.jsonl").read_bytes()
    assert want.count(b"\n") >= min_alerts
    assert alert_lines(spark_out) == want
    assert json.loads((spark_out / "summary.json").read_text()) == json.loads((local_out / "summary.json").read_text())
    local = pd.read_json(local_out / "scored.jsonl", lines=True, dtype=False)
    scored = read_dataset(spark_out, "scored")[list(local.columns)].reset_index(drop=True)
    assert len(scored) == len(local)
    pd.testing.assert_frame_equal(scored.astype(str), local.astype(str))
    rejects = read_dataset(spark_out, "rejects")[["input", "line", "reason"]].reset_index(drop=True)
    local_rejects = pd.read_csv(local_out / "rejects.csv", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(rejects.astype(str), local_rejects.astype(str))


@pytest.fixture(scope="module")
def spark():
    # pyspark is installed by .ci/run (".[test,spark]"): a missing one fails, it does not skip
    from fraudrules.jobs.spark_job import spark_session

    session = spark_session("local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def generated_inputs(tmp_path_factory) -> list[str]:
    """Generated data in three formats, with bad rows and duplicate ids that must be rejected alike."""
    src = tmp_path_factory.mktemp("gen")
    generate(src, customers=600, days=3, seed=7)
    out = tmp_path_factory.mktemp("inputs")
    call = (src / "call.csv").read_text().splitlines(keepends=True)
    first_id = call[1].split(",")[0]
    broken = call[:40] + ["x1,not-a-time,+8613800000001\n", call[3], "x2,2026-03-01T10:00:00Z\n"] + call[40:]
    assert not call[3].startswith("x")
    (out / "call.csv").write_text("".join(broken))  # a bad timestamp, a duplicate id, a short row
    assert first_id
    pay = pd.read_csv(src / "payment.csv", dtype=str, keep_default_na=False)
    pq.write_table(pa.Table.from_pandas(pay, preserve_index=False), out / "payment.parquet")
    sms = pd.read_csv(src / "sms.csv", dtype=str, keep_default_na=False)
    with open(out / "sms.jsonl", "w") as fh:
        for rec in sms.to_dict("records"):
            fh.write(json.dumps({k: v for k, v in rec.items() if v != ""}) + "\n")
        fh.write("{not json\n")
    shutil.copy(src / "sim_event.csv", out / "sim_event.csv")
    return [str(out / "call.csv"), str(out / "payment.parquet"), str(out / "sms.jsonl"),
            str(out / "sim_event.csv")]


def test_local_spark_samples_are_the_local_bytes(spark, tmp_path):
    from fraudrules.io.records import parse_inputs as parse
    from fraudrules.jobs.spark_job import score_spark

    specs = parse([str(SAMPLES)], PACK.schema)
    out = tmp_path / "spark"  # holding an older Spark run's dataset, a local run's file and a file of the user's
    (out / "alerts").mkdir(parents=True)
    (out / "alerts" / "part-old.parquet").write_bytes(b"an older run's part")
    (out / "alerts.jsonl").write_text("an older local run\n")
    (out / "notes.txt").write_text("mine\n")
    _, paths = score_spark(spark, PACK, specs, out)
    # committed as one set (io.output_set): the datasets replaced whole, the older outputs gone, the user's kept
    assert sorted(p.name for p in out.iterdir()) == ["alerts", "notes.txt", "rejects", "scored", "summary.json"]
    assert paths["summary"] == str(out / "summary.json") and (out / "notes.txt").read_text() == "mine\n"
    assert not (out / "alerts" / "part-old.parquet").exists()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".spark.fraudrules-")]
    assert_same_outputs(out, local_run([str(SAMPLES)], tmp_path / "local"))


def test_local_spark_generated_with_rejects_and_formats(spark, tmp_path, generated_inputs):
    from fraudrules.jobs.spark_job import score_spark

    specs = parse_inputs(generated_inputs, PACK.schema)
    result, _ = score_spark(spark, PACK, specs, tmp_path / "spark", buckets=5)
    local = local_run(generated_inputs, tmp_path / "local")
    assert_same_outputs(tmp_path / "spark", local)
    reasons = pd.read_csv(local / "rejects.csv")["reason"].tolist()
    assert any("duplicate id" in r for r in reasons) and len(reasons) >= 4
    for s in result.records.inputs:
        assert s.read == s.scored + s.rejected + s.filtered


# a bank's export: Chinese column names, "|" between fields, GBK (Excel on a Chinese Windows)
_EXPORT_NAMES = {"id": "交易流水号", "ts": "交易时间", "payer_account": "付款账号", "payee_account": "收款账号",
                 "payee_bank": "收款银行", "amount": "金额", "currency": "币种", "channel": "渠道"}
_RENAMES = ", ".join(f"{v}: {k}" for k, v in _EXPORT_NAMES.items())
_FIELDS = "".join(f"  {k}: {'timestamp(ts)' if k == 'ts' else k}\n" for k in _EXPORT_NAMES)
_EXPORT_MAP = (f'stream: payment\nsource:\n  delimiter: "|"\n  encoding: gbk\n  rename: {{{_RENAMES}}}\n'
               f"  types: {{amount: float}}\nfields:\n{_FIELDS}")


def test_a_mapped_gbk_pipe_export_on_spark_is_the_local_bytes(spark, tmp_path):
    """A mapping's source options (delimiter, encoding, rename) travel with it to Spark's workers: the
    outputs are a local run's, byte for byte, with a reject whose reason names the file's column."""
    from fraudrules.io.mapping import load_mapping
    from fraudrules.jobs.spark_job import score_spark

    pay = pd.read_csv(SAMPLES / "payment.csv", dtype=str, keep_default_na=False)[list(_EXPORT_NAMES)]
    pay.loc[5, "amount"] = "五百"  # a reject, in the file's own words
    pay.rename(columns=_EXPORT_NAMES).to_csv(tmp_path / "export.csv", sep="|", index=False, encoding="gbk")
    (tmp_path / "map.yaml").write_text(_EXPORT_MAP, encoding="utf-8")
    mapping = load_mapping(tmp_path / "map.yaml", PACK.schema)
    export = str(tmp_path / "export.csv")
    specs = parse_inputs([export], PACK.schema, mapping=mapping)
    score_spark(spark, PACK, specs, tmp_path / "spark", mapping=mapping, buckets=3)
    local = local_run([export, "--map", str(tmp_path / "map.yaml")], tmp_path / "local")
    assert_same_outputs(tmp_path / "spark", local, min_alerts=1)
    reasons = pd.read_csv(local / "rejects.csv")["reason"].tolist()
    assert reasons == ["金额: '五百' is not a number"]


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(texts=rule_packs(), records=dense_record_lists(), buckets=st.sampled_from([1, 2, 5]))
def test_random_rules_on_local_spark_are_the_local_bytes(spark, texts: list[str], records: list[dict],
                                                         buckets: int) -> None:
    """Rules drawn by tests/rulegen.py, run by the Spark job itself (tests/test_random_rules.py runs many
    more through its routing in the simulated shuffle): the local run's alerts, scores and summary. Only
    examples with an alert reach Spark, whose job takes seconds."""
    from fraudrules.jobs.score import score_job
    from fraudrules.jobs.spark_job import score_spark
    from tests.test_history import write_slices

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "pack").mkdir()
        pack = written_pack(texts, root / "pack")
        assume(pack is not None)
        specs = parse_inputs([str(write_slices(csv_frames(records), [], root / "in")[0])], pack.schema)
        _, paths = score_job(root / "pack", specs, root / "local", pack=pack)
        assume(paths["alerts"].stat().st_size > 0)
        score_spark(spark, pack, specs, root / "spark", buckets=buckets)
        assert_same_outputs(root / "spark", root / "local", min_alerts=1)


# --- the history store (docs/design.md §8): Spark and local runs continue each other ------------------


@pytest.fixture(scope="module")
def sample_days(tmp_path_factory) -> list[Path]:
    """The samples as four runs: before 1 March, then one folder per day."""
    from tests.test_history import write_slices

    frames = {s.stream: pd.read_csv(s.path, dtype=str, keep_default_na=False)
              for s in parse_inputs([str(SAMPLES)], PACK.schema)}
    bounds = [pd.Timestamp(d, tz="UTC") for d in ("2026-03-01", "2026-03-02", "2026-03-03")]
    return write_slices(frames, bounds, tmp_path_factory.mktemp("days"))


def _store(history: Path):
    from fraudrules.store.history import HistoryStore
    from fraudrules.store.horizon import plan_horizon

    store = HistoryStore(history)
    try:
        return store.load(plan_horizon(PLAN), {n: set(s.fields) for n, s in PACK.schema.streams.items()})
    finally:
        store.close()


def _days(spark, days: list[Path], engines: str, root: Path) -> bytes:
    """Score each day with the store ``root/hist``, on Spark ("s") or locally ("l"): the alert bytes."""
    from fraudrules.jobs.score import score_job
    from fraudrules.jobs.spark_job import alert_lines, score_spark

    got = b""
    for i, (day, engine) in enumerate(zip(days, engines)):
        specs = parse_inputs([str(day)], PACK.schema)
        out = root / f"out{i}"
        if engine == "s":
            result, _ = score_spark(spark, PACK, specs, out, history=root / "hist")
            got += alert_lines(out)
            assert sorted(p.name for p in out.iterdir()) == ["alerts", "late", "rejects", "scored", "summary.json"]
        else:
            result, paths = score_job(ROOT / "rules", specs, out, pack=PACK, history=root / "hist")
            got += paths["alerts"].read_bytes()
        for s in result.records.inputs:
            assert s.read == s.scored + s.rejected + s.filtered + s.late
    return got


def test_spark_day_by_day_with_a_store_equals_one_run_and_the_local_store(spark, sample_days, tmp_path):
    want = (local_run([str(SAMPLES)], tmp_path / "one") / "alerts.jsonl").read_bytes()
    assert want == (SAMPLES / "expected" / "alerts.jsonl").read_bytes()  # the golden alerts: a real comparison
    assert _days(spark, sample_days, "ssss", tmp_path / "spark") == want
    # the store Spark left is the one the local runs leave: the same kept records, order and last alerts
    assert _days(spark, sample_days, "llll", tmp_path / "local") == want
    on_spark, local = _store(tmp_path / "spark" / "hist"), _store(tmp_path / "local" / "hist")
    assert (on_spark.high_water, on_spark.next_order) == (local.high_water, local.next_order)
    assert on_spark.last_alerts.equals(local.last_alerts) and local.last_alerts.num_rows > 0
    assert sorted(on_spark.records) == sorted(local.records) and local.rows > 0
    for stream, table in local.records.items():
        assert on_spark.records[stream].equals(table), stream


def test_engines_can_change_between_days(spark, sample_days, tmp_path):
    want = (local_run([str(SAMPLES)], tmp_path / "one") / "alerts.jsonl").read_bytes()
    assert _days(spark, sample_days, "lsls", tmp_path / "mixed") == want


def test_spark_rejects_an_id_the_store_holds_as_a_local_run_does(spark, sample_days, tmp_path):
    """A record of a new day that reuses the id of a payment the store holds is a duplicate id on Spark as in a
    local run (store.context.KnownIds): the same reject, alerts and store after it, the counts reconciled."""
    from fraudrules.jobs.score import score_job
    from fraudrules.jobs.spark_job import alert_lines, score_spark

    reused = tmp_path / "reused"
    reused.mkdir()
    for f in sample_days[2].iterdir():
        shutil.copy(f, reused / f.name)
    day1 = pd.read_csv(sample_days[1] / "payment.csv", dtype=str, keep_default_na=False)
    day2 = pd.read_csv(reused / "payment.csv", dtype=str, keep_default_na=False)
    day2.loc[3, "id"] = day1["id"].iloc[-1]
    day2.to_csv(reused / "payment.csv", index=False)
    for root in (tmp_path / "spark", tmp_path / "local"):
        _days(spark, sample_days[:2], "ll", root)
    specs = parse_inputs([str(reused)], PACK.schema)
    result, _ = score_spark(spark, PACK, specs, tmp_path / "spark" / "o", history=tmp_path / "spark" / "hist")
    _, paths = score_job(ROOT / "rules", specs, tmp_path / "local" / "o", pack=PACK,
                         history=tmp_path / "local" / "hist")
    rejects = pd.read_parquet(tmp_path / "spark" / "o" / "rejects")
    assert list(rejects["line"]) == [5] and "duplicate id" in rejects["reason"][0]
    assert list(rejects["reason"]) == list(pd.read_csv(paths["rejects"], dtype=str)["reason"])
    assert alert_lines(tmp_path / "spark" / "o") == paths["alerts"].read_bytes()
    payment = next(s for s in result.records.inputs if s.stream == "payment")
    assert payment.rejected == 1 and payment.read == payment.scored + payment.rejected + payment.filtered + payment.late
    on_spark, local = _store(tmp_path / "spark" / "hist"), _store(tmp_path / "local" / "hist")
    assert (on_spark.high_water, on_spark.next_order) == (local.high_water, local.next_order)
    for stream, table in local.records.items():
        assert on_spark.records[stream].equals(table), stream


def test_spark_reports_late_records_and_refuses_a_rerun(spark, sample_days, tmp_path):
    from fraudrules.jobs.score import NothingScoredError
    from fraudrules.jobs.spark_job import score_spark
    from fraudrules.store.history import HistoryError, HistoryStore

    _days(spark, sample_days[:2], "ll", tmp_path)
    late_day = tmp_path / "late"  # day 2 with two records of day 1 in it: at or before the high-water mark
    late_day.mkdir()
    for f in sample_days[2].iterdir():
        shutil.copy(f, late_day / f.name)
    call = pd.read_csv(sample_days[1] / "call.csv", dtype=str, keep_default_na=False)
    day2 = pd.read_csv(late_day / "call.csv", dtype=str, keep_default_na=False)
    pd.concat([day2, call.iloc[[5, 9]]]).to_csv(late_day / "call.csv", index=False)
    specs = parse_inputs([str(late_day)], PACK.schema)
    result, _ = score_spark(spark, PACK, specs, tmp_path / "o", history=tmp_path / "hist")
    late = pd.read_parquet(tmp_path / "o" / "late")
    assert late["id"].tolist() == call["id"].iloc[[5, 9]].tolist()
    assert set(late["reason"]) == {"at or before the history's high-water mark: its windows were already scored"}
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    by_input = {Path(i["path"]).name: i for i in summary["inputs"]}
    assert by_input["call.csv"]["late"] == 2 and all(i["reconciles"] for i in summary["inputs"])
    assert len(result.late) == 2
    with pytest.raises(HistoryError, match="already"):
        score_spark(spark, PACK, specs, tmp_path / "o2", history=tmp_path / "hist")
    assert not (tmp_path / "o2").exists()
    # day 1's calls again under new ids: every record late, so nothing scored; as a local run, the outputs are
    # written and the store does not take the run
    again = tmp_path / "again"
    again.mkdir()
    call.assign(id="re-" + call["id"]).to_csv(again / "call.csv", index=False)
    with HistoryStore(tmp_path / "hist") as store:
        runs = list(store.runs)
    with pytest.raises(NothingScoredError, match=f"of the {len(call):,} records read, {len(call):,} were at or before"):
        score_spark(spark, PACK, parse_inputs([str(again)], PACK.schema), tmp_path / "o3", history=tmp_path / "hist",
                    allow_empty=False)
    assert len(pd.read_parquet(tmp_path / "o3" / "late")) == len(call)
    with HistoryStore(tmp_path / "hist") as store:
        assert store.runs == runs and len(runs) == 3  # two days, and the day with two late records


def test_cli_spark_with_history_refuses_an_input_already_committed(sample_days, tmp_path):
    from fraudrules.jobs.score import score_job

    specs = parse_inputs([str(sample_days[0])], PACK.schema)
    score_job(ROOT / "rules", specs, tmp_path / "o1", pack=PACK, history=tmp_path / "h")
    run = subprocess.run([sys.executable, str(ROOT / "cli.py"), "score", str(sample_days[0]), "--engine", "spark",
                          "--spark-master", "local[1]", "--out", str(tmp_path / "o2"),
                          "--history", str(tmp_path / "h")],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2, run.stderr
    assert "was already scored into this history" in run.stderr and not (tmp_path / "o2").exists()


# --- a real standalone cluster -----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {seconds}s")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A Spark standalone master and two workers (one core each) on 127.0.0.1, stopped afterwards."""
    import pyspark

    home = Path(pyspark.__file__).parent
    logs = tmp_path_factory.mktemp("spark-logs")
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
           "SPARK_WORKER_DIR": str(logs / "work"), "SPARK_LOG_DIR": str(logs)}
    port, ui = _free_port(), _free_port()
    procs = []

    def start(args: list[str], name: str) -> subprocess.Popen:
        log = open(logs / f"{name}.log", "w")
        p = subprocess.Popen([str(home / "bin" / "spark-class"), *args], env=env, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
        procs.append(p)
        return p

    try:
        start(["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
               "--webui-port", str(ui)], "master")
        _wait_port(port, 120)
        url = f"spark://127.0.0.1:{port}"
        for i in range(2):
            start(["org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores", "1", "--memory", "1g",
                   "--webui-port", str(_free_port()), url], f"worker{i}")
        end = time.monotonic() + 120
        while time.monotonic() < end:  # both workers registered with the master
            text = (logs / "master.log").read_text()
            if text.count("Registering worker") >= 2:
                break
            time.sleep(0.5)
        else:
            raise TimeoutError("the workers did not register: " + (logs / "master.log").read_text()[-2000:])
        yield url, env, home
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)


def test_standalone_cluster_spark_submit_is_the_local_bytes(cluster, tmp_path, generated_inputs):
    url, env, home = cluster
    out = tmp_path / "spark"
    run = subprocess.run(
        [str(home / "bin" / "spark-submit"), "--master", url, "--conf", "spark.driver.host=127.0.0.1",
         "--conf", "spark.driver.bindAddress=127.0.0.1", "--conf", "spark.ui.enabled=false",
         "--conf", "spark.sql.shuffle.partitions=4", "--conf", "spark.executor.memory=768m",
         str(ROOT / "cli.py"), "score", *generated_inputs, "--engine", "spark", "--out", str(out), "-q",
         "--accept-rejects"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-4000:]
    assert "app-" in (Path(env["SPARK_LOG_DIR"]) / "master.log").read_text()  # it ran on the cluster's workers
    assert_same_outputs(out, local_run(generated_inputs, tmp_path / "local"))
