"""fraudrules lint: each check finds what it is for, at the right place."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from fraudrules.errors import RuleErrors
from fraudrules.pack.lint import lint_pack
from fraudrules.pack.loader import load_pack, rule_files
from fraudrules.runtime.plan import compile_pack
from tests.helpers import REPO, make_pack
from tests.test_traps import rule as experimental_rule

BASE = """
id: {id}
title: t
score: 10
status: {status}
stream: payment
key: payer_account
where: {where}
{extra}
"""
TESTS = """
tests:
  - name: pos
    records:
      - {stream: payment, id: p1, ts: "2026-03-01T10:00:00Z", payer_account: A, amount: 5}
    expect: [p1]
  - name: neg
    records:
      - {stream: payment, id: p1, ts: "2026-03-01T10:00:00Z", payer_account: A, amount: 0}
    expect: []
"""


def rule(id="R-1", where="amount > 1", status="stable", extra=TESTS):
    return BASE.format(id=id, where=where, status=status, extra=extra)


def findings(tmp_path, rules, lists=None, macros=False):
    return [str(f) for f in lint_pack(make_pack(tmp_path, rules, lists, macros=macros))]


def has(found, text, where=None):
    return any(text in f and (where is None or where in f) for f in found)


def test_a_clean_rule_has_no_findings(tmp_path):
    assert findings(tmp_path, {"r": rule()}) == []


def test_the_shipped_pack_is_clean():
    assert [str(f) for f in lint_pack(REPO / "rules")] == []


@pytest.mark.parametrize("rules, text, where", [
    ({"r": rule(extra=TESTS + "severty: high\n")}, "unknown key 'severty'", "r.yaml:"),
    ({"a": rule(), "b": rule()}, "duplicate rule id 'R-1'", "b.yaml:"),
    ({"r": rule(extra="")}, "no positive test", "r.yaml:2:1"),
    ({"r": rule(extra=TESTS.replace("expect: []", "expect: [p1]"))}, "no negative test", "r.yaml:2:1"),
    ({"r": rule(where="amout > 1")}, "unknown field 'amout'", "r.yaml:8:8"),
    ({"r": rule(where="payee_account in @missing")}, "unknown list @missing", "r.yaml:8:"),
    ({"r": rule(where="count(1y) > 1")}, "unexpected", "r.yaml:8:"),
    ({"r": rule(where="count(500d) > 1")}, "beyond the retention limit", "r.yaml:8:"),
    ({"r": rule(where="count(1h) >= 1 and amount > 1")}, "trivial threshold", "r.yaml:8:8"),
    ({"r": rule(where='matches(payer_account, "(?P<x>a)(?P=x)")')}, "regex does not compile", "r.yaml:8:"),
    ({"r": rule(extra=TESTS + 'explain: "{amount} to {payee}"\n')}, "unknown field 'payee'", "r.yaml:"),
    ({"a": rule(), "b": rule(id="R-2")}, "same logic as rule R-1", "b.yaml:"),
    ({"r": rule(extra=TESTS + "suppress: soon\n")}, "is not a duration", "r.yaml:"),
    # #10 item 2: only is_new nests inside where=, and a window starts at an earlier step only in a sequence
    ({"r": rule(where="count(1h, where=avg(amount, 1h) > 5) > 1")},
     "inside where= only is_new(x, w) may be used, not avg()", "r.yaml:8:24"),
    ({"r": rule(where="count(1h, where=ts > swap.ts) > 1")}, "only in a sequence, in a step after the first",
     "r.yaml:8:24"),
    ({"r": rule(where="count(1h, where=amount > swap.amount) > 1")}, "the one read of another step inside where= "
     "is a bound on the window's start", "r.yaml:8:33"),
])
def test_each_check_finds_its_problem(tmp_path, rules, text, where):
    found = findings(tmp_path, rules)
    assert has(found, text, where), found


def test_unused_lists_and_macros_are_warnings(tmp_path):
    found = findings(tmp_path, {"r": rule()}, {"spare": "kind: exact\nvalues: [a]\n"}, macros=True)
    assert has(found, "list @spare is not used", "warning")
    assert has(found, "macro overseas() is not used", "warning")


def test_linting_some_files_does_not_call_what_the_other_rules_use_unused(tmp_path):
    """``fraudrules lint rules/payments/x.yaml`` loads that rule alone: a list that another rule reads (or no rule
    does) cannot be judged from it, and twelve warnings about the shipped lists buried the one finding."""
    pack = make_pack(tmp_path, {"uses": rule(id="R-1", where="payee_account in @watched"), "other": rule(id="R-2")},
                     {"watched": "kind: exact\nvalues: [a]\n", "spare": "kind: exact\nvalues: [b]\n"}, macros=True)
    one = [str(f) for f in lint_pack(pack, [pack / "other.yaml"])]
    assert not has(one, "is not used by any rule"), one
    whole = [str(f) for f in lint_pack(pack)]
    assert has(whole, "list @spare is not used", "warning") and not has(whole, "list @watched")


def test_experimental_rules_need_no_tests(tmp_path):
    assert findings(tmp_path, {"r": rule(status="experimental", extra="")}) == []


def test_schema_json_accepts_every_shipped_rule_and_rejects_unknown_keys():
    schema = json.loads((REPO / "rules" / "schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    files = rule_files(REPO / "rules")
    assert len(files) >= 10
    for path in files:
        data = yaml.safe_load(path.read_text())
        errors = list(validator.iter_errors(data))
        assert not errors, (path, errors[0].message)
    bad = yaml.safe_load(rule(extra=TESTS + "severty: high\n"))
    assert list(validator.iter_errors(bad))


def test_lint_paths_restrict_to_given_files(tmp_path):
    pack = make_pack(tmp_path, {"good": rule(), "bad": rule(id="R-2", where="nope > 1")})
    only_good = [str(f) for f in lint_pack(pack, [Path(pack / "good.yaml")])]
    assert not has(only_good, "nope")
    assert has([str(f) for f in lint_pack(pack)], "unknown field 'nope'")


def test_lint_of_the_whole_pack_loads_it_once(monkeypatch):
    # the history horizon lint prints is the linted pack's: loading it again cost a fifth of the command
    from click.testing import CliRunner

    from fraudrules import cli
    from fraudrules.pack import lint, loader

    loads = []
    real = loader.load_pack

    def counted(*args, **kwargs):
        loads.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(loader, "load_pack", counted)
    monkeypatch.setattr(lint, "load_pack", counted)
    result = CliRunner().invoke(cli.main, ["lint", "--rules", str(REPO / "rules")])
    assert result.exit_code == 0, result.output
    assert "history horizon" in result.output and "payment:" in result.output
    assert len(loads) == 1


HORIZON_RULES = {  # experimental rules (test_traps.rule): lint asks no inline cases of them
    "long": experimental_rule("count(60d) == 1 and count(400d) >= 2", id="T-LONG"),
    # as far back as T-LONG: the reason lint names stays the first rule's
    "long2": experimental_rule("count(400d) >= 2", id="T-LONG2"),
    "short": experimental_rule("sum(amount, 26h) >= 5000", id="T-SHORT", extra="suppress: 90m"),
    "calls": experimental_rule("count(90s) >= 5", id="T-CALLS", stream="call", key="caller"),
    "sms": experimental_rule('not startswith(sender, "+86")', id="T-SMS", stream="sms", key="sender"),
}


def test_lint_says_how_far_back_a_store_keeps_each_stream_and_which_rule_sets_it(tmp_path):
    """The analyst's view of ``score --history``: per stream the span in its largest whole units, the
    columns kept, and the first rule that reaches that far; a stream no rule looks back at keeps nothing."""
    from click.testing import CliRunner

    from fraudrules import cli

    pack = make_pack(tmp_path, HORIZON_RULES)
    result = CliRunner().invoke(cli.main, ["lint", "--rules", str(pack)])
    assert result.exit_code == 0, result.output
    assert result.output.split("history horizon (what score --history keeps per stream):\n")[1].splitlines() == [
        "  call: 1m 30s back, 3 columns (caller, id, ts); widest: T-CALLS: count() over 1m 30s",
        "  payment: 400d back, 4 columns (amount, id, payer_account, ts); widest: T-LONG: count() over 400d",
        "  sms: nothing (no rule looks back at earlier sms records)",
        "  last alert per (rule, key): 1h 30m back (the longest suppress)",
    ]


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (1, "1s"), (59, "59s"), (60, "1m"), (3_599, "59m 59s"),
                                           (3_600, "1h"), (86_399, "23h 59m 59s"), (86_400, "1d"),
                                           (93_784, "1d 2h 3m 4s"), (400 * 86_400, "400d")])
def test_a_span_is_written_in_its_largest_whole_units(seconds, text):
    from fraudrules.store.horizon import human

    assert human(seconds * 10**9 + 999_999_999) == text  # what is under a second is not shown


# --- what the commands that only evaluate rules read of a pack ---------------------------------------------


def test_a_pack_loaded_without_its_tests_has_the_same_rules():
    """score, watch and serve load the pack with tests=False: the inline tests are parsed as YAML only. Every
    rule, list, macro and the policy are the same, and so is the compiled plan and its digest (checkpoints)."""
    full, bare = load_pack(REPO / "rules"), load_pack(REPO / "rules", tests=False)
    assert sum(len(r.tests) for r in full.rules) > 100 and not any(r.tests for r in bare.rules)

    def rule_only(r):
        return dataclasses.replace(r, tests=(), node=None)

    assert [rule_only(r) for r in bare.rules] == [rule_only(r) for r in full.rules]
    assert (bare.schema, bare.lists, bare.macros, bare.policy, bare.digest) == (
        full.schema, full.lists, full.macros, full.policy, full.digest)
    assert compile_pack(bare, "CN").digest == compile_pack(full, "CN").digest


BROKEN_TEST = """
tests:
  - name: pos
    records: nope
    expect: [p1]
"""


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "fraudrules", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO)


def test_a_broken_inline_test_stops_lint_and_test_but_not_score(tmp_path):
    pack = make_pack(tmp_path, {"r": rule(extra=BROKEN_TEST)})
    with pytest.raises(RuleErrors, match="'records' must be a list"):
        load_pack(pack)
    assert [r.id for r in load_pack(pack, tests=False).rules] == ["R-1"]
    lint = _cli("lint", "--rules", pack)
    said = lint.stdout + lint.stderr
    assert lint.returncode == 2 and "r.yaml:11:5: error: test 'pos': 'records' must be a list" in said, said
    assert _cli("test", "--rules", pack).returncode == 2
    score = _cli("score", REPO / "samples", "--rules", pack, "--out", tmp_path / "out", "-q")
    assert score.returncode == 0, score.stderr
    assert (tmp_path / "out" / "summary.json").exists()


@pytest.mark.parametrize("extra, message, where", [
    ("tests:\n  - name: [unclosed\n", "", "r.yaml:"),  # YAML syntax: still parsed, so still an error
    (TESTS + TESTS, "duplicate key 'tests'", "r.yaml:"),
])
def test_a_pack_loaded_without_its_tests_still_refuses_bad_yaml_there(tmp_path, extra, message, where):
    pack = make_pack(tmp_path, {"r": rule(extra=extra)})
    with pytest.raises(RuleErrors) as caught:
        load_pack(pack, tests=False)
    assert message in str(caught.value) and where in str(caught.value)


def test_errors_print_as_text_where_rich_would_see_emoji_codes(tmp_path):
    """rich reads ':100:' and ':id:' as emoji codes: an error at line 100 printed 'r.yaml💯7', and a timestamp
    written 00:id:00 printed with a picture in it. The CLI's consoles print text as it is."""
    where = 'ts >= timestamp("2026-03-01T00:id:00+08:00")'
    padded = "#\n" * 92 + rule(where=where, extra="")  # the where line is the rule's 8th: line 100
    pack = make_pack(tmp_path, {"r": padded})
    done = subprocess.run([sys.executable, "-m", "fraudrules", "lint", str(pack)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert "r.yaml:100:24: error: timestamp(\"2026-03-01T00:id:00+08:00\") is null at every record" in done.stderr


def test_a_regex_that_does_not_compile_is_one_located_error_and_nothing_else_on_stderr(tmp_path):
    """RE2 logged each pattern it refused to stderr itself (an absl warning and a re2.cc line, from C++, so only
    a subprocess sees them), and the message quoted its bytes (b'...')."""
    pack = make_pack(tmp_path, {"r": rule(where='matches(payee_account, "^[A-Z]{2}[4d-9]+7$")', extra="")})
    done = subprocess.run([sys.executable, "-m", "fraudrules", "lint", str(pack)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 2 and lines[1] == "1 error(s), 0 warning(s)", lines
    assert lines[0].endswith("r.yaml:8:31: error: matches(): regex does not compile (RE2 syntax): invalid character "
                             "class range: d-9"), lines


def test_lint_and_test_check_phone_literals_in_the_runs_region(tmp_path):
    """A pack run with --region US may compare with '13800138000': no valid US number, so records keep it as
    written, and the rule fires on them. Lint with the default region (CN) says it would never match."""
    tests = """
tests:
  - name: pos
    records:
      - {stream: payment, id: p1, ts: "2026-03-01T10:00:00Z", payer_account: A, payer_phone: "13800138000"}
    expect: [p1]
  - name: neg
    records:
      - {stream: payment, id: p1, ts: "2026-03-01T10:00:00Z", payer_account: A, payer_phone: "+12025550123"}
    expect: []
"""
    pack = make_pack(tmp_path, {"r": rule(where='payer_phone == "13800138000"', extra=tests)})
    assert _cli("lint", pack, "--region", "US").returncode == 0
    ran = _cli("test", "--rules", pack, "--region", "US")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "4 passed, 0 failed" in ran.stderr  # two tests on each executor
    refused = _cli("lint", pack)
    assert refused.returncode == 2
    assert ("r.yaml:8:23: error: phone fields hold valid numbers in E.164, so '13800138000' never equals one; write "
            "'+8613800138000' (read in region CN)") in refused.stderr
