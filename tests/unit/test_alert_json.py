"""Alert lines built over columns (runtime.alert_json) are the bytes of the per-alert builder they replace in
batch: ``UnstampedAlerts.of(iter_alerts(...))``, whose dicts ``json.dumps`` writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudrules.columns.vec import ArrowTexts, Coded, Vec
from fraudrules.executors.batch import BatchExecutor, match_view
from fraudrules.io.records import parse_inputs, read_inputs
from fraudrules.pack.loader import load_pack
from fraudrules.runtime import alert_json
from fraudrules.runtime.alert_json import json_literals, unstamped_alerts
from fraudrules.runtime.alerts import LISTED_AGGREGATES, UnstampedAlerts, iter_alerts, key_texts, to_python
from fraudrules.runtime.plan import compile_pack
from fraudrules.synth.generate import generate
from tests.helpers import REPO, RULES


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _literals(v: Vec) -> list[str]:
    return json_literals(v).to_pylist()


NULLS = st.lists(st.booleans(), min_size=0, max_size=30)
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)  # Arrow holds no lone surrogate
FLOATS = st.one_of(st.floats(), st.sampled_from([0.0, -0.0, 2.0**53, 2.0**53 + 2, 2.0**63, -2.0**63, 1e300, 5e-324,
                                                  0.1, 1e16, 123456789.5]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(FLOATS, st.booleans()), max_size=30))
def test_numbers_are_what_json_dumps_writes(pairs):
    v = Vec(np.array([x for x, _ in pairs], dtype=np.float64), np.array([n for _, n in pairs], dtype=bool))
    assert _literals(v) == [_dumps(x) for x in to_python(v)]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(-2**62, 2**62), st.booleans()), max_size=30))
def test_timestamps_and_bools_are_what_json_dumps_writes(pairs):
    ns = np.array([x for x, _ in pairs], dtype=np.int64)
    null = np.array([n for _, n in pairs], dtype=bool)
    for v in (Vec(ns, null), Vec(ns % 3 == 0, null)):
        assert _literals(v) == [_dumps(x) for x in to_python(v)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(TEXT, st.booleans()), max_size=30))
def test_texts_are_what_json_dumps_writes_whatever_their_column(pairs):
    texts = [t for t, _ in pairs]
    null = np.array([n for _, n in pairs], dtype=bool)
    plain = Vec(np.array(texts, dtype=object), null)
    want = [_dumps(x) for x in to_python(plain)]
    dictionary = sorted(set(texts))
    codes = np.array([dictionary.index(t) for t in texts], dtype=np.int32)
    as_codes = Coded(codes, pa.array(dictionary, pa.string()), null)
    as_arrow = ArrowTexts(pa.array(texts, pa.large_string()), null)
    for v in (plain, as_codes, as_arrow, as_codes.take(np.arange(len(texts))), as_arrow.take(np.arange(len(texts)))):
        assert _literals(v) == want
    # an object column that is not all text: to_python's str() of each value
    mixed = Vec(np.array([*texts, 7, 1.5, None], dtype=object), np.array([*null, False, False, False], dtype=bool))
    plain_none = Vec(np.array([*texts, None], dtype=object), np.array([*null, False], dtype=bool))
    assert _literals(plain_none) == [_dumps(x) for x in to_python(plain_none)]
    assert _literals(mixed) == [_dumps(x) for x in to_python(mixed)]


def test_key_texts_are_the_alert_keys_of_every_kind_of_column():
    """Batch carries suppression across slices by the ``key`` texts of earlier alerts (executors/batch.py), and
    backtests match labels to keys the same way: key_texts must give, for a column of any kind, the text an alert
    writes as its key, "" for null. A number key is "5", never 5.0 or the float itself."""
    cases = [
        (Vec(np.array(["A1", "", "B2"], dtype=object), np.array([False, True, False])), ["A1", "", "B2"]),
        (Vec(np.array([5.0, 2.5, 0.0, -3.0]), np.array([False, False, True, False])), ["5", "2.5", "", "-3"]),
        (Vec(np.array([0, 1_500_000_000], dtype=np.int64), np.array([False, False])),
         ["1970-01-01T00:00:00Z", "1970-01-01T00:00:01.5Z"]),
        (Vec(np.array([True, False, True]), np.array([False, False, True])), ["True", "False", ""]),
    ]
    for vec, want in cases:
        got = key_texts(vec).tolist()
        assert got == want
        assert got == ["" if x is None else str(x) for x in to_python(vec)]  # what iter_alerts writes as "key"


def _data_sets(tmp: Path) -> list[tuple[str, list[str], str | None]]:
    generated = tmp / "generated"
    generate(generated, customers=300, days=4, seed=11)
    return [("samples", [str(REPO / "samples")], None), ("generated", [str(generated)], None),
            ("paysim", [str(REPO / "tests" / "data" / "paysim_head.csv")],
             str(REPO / "samples" / "maps" / "paysim.yaml"))]


@pytest.fixture(scope="module")
def executors(tmp_path_factory):
    from fraudrules.io.mapping import load_mapping

    pack = load_pack(RULES)
    plan = compile_pack(pack, "CN")
    out = []
    for name, inputs, mapping in _data_sets(tmp_path_factory.mktemp("alert_json")):
        mapped = None if mapping is None else load_mapping(Path(mapping), pack.schema)
        records = read_inputs(parse_inputs(inputs, pack.schema, mapping=mapped), pack.schema, mapping=mapped)
        out.append((name, plan, BatchExecutor(plan, records)))
    return out


@pytest.mark.parametrize("block", [alert_json.BLOCK_ALERTS, 3])
def test_every_rule_gives_the_bytes_of_the_per_alert_builder(executors, monkeypatch, block):
    """Every match of every shipped rule, suppressed ones too, on three data sets; and the pack's features
    that shape a line (a run, an absence, a list's entry, a count's members, a formatted explanation) are
    among the alerts compared, so that no branch is compared on nothing."""
    monkeypatch.setattr(alert_json, "BLOCK_ALERTS", block)
    seen: dict[str, int] = {}
    for name, plan, ex in executors:
        for rp in plan.rules:
            view = match_view(ex, ex.run_rule(rp), only_emitted=False)
            seq = np.asarray(view.seq, dtype=np.int64)
            want = UnstampedAlerts.of(iter_alerts(plan, view, ex.evaluator), view.order_columns(), seq)
            got = unstamped_alerts(plan, view, ex.evaluator, seq)
            assert got == want, (name, rp.id)
            if view.n:
                for feature, present in _features(rp).items():
                    seen[feature] = seen.get(feature, 0) + (view.n if present else 0)
    assert all(seen.values()) and len(seen) == 6, seen


def _features(rp) -> dict[str, bool]:
    aggs = {sp.alias: sp.aggregates for sp in rp.steps}
    return {
        "run": any(sp.is_run for sp in rp.steps),
        "absent": rp.absent is not None,
        "list": any(leaf.list_name for c in rp.conditions for leaf in c.leaves),
        "members": any(getattr(aggs[c.step].get(leaf.expr), "func", None) in LISTED_AGGREGATES
                       for c in rp.conditions for leaf in c.leaves),
        "format": any(part.spec for part in rp.explain),
        "sequence": len(rp.steps) > 1,
    }
