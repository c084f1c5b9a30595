"""Silent traps made loud, hints that say what to write, and tuning in one command (issue #11).

Each trap used to compile or run and then do nothing, or nothing useful, without a word. Each test
shows it now stops with exit 2 or a located lint finding, and what the message tells the analyst.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fraudrules.errors import RuleError, RuleErrors
from fraudrules.jobs.rule_tests import run_rule_tests
from fraudrules.pack.lint import lint_pack
from fraudrules.pack.loader import load_pack
from fraudrules.pack.source import load_yaml_text
from tests.helpers import REPO, make_pack

CLI = [sys.executable, str(REPO / "cli.py")]
SAMPLES = REPO / "samples"


def run(*args, cwd=REPO):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, cwd=cwd)


RULE = """
id: {id}
title: t
score: 10
status: experimental
stream: {stream}
key: {key}
where: {where}
{extra}
"""


def rule(where: str, *, id: str = "R-1", stream: str = "payment", key: str = "payer_account", extra: str = "") -> str:
    return RULE.format(id=id, stream=stream, key=key, where=where, extra=extra)


def lint(tmp_path: Path, rules: dict[str, str], lists: dict[str, str] | None = None) -> list[str]:
    return [str(f) for f in lint_pack(make_pack(tmp_path, rules, lists, macros=False))]


def one(found: list[str], text: str, where: str | None = None) -> str:
    hits = [f for f in found if text in f and (where is None or where in f)]
    assert hits, found
    return hits[0]


# --- 2. silent traps -----------------------------------------------------------------------------


def test_test_on_a_file_outside_the_pack_exits_2(tmp_path):
    stray = tmp_path / "stray.yaml"
    stray.write_text((REPO / "rules" / "payments" / "structuring.yaml").read_text())
    proc = run("test", stray)
    assert proc.returncode == 2, proc.stderr
    assert "is not in the rule pack" in proc.stderr and "--rules" in proc.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: [unclosed\n")
    assert run("test", broken).returncode == 2


def test_test_on_a_pack_file_that_holds_no_rule_exits_2():
    proc = run("test", REPO / "rules" / "lists" / "bank_hotlines.yaml")
    assert proc.returncode == 2 and "no rules in" in proc.stderr, proc.stderr


def test_test_on_rules_without_cases_exits_2(tmp_path):
    pack = make_pack(tmp_path, {"r": rule("amount > 1")}, macros=False)
    proc = run("test", pack / "r.yaml", "--rules", pack)
    assert proc.returncode == 2 and "no test cases ran: R-1 has no tests" in proc.stderr, proc.stderr


def test_score_with_an_unknown_rule_id_exits_2_and_suggests():
    proc = run("score", SAMPLES, "--rule", "TF-MULE-01", "-q")
    assert proc.returncode == 2
    assert "--rule TF-MULE-01: no such rule" in proc.stderr and "did you mean TF-MULE-001" in proc.stderr


@pytest.mark.parametrize("where, fix", [
    ("payee_country == null", "write is_null(payee_country)"),
    ("null != device_id", "write not is_null(device_id)"),
    ("amount > null", "test is_null(amount) instead"),
])
def test_comparing_with_null_is_an_error_that_names_is_null(tmp_path, where, fix):
    found = lint(tmp_path, {"r": rule(where)})
    assert fix in one(found, "is always false", "r.yaml:8:8: error")


SEQ = """
id: R-SEQ
title: t
score: 10
status: experimental
sequence:
  within: 1h
  steps:
    - as: call
      stream: call
      key: callee
    - as: pay
      stream: payment
      key: {key}
"""


def test_a_sequence_joining_a_phone_to_an_account_is_an_error(tmp_path):
    found = lint(tmp_path, {"r": SEQ.format(key="payer_account")})
    message = one(found, "can never match", "r.yaml:14:12: error")  # at the key
    assert "payer_account (string)" in message and "callee (phone)" in message
    assert lint(tmp_path / "ok", {"r": SEQ.format(key="payer_phone")}) == []


def test_follows_into_a_field_of_another_kind_is_an_error(tmp_path):
    text = SEQ.format(key="payer_phone") + "      follows: call.imsi\n"
    one(lint(tmp_path, {"r": text}), "follows 'call' imsi (string)")


PAY_SEQ = """
id: R-PAY
title: t
score: 10
status: experimental
sequence:
  within: 1h
  steps:
    - as: a
      stream: payment
      key: payee_account
    - as: b
      stream: payment
      key: {key}
"""


def test_joining_text_keys_of_different_kinds_is_a_warning(tmp_path):
    message = one(lint(tmp_path, {"r": PAY_SEQ.format(key="device_id")}), "text fields of different kinds",
                  "r.yaml:12:7: warning")
    assert "device_id joins a.payee_account" in message and "(id, account)" in message
    # an account joined to an account (payer to payee, as a money trail does) is what was meant
    assert lint(tmp_path / "ok", {"r": PAY_SEQ.format(key="payer_account")}) == []
    follows = PAY_SEQ.format(key="payer_account") + "      follows: a.device_id\n"
    one(lint(tmp_path / "f", {"r": follows}), "payer_account joins a.device_id", "warning")


@pytest.mark.parametrize("where, shown, warned", [
    ("duration > 10", "10s", True),
    ("duration > 10 * 60", None, False),  # arithmetic: the author is converting on purpose
    ("duration > 10m", None, False),
    ("duration > 0", None, False),
    ("max(duration, 1h) - duration <= 30", "30s", True),
])
def test_a_bare_number_against_a_duration_is_a_warning(tmp_path, where, shown, warned):
    found = lint(tmp_path, {"r": rule(where, stream="call", key="caller")})
    if warned:
        assert f"write {shown}" in one(found, "is read as seconds", "warning")
    else:
        assert not [f for f in found if "seconds" in f], found


def test_an_expected_id_no_record_has_is_an_error(tmp_path):
    case = """
tests:
  - name: typo
    records:
      - {stream: payment, id: p1, ts: "2026-03-01T10:00:00Z", payer_account: A, amount: 5}
    expect: [p01]
"""
    found = lint(tmp_path, {"r": rule("amount > 1", extra=case)})
    assert "did you mean 'p1'" in one(found, "expect names 'p01', but no record of the case has that id", "r.yaml:")


def test_labels_that_match_no_record_exit_2_and_a_partial_match_warns(tmp_path):
    stray = tmp_path / "stray.csv"
    stray.write_text("stream,record_id,typology\npayment,nope-1,scam\npayment,nope-2,scam\n")
    proc = run("backtest", SAMPLES, "--labels", stray)
    assert proc.returncode == 2 and "none of the 2 labels matches an input record" in proc.stderr, proc.stderr
    mixed = tmp_path / "mixed.csv"
    lines = (SAMPLES / "labels.csv").read_text().splitlines()
    mixed.write_text("\n".join([*lines[:20], "payment,nope-1,scam", "payment,p000000001,"]) + "\n")
    proc = run("backtest", SAMPLES, "--labels", mixed)
    assert proc.returncode == 0, proc.stderr
    assert "1 of 20 labels match no input record (e.g. payment nope-1)" in proc.stderr
    assert "1 label(s) have an empty typology (lines 22)" in proc.stderr


def test_an_empty_list_is_a_warning(tmp_path):
    found = lint(tmp_path, {"r": rule("payee_account in @mules")}, {"mules": "kind: exact\nvalues: []\n"})
    one(found, "list @mules is empty", "warning")


def test_score_shows_rules_that_did_not_alert_with_0(tmp_path):
    pack = tmp_path / "rules"
    shutil.copytree(REPO / "rules", pack)
    (pack / "payments" / "structuring.yaml").write_text(
        (pack / "payments" / "structuring.yaml").read_text().replace(">= 135000", ">= 9999999"))
    proc = run("score", SAMPLES, "--rules", pack, "-q", "--rule", "TF-STRUCT-001")
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stderr.splitlines() if "TF-STRUCT-001" in line)
    assert row.split("│")[2].strip() == "0", row


# --- 3. hints ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("where, col, hint", [
    ("cuont(1h) > 3", 8, "unknown function 'cuont'; did you mean 'count'?"),
    ("isnull(device_id)", 8, "did you mean 'is_null'?"),
    ("amount > 1 AND channel == \"web\"", 19, "unexpected 'AND'; write 'and' in lower case"),
    ("amount > 1 and NOT is_null(ip)", 23, "write 'not' in lower case"),
    ("channel = \"web\"", 16, "write == to compare"),
    ("device_id IS NULL", 18, "write is_null(x)"),
    ("device_id IS NOT NULL", 18, "write not is_null(x)"),
    ("channel <> \"web\"", 17, "write != for SQL's <>"),
    ("count(10 mins) > 3", 17, "write the duration as 10m"),
    ("count(1 year) > 3", 16, "write 365d"),
    ("channel == web", 19, "quote it: \"web\""),
    ("channel in [atm, counter]", 20, "quote text: \"atm\""),
    ("is_null(device_id) == TRUE", 30, "write true in lower case"),
    ("amount > 1 && amount < 5", 19, "write 'and'"),
])
def test_hints_say_what_to_write(tmp_path, where, col, hint):
    found = lint(tmp_path, {"r": rule(where)})
    one(found, hint, f"r.yaml:8:{col}: error")


@pytest.mark.parametrize("text, line, message", [
    ("id: R\ntitle: Payments: too many\n", 2, "holds ': ' (a colon and a space)"),
    ("id: R\nexplain: {amount} paid to {payee}\n", 2, "starts with '{' or '[' is read as a YAML mapping"),
    ("id: R\nsequence:\n\twithin: 1h\n", 3, "a tab in the indentation"),
    ("id: R\nwhere: \"amount > 1\n", 2, "this quote is never closed"),
    ("id: R\nwhere: @reported\n", 2, "cannot start with '@'"),
    ("id: R\nsequence:\n    within: 1h\n  steps: []\n", 4, "check its indentation"),
    ('id: R\nwhere: "a \\d"\n', 2, "a backslash starts an escape"),
])
def test_yaml_errors_in_plain_language(text, line, message):
    with pytest.raises(RuleError) as info:
        load_yaml_text(text, "r.yaml")
    assert f"r.yaml:{line}:" in str(info.value) and message in str(info.value), str(info.value)
    assert "YAML syntax" not in str(info.value)


# --- 4. params, overrides, sweeps, regress --against ------------------------------------------------

PARAMS_RULE = """
id: R-P
title: t
score: 10
status: stable
stream: payment
key: payer_account
params: {min_n: 2, window: 1h, big: 100}
where: count($window, where=amount > params.big) >= $min_n
explain: "{payer_account}: {count($window)} payments over {$big}"
tests:
  - name: two big payments
    records:
      - {stream: payment, id: p1, ts: "2026-03-01T10:00:00Z", payer_account: A, amount: 500}
      - {stream: payment, id: p2, ts: "2026-03-01T10:10:00Z", payer_account: A, amount: 500}
    expect: [p2]
  - name: one
    records:
      - {stream: payment, id: p1, ts: "2026-03-01T10:00:00Z", payer_account: A, amount: 500}
    expect: []
"""


def test_params_are_bound_on_both_executors_and_shown_in_alerts(tmp_path):
    pack = load_pack(make_pack(tmp_path, {"r": PARAMS_RULE}, macros=False))
    report = run_rule_tests(pack)
    assert report.ok and len(report.results) == 4  # 2 cases x 2 executors
    assert [str(f) for f in lint_pack(pack.root)] == []
    from fraudrules.io.records import records_from_dicts
    from fraudrules.jobs.score import evaluate
    from fraudrules.runtime.plan import compile_pack

    records = records_from_dicts([dict(r) for r in pack.rules[0].tests[0].records], pack.schema)
    (alert,) = evaluate(compile_pack(pack), records)[0]
    assert alert["explain"] == "A: 2 payments over 100"
    assert alert["conditions"][0]["values"]["$min_n"] == 2


@pytest.mark.parametrize("change, message, col", [
    ("$min_n", "$min_m", "unknown param $min_m; did you mean 'min_n'?"),
    ("$min_n", '"two"', "cannot compare float with string"),
    ("$window", "$big", "must be a duration literal such as 1h or 7d (or a param whose value is one)"),
])
def test_param_mistakes_are_located(tmp_path, change, message, col):
    text = PARAMS_RULE.replace(change, message, 1)
    with pytest.raises(RuleErrors) as info:
        load_pack(make_pack(tmp_path, {"r": text}, macros=False))
    assert any(col in str(e) and "r.yaml:9:" in str(e) for e in info.value.errors), info.value


def test_an_unused_param_is_a_warning(tmp_path):
    text = PARAMS_RULE.replace("params: {min_n: 2,", "params: {spare: 3, min_n: 2,")
    one([str(f) for f in lint_pack(make_pack(tmp_path, {"r": text}, macros=False))], "param spare is not used",
        "warning")


def test_set_overrides_a_param_on_test_and_reports_bad_ones(tmp_path):
    pack = make_pack(tmp_path, {"r": PARAMS_RULE}, macros=False)
    assert run("test", "--rules", pack).returncode == 0
    proc = run("test", "--rules", pack, "--set", "R-P.min_n=3", "--executor", "batch")
    assert proc.returncode == 1 and "expected: ['p2']" in proc.stderr  # 3 payments needed now
    assert run("test", "--rules", pack, "--set", "R-P.window=10m", "--executor", "batch").returncode == 1
    for bad, message in [("R-P.min_n=lots", "min_n is a number"), ("R-P.window=10", "window is a duration"),
                         ("R-Q.min_n=3", "unknown rule 'R-Q'; did you mean 'R-P'?"),
                         ("R-P.min_m=3", "has no param 'min_m'; did you mean 'min_n'?"),
                         ("R-P.window=500d", "beyond the retention limit")]:
        proc = run("test", "--rules", pack, "--set", bad)
        assert proc.returncode == 2 and message in proc.stderr, (bad, proc.stderr)


def test_list_override_and_lists_fixed_in_a_test_case(tmp_path):
    mule_rule = rule("payee_account in @mules", extra="""
tests:
  - name: listed for this case only
    lists: {mules: [B9]}
    records:
      - {stream: payment, id: p1, ts: "2026-03-01T10:00:00Z", payer_account: A, payee_account: B9, amount: 5}
    expect: [p1]
""")
    pack = make_pack(tmp_path, {"r": mule_rule}, {"mules": "kind: exact\nvalues: [ZZ]\n"}, macros=False)
    assert run_rule_tests(load_pack(pack)).ok
    assert run("test", "--rules", pack).returncode == 0
    data = tmp_path / "in"
    data.mkdir()
    (data / "payment.csv").write_text("id,ts,payer_account,payee_account,amount\n"
                                      "p1,2026-03-01T10:00:00Z,A,B9,5\np2,2026-03-01T10:01:00Z,A,C1,5\n")
    assert "0 alerts" in run("score", data, "--rules", pack, "-q").stderr
    listed = tmp_path / "today.txt"
    listed.write_text("# today's mules\nC1\n")
    proc = run("score", data, "--rules", pack, "-q", "--list", f"mules={listed}", "--out", tmp_path / "o")
    assert proc.returncode == 0, proc.stderr
    alerts = [json.loads(x) for x in (tmp_path / "o" / "alerts.jsonl").read_text().splitlines()]
    assert [a["record_id"] for a in alerts] == ["p2"]
    proc = run("score", data, "--rules", pack, "-q", "--list", f"mule={listed}")
    assert proc.returncode == 2 and "did you mean 'mules'?" in proc.stderr
    bad_case = mule_rule.replace("lists: {mules:", "lists: {mulez:")
    with pytest.raises(RuleErrors, match="unknown list 'mulez'; did you mean 'mules'"):
        load_pack(make_pack(tmp_path / "bad", {"r": bad_case}, {"mules": "kind: exact\nvalues: [ZZ]\n"},
                            macros=False))


SWEEP_RULE = """
id: R-BURST
title: Payments in a burst
score: 10
status: experimental
stream: payment
key: payer_account
params: {min_n: 2}
where: count(24h) >= $min_n
"""


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    proc = run("generate", "--out", out, "--customers", 300, "--days", 2, "--seed", 3)
    assert proc.returncode == 0, proc.stderr
    return out


def test_a_sweep_on_generated_data_gives_a_monotone_alert_volume(tmp_path, generated):
    pack = tmp_path / "rules"
    shutil.copytree(REPO / "rules", pack)
    (pack / "burst.yaml").write_text(SWEEP_RULE)
    out = tmp_path / "bt.json"
    proc = run("backtest", generated, "--labels", generated / "labels.csv", "--rules", pack,
               "--sweep", "R-BURST.min_n=1..6", "--json", out)
    assert proc.returncode == 0, proc.stderr
    assert "sweep R-BURST.min_n" in proc.stdout
    sweep = json.loads(out.read_text())["sweep"]
    assert (sweep["rule"], sweep["param"]) == ("R-BURST", "min_n")
    values = [p["value"] for p in sweep["points"]]
    alerts = [p["alerts"] for p in sweep["points"]]
    assert values == [1, 2, 3, 4, 5, 6]
    assert all(a >= b for a, b in zip(alerts, alerts[1:])), alerts
    assert alerts[0] > alerts[-1]  # the threshold does something
    assert alerts[0] == sum(1 for _ in (generated / "payment.csv").open()) - 1  # min_n=1: every payment
    assert all(set(p) >= {"precision", "recall", "alerts", "tp", "fp"} for p in sweep["points"])
    proc = run("backtest", generated, "--labels", generated / "labels.csv", "--rules", pack,
               "--sweep", "R-BURST.min_n=1..9999")
    assert proc.returncode == 2 and "at most 200" in proc.stderr


def test_regress_against_a_folder_and_a_git_revision(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "rules", repo / "rules")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "rules"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "pack"], check=True)
    rule_file = repo / "rules" / "payments" / "structuring.yaml"
    rule_file.write_text(rule_file.read_text().replace(">= 135000", ">= 300000"))
    proc = run("regress", "--rules", repo / "rules", "--against", "HEAD")
    assert proc.returncode == 1, proc.stderr
    assert "TF-STRUCT-001: +0 added, -3 removed" in proc.stdout and "from the pack at HEAD" in proc.stderr
    proc = run("regress", "--rules", repo / "rules", "--against", REPO / "rules")
    assert proc.returncode == 1 and "TF-STRUCT-001: +0 added, -3 removed" in proc.stdout
    proc = run("regress", "--rules", REPO / "rules", "--against", REPO / "rules")
    assert proc.returncode == 0 and "no difference" in proc.stderr
    proc = run("regress", "--rules", repo / "rules", "--against", "no-such-rev")
    assert proc.returncode == 2 and "neither a folder nor a git revision" in proc.stderr


def test_a_trivial_threshold_written_as_a_param_is_still_found(tmp_path):
    text = rule("count(1h) >= $n", extra="params: {n: 1}")
    one(lint(tmp_path, {"r": text}), "trivial threshold: count(1h) >= $n holds for every record", "warning")
    assert not [f for f in lint(tmp_path / "ok", {"r": text.replace("n: 1", "n: 3")}) if "trivial" in f]
