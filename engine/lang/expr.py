"""The expression language: its parser, and what the engine asks of a parsed expression.

Expressions parse into small frozen dataclasses (``lang.tree``, imported through this module). Nothing here
evaluates anything, and the grammar (a real LALR grammar, ``lang.lalr``) has no attribute access beyond
``alias.field``, no names with leading underscores, no lambdas and no calls on anything but a bare function
name, so a rule can never reach Python objects.

Two parsers read the one grammar. ``_Descent``, a recursive descent over a regular-expression lexer, parses
the expressions rules are made of, six times faster than lark (4.7 against 29 ms CPU for the shipped pack's
235 expressions) and without lark's import (~0.07 s). Anything it is unsure of (a syntax error, a keyword
where a name could be, nesting near the limits) goes to ``lang.lalr``, the lark parser, which says what is
wrong and where. The descent gives up rather than guess, so both always give the same tree
(``tests/unit/test_descent.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .tree import (
    ARITHMETIC,
    COMPARISONS,
    DURATION_UNITS,
    MAX_EXPR_CHARS,
    MAX_EXPR_DEPTH,
    MAX_NUMBER_CHARS,
    PARAMS_ALIAS,
    Binary,
    Call,
    Cond,
    Expr,
    ExprSyntaxError,
    Field,
    InList,
    ListRef,
    Literal,
    Param,
    Unary,
    depth,
    parse_duration,
    unquote,
)

# the tree's names, for the modules that read expressions: lang.expr is where they import them from
__all__ = [
    "ARITHMETIC", "COMPARISONS", "DURATION_UNITS", "MAX_EXPR_CHARS", "MAX_EXPR_DEPTH", "MAX_NUMBER_CHARS", "MIRRORED",
    "PARAMS_ALIAS", "Binary", "Call", "Cond", "Expr", "ExprSyntaxError", "Field", "InList", "ListRef", "Literal",
    "Param", "Unary", "aliases_used", "conjuncts", "depth", "descend", "literal_comparison", "parse_duration",
    "parse_expr", "unparse", "unquote",
]


def _paren_depth(text: str) -> int:
    depth = best = 0
    for ch in text:
        if ch in "([":
            depth += 1
            best = max(best, depth)
        elif ch in ")]":
            depth -= 1
    return best


def parse_expr(text: str) -> Expr:
    """Parse expression text; raises ExprSyntaxError with a character offset."""
    if not isinstance(text, str):
        raise ExprSyntaxError("expression must be a string", 0)
    if len(text) > MAX_EXPR_CHARS:
        raise ExprSyntaxError(f"expression longer than {MAX_EXPR_CHARS} characters", 0)
    if not text.strip():
        raise ExprSyntaxError("empty expression", 0)
    if _paren_depth(text) > MAX_EXPR_DEPTH:
        raise ExprSyntaxError(f"expression nested deeper than {MAX_EXPR_DEPTH} levels", 0)
    expr = descend(text)
    if expr is not None:
        return expr
    from .lalr import parse_lalr  # an error to describe, or a text outside the descent's subset

    return parse_lalr(text)


# --- the recursive descent ---------------------------------------------------------------------
#
# The lexer matches as lark's does: its terminals in lark's order (DURATION, priority 3, before NUMBER, 2;
# then the longest operators first), whitespace and comments skipped. A name spelt as a keyword is the
# keyword. lark's contextual lexer may read one as a name where no keyword can stand (``x.in``): the descent
# gives up there, and lark decides.

# Python's re backtracks: white space and comments are skipped by a pattern of their own, which nothing follows
# that can fail (inside the token pattern, "(?:[ ]+|#...)*" then a failing token took exponential time in the
# spaces before it), and each token alternative gives back at most its own characters
_SKIP = re.compile(r"(?:[ \t\r\n]+|\#[^\n]*)*")
_LEXEME = re.compile(r"""
      (?P<duration>[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h|d|w)(?![A-Za-z0-9_]))
    | (?P<number>[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
    | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
    | (?P<name>[A-Za-z][A-Za-z0-9_]*)
    | (?P<op>==|!=|<=|>=|[-+*/%<>()\[\],.$@=])
    | (?P<end>\Z)""", re.VERBOSE)
_KEYWORDS = frozenset({"if", "else", "or", "and", "not", "in", "true", "false", "null"})
_LITERAL_WORDS = {"true": (True, "bool"), "false": (False, "bool"), "null": (None, "null")}
_DESCENT_DEPTH = 40  # deeper trees go to lark, whose own bound (MAX_EXPR_DEPTH * 2 parse-tree levels) then applies


class _GiveUp(Exception):
    """Not an expression the descent parses: lark parses it, or says what is wrong."""


def _lex(text: str) -> list[tuple[str, str, int, int]]:
    """(kind, text, start, end) per token, ending with ("end", "", n, n). kind: duration, number, string, name,
    a keyword, or an operator's own text."""
    out = []
    pos = 0
    match, skip = _LEXEME.match, _SKIP.match
    while True:
        m = match(text, skip(text, pos).end())
        if m is None:
            raise _GiveUp
        kind = m.lastgroup
        start, pos = m.span(kind)
        word = m.group(kind)
        if kind == "op":
            kind = word
        elif kind == "name" and word in _KEYWORDS:
            kind = word
        elif kind in ("number", "duration") and len(word) > MAX_NUMBER_CHARS:
            raise _GiveUp
        out.append((kind, word, start, pos))
        if kind == "end":
            return out
        if pos == start:  # pragma: no cover - every alternative but the end consumes
            raise _GiveUp


def descend(text: str) -> Expr | None:
    """``text`` parsed by the recursive descent; None when it leaves the text to lark (see the module's doc)."""
    try:
        parser = _Descent(_lex(text))
        node = parser.ternary()[0]
        if parser.kind() != "end":
            raise _GiveUp
    except _GiveUp:
        return None
    return node if depth(node) <= _DESCENT_DEPTH else None


_Parsed = tuple[Expr, int, int]  # a node and its container: the span of its outermost parentheses, else its own


class _Descent:
    """One method per level of the grammar (``lang.lalr._GRAMMAR``), each returning ``_Parsed``. A node's
    span runs from its first part's container to its last part's, as lark's ``propagate_positions`` sets it:
    ``-(a + b)`` ends after ")", while ``a + b`` inside it does not."""

    def __init__(self, tokens: list[tuple[str, str, int, int]]):
        self.tokens = tokens
        self.i = 0
        self.nesting = 0

    def kind(self, ahead: int = 0) -> str:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)][0]

    def take(self, kind: str | None = None) -> tuple[str, str, int, int]:
        tok = self.tokens[self.i]
        if kind is not None and tok[0] != kind:
            raise _GiveUp
        if tok[0] != "end":
            self.i += 1
        return tok

    def nest(self) -> None:
        self.nesting += 1
        if self.nesting > _DESCENT_DEPTH:
            raise _GiveUp

    def ternary(self) -> _Parsed:
        then = self.or_expr()
        if self.kind() != "if":
            return then
        self.take()
        test = self.or_expr()
        self.take("else")
        self.nest()
        other = self.ternary()
        self.nesting -= 1
        return Cond(then[0], test[0], other[0], start=then[1], end=other[2]), then[1], other[2]

    def or_expr(self) -> _Parsed:
        return self._chain(("or",), self.and_expr)

    def and_expr(self) -> _Parsed:
        return self._chain(("and",), self.not_expr)

    def not_expr(self) -> _Parsed:
        return self._prefixed("not", self.not_expr, self.comparison)

    def comparison(self) -> _Parsed:
        left = self.sum()
        kind = self.kind()
        if kind in COMPARISONS:
            self.take()
            return self._binary(kind, left, self.sum())
        negate = kind == "not" and self.kind(1) == "in"
        if kind != "in" and not negate:
            return left
        self.take()
        if negate:
            self.take()
        container = self.container()
        return InList(left[0], container, negate, start=left[1], end=container.end), left[1], container.end

    def sum(self) -> _Parsed:
        return self._chain(("+", "-"), self.product)

    def product(self) -> _Parsed:
        return self._chain(("*", "/", "%"), self.unary)

    def unary(self) -> _Parsed:
        return self._prefixed("-", self.unary, self.atom)

    def _chain(self, ops: tuple[str, ...], operand: Callable[[], _Parsed]) -> _Parsed:
        """A left-associative level: ``operand (op operand)*``."""
        left = operand()
        while (kind := self.kind()) in ops:
            self.take()
            left = self._binary(kind, left, operand())
        return left

    @staticmethod
    def _binary(op: str, left: _Parsed, right: _Parsed) -> _Parsed:
        return Binary(op, left[0], right[0], start=left[1], end=right[2]), left[1], right[2]

    def _prefixed(self, op: str, itself: Callable[[], _Parsed], below: Callable[[], _Parsed]) -> _Parsed:
        """``op`` applied to this level again (``not not x``, ``- -x``), or the level below."""
        if self.kind() != op:
            return below()
        start = self.take()[2]
        self.nest()
        operand = itself()
        self.nesting -= 1
        return Unary(op, operand[0], start=start, end=operand[2]), start, operand[2]

    def atom(self) -> _Parsed:
        kind, word, start, end = self.take()
        node: Expr
        if kind == "name":
            return self.named(word, start, end)
        if kind == "duration":
            node = Literal(parse_duration(word), "duration", start=start, end=end)
        elif kind == "number":
            node = Literal(float(word) if any(c in word for c in ".eE") else int(word), "number", start=start,
                           end=end)
        elif kind == "string":
            node = Literal(unquote(word), "string", start=start, end=end)
        elif kind in _LITERAL_WORDS:
            value, what = _LITERAL_WORDS[kind]
            node = Literal(value, what, start=start, end=end)
        elif kind == "$":
            name = self.take("name")
            node, end = Param(name[1], start=start, end=name[3]), name[3]
        elif kind == "(":
            self.nest()
            inner = self.ternary()
            self.nesting -= 1
            return inner[0], start, self.take(")")[3]
        else:
            raise _GiveUp
        return node, start, end

    def named(self, word: str, start: int, end: int) -> _Parsed:
        """A field, ``alias.field``, ``params.name`` or a call, after its first name."""
        if self.kind() == "(":
            return self.call(word, None, start)
        if self.kind() != ".":
            return Field(word, start=start, end=end), start, end
        self.take()
        name = self.take("name")
        if self.kind() == "(":
            if word == PARAMS_ALIAS:
                raise _GiveUp  # an error lark's path words
            return self.call(name[1], word, start)
        node = Param(name[1], start=start, end=name[3]) if word == PARAMS_ALIAS else \
            Field(name[1], alias=word, start=start, end=name[3])
        return node, start, name[3]

    def call(self, name: str, alias: str | None, start: int) -> _Parsed:
        self.take("(")
        args: list[Expr] = []
        kwargs: list[tuple[str, Expr]] = []
        self.nest()
        if self.kind() != ")":
            while True:
                if self.kind() == "name" and self.kind(1) == "=":
                    kwargs.append(self.kwarg())
                elif kwargs:
                    raise _GiveUp  # a positional argument after a keyword one: lark's path says so
                else:
                    args.append(self.ternary()[0])
                if self.kind() != ",":
                    break
                self.take()
        self.nesting -= 1
        end = self.take(")")[3]
        return Call(name, tuple(args), tuple(kwargs), alias=alias, start=start, end=end), start, end

    def kwarg(self) -> tuple[str, Expr]:
        name = self.take()[1]
        self.take("=")
        if self.kind() != "[":
            return name, self.ternary()[0]
        self.take()
        fields = [self.take("name")]  # ``key=[payer_account, payee_account]``: field names
        while self.kind() == ",":
            self.take()
            fields.append(self.take("name"))
        end = self.take("]")[3]
        items = tuple(Field(f[1], start=f[2], end=f[3]) for f in fields)
        return name, ListRef(items=items, start=fields[0][2] - 1, end=end)

    def container(self) -> ListRef:
        kind, _, start, _ = self.take()
        if kind == "@":
            name = self.take("name")
            return ListRef(name=name[1], start=start, end=name[3])
        if kind != "[":
            raise _GiveUp
        items: list[Expr] = []
        if self.kind() != "]":
            self.nest()
            items.append(self.ternary()[0])
            while self.kind() == ",":
                self.take()
                items.append(self.ternary()[0])
            self.nesting -= 1
        return ListRef(items=tuple(items), start=start, end=self.take("]")[3])


def conjuncts(expr: Expr) -> list[Expr]:
    """Split a top-level ``a and b and c`` into [a, b, c]."""
    if isinstance(expr, Binary) and expr.op == "and":
        return conjuncts(expr.left) + conjuncts(expr.right)
    return [expr]


# a comparison read the other way round: ``5 < x`` is ``x > 5``
MIRRORED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


def _sides(node: Expr) -> tuple[tuple[Expr, Expr, str], ...]:
    """A comparison read both ways, as (one side, the other, the comparison with the first side on the
    right): the right side first; nothing for anything but a comparison."""
    if not isinstance(node, Binary) or node.op not in MIRRORED:
        return ()
    return (node.right, node.left, node.op), (node.left, node.right, MIRRORED[node.op])


def literal_comparison(node: Expr, kinds: tuple[str, ...]) -> tuple[Expr, Literal, str] | None:
    """A comparison with a literal of one of ``kinds`` on one side (the right one first), as (the other side,
    the literal, the comparison with the literal on the right); None for anything else."""
    for lit, other, op in _sides(node):
        if isinstance(lit, Literal) and lit.kind in kinds:
            return other, lit, op
    return None


def number_value(node: Expr) -> float | None:
    """A number or duration literal's value, ``-`` before one included; None for anything else."""
    sign = 1.0
    if isinstance(node, Unary) and node.op == "-":
        sign, node = -1.0, node.operand
    if isinstance(node, Literal) and node.kind in ("number", "duration") and not isinstance(node.value, bool):
        return sign * float(node.value)  # type: ignore[arg-type]
    return None


def number_comparison(node: Expr) -> tuple[Expr, float, str] | None:
    """(the other side, the number, the comparison with the number on the right) of ``x op 5`` or ``5 op x``,
    a negative number included; None when neither or both sides are numbers."""
    for num, other, op in _sides(node):
        value = number_value(num)
        if value is not None and number_value(other) is None:
            return other, value, op
    return None


def aliases_used(expr: Expr) -> set[str]:
    return {n.alias for n in expr.walk() if isinstance(n, (Field, Call)) and n.alias}


_PRECEDENCE = {"or": 1, "and": 2, "not": 3, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4, "in": 4,
               "+": 5, "-": 5, "*": 6, "/": 6, "%": 6, "neg": 7}


def _fmt_duration(seconds: float) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and float(seconds / size).is_integer():
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def unparse(node: Expr, parent: int = 0) -> str:
    """Canonical text of an expression (used for macro-expanded explanations)."""
    if isinstance(node, Literal):
        if node.kind == "string":
            return '"' + str(node.value).replace("\\", "\\\\").replace('"', '\\"') + '"'
        if node.kind == "duration":
            return _fmt_duration(float(node.value))
        if node.kind == "bool":
            return "true" if node.value else "false"
        if node.kind == "null":
            return "null"
        return repr(node.value)
    if isinstance(node, Field):
        return node.dotted
    if isinstance(node, Param):
        return f"${node.name}"
    if isinstance(node, Call):
        args = [unparse(a) for a in node.args] + [f"{k}={unparse(v)}" for k, v in node.kwargs]
        return f"{node.dotted}({', '.join(args)})"
    if isinstance(node, ListRef):
        return f"@{node.name}" if node.name else "[" + ", ".join(unparse(i) for i in node.items) + "]"
    if isinstance(node, Unary):
        prec = _PRECEDENCE["not" if node.op == "not" else "neg"]
        text = f"not {unparse(node.operand, prec)}" if node.op == "not" else f"-{unparse(node.operand, prec)}"
    elif isinstance(node, Binary):
        prec = _PRECEDENCE[node.op]
        text = f"{unparse(node.left, prec)} {node.op} {unparse(node.right, prec + 1)}"
    elif isinstance(node, InList):
        prec = _PRECEDENCE["in"]
        op = "not in" if node.negate else "in"
        text = f"{unparse(node.operand, prec + 1)} {op} {unparse(node.container)}"
    elif isinstance(node, Cond):
        prec = 0
        text = f"{unparse(node.then, 1)} if {unparse(node.test, 1)} else {unparse(node.other)}"
    else:  # pragma: no cover
        raise TypeError(type(node).__name__)
    return f"({text})" if prec < parent else text
