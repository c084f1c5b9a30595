"""lang/expr.py's recursive descent against lang/lalr.py's lark parser, the reference.

The descent parses the usual expression and leaves the rest to lark (module doc of lang/expr.py). Whenever it
returns a tree, lark must return the same one, every node's start and end included: the checker reports
errors at those offsets. The dataclasses leave start and end out of ``==``, so trees are compared through
``shape``.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudrules.lang import expr as expr_module
from fraudrules.lang.expr import ExprSyntaxError, descend, parse_expr
from fraudrules.lang.lalr import parse_lalr
from fraudrules.pack.loader import load_pack

REPO = Path(__file__).resolve().parents[2]


def shape(node: object) -> object:
    """The whole tree as nested tuples: node types, fields, and every node's start and end."""
    if isinstance(node, expr_module.Expr):
        return (type(node).__name__, node.start, node.end,
                tuple(shape(getattr(node, f.name)) for f in dataclasses.fields(node) if f.name not in ("start", "end")))
    if isinstance(node, tuple):
        return tuple(shape(x) for x in node)
    return (type(node).__name__, node)  # 1 and 1.0 and True differ


def agree(text: str) -> bool:
    """The descent's tree equals lark's; False when the descent left ``text`` to lark."""
    fast = descend(text)
    if fast is None:
        return False
    assert shape(fast) == shape(parse_lalr(text)), text
    return True


def pack_expressions(folder: Path) -> list[str]:
    texts: list[str] = []
    real = expr_module.parse_expr

    def spy(text):
        texts.append(text)
        return real(text)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("fraudrules.pack.loader.parse_expr", spy)
        load_pack(folder, tests=True)
    return texts


@pytest.mark.parametrize("folder", ["rules", "bench/packs/other"])
def test_every_expression_of_a_pack_takes_the_descent_and_gets_lark_s_tree(folder):
    texts = pack_expressions(REPO / folder)
    assert len(texts) > 40
    left = [t for t in texts if not agree(t)]
    assert not left, f"left to lark: {left[:5]}"  # the speed of the load depends on none being left


@pytest.mark.parametrize("text", [
    "(a)", "((a + b)) * c", "-(a + b)", "(a) + (b)", "not (x)", "f((a), (b))", "a if (b) else (c)",
    "(x) in [(1), 2]", "  a  # why\n  + 1 ", "true", "x == null", "$min", "params.min", "s.amount",
    "s.count(amount, 1h)", 'f(key=[payer_account , payee_account], where=a == "b")', "f(key=[ a])",
    "1.5h + 10ms + 2w + 1e3 + 007", "'it\\'s'", '"a\\"b\\n"', "x not in @reported", "a if b else c if d else e",
    "- - -x", "not not x", "f()", "a % b / c * d - e + f",
])
def test_spans_equal_lark_s_parentheses_and_comments_included(text):
    assert agree(text)


@pytest.mark.parametrize("text", [
    "x.in", "f(in=1)", "in == 1", "a < b < c", "f(a=1, b)", "params.f(x)", "1sx", "a b", "_x", "x !", "a ==",
    "f(a,)", "[1]", "x in (1, 2)", "@x", "1" * 40, "-" * 50 + "x", "not " * 50 + "x",
    " + ".join(["a"] * 60),
])
def test_the_descent_leaves_errors_and_unusual_texts_to_lark(text):
    assert descend(text) is None
    try:
        reference = parse_lalr(text)
    except ExprSyntaxError as lark_error:
        with pytest.raises(ExprSyntaxError) as ours:
            parse_expr(text)
        assert (ours.value.message, ours.value.offset) == (lark_error.message, lark_error.offset)
    else:
        assert shape(parse_expr(text)) == shape(reference)


# --- generated texts: valid ones mostly, with whatever the joins make of them -----------------------------

_SPACE = st.sampled_from([" ", " ", " ", "", "  ", "\n", "\t", " # note\n", "\r\n"])
_NAMES = st.sampled_from(["a", "amount", "payer_account", "x1", "iff", "nots", "inx", "params", "s", "truex",
                          "in", "if", "true", "not", "else"])
_ATOMS = st.one_of(
    _NAMES,
    st.sampled_from(["0", "12", "007", "1.5", "2e3", "1E-2", "30s", "5m", "1.5h", "10ms", "2w", "3d", "4mx",
                     '"a b"', "'x'", '"q\\"x"', '"#"', "true", "false", "null"]),
    st.builds(lambda a, b: f"{a}.{b}", _NAMES, _NAMES),
    st.builds(lambda s, n: f"${s}{n}", _SPACE, _NAMES),
)


def _compound(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    def j(*parts: object) -> st.SearchStrategy[str]:
        return st.tuples(*[p if isinstance(p, st.SearchStrategy) else st.just(p) for p in parts]).map("".join)

    arg = st.one_of(inner, j(_NAMES, _SPACE, "=", _SPACE, inner),
                    j(_NAMES, "=[", _SPACE, _NAMES, st.lists(j(",", _SPACE, _NAMES), max_size=2).map("".join), "]"))
    items = st.lists(inner, max_size=3).map(", ".join)
    return st.one_of(
        j("-", _SPACE, inner), j("not", _SPACE, inner), j("(", _SPACE, inner, _SPACE, ")"),
        j(inner, _SPACE, st.sampled_from(["+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "and", "or",
                                          "=", "in", "not in"]), _SPACE, inner),
        j(inner, _SPACE, st.sampled_from(["in", "not in", "in", "not"]), _SPACE,
          st.one_of(j("[", items, "]"), j("@", _SPACE, _NAMES), inner)),
        j(_NAMES, st.sampled_from(["", ".f"]), "(", st.lists(arg, max_size=3).map(", ".join), ")"),
        j(inner, " if ", inner, " else ", inner),
    )


EXPRESSIONS = st.recursive(_ATOMS, _compound, max_leaves=12)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EXPRESSIONS)
def test_generated_texts_get_lark_s_tree_or_go_to_lark(text):
    agree(text)  # asserts when the descent's tree differs from lark's


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EXPRESSIONS, st.integers(0, 200), st.sampled_from(["", " ", ")", "(", "]", ",", "=", "-", "not ", "$", "."]))
def test_damaged_texts_are_errors_in_both_or_the_same_tree(text, at, insert):
    damaged = text[:at] + insert + text[at + 1:]
    agree(damaged)


def test_generated_texts_mostly_take_the_descent():
    """The generator is not a trivial oracle: much of what it makes parses, and the descent takes that. The
    draws are fixed (``derandomize``): free draws gave 98-159 of 300, and one CI run fell under the old bound
    of 100; a quarter still shows the generator is no trivial oracle, whatever hypothesis's version draws."""
    taken: list[bool] = []

    @settings(max_examples=300, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(EXPRESSIONS)
    def run(text):
        taken.append(agree(text))

    run()
    assert sum(taken) >= len(taken) // 4, f"{sum(taken)} of {len(taken)}"


@pytest.mark.parametrize("text", [
    "a + " + " " * 5000 + "!",  # spaces, then no token: "(?:[ ]+|#...)*" before the tokens split them 2**n ways
    "a + " + "# #" * 3000 + "\n!",  # a comment of many "#", then no token
    "x" + " \t" * 4000 + "?",
    '"' + "\\\\" * 4000,  # an unterminated string of escapes
    "1" * 31 + "." + " " * 5000 + "@",
])
def test_the_lexer_is_linear_on_texts_made_to_make_a_regex_backtrack(text):
    """Rule text is untrusted. Python's re backtracks: a pattern with a repeat inside a repeat takes exponential time
    on these. In a subprocess, so that such a lexer fails the test at the timeout (an hour's worth of steps at 5,000
    spaces: it would never finish) instead of hanging the run; the descent gives each of them to lark, whose error
    is the answer."""
    probe = ("import sys\nfrom fraudrules.lang.expr import ExprSyntaxError, descend, parse_expr\n"
             "text = sys.stdin.read()\nassert descend(text) is None\n"
             "try:\n    parse_expr(text)\nexcept ExprSyntaxError as e:\n    print(e.offset)\n")
    proc = subprocess.run([sys.executable, "-c", probe], input=text, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) >= 0  # lark's error, at an offset in the text
