"""Batch at columnar speed (#9): integer key codes, the Arrow-built scored records and rules run in
worker processes must not change a single output.

Each fast path is checked against the path it replaced: pandas' factorize for the codes, the
per-stream scored frames for the scored records, one process for ``jobs``.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudrules.columns.vec import Vec
from fraudrules.io.records import parse_inputs, read_time_chunks
from fraudrules.io.sinks import plain_text
from fraudrules.jobs import score as job
from fraudrules.pack.loader import load_pack
from fraudrules.runtime import alert_json, alert_text
from fraudrules.runtime.plan import compile_pack
from fraudrules.runtime.scoring import new_scores
from fraudrules.runtime.windows import ColumnCodes, joint_codes, object_codes, sorted_ranks

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Two code arrays that group the rows alike (the numbers themselves may differ)."""
    pairs = pd.DataFrame({"a": a, "b": b}).drop_duplicates()
    return pairs["a"].is_unique and pairs["b"].is_unique


texts = st.lists(st.sampled_from(["a", "b", "+8613800000001", "", "é", "a "]), min_size=0, max_size=60)


@settings(max_examples=80, deadline=None)
@given(texts, st.booleans())
def test_object_codes_group_like_factorize(values, fresh_objects):
    # fresh_objects: equal texts as distinct str objects (as after joining chunks), else shared ones
    arr = np.array([("" + v + ".")[:-1] if fresh_objects else v for v in values], dtype=object)
    codes, uniq = object_codes(arr)
    want, _ = pd.factorize(arr)
    assert same_partition(codes, want)
    assert [uniq[c] for c in codes] == values


@settings(max_examples=60, deadline=None)
@given(texts, texts, st.lists(st.booleans(), max_size=60))
def test_joint_codes_compare_across_columns(left, right, nulls):
    """Codes of two columns agree exactly where the values do; a null is -1 and joins nothing."""
    null = np.array((nulls + [False] * len(left))[: len(left)], dtype=bool)
    la = ColumnCodes(Vec(np.array(left, dtype=object), null))
    rb = ColumnCodes(Vec(np.array(right, dtype=object), np.zeros(len(right), dtype=bool)))
    assert ((la.codes == -1) == null).all()
    a, b = joint_codes(la, rb)
    assert ((a == -1) == null).all() and (b >= 0).all()
    for i, x in enumerate(left):
        for j, y in enumerate(right):
            assert (a[i] == b[j]) == (not null[i] and x == y)
    assert same_partition(a[~null], la.codes[~null]) and same_partition(b, rb.codes)


@given(st.lists(st.integers(0, 5), max_size=40))
def test_sorted_ranks(steps):
    ts = np.cumsum(np.array(steps, dtype=np.int64))
    uniq, rank = sorted_ranks(ts)
    assert (uniq == np.unique(ts)).all() and (uniq[rank] == ts).all()
    shuffled = ts[::-1].copy()
    uniq, rank = sorted_ranks(shuffled)
    assert (uniq[rank] == shuffled).all()


@pytest.fixture(scope="module")
def sample_run():
    pack = load_pack(REPO / "rules")
    plan = compile_pack(pack, "CN", None)
    records = read_time_chunks(parse_inputs([str(SAMPLES)], pack.schema), pack.schema, region="CN").whole()
    return plan, records


def test_scored_records_equal_the_per_stream_frames(sample_run):
    plan, records = sample_run
    alerts, _, _, scored = job.evaluate(plan, records)
    assert len(alerts) and (scored["risk_score"] > 0).any() and (scored["rules"] != "").any()
    # the scores again, the old way: one frame per stream, concatenated, sorted by seq
    scores = {s: new_scores(s, t.n) for s, t in records.tables.items()}
    for rp, (_, _, rows, _) in zip(plan.rules, job._rule_results(plan, records, 1, None, None, None)):
        if rp.scores:  # an absence adds to no record's score
            job.add_matches(scores[rp.steps[-1].stream], rows, rp.id, rp.rule.score, rp.rule.shadow)
    # the texts that repeat are categoricals; decoded, they are the per-stream frames' text
    coded = [name for name, col in scored.items() if isinstance(col.dtype, pd.CategoricalDtype)]
    assert coded == ["stream", "input", "decision", "rules"]
    pd.testing.assert_frame_equal(plain_text(scored), job._scored_frames(records, scores, plan, None))
    # only fresh rows, as a chunk or a run after a history store scores them
    rng = np.random.default_rng(3)
    fresh = {s: rng.random(t.n) < 0.6 for s, t in records.tables.items()}
    pd.testing.assert_frame_equal(plain_text(job.scored_records(records, scores, plan, fresh)),
                                  job._scored_frames(records, scores, plan, fresh))


def test_rules_in_worker_processes_give_the_same_outputs(sample_run, monkeypatch):
    plan, records = sample_run
    monkeypatch.setattr(job, "PARALLEL_MIN_RECORDS", 0)  # the samples are small: fork anyway
    one = job.evaluate(plan, records, jobs=1)
    two = job.evaluate(plan, records, jobs=2)
    assert one[0] == two[0] and one[1] == two[1] and one[2] == two[2]
    pd.testing.assert_frame_equal(one[3], two[3])
    done = []
    job.evaluate(plan, records, lambda phase, n, total: done.append((phase, n, total)), jobs=3)
    assert done[-1] == ("rules", len(plan.rules), len(plan.rules))


def test_alert_text_in_files_gives_the_same_alerts_and_leaves_no_file(sample_run, monkeypatch, tmp_path):
    """Every rule's alert text spooled to a file (runtime.alert_text), in this process and in forked
    workers: the same alerts as text held in memory, and the temporary folder is left as it was."""
    plan, records = sample_run
    in_memory = job.evaluate(plan, records, jobs=1)[0]
    monkeypatch.setattr(alert_text, "SPOOL_MEMORY_BYTES", 0)
    monkeypatch.setattr(job, "PARALLEL_MIN_RECORDS", 0)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    for jobs in (1, 2):
        alerts = job.evaluate(plan, records, jobs=jobs)[0]
        assert alerts.text.in_file and alerts.lines == in_memory.lines and alerts.columns == in_memory.columns
        assert list(tmp_path.iterdir()) == []
    real = alert_json._join
    joins = itertools.count()

    def broken(pieces, rows):  # a rule's alerts fail half-way, after a block of its text has gone to a file
        if next(joins) == 4:  # the head and tail of two blocks of 2 alerts were joined and spooled
            raise RuntimeError("broken")
        return real(pieces, rows)

    monkeypatch.setattr(alert_json, "BLOCK_ALERTS", 2)
    monkeypatch.setattr(alert_json, "_join", broken)
    with pytest.raises(RuntimeError, match="broken"):
        job.evaluate(plan, records, jobs=1)
    assert next(joins) == 5 and list(tmp_path.iterdir()) == []


def test_default_jobs_is_capped_by_the_rules():
    assert job.default_jobs(1) == 1
    assert 1 <= job.default_jobs(1000) <= 1000


def test_spent_records_keep_their_ids_alone_and_give_the_same_alerts_and_scores():
    """evaluate(spend=True), as score() runs it when a writer takes the scored records: the tables let go
    of every column but the ids before the scored frame is built, and nothing it returns changes."""
    pack = load_pack(REPO / "rules")
    plan = compile_pack(pack, "CN", None)

    def read():
        return read_time_chunks(parse_inputs([str(SAMPLES)], pack.schema), pack.schema, region="CN").whole()

    kept, spent = read(), read()
    want = job.evaluate(plan, kept)
    got = job.evaluate(plan, spent, spend=True)
    assert got[0] == want[0] and got[1] == want[1] and got[2] == want[2]
    pd.testing.assert_frame_equal(got[3], want[3])
    assert all(list(t.columns) == ["id"] for t in spent.tables.values())
    assert all(len(t.columns) > 1 for t in kept.tables.values())


def test_alert_text_follows_the_spill_folder(monkeypatch, tmp_path):
    """``score --spill-dir``: a run's alert files go there (whole and in chunks), not to TMPDIR, and
    nothing is left in either."""
    pack = load_pack(REPO / "rules")
    specs = parse_inputs([str(SAMPLES)], pack.schema)
    want = job.score(REPO / "rules", specs, pack=pack).alerts
    monkeypatch.setattr(alert_text, "SPOOL_MEMORY_BYTES", 0)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    made: list[Path] = []
    real = alert_text.tempfile.mkstemp

    def mkstemp(prefix=None, dir=None):  # noqa: A002 - mkstemp's own name
        made.append(Path(dir))
        return real(prefix=prefix, dir=dir)

    monkeypatch.setattr(alert_text.tempfile, "mkstemp", mkstemp)
    spill = tmp_path / "spill"
    for memory_rows in (None, 3000):  # whole, then in chunks
        made.clear()
        got = job.score(REPO / "rules", specs, pack=pack, spill_dir=spill, memory_rows=memory_rows)
        assert got.alerts.lines == want.lines and (memory_rows is None or got.chunks > 1)
        assert made and all(spill in folder.parents for folder in made)
        assert list(spill.iterdir()) == [] and list((tmp_path / "tmp").iterdir()) == []


def test_a_pair_of_columns_joined_both_ways_shares_one_code_space(sample_run):
    # caller to callee and callee to caller (sequences of the shipped pack join both ways): one union of
    # their texts, read both ways, and kept while either way is still to be read
    from fraudrules.executors.batch import BatchExecutor

    plan, records = sample_run
    tables = BatchExecutor(plan, records).tables
    a, b = ("call", "caller"), ("call", "callee")
    ca, cb = tables.joint(a, b)
    back = tables.joint(b, a)
    assert back[0] is cb and back[1] is ca
    # equal codes where the texts are equal, either way round
    texts_a, texts_b = tables[a[0]].columns[a[1]].values, tables[b[0]].columns[b[1]].values
    live_a, live_b = ca >= 0, cb >= 0
    code_of = dict(zip(texts_a[live_a].tolist(), ca[live_a].tolist()))
    assert any(t in code_of for t in texts_b[live_b].tolist())  # the samples call back some callers
    for text, code in zip(texts_b[live_b].tolist(), cb[live_b].tolist()):
        assert (code_of.get(text, code) == code) and (text in code_of) == (code in code_of.values())
    tables.keep_joints({})
    assert (a, b) not in tables._joint and (b, a) not in tables._joint
    # a rule read one way; only the other way is still to be read: the pair stays for it
    ca, cb = tables.joint(a, b)
    tables.keep_joints({(b, a): None})
    assert tables.joint(b, a)[1] is ca
