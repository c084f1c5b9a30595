"""A batch run holds its alerts as lines (runtime.alerts.Alerts), cut before their risk score and
decision are known (UnstampedAlerts); each piece is held here to the dict-based definition it replaces:
``alert_line`` of the stamped dict, ``stamp_decision`` per alert, the alert dicts themselves."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudrules.pack.loader import load_pack
from fraudrules.runtime import alert_text
from fraudrules.runtime.alerts import (
    AFTER_ALL,
    ALERT_COLUMNS,
    Alerts,
    UnstampedAlerts,
    alert_fields,
    alert_line,
    cut_line,
    stamp_decision,
    stamp_line,
    stamped_alerts,
    stamps,
)
from fraudrules.runtime.plan import compile_pack
from tests.helpers import RULES

KEYS = st.text(min_size=1, max_size=8).filter(lambda k: k not in ("risk_score", "decision"))
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63), st.text(max_size=20),
                    st.floats(allow_nan=False, allow_infinity=False))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=10)
FIELDS = st.dictionaries(KEYS, VALUES, max_size=6)


@settings(max_examples=300, deadline=None)
@given(FIELDS, FIELDS, st.one_of(st.none(), st.integers(0, 100)), st.one_of(st.none(), st.text(max_size=12)))
def test_a_cut_line_stamped_is_the_line_of_the_stamped_dict(head, tail, risk, decision):
    tail = {k: v for k, v in tail.items() if k not in head}  # one key, one place
    unstamped = {**head, "risk_score": None, "decision": None, **tail}
    stamped = {**head, "risk_score": risk, "decision": decision, **tail}
    assert stamp_line(*_around(cut_line(unstamped), risk, decision)) == alert_line(stamped)


def _around(cut: tuple[str, str], risk, decision) -> tuple:
    return cut[0], risk, decision, cut[1]


def test_a_cut_needs_the_decision_right_after_the_risk_score():
    with pytest.raises(ValueError):
        cut_line({"risk_score": None, "key": "k", "decision": None})


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture(scope="module")
def plan():
    return compile_pack(load_pack(RULES), "CN")


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(-50, 400), max_size=40))
def test_stamps_are_stamp_decision_per_alert(plan, risks):
    scores, decisions = stamps(np.array(risks, dtype=np.int64), plan)
    for risk, score, decision in zip(risks, scores, decisions):
        one: dict = {}
        stamp_decision(one, risk, plan)
        assert (one["risk_score"], one["decision"]) == (score, decision)


def _alert(i: int, rule: str, shadow: bool = False) -> dict:
    return {"alert_id": f"a{i}", "rule_id": rule, "severity": "high" if i % 2 else "low", "shadow": shadow,
            "key": f"k{i % 3}", "ts": f"2026-03-01T00:00:0{i}Z", "stream": "call", "record_id": f"r{i}",
            "risk_score": i * 10, "decision": "review", "explain": f"é {i} \u2028", "score": 1.5e-7 * i,
            "evidence": [{"fields": {"n": None, "list": [1, "x"]}}]}


@pytest.mark.parametrize("memory_bytes", [0, 1 << 20])
def test_alerts_read_as_the_dicts_they_hold(monkeypatch, memory_bytes):
    monkeypatch.setattr(alert_text, "SPOOL_MEMORY_BYTES", memory_bytes)  # 0: every spool in a file
    dicts = [_alert(i, "R-1" if i < 3 else "R-2", shadow=i == 4) for i in range(6)]
    alerts = Alerts.of(dicts)
    assert alerts.lines == [alert_line(a) for a in dicts]
    assert len(alerts) == 6 and alerts == dicts and list(alerts) == dicts
    assert alerts[2] == dicts[2] and alerts[-1] == dicts[-1] and alerts[1:3] == dicts[1:3]
    assert alerts[::2] == dicts[::2] and alerts[4:1] == [] and alerts[-3:] == dicts[-3:] and alerts[::-1] == dicts[::-1]
    assert alerts != dicts[:5] and alerts != [*dicts[:5], _alert(9, "R-2")]
    for name in ALERT_COLUMNS:
        assert alerts.column(name) == [a[name] for a in dicts]
    names = ("rule_id", "shadow", "ts", "alert_id")
    assert list(alert_fields(alerts, *names)) == list(alert_fields(dicts, *names)) == \
        [tuple(a[n] for n in names) for a in dicts]
    order = [5, 0, 3, 1, 4, 2]
    assert alerts.taken(order) == [dicts[i] for i in order]
    joined = Alerts.joined([alerts.taken([0, 1]), Alerts(), alerts.taken([2, 3, 4, 5])])
    assert joined == alerts and joined.columns == alerts.columns
    assert Alerts.of(alerts) is alerts
    assert [json.loads(line) for line in alerts.lines] == dicts


def test_unstamped_alerts_stamped_are_the_stamped_dicts(plan):
    rp = plan.rules[0]
    dicts = []
    for i in range(5):
        a = _alert(i, rp.id)
        a.update(severity=rp.rule.severity, shadow=rp.rule.shadow, stream=rp.steps[-1].stream,
                 risk_score=None, decision=None)
        dicts.append(a)
    part = UnstampedAlerts.of(iter(dicts), [(7, i, 0) for i in range(5)], list(range(5)))
    assert len(part) == 5
    scores, decisions = stamps(np.array([0, 30, 70, 100, 250]), plan)
    want = []
    for a, score in zip(dicts, [0, 30, 70, 100, 250]):
        stamped = dict(a)
        stamp_decision(stamped, score, plan)
        want.append(stamped)
    got = stamped_alerts([(rp, part, scores, decisions)])
    assert got.lines == [alert_line(a) for a in want] and got.columns == Alerts.of(want).columns


PART = st.tuples(st.booleans(), st.lists(st.tuples(st.integers(0, 3), st.integers(0, 5)), max_size=12))


@settings(max_examples=150, deadline=None)
@given(st.lists(PART, max_size=4), st.sampled_from([0, 200, 1 << 20]), st.integers(0, 10_000))
def test_stamped_alerts_come_in_the_order_of_their_order_keys(plan, monkeypatch_module, parts, memory_bytes, salt):
    """stamped_alerts sorts by MatchView.order_columns and rule id as the (ts, seq, rule) and
    (D, AFTER_ALL, seq, rule) tuples of order_keys sort, stably; whether the text is in memory or in files."""
    monkeypatch_module.setattr(alert_text, "SPOOL_MEMORY_BYTES", memory_bytes)
    given_parts, want = [], []
    for p, (absent, keys) in enumerate(parts):
        rp = plan.rules[(salt + 7 * p) % len(plan.rules)]
        if any(rp is q for q, *_ in given_parts):
            continue  # one part per rule, as a run has
        dicts, rows = [], []
        for j, (ts, seq) in enumerate(keys):
            a = _alert(j, rp.id)
            a.update(alert_id=f"{rp.id}/{j}", severity=rp.rule.severity, shadow=rp.rule.shadow,
                     stream=rp.steps[-1].stream, risk_score=None, decision=None)
            dicts.append(a)
            rows.append((ts, AFTER_ALL, seq, 0) if absent else (ts, seq, 0, 0))
            order_key = (ts, AFTER_ALL, seq, rp.id) if absent else (ts, seq, rp.id)
            want.append((order_key, len(want), a))
        risks = [(3 * j + salt) % 120 for j in range(len(dicts))]
        scores, decisions = stamps(np.array(risks, dtype=np.int64), plan)
        for (_, _, a), score, decision in zip(want[len(want) - len(dicts):], scores, decisions):
            a.update(risk_score=score, decision=decision)
        part = UnstampedAlerts.of(iter([{**d, "risk_score": None, "decision": None} for d in dicts]),
                                  np.array([r[:3] for r in rows], dtype=np.int64).reshape(-1, 3), [0] * len(dicts))
        given_parts.append((rp, part, scores, decisions))
    got = stamped_alerts(given_parts)
    expected = [a for _, _, a in sorted(want, key=lambda w: (w[0], w[1]))]
    assert got.lines == [alert_line(a) for a in expected]
    assert got.columns == Alerts.of(expected).columns


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(FIELDS, FIELDS), min_size=1, max_size=5), st.integers(0, 130))
def test_stamped_alerts_are_the_lines_of_the_stamped_dicts(plan, parts, risk):
    """Whatever an alert holds after its decision (nothing, too), its stamped line is alert_line's."""
    rp = plan.rules[0]
    own = {"alert_id": "a", "key": "k", "ts": "t", "record_id": "r"}
    dicts = [{**own, **{k: v for k, v in head.items() if k not in own}, "risk_score": None, "decision": None,
              **{k: v for k, v in tail.items() if k not in head and k not in own}} for head, tail in parts]
    scores, decisions = stamps(np.full(len(dicts), risk, dtype=np.int64), plan)
    part = UnstampedAlerts.of(iter(dicts), np.zeros((len(dicts), 3), dtype=np.int64), [0] * len(dicts))
    got = stamped_alerts([(rp, part, scores, decisions)])
    assert got.lines == [alert_line({**d, "risk_score": s, "decision": c}) for d, s, c in zip(dicts, scores, decisions)]
