"""pack/checker.expanded_shape: the size and depth of an expression once its macros are expanded, computed
without expanding, against the expansion itself (runtime.plan.expand_macros)."""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from fraudrules.lang.expr import parse_expr
from fraudrules.lang.tree import depth
from fraudrules.pack.checker import expanded_shape
from fraudrules.pack.model import MAX_MACRO_DEPTH
from fraudrules.runtime.plan import expand_macros

PARAMS = ("p", "q", "r")


def _expression(draw, leaves: list[str], callable_macros: list[tuple[str, int]], budget: int) -> str:
    """A random expression text: leaves, operators, a function, and calls of earlier macros whose arguments
    are expressions again (so a parameter can sit at any depth, used any number of times)."""
    kinds = ["leaf"] if budget <= 0 else ["leaf", "binary", "not", "function"] + ["macro"] * bool(callable_macros)
    kind = draw(st.sampled_from(kinds))
    if kind == "leaf":
        return draw(st.sampled_from(leaves))
    if kind == "binary":
        op = draw(st.sampled_from(["+", "*", "and", ">"]))
        left = _expression(draw, leaves, callable_macros, budget - 1)
        right = _expression(draw, leaves, callable_macros, budget - 1)
        return f"({left} {op} {right})"
    if kind == "not":
        return f"not ({_expression(draw, leaves, callable_macros, budget - 1)})"
    if kind == "function":
        return f"abs({_expression(draw, leaves, callable_macros, budget - 1)})"
    name, arity = draw(st.sampled_from(callable_macros))
    args = [_expression(draw, leaves, callable_macros, budget - 1) for _ in range(arity)]
    return f"{name}({', '.join(args)})"


@st.composite
def macro_sets(draw):
    """Macros m0..mN, each calling only earlier ones (as the loader requires no cycle), sometimes a chain
    longer than MAX_MACRO_DEPTH, where both sides stop expanding at the same level; and an expression."""
    macros: dict[str, SimpleNamespace] = {}
    chain = draw(st.booleans())
    for k in range(draw(st.integers(1, MAX_MACRO_DEPTH + 3))):
        params = PARAMS[: draw(st.integers(0, 3))]
        earlier = [(m.name, len(m.params)) for m in macros.values()]
        if chain and earlier:
            earlier = earlier[-1:]  # each calls the one before: nesting as deep as the set is long
        body = _expression(draw, [*params, "amount", "1"], earlier, draw(st.integers(0, 4)))
        macros[f"m{k}"] = SimpleNamespace(name=f"m{k}", params=params, body=SimpleNamespace(ast=parse_expr(body)))
    called = [(m.name, len(m.params)) for m in macros.values()]
    text = _expression(draw, ["amount", "2"], called, draw(st.integers(1, 4)))
    return macros, parse_expr(text)


@settings(max_examples=300, deadline=None)
@given(macro_sets())
def test_the_shape_is_the_size_and_depth_of_the_expansion(case):
    macros, expr = case
    expanded = expand_macros(expr, macros)
    shape = expanded_shape(expr, macros)
    assert shape.size == sum(1 for _ in expanded.walk())
    assert shape.top == depth(expanded)


def test_a_parameter_deep_in_a_body_deepens_the_argument_it_is_bound_to():
    # the argument (depth 3) lands at depth 4 of the body: 3 + 4 - 1 levels, whatever the body's own top
    m = SimpleNamespace(name="m", params=("x",), body=SimpleNamespace(ast=parse_expr("not (not (not (x)))")))
    expr = parse_expr("m(abs(abs(amount)))")
    shape = expanded_shape(expr, {"m": m})
    assert (shape.size, shape.top) == (6, 6) == (sum(1 for _ in expand_macros(expr, {"m": m}).walk()),
                                                 depth(expand_macros(expr, {"m": m})))


def test_a_chain_longer_than_the_nesting_bound_stops_expanding_at_the_same_level_on_both_sides():
    # m0(x) = x + 1, mk(x) = m{k-1}(x) + 1: calling m{n} expands MAX_MACRO_DEPTH levels, then a call is left
    n = MAX_MACRO_DEPTH + 2
    macros = {f"m{k}": SimpleNamespace(name=f"m{k}", params=("x",), body=SimpleNamespace(
        ast=parse_expr("x + 1" if k == 0 else f"m{k - 1}(x) + 1"))) for k in range(n)}
    expr = parse_expr(f"m{n - 1}(amount)")
    expanded = expand_macros(expr, macros)
    left = [node.name for node in expanded.walk() if getattr(node, "name", None) in macros]
    assert left == [f"m{n - 1 - MAX_MACRO_DEPTH}"]
    shape = expanded_shape(expr, macros)
    assert (shape.size, shape.top) == (sum(1 for _ in expanded.walk()), depth(expanded))
