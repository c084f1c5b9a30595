"""The command line as a user and a CI job see it: outputs, determinism, exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import REPO, make_pack

CLI = [sys.executable, str(REPO / "cli.py")]
SAMPLES = REPO / "samples"


def run(*args, cwd=REPO):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    out = tmp_path_factory.mktemp("score") / "out"
    proc = run("score", SAMPLES, "--out", out)
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_score_writes_every_output_and_counts_reconcile(scored):
    out, proc = scored
    summary = json.loads((out / "summary.json").read_text())
    assert {p.name for p in out.iterdir()} == {"alerts.jsonl", "scored.jsonl", "rejects.csv", "summary.json"}
    for i in summary["inputs"]:
        assert i["read"] == i["scored"] + i["rejected"]
    scored_rows = pd.read_json(out / "scored.jsonl", lines=True)
    assert len(scored_rows) == summary["records"]["scored"]
    alerts = [json.loads(line) for line in (out / "alerts.jsonl").read_text().splitlines()]
    assert len(alerts) == summary["alerts"] > 0
    # every non-shadow alert raises its record's score and names its rule
    by_id = scored_rows.set_index(["stream", "id"])
    for a in alerts:
        row = by_id.loc[(a["stream"], a["record_id"])]
        if any(c.get("absent") for c in a["conditions"]):  # an absence scores no record (docs/design.md §6)
            assert a["rule_id"] not in row["rules"].split(",")
            continue
        assert a["rule_id"] in row["rules"].split(",")
        if not a["shadow"]:
            assert row["risk_score"] >= min(a["score"], 100)
    assert "records/s" in proc.stderr and "alerts by rule" in proc.stderr


def test_alerts_explain_themselves(scored):
    out, _ = scored
    alerts = [json.loads(line) for line in (out / "alerts.jsonl").read_text().splitlines()]
    app = [a for a in alerts if a["rule_id"] == "TF-APP-001"]
    assert app, "the samples plant an APP scam"
    a = app[0]
    assert [e["step"] for e in a["evidence"]] == ["call", "pay"]
    assert a["evidence"][0]["fields"]["duration"] >= 600
    assert "min call from +" in a["explain"] and "CNY to new payee" in a["explain"]
    held = {c["expr"]: c["values"] for c in a["conditions"]}
    assert held["duration >= 10m"]["duration"] == a["evidence"][0]["fields"]["duration"]
    listed = [a for a in alerts if a["rule_id"] == "TF-REP-001"]
    assert listed and all(c.get("list") == "reported_accounts" for a in listed for c in a["conditions"])


def test_two_runs_and_two_chunk_sizes_give_byte_identical_alerts(tmp_path, scored):
    out, _ = scored
    again = tmp_path / "again"
    small = tmp_path / "small"
    assert run("score", SAMPLES, "--out", again, "-q").returncode == 0
    assert run("score", SAMPLES, "--out", small, "--chunk-rows", 997, "-q").returncode == 0
    reference = (out / "alerts.jsonl").read_bytes()
    assert (again / "alerts.jsonl").read_bytes() == reference
    assert (small / "alerts.jsonl").read_bytes() == reference
    assert (small / "scored.jsonl").read_bytes() == (out / "scored.jsonl").read_bytes()


def test_input_order_of_files_given_separately_is_respected(tmp_path, scored):
    out, _ = scored
    names = ["call", "payment", "sim_event", "sms"]
    proc = run("score", *[f"{n}={SAMPLES / (n + '.csv')}" for n in names], "--out", tmp_path / "o", "-q")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "o" / "alerts.jsonl").read_bytes() == (out / "alerts.jsonl").read_bytes()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_other_formats_hold_the_same_alerts(tmp_path, scored, fmt):
    out, _ = scored
    assert run("score", SAMPLES, "--out", tmp_path, "--format", fmt, "-q").returncode == 0
    frame = pd.read_csv(tmp_path / "alerts.csv") if fmt == "csv" else pd.read_parquet(tmp_path / "alerts.parquet")
    reference = [json.loads(line) for line in (out / "alerts.jsonl").read_text().splitlines()]
    assert frame["alert_id"].tolist() == [a["alert_id"] for a in reference]
    if fmt == "parquet":  # lossless: evidence and conditions as JSON text
        assert json.loads(frame["evidence"].iloc[0]) == reference[0]["evidence"]
    else:  # flat for spreadsheets: step:id@ts per evidence record, no JSON in a cell
        first = reference[0]["evidence"]
        assert frame["evidence"].iloc[0] == "; ".join(f"{e['step']}:{e['id']}@{e['ts']}" for e in first)
        assert not frame["conditions"].str.startswith(("[", "{")).any()


def test_fail_on_alerts_exits_1_and_clean_data_exits_0(tmp_path):
    proc = run("score", SAMPLES, "--fail-on-alerts", "-q")
    assert proc.returncode == 1
    clean = tmp_path / "clean"
    clean.mkdir()
    pd.read_csv(SAMPLES / "sms.csv").head(50).to_csv(clean / "sms.csv", index=False)
    assert run("score", clean, "--fail-on-alerts", "-q").returncode == 0


def test_usage_errors_exit_2(tmp_path):
    assert run("score", tmp_path / "missing.csv").returncode == 2
    assert run("score").returncode == 2
    (tmp_path / "weird.csv").write_text("id,ts\n1,2026-03-01T00:00:00Z\n")
    proc = run("score", tmp_path / "weird.csv")
    assert proc.returncode == 2 and "stream" in proc.stderr and "Traceback" not in proc.stderr




@pytest.mark.parametrize("content", ["", "id,ts,caller,callee\n"], ids=["no-bytes", "header-only"])
def test_a_run_of_empty_inputs_exits_2_unless_allowed(tmp_path, content):
    """A day's export that came out empty is far more often a failure upstream than a day without calls: the run
    writes its (empty) outputs but must not exit 0 as if it had scored something."""
    (tmp_path / "call.csv").write_text(content)
    proc = run("score", tmp_path / "call.csv", "--out", tmp_path / "out")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "nothing was scored: the inputs hold no records" in proc.stderr and "call.csv: empty" in proc.stderr
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["records"]["read"] == 0
    allowed = run("score", tmp_path / "call.csv", "--out", tmp_path / "out2", "--allow-empty")
    assert allowed.returncode == 0, allowed.stderr


def test_nothing_scored_counts_what_became_of_the_records_and_leaves_rejects_to_their_own_check():
    from fraudrules.io.tables import InputStats
    from fraudrules.jobs.score import NothingScoredError, check_scored

    late = InputStats("a/call.csv", "call", "csv", read=7, late=5, filtered=2)
    with pytest.raises(NothingScoredError, match=r"of the 7 records read, 5 were at or before the history's "
                                                 r"high-water mark \(listed in o/late.csv\), 2 were left out"):
        check_scored([late, InputStats("a/sms.csv", "sms", "csv")], Path("o/late.csv"))
    check_scored([late, InputStats("a/sms.csv", "sms", "csv", read=1, scored=1)])  # one record scored: not empty
    check_scored([InputStats("a/call.csv", "call", "csv", read=3, rejected=3)])  # check_rejects' to judge


def test_the_rejects_check_names_each_inputs_commonest_reason_and_its_likely_cause():
    import numpy as np

    from fraudrules.io.tables import InputStats, Rejects
    from fraudrules.jobs.score import RejectsError, check_rejects

    def rejects(*rows):
        return Rejects(np.array([r[0] for r in rows], dtype=object), np.arange(2, 2 + len(rows)),
                       np.array([r[1] for r in rows], dtype=object))

    inputs = [InputStats("a.csv", "call", "csv", read=4, rejected=4), InputStats("b.csv", "call", "csv", read=3,
                                                                                 rejected=2, scored=1)]
    found = rejects(("a.csv", "expected 5 columns, got 1"), ("a.csv", "expected 5 columns, got 1"),
                    ("a.csv", "ts: bad timestamp 'x'"), ("a.csv", "expected 5 columns, got 1"),
                    ("b.csv", "ts: bad timestamp 'x'"), ("b.csv", "ts: bad timestamp 'x'"))
    with pytest.raises(RejectsError) as info:
        check_rejects(inputs, 0.5, None, found)
    message = str(info.value)
    assert ("a.csv: 4 of 4 (100%), 3 of them 'expected 5 columns, got 1' (the fields may be separated by another "
            "character, which a mapping names: source: {delimiter: \";\"})") in message
    assert "b.csv: 2 of 3 (67%), 2 of them \"ts: bad timestamp 'x'\"; run with --out" in message  # no hint fits
    with pytest.raises(RejectsError, match=r"a.csv: 4 of 4 \(100%\); b.csv"):  # without the rejects: the counts
        check_rejects(inputs, 0.5)


def test_an_empty_input_beside_others_is_a_warning(tmp_path):
    shutil.copy(SAMPLES / "call.csv", tmp_path / "call.csv")
    (tmp_path / "sms.csv").write_text("id,ts,sender,receiver,direction\n")
    proc = run("score", tmp_path, "--out", tmp_path / "out", "-q")
    assert proc.returncode == 0, proc.stderr
    assert f"warning: {tmp_path / 'sms.csv'} holds no records" in proc.stderr.replace("\n", "")
    assert "call.csv holds no records" not in proc.stderr


def test_a_data_file_a_folder_holds_but_no_stream_reads_is_a_warning(tmp_path):
    shutil.copy(SAMPLES / "call.csv", tmp_path / "call_2026-03-01.csv")
    shutil.copy(SAMPLES / "payment.csv", tmp_path / "payments_2026-03-01.csv")  # plural: no stream's name
    proc = run("score", tmp_path, "--out", tmp_path / "out", "-q")
    assert proc.returncode == 0, proc.stderr
    text = proc.stderr.replace("\n", "")
    assert f"warning: {tmp_path / 'payments_2026-03-01.csv'} is not read" in text
    assert "call_2026-03-01.csv is not read" not in text
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [(Path(i["path"]).name, i["stream"]) for i in summary["inputs"]] == [("call_2026-03-01.csv", "call")]


def test_a_missing_rule_pack_says_how_to_name_one(tmp_path):
    """Run outside the repository, --rules' default (./rules) is not there: the error names the folder it looked
    for and the option, not only that something was not found."""
    proc = run("score", SAMPLES, "--out", tmp_path / "out", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("rules: error: rule pack folder not found") and "--rules" in proc.stderr
    assert not (tmp_path / "out").exists()
@pytest.mark.parametrize("memory_rows", [[], ["--memory-rows", "3000"]])
def test_a_spill_folder_that_cannot_be_made_exits_2_with_its_name(tmp_path, memory_rows):
    """``--spill-dir`` under a file: the run's alert folder (and, in chunks, the records' spill) cannot be
    made; the user is told where and why, not shown an internal error, and no output is written."""
    (tmp_path / "a-file").write_text("")
    proc = run("score", SAMPLES, "--spill-dir", tmp_path / "a-file" / "spill", "--out", tmp_path / "out", "-q",
               *memory_rows)
    assert proc.returncode == 2 and "cannot make a spill folder" in proc.stderr and "a-file" in proc.stderr
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "alerts.jsonl").exists()


def test_rule_tests_exit_1_on_a_failing_case_with_expected_and_actual(tmp_path):
    pack = make_pack(tmp_path, {})
    shutil.copytree(REPO / "rules" / "lists", pack / "lists", dirs_exist_ok=True)
    text = (REPO / "rules" / "payments" / "structuring.yaml").read_text()
    (pack / "structuring.yaml").write_text(text.replace(">= 135000", ">= 150000"))  # deliberately changed
    proc = run("test", "--rules", pack)
    assert proc.returncode == 1
    assert "FAIL" in proc.stderr and "expected: ['p4']" in proc.stderr and "actual:   []" in proc.stderr
    (pack / "structuring.yaml").write_text(text)
    assert run("test", "--rules", pack).returncode == 0


@pytest.mark.parametrize("command", ["score", "lint", "test", "generate", "regress", "backtest", "watch", "report",
                                     "show", "serve"])
def test_help_shows_an_example(command):
    proc = run(command, "--help")
    assert proc.returncode == 0 and "Example" in proc.stdout


def test_a_run_that_rejects_most_rows_says_their_commonest_reason_and_what_it_likely_means(tmp_path):
    """A GBK export read as UTF-8: every row with a Chinese character is rejected, and the error says so,
    with the mapping key that reads it. With the key, the same file scores."""
    rows = [f"r{i},2026-03-01T10:00:{i:02d}Z,{'张三' if i % 4 else 'A'},{i}.5" for i in range(12)]
    (tmp_path / "export.csv").write_bytes(("ref,at,who,amount\n" + "\n".join(rows) + "\n").encode("gbk"))
    body = ("stream: payment\nsource:\n  {key}types: {{amount: float}}\nfields:\n  id: ref\n  ts: timestamp(at)\n"
            "  payer_account: who\n  amount: amount\n  currency: '\"CNY\"'\n")
    (tmp_path / "map.yaml").write_text(body.format(key=""))
    proc = run("score", tmp_path / "export.csv", "--map", tmp_path / "map.yaml", "--out", tmp_path / "out", "-q")
    assert proc.returncode == 2
    assert ("export.csv: 9 of 12 (75%), 9 of them 'invalid UTF-8' (the file may be in another encoding, which a "
            "mapping names: source: {encoding: gbk})") in proc.stderr, proc.stderr
    (tmp_path / "map.yaml").write_text(body.format(key="encoding: gbk\n  "))
    proc = run("score", tmp_path / "export.csv", "--map", tmp_path / "map.yaml", "--out", tmp_path / "out2", "-q")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "out2" / "summary.json").read_text())["inputs"][0]["scored"] == 12


def test_bad_rows_land_in_rejects_csv_and_the_summary_reconciles(tmp_path):
    data = tmp_path / "in"
    data.mkdir()
    (data / "payment.csv").write_bytes(
        b"id,ts,payer_account,payee_account,amount\n"
        b"p1,2026-03-01T10:00:00Z,A1,B1,100\n"
        b"p2,not-a-time,A1,B1,100\n"
        b"p3,2026-03-01T10:01:00Z,A1,B1,lots\n"
        b",2026-03-01T10:02:00Z,A1,B1,100\n"
        b"p5,2026-03-01T10:03:00Z,A1,B1,100,extra\n"
        b"p6,2026-03-01T10:04:00Z,A\xff1,B1,100\n"
        b"p7,2026-03-01T10:05:00Z,A1,B1,7\n")
    out = tmp_path / "out"
    proc = run("score", data, "--out", out, "-q", "--accept-rejects")  # 5 of 7 rejected: exit 2 without it
    assert proc.returncode == 0, proc.stderr
    rejects = pd.read_csv(out / "rejects.csv")
    assert rejects["line"].tolist() == [3, 4, 5, 6, 7]
    reasons = " | ".join(rejects["reason"])
    for text in ("bad timestamp", "not a number", "missing id", "columns", "UTF-8"):
        assert text in reasons, (text, reasons)
    summary = json.loads((out / "summary.json").read_text())
    (only,) = summary["inputs"]
    assert (only["read"], only["scored"], only["rejected"], only["reconciles"]) == (7, 2, 5, True)
    scored = pd.read_json(out / "scored.jsonl", lines=True)
    assert scored["id"].tolist() == ["p1", "p7"]


def test_spark_without_pyspark_names_the_extra_to_install(tmp_path, monkeypatch, capsys):
    """The hint is printed through rich, whose markup would eat ``[spark]`` and advise a plain install."""
    import importlib.util

    from fraudrules.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyspark" else real(name, *a))
    with pytest.raises(SystemExit) as exit_info:
        main.main(["score", str(REPO / "samples"), "--engine", "spark", "--out", str(tmp_path / "o")],
                  standalone_mode=False)
    assert exit_info.value.code == 2
    assert "pip install 'fraudrules[spark]'" in capsys.readouterr().err


def test_the_tuning_examples_of_the_help_and_the_docs_name_params_of_the_shipped_pack(tmp_path):
    """Every ``--set RULE.param=`` and ``--sweep RULE.param=`` shown to a user must work as written on the shipped
    pack; TF-MULE-001 is the example everywhere, so it declares the params the examples tune."""
    import re

    from fraudrules.pack.loader import load_pack

    params = {r.id: set(r.params) for r in load_pack(REPO / "rules").rules}
    shown = set()
    for doc in ("engine/cli.py", "README.md", "docs/rules.md"):
        shown |= set(re.findall(r"--(?:set|sweep) (TF-[A-Z]+-\d+)\.(\w+)=", (REPO / doc).read_text(encoding="utf-8")))
    assert shown >= {("TF-MULE-001", "min_payers"), ("TF-MULE-001", "window")}
    assert {(rule, p) for rule, p in shown if p not in params.get(rule, ())} == set()

    def mule_alerts(*args):
        proc = run("score", SAMPLES, "--out", tmp_path / "out", "-q", "--rule", "TF-MULE-001", *args)
        assert proc.returncode == 0, proc.stderr
        return (tmp_path / "out" / "alerts.jsonl").read_text().count("\n")

    # the params are the rule's thresholds: raising the floor fires fewer, as the example expects
    assert mule_alerts() > mule_alerts("--set", "TF-MULE-001.min_payers=8") > 0


@pytest.mark.parametrize("command", ["lint", "test"])
def test_a_pack_folder_given_as_the_path_is_the_pack(tmp_path, command):
    """``fraudrules lint my-pack/`` checks that pack, as ``--rules my-pack/`` does, rather than looking for the
    folder's files in ./rules; with --rules given, a path stays a path (test runs only rules of that pack)."""
    pack = tmp_path / "my-pack"
    shutil.copytree(REPO / "rules", pack)
    (pack / "payments" / "structuring.yaml").write_text(
        (pack / "payments" / "structuring.yaml").read_text().replace("where: >-\n  ", "where: >-\n  amout > 1 and ", 1))
    proc = run(command, pack, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "structuring.yaml" in proc.stderr and "unknown field 'amout'" in proc.stderr
    assert "rule pack folder not found" not in proc.stderr
    if command == "test":
        proc = run(command, pack, "--rules", REPO / "rules", cwd=tmp_path)
        assert proc.returncode == 2 and "is not in the rule pack" in proc.stderr
