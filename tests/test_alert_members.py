"""Alerts that name who (docs/design.md §6): what each count and distinct counted, and the decision.

The members an alert lists are checked against the naive reference model (tests/reference.py),
which scans the whole record list for each window: the first ``MEMBERS_SHOWN`` record ids of a
count, or distinct values of a distinct in order of first appearance, and their total. That the
stream executor writes the same bytes is tests/test_stream.py::test_random_records_every_rule_kind,
on the same random records and the same pack.
"""

from __future__ import annotations

import json
import subprocess
import sys
from unittest import mock

from hypothesis import HealthCheck, given, settings

import fraudrules.runtime.alerts
from fraudrules.io.records import records_from_dicts
from fraudrules.jobs.score import evaluate
from fraudrules.runtime.alerts import MEMBERS_SHOWN
from tests.helpers import REPO
from tests.reference import Aggregates, typed_records
from tests.test_properties import PACK, PLAN, record_lists


def _spec_of(rule_id: str, step: str, expr: str, leaf_text: str):
    rp = next(r for r in PLAN.rules if r.id == rule_id)
    sp = next(s for s in rp.steps if s.alias == step)
    cond = next(c for c in rp.conditions if c.step == step and c.text == expr)
    leaf = next(lf for lf in cond.leaves if lf.text == leaf_text)
    # ``fanin.count(...)`` in a later step's where counted at the record of step fanin
    return sp.aggregates[leaf.expr], leaf.expr.alias or step


def _json(values: list) -> list:
    return json.loads(json.dumps([int(v) if isinstance(v, float) and v.is_integer() else v for v in values]))


SHOWN = 2


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=record_lists())
def test_alert_members_are_the_reference_window(records):
    rs = records_from_dicts(records, PACK.schema, region="CN")
    with mock.patch.object(fraudrules.runtime.alerts, "MEMBERS_SHOWN", SHOWN):  # small windows get cut too
        alerts, *_ = evaluate(PLAN, rs)
    recs = typed_records(PLAN, records)
    by_id = {r.id: r for r in recs}
    aggs = Aggregates(PLAN, recs)
    for a in alerts:
        at = {e["step"]: e["id"] for e in a["evidence"]}
        for cond in a["conditions"]:
            for text, members in (cond.get("behind") or {}).items():
                spec, step = _spec_of(a["rule_id"], cond["step"], cond["expr"], text)
                window = aggs._window(spec, by_id[at[step]])
                if spec.bound is not None:  # a window that starts at an earlier step of this alert's chain
                    alias, inclusive = spec.bound
                    start = int(by_id[at[alias]].ts)
                    window = [q for q in window if int(q.ts) > start or (inclusive and int(q.ts) == start)]
                if spec.func == "count":
                    ids = [q.id for q in window]
                    assert members == {"total": len(ids), "records": ids[:SHOWN]}
                else:
                    values = list(dict.fromkeys(aggs.values(spec, window)))
                    assert members == {"total": len(values), "values": _json(values[:SHOWN])}
                assert members["total"] == cond["values"][text]  # the same number the condition held with


def test_samples_alerts_list_members_and_carry_the_records_decision(tmp_path):
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, str(REPO / "cli.py"), "score", "samples", "--out", str(out), "-q"],
                         cwd=REPO, capture_output=True, text=True)
    assert run.returncode in (0, 1), run.stderr
    alerts = [json.loads(line) for line in (out / "alerts.jsonl").read_text().splitlines()]
    scored = {}
    for line in (out / "scored.jsonl").read_text().splitlines():
        r = json.loads(line)
        scored[(r["stream"], r["id"])] = (r["risk_score"], r["decision"])
    # an absence alert is no record's (docs/design.md §6): it carries its rule's own weight, 0 for a shadow rule
    absence = [a for a in alerts if any(c.get("absent") for c in a["conditions"])]
    assert absence and all((a["risk_score"], a["decision"]) == (0, "allow") for a in absence)
    alerts = [a for a in alerts if a not in absence]
    assert alerts and all(scored[(a["stream"], a["record_id"])] == (a["risk_score"], a["decision"]) for a in alerts)
    listed = [(a, c) for a in alerts for c in a["conditions"] if c.get("behind")]
    assert {a["rule_id"] for a, _ in listed} >= {"TF-VEL-001", "TF-DEV-001", "TF-MULE-001", "TF-NEWSIM-001"}
    for a, c in listed:
        for text, members in c["behind"].items():
            shown = members.get("records", members.get("values"))
            assert members["total"] == c["values"][text] and len(shown) == min(MEMBERS_SHOWN, members["total"])
            if "records" in members and a["rule_id"] == "TF-VEL-001":  # a count(1h) counts the trigger itself
                assert a["record_id"] in shown or members["total"] > MEMBERS_SHOWN
    # every step's record names its parties (rules/streams.yaml), read by the rule or not
    parties = {"payment": {"payer_account", "payer_phone", "payee_account"}, "call": {"caller", "callee"},
               "sim_event": {"msisdn", "id_document"}, "sms": {"sender", "receiver"}}
    assert all(parties[e["stream"]] <= set(e["fields"]) for a in alerts for e in a["evidence"])


def test_a_party_that_is_not_a_field_is_a_located_error(tmp_path):
    import shutil

    pack = tmp_path / "rules"
    shutil.copytree(REPO / "rules", pack)
    text = (pack / "streams.yaml").read_text()
    (pack / "streams.yaml").write_text(text.replace("parties: [caller, callee]", "parties: [caller, calee]"))
    line = next(i for i, t in enumerate((pack / "streams.yaml").read_text().splitlines(), 1) if "calee" in t)
    run = subprocess.run([sys.executable, str(REPO / "cli.py"), "lint", "--rules", str(pack)],
                         capture_output=True, text=True)
    assert run.returncode == 2
    said = run.stderr + run.stdout
    assert f"streams.yaml:{line}:" in said and "'calee' is not one of its fields" in said
    assert "Traceback" not in run.stderr
