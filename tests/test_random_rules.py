"""Random rules on random records: the executors agree with the reference and with each other.

tests/test_properties.py checks the fixed rules of tests/packs/props; here the rules are drawn too
(tests/rulegen.py: every aggregate, with ``where=``, ``key=``, ``stream=`` and bounds on earlier steps,
sequences of two to four steps with ``follows``, ``unless`` and ``absent``, keys of two fields,
suppression, explain texts), so that combinations nobody wrote a rule for are checked as well:

- the batch executor, in its three join and aggregate paths, finds the matches of tests/reference.py;
- the stream executor, record by record and over columns, in micro-batches of any size, with records
  arriving out of order within the lateness, and stopped midway with its state through JSON, writes
  batch's alert bytes;
- the groups the Spark job routes records to (docs/spark.md), in a shuffle simulated in Python, give
  batch's alerts;
- time slices scored one after the other, each after the context the one before left, in memory and on a
  history store, write one run's alerts and scores (§8);
- a stream primed with a batch run's context (``watch --history``) writes the later records' alerts.

tests/test_spark.py and tests/test_serve.py run drawn packs through the Spark job and the decision API.

A rule that lint refuses must say where (``file:line:col``); the example is then not compared. Rules
edited as an analyst might slip (a line lost, a word replaced) must be refused so, or run alike.
A failure prints the rules (those of one seed: they do not shrink) and the shrunk records;
``python -m tests.rulegen SEED`` prints the rules of a seed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from unittest import mock

import pandas as pd
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fraudrules.executors.batch
from fraudrules.executors.stream import StreamExecutor
from fraudrules.io.records import parse_inputs, records_from_dicts
from fraudrules.jobs.score import score_job, score_records
from fraudrules.runtime.alerts import alert_line
from tests.helpers import assert_resume_is_uninterrupted, cut_by_ts, in_event_time_order, sliced_results
from tests.rulegen import csv_frames, dense_record_lists, mutated_rule_packs, plan_of, rule_packs, written_pack
from tests.test_absent import tie_keeping_jitter
from tests.test_history import SCORED_KEYS, write_slices
from tests.test_properties import assert_agree
from tests.test_spark import shuffled_lines
from tests.test_stream import batch_lines, stream_lines

SLOW = dict(deadline=None, suppress_health_check=list(HealthCheck))


@settings(max_examples=150, **SLOW)
@given(texts=rule_packs(), records=dense_record_lists())
def test_random_rules_batch_agrees_with_reference(texts: list[str], records: list[dict]) -> None:
    plan = plan_of(texts)
    assume(plan is not None)
    assert_agree(records, plan)
    for name, value in (("MAX_PAIRS_PER_BLOCK", 3), ("NARROW_SHARE", 0)):  # the large-input join; narrow reads
        with mock.patch.object(fraudrules.executors.batch, name, value):
            assert_agree(records, plan)


@settings(max_examples=200, **SLOW)
@given(texts=mutated_rule_packs(), records=dense_record_lists())
def test_edited_rules_are_refused_where_they_are_wrong_or_run_alike(texts: list[str], records: list[dict]) -> None:
    """A drawn pack after an analyst's slips (a line lost or repeated, a word replaced or cut short): lint
    refuses it at ``file:line:col`` (``written_pack`` checks the location), and no other exception
    escapes; what lint accepts runs as the reference says, and the stream writes batch's bytes."""
    plan = plan_of(texts)
    if plan is None:  # refused, where it is wrong: the example is done
        return
    assert_agree(records, plan)
    got, _ = stream_lines(plan, records, lateness=float("inf"), chunk=7)
    assert got == batch_lines(plan, records)


@settings(max_examples=100, **SLOW)
@given(texts=rule_packs(), records=dense_record_lists(), chunk=st.sampled_from([1, 7, 1000]), cut=st.floats(0, 1),
       lateness=st.sampled_from([0, 180, 900]), arrival_seed=st.integers(0, 2**16))
def test_random_rules_stream_writes_the_batch_alerts(texts: list[str], records: list[dict], chunk: int,
                                                      cut: float, lateness: int, arrival_seed: int) -> None:
    plan = plan_of(texts)
    assume(plan is not None)
    want = batch_lines(plan, records)
    for scalar_max in (10**9, 0):  # record by record (runtime/scalar.py), and over columns
        got, _ = stream_lines(plan, records, lateness=float("inf"), chunk=chunk, shards=3, scalar_max=scalar_max)
        assert got == want, scalar_max
    # out of order, but never more than the lateness behind the newest record: nothing late, batch's alerts
    arrival = tie_keeping_jitter(records, lateness, seed=arrival_seed)
    got, ex = stream_lines(plan, arrival, lateness=lateness, chunk=chunk)
    assert not ex.late_records
    assert got == want, f"arrival jittered within {lateness} s"
    assert_resume_is_uninterrupted(plan, records, cut)


@settings(max_examples=60, **SLOW)
@given(texts=rule_packs(), records=dense_record_lists())
def test_random_rules_in_key_groups_as_spark_routes_them_give_the_batch_alerts(texts: list[str],
                                                                               records: list[dict]) -> None:
    """The Spark job's routing (engine/executors/spark/routing.py) in a shuffle simulated in Python."""
    plan = plan_of(texts)
    assume(plan is not None)
    want = batch_lines(plan, records)
    rs = records_from_dicts(records, plan.schema, region="CN")
    for buckets in (1, 2, 5):
        assert shuffled_lines(plan, rs, buckets, inline=True) == want, buckets


@settings(max_examples=150, **SLOW)
@given(texts=rule_packs(), records=dense_record_lists(), cuts=st.lists(st.integers(0, 40), min_size=1, max_size=4))
def test_random_rules_in_slices_continuing_a_context_give_one_runs_answer(texts: list[str], records: list[dict],
                                                                       cuts: list[int]) -> None:
    """The reach of a pack (store/horizon.py: how far back, which columns) in memory, where many examples
    fit: slices scored in turn, each after the Context the slice before left, give one run's alerts and
    each record's score. The store test below does the same through files and a history store."""
    plan = plan_of(texts)
    assume(plan is not None)
    one = score_records(plan, records_from_dicts(records, plan.schema, region="CN"))
    results = sliced_results(plan, cut_by_ts(records, plan.schema, cuts))
    assert [alert_line(a) for r in results for a in r.alerts] == [alert_line(a) for a in one.alerts]
    scored = pd.concat([r.scored for r in results], ignore_index=True)
    assert scored[SCORED_KEYS].astype(str).equals(one.scored[SCORED_KEYS].astype(str))


@settings(max_examples=100, **SLOW)
@given(texts=rule_packs(), records=dense_record_lists(), cut=st.integers(0, 40))
def test_random_rules_stream_primed_from_a_context_gives_the_later_slices_alerts(texts: list[str],
                                                                                records: list[dict],
                                                                                cut: int) -> None:
    """``watch --history`` in memory: a stream executor primed with the context a batch run left (its kept
    records and columns, its last alerts, its high-water mark: StreamExecutor.prime) writes, on the records
    after it, the alerts batch writes for them when it continues from that context."""
    plan = plan_of(texts)
    assume(plan is not None)
    first, later = cut_by_ts(records, plan.schema, [cut])
    assume(first and later)
    before, after = sliced_results(plan, [first, later])
    context = before.context_after
    ex = StreamExecutor(plan, lateness=0.0)
    ex.prime(context.records_in_order(), context.prior_alerts(), context.high_water)
    ordered = in_event_time_order(later)
    got = ex.feed_many(ordered) + ex.flush()
    assert not ex.late_records
    assert [alert_line(a) for a in got] == [alert_line(a) for a in after.alerts]


def _scored(paths: dict) -> pd.DataFrame:
    return pd.read_json(paths["scored"], lines=True, dtype=False).reindex(columns=SCORED_KEYS).astype(str)


@settings(max_examples=25, **SLOW)
@given(texts=rule_packs(), records=dense_record_lists(),
       cuts=st.lists(st.floats(0.05, 0.95), min_size=1, max_size=3), chunked=st.booleans())
def test_random_rules_daily_runs_on_a_store_write_one_runs_answer(texts: list[str], records: list[dict],
                                                                 cuts: list[float], chunked: bool) -> None:
    """``cuts``: where the slices end, as shares of the records' time span."""
    ts = pd.to_datetime(pd.Series([r["ts"] for r in records], dtype=object), utc=True, format="ISO8601")
    assume(len(records) > 1 and ts.max() > ts.min())
    bounds = sorted({ts.min() + (ts.max() - ts.min()) * share for share in cuts})
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "pack").mkdir()
        pack = written_pack(texts, root / "pack")
        assume(pack is not None)
        frames = csv_frames(records)
        whole = write_slices(frames, [], root / "whole")[0]
        _, paths = score_job(root / "pack", parse_inputs([str(whole)], pack.schema), root / "one", pack=pack)
        want_alerts, want_scored = paths["alerts"].read_text(encoding="utf-8").splitlines(), _scored(paths)
        alerts, scored = [], []
        for i, folder in enumerate(write_slices(frames, bounds, root / "slices")):
            _, paths = score_job(root / "pack", parse_inputs([str(folder)], pack.schema), root / f"out{i}",
                                 pack=pack, history=root / "store",
                                 **({"memory_rows": 7, "chunk_rows": 3} if chunked else {}))
            alerts += paths["alerts"].read_text(encoding="utf-8").splitlines()
            scored.append(_scored(paths))
        assert alerts == want_alerts
        assert pd.concat(scored, ignore_index=True).equals(want_scored)
