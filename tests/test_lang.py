"""Rule files are untrusted input: errors are located, code never runs."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudrules.columns.vec import Vec
from fraudrules.errors import RuleErrors
from fraudrules.lang.expr import ExprSyntaxError, parse_expr, unparse
from fraudrules.pack.loader import load_pack
from fraudrules.runtime.evaluate import ColumnsEnv, Evaluator
from tests.helpers import REPO, make_pack

GOOD = """
id: T-1
title: t
score: 10
stream: payment
key: payer_account
where: {where}
"""


def errors_for(tmp_path, where: str) -> list[str]:
    pack = make_pack(tmp_path, {"r": GOOD.format(where=where)})
    with pytest.raises(RuleErrors) as info:
        load_pack(pack)
    return [str(e) for e in info.value.errors]


@pytest.mark.parametrize("where, line, col, message", [
    ('amount >= 10000 and durration > 1', 7, 28, "unknown field 'durration'"),
    ('amount > "abc"', 7, 8, "cannot compare float with string"),
    ('payee_account in @nolist', 7, 25, "unknown list @nolist"),
    ('frobnicate(amount) > 1', 7, 8, "unknown function 'frobnicate'"),
    ('count(2x) > 1', 7, 15, "unexpected 'x'"),
    ('count(1h) >= 3 and', 7, 26, "unexpected end of expression"),
    ('sum(amount, 500d) > 1', 7, 20, "beyond the retention limit"),
    ('call.amount > 1', 7, 8, "unknown alias 'call'"),
    ('matches(payer_account, "(a)\\\\1")', 7, 31, "regex does not compile"),
    ('hour(ts, "Mars/Olympus") < 5', 7, 17, "unknown time zone"),
])
def test_errors_carry_file_line_col(tmp_path, where, line, col, message):
    errors = errors_for(tmp_path, where)
    assert any(f"r.yaml:{line}:{col}: error:" in e and message in e for e in errors), errors


@pytest.mark.parametrize("where", [
    '__import__("os").system("touch /tmp/pwned")',
    'payer_account.__class__',
    '(lambda x: x)(1)',
    'amount.__add__(1)',
    'exec("1")',
    'eval("1")',
    'open("/etc/passwd")',
])
def test_code_is_refused_at_load(tmp_path, where):
    errors = errors_for(tmp_path, where)
    assert errors and all("error" in e for e in errors)


def test_python_yaml_tags_are_refused(tmp_path):
    pack = make_pack(tmp_path, {"r": "id: !!python/object/apply:os.system ['touch /tmp/pwned']\n"})
    with pytest.raises(RuleErrors) as info:
        load_pack(pack)
    assert "r.yaml:1" in str(info.value)


def test_deep_yaml_and_deep_expressions_are_bounded(tmp_path):
    deep = "a: " + "[" * 100 + "]" * 100 + "\n"
    pack = make_pack(tmp_path, {"r": deep})
    with pytest.raises(RuleErrors) as info:
        load_pack(pack)
    assert "nesting deeper" in str(info.value)
    with pytest.raises(ExprSyntaxError):
        parse_expr("(" * 200 + "1" + ")" * 200)


def test_unknown_keys_and_bad_values_are_reported_together(tmp_path):
    rule = GOOD.format(where="amount > 1").replace("score: 10", "score: 500\nsevertiy: high")
    pack = make_pack(tmp_path, {"r": rule})
    with pytest.raises(RuleErrors) as info:
        load_pack(pack)
    text = str(info.value)
    assert "unknown key 'severtiy'" in text and "score must be an integer in 0..100" in text


def test_catastrophic_regex_cannot_hang_the_engine():
    """(a+)+$ takes exponential time in a backtracking engine on 'aaaa...b': 5,000 characters would not finish,
    so this test would hang, not fail. The engine is RE2 (linear time): the checker refuses what only
    backtracking engines have, a backreference (test_errors_carry_file_line_col). Both paths the values can
    take: few distinct values (a loop over RE2) and many (Arrow's kernel, RE2 too). No timing threshold: the
    machines are noisy."""
    from fraudrules.lang import functions

    evil = "a" * 5000 + "b"
    for n in (3, functions._ARROW_REGEX_MIN + 5):
        values = np.array([evil] * (n - 1) + ["a" * 40], dtype=object)
        values[1:-1] = [evil + str(i) for i in range(n - 2)]  # distinct: many values take the Arrow path
        env = ColumnsEnv({"s": Vec(values, np.zeros(n, dtype=bool))}, n)
        result = Evaluator().compute(parse_expr('matches(s, "(a+)+$")'), env)
        assert result.values.tolist() == [False] * (n - 1) + [True]


def test_parentheses_nest_as_deep_as_the_bound_and_no_deeper():
    from fraudrules.lang.tree import MAX_EXPR_DEPTH

    deepest = "(" * MAX_EXPR_DEPTH + "amount" + ")" * MAX_EXPR_DEPTH + " > 0"
    assert parse_expr(deepest) == parse_expr("amount > 0")
    with pytest.raises(ExprSyntaxError) as info:
        parse_expr(" (" + deepest + ")")
    assert (info.value.message, info.value.offset) == (f"expression nested deeper than {MAX_EXPR_DEPTH} levels", 0)


@pytest.mark.parametrize("written, shown", [("1w", "1w"), ("7d", "1w"), ("8d", "8d"), ("24h", "1d"), ("60s", "1m"),
                                            ("90s", "90s"), ("1s", "1s"), ("500ms", "0.5s")])
def test_durations_print_in_their_largest_whole_unit(written, shown):
    """The text an alert gives for a condition that holds (its leaves), and tuning for a duration param."""
    assert unparse(parse_expr(f"count({written}) > 1")) == f"count({shown}) > 1"


@pytest.mark.parametrize("text", ["a + b + c", "a - (b - c)", "a * (b + c)", "-(a + b)", "not (p and q) or r",
                                  "a / b / c", "a / (b * c)", "x if a > 1 else -y"])
def test_unparse_writes_parentheses_only_where_they_change_the_meaning(text):
    assert unparse(parse_expr(text)) == text


def test_unparse_round_trips():
    for text in ['a + b * c', '(a + b) * c', 'x if a > 1 else -y', 'caller not in @irsf and not (p == 1)',
                 'count(1h, where=amount >= 45000 and amount < 50000) >= 3', '"q\\"x" == s']:
        assert parse_expr(unparse(parse_expr(text))) == parse_expr(text)


def test_broken_rule_file_exits_2_with_location_and_no_traceback(tmp_path):
    pack = make_pack(tmp_path, {"r": GOOD.format(where="amount >>= 3")})
    proc = subprocess.run([sys.executable, str(REPO / "cli.py"), "lint", "--rules", str(pack)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "r.yaml:7:" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    proc = subprocess.run([sys.executable, str(REPO / "cli.py"), "score", "--rules", str(pack), str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "r.yaml:7:" in proc.stderr and "Traceback" not in proc.stderr


def test_text_tests_of_two_columns_match_pythons_string_methods():
    a = np.array(["+8613800", "abc", "", "x", "hello"], dtype=object)
    b = np.array(["+86", "c", "", "y", "ll"], dtype=object)
    null = np.array([False, False, False, True, False])
    env = ColumnsEnv({"a": Vec(a, np.zeros(5, dtype=bool)), "b": Vec(b, null)}, 5)
    for fn, py in (("startswith", str.startswith), ("endswith", str.endswith), ("contains", lambda x, y: y in x)):
        got = Evaluator().compute(parse_expr(f"{fn}(a, b)"), env).values.tolist()
        assert got == [py(x, y) and not n for x, y, n in zip(a, b, null)], fn


_PATTERNS = ["^[+]([0-79]|8[0-57-9])", "a|b$", "^$", "(?i)Ab", "[0-9]{3}", "^.{2}$", "x.*y", "[^a-z]",
             "(^|[^a-z])fo", "é+$"]


@pytest.mark.parametrize("pattern", _PATTERNS)
def test_matches_through_arrow_answers_what_the_re2_module_answers(pattern):
    """Many distinct values take Arrow's RE2 kernel, a few the re2 module: both must agree, value by
    value, including newlines, non-ASCII text and (Arrow refuses it) a lone surrogate."""
    import re2
    from hypothesis import given, settings
    from hypothesis import strategies as st

    compiled = re2.compile(pattern)

    texts = st.text(alphabet="ab+8x y\nÉé0123456789-_", max_size=6)

    @settings(max_examples=40, deadline=None)
    @given(st.lists(texts | st.sampled_from(["+86", "é", "+8613800000001"]), min_size=0, max_size=200))
    def check(values):
        arr = np.empty(len(values), dtype=object)
        arr[:] = values
        null = np.array([i % 7 == 3 for i in range(len(values))], dtype=bool)
        got = Evaluator().compute(parse_expr(f'matches(s, "{pattern}")'), ColumnsEnv({"s": Vec(arr, null)}, len(arr)))
        want = [(not n) and compiled.search(v) is not None for v, n in zip(values, null)]
        assert got.values.tolist() == want
        assert not got.null.any()

    check()


def test_many_distinct_values_do_take_the_arrow_path(monkeypatch):
    from fraudrules.lang import functions

    calls = []
    real = functions._arrow_search
    monkeypatch.setattr(functions, "_arrow_search", lambda values, pattern: calls.append(len(values)) or real(
        values, pattern))
    values = np.array([f"+{i}" for i in range(300)] * 2, dtype=object)
    got = Evaluator().compute(parse_expr('matches(s, "^[+]1")'), ColumnsEnv({"s": Vec(values, values == "+5")}, 600))
    assert calls == [299]  # the distinct live values, once
    assert got.values.tolist() == [v.startswith("+1") for v in values]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.floats(allow_nan=True, width=64), st.sampled_from([0.0, -0.0, 5.0, 86400.0])),
                          st.booleans()), min_size=1, max_size=40),
       st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), st.sampled_from(["5", "0", "-0.0", "1d", "2.5e3"]))
def test_a_number_compared_as_a_scalar_answers_as_the_column_it_replaced(rows, op, literal):
    # ``x > 5`` compares with the number itself; ``x > (5 + 0)`` still spreads it over a column first
    values = np.array([v for v, _ in rows], dtype=np.float64)
    null = np.array([nu for _, nu in rows], dtype=bool)
    env = ColumnsEnv({"x": Vec(np.where(null, 0.0, values), null)}, len(rows))
    for text, spread in ((f"x {op} {literal}", f"x {op} ({literal} + 0)"),
                         (f"{literal} {op} x", f"({literal} + 0) {op} x")):
        got, want = Evaluator().compute(parse_expr(text), env), Evaluator().compute(parse_expr(spread), env)
        assert got.values.tolist() == want.values.tolist() and got.null.tolist() == want.null.tolist(), text


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["+44207", "+8613", "x", "+1", ""]), st.booleans()), min_size=1,
                max_size=40))
def test_a_call_under_and_takes_the_whole_envs_column_when_computed_there_first(rows):
    """``flag and matches(s, ...)`` evaluates the call on the rows where flag holds; when the same env already has the
    call over every row (another condition of the release computed it), those rows are taken from that column, and
    the answer is the one computed afresh."""
    from fraudrules.lang import functions

    texts = np.array([t for t, _ in rows], dtype=object)
    env_cols = {"s": Vec(texts, texts == ""), "flag": Vec(np.array([f for _, f in rows]), np.zeros(len(rows), bool))}
    call, guarded = parse_expr('matches(s, "^[+]44")'), parse_expr('flag and matches(s, "^[+]44")')
    fresh = Evaluator().truth(guarded, ColumnsEnv(env_cols, len(rows)))
    ev, env = Evaluator(), ColumnsEnv(env_cols, len(rows))
    ev.compute(call, env)  # the whole column first, kept in env._calls
    applied = []
    real = functions.FUNCTIONS["matches"]
    try:
        functions.FUNCTIONS["matches"] = type(real)(**{**real.__dict__, "apply": lambda *a: applied.append(1) or
                                                       real.apply(*a)})
        got = ev.truth(guarded, env)
    finally:
        functions.FUNCTIONS["matches"] = real
    assert got.tolist() == fresh.tolist()
    assert applied == []  # the subset took the whole column's answers
