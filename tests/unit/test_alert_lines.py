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
from fraudrules.runtime.alerts import (
    ALERT_COLUMNS,
    Alerts,
    UnstampedAlerts,
    alert_fields,
    alert_line,
    cut_line,
    stamp_decision,
    stamp_line,
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


def test_alerts_read_as_the_dicts_they_hold():
    dicts = [_alert(i, "R-1" if i < 3 else "R-2", shadow=i == 4) for i in range(6)]
    alerts = Alerts.of(dicts)
    assert alerts.lines == [alert_line(a) for a in dicts]
    assert len(alerts) == 6 and alerts == dicts and list(alerts) == dicts
    assert alerts[2] == dicts[2] and alerts[-1] == dicts[-1] and alerts[1:3] == dicts[1:3]
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
    part = UnstampedAlerts.of(iter(dicts), [("t", i) for i in range(5)], list(range(5)))
    assert len(part) == 5
    scores, decisions = stamps(np.array([0, 30, 70, 100, 250]), plan)
    want = []
    for a, score in zip(dicts, [0, 30, 70, 100, 250]):
        stamped = dict(a)
        stamp_decision(stamped, score, plan)
        want.append(stamped)
    got = part.stamped(rp, scores, decisions)
    assert got.lines == [alert_line(a) for a in want] and got.columns == Alerts.of(want).columns
