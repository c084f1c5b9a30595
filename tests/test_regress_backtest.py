"""fraudrules regress catches a changed rule; backtest counts precision and recall right."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pandas as pd

from fraudrules.jobs.backtest import Labels, backtest
from fraudrules.jobs.regress import compare, describe
from tests.helpers import REPO

CLI = [sys.executable, str(REPO / "cli.py")]


def run(*args, cwd=REPO):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, cwd=cwd)


def test_regress_passes_on_the_shipped_golden_file():
    proc = run("regress")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no difference" in proc.stderr


def test_regress_catches_a_deliberately_changed_threshold(tmp_path):
    pack = tmp_path / "rules"
    shutil.copytree(REPO / "rules", pack)
    rule = pack / "payments" / "structuring.yaml"
    text = rule.read_text()
    # a threshold the sample cases still pass: same alerts, their conditions changed
    rule.write_text(text.replace(">= 135000", ">= 140000"))
    proc = run("regress", "--rules", pack)
    assert proc.returncode == 1
    assert "TF-STRUCT-001: +0 added, -0 removed, ~3 changed" in proc.stdout
    assert "conditions changed" in proc.stdout
    # a threshold they fail: the alerts are gone
    rule.write_text(text.replace(">= 135000", ">= 300000"))
    proc = run("regress", "--rules", pack)
    assert proc.returncode == 1
    assert "TF-STRUCT-001: +0 added, -3 removed" in proc.stdout
    removed = [line for line in proc.stdout.splitlines() if line.startswith("  - ")]
    assert len(removed) == 3 and all("just under 50,000" in line for line in removed)
    # --update accepts the change, after which the same pack is clean again
    golden = tmp_path / "golden.jsonl"
    assert run("regress", "--rules", pack, "--expected", golden, "--update").returncode == 0
    assert run("regress", "--rules", pack, "--expected", golden).returncode == 0


def test_compare_classifies_added_removed_changed():
    base = {"rule_id": "R", "stream": "payment", "ts": "t", "explain": "x", "score": 10, "rule_pack": "a"}
    expected = [dict(base, record_id="p1"), dict(base, record_id="p2")]
    actual = [dict(base, record_id="p2", explain="y", rule_pack="b"), dict(base, record_id="p3", rule_pack="b")]
    reg = compare(expected, actual)
    diff = reg.rules["R"]
    assert [a["record_id"] for a in diff.added] == ["p3"]
    assert [a["record_id"] for a in diff.removed] == ["p1"]
    assert [(old["record_id"], fields) for old, _, fields in diff.changed] == [("p2", ["explain"])]
    assert reg.pack_changed and not reg.clean
    assert any("was: x" in line for line in describe(reg))
    assert compare(expected, [dict(a, rule_pack="zzz") for a in expected]).clean  # the hash alone is no change


def test_backtest_counts_by_hand():
    alerts = [{"rule_id": "A", "stream": "payment", "record_id": i, "key": "k"} for i in ("p1", "p2", "p3")]
    alerts += [{"rule_id": "B", "stream": "call", "record_id": "c9", "key": "k"}]
    labels = Labels(pd.DataFrame({
        "stream": ["payment", "payment", "payment", "call"],
        "record_id": ["p1", "p2", "p7", "c1"],
        "typology": ["scam", "scam", "scam", "wangiri"],
        "case_id": ["S1", "S1", "S2", "W1"],
    }), by_key=False)
    report = backtest(alerts, [("A", "high", "stable"), ("B", "low", "stable"), ("C", "low", "stable")], 1000, labels)
    a, b, c = report.rules["A"], report.rules["B"], report.rules["C"]
    assert (a.alerts, a.true_positives, a.false_positives, a.precision) == (3, 2, 1, 2 / 3)
    assert a.typology_cases == {"scam": 0.5} and a.per_1k == 3.0
    assert (b.true_positives, b.precision) == (0, 0.0) and c.precision is None
    scam, wangiri = report.typologies["scam"], report.typologies["wangiri"]
    assert (scam.cases, scam.cases_caught, scam.case_recall) == (2, 1, 0.5)
    assert (scam.records, scam.records_alerted) == (3, 2)
    assert wangiri.case_recall == 0.0


def test_backtest_cli_with_baseline_on_samples(tmp_path):
    baseline = tmp_path / "baseline"
    shutil.copytree(REPO / "rules", baseline)
    (baseline / "payments" / "app_scam.yaml").unlink()
    (baseline / "payments" / "no_callback.yaml").unlink()  # it catches app scams too, at their deadline
    out = tmp_path / "report.json"
    proc = run("backtest", "samples", "--labels", "samples/labels.csv", "--baseline", baseline, "--json", out)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert "TF-APP-001" in report["current"]["rules"] and "TF-APP-001" not in report["baseline"]["rules"]
    current = report["current"]["typologies"]["app_scam"]
    assert current["case_recall"] == 1.0
    assert report["baseline"]["typologies"]["app_scam"]["caught"] < current["caught"]
    assert "baseline precision" in proc.stdout


def test_backtest_list_override_holds_for_the_baseline_too(tmp_path):
    """--list describes the data, so the baseline pack sees the same list."""
    empty = tmp_path / "none.txt"
    empty.write_text("")
    out = tmp_path / "report.json"
    proc = run("backtest", "samples", "--labels", "samples/labels.csv", "--baseline", REPO / "rules",
               "--list", f"reported_accounts={empty}", "--json", out)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    cur, base = report["current"]["rules"], report["baseline"]["rules"]
    assert cur["TF-REP-001"]["alerts"] == base["TF-REP-001"]["alerts"] == 0  # the samples do alert without it
    plain = run("backtest", "samples", "--labels", "samples/labels.csv", "--json", tmp_path / "plain.json")
    assert plain.returncode == 0, plain.stderr
    assert json.loads((tmp_path / "plain.json").read_text())["current"]["rules"]["TF-REP-001"]["alerts"] > 0
