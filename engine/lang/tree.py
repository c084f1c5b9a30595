"""The expression language's syntax tree: small frozen dataclasses, and the literals' helpers.

Both parsers build these (``lang.expr``'s recursive descent and ``lang.lalr``'s lark parser); the rest of the
engine imports them through ``lang.expr``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

MAX_EXPR_CHARS = 10_000
MAX_EXPR_DEPTH = 64
MAX_NUMBER_CHARS = 32  # a number or duration literal: int() of 5,000 digits raises, and no rule needs more

DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

class ExprSyntaxError(Exception):
    """A syntax error at a character offset of the expression text."""

    def __init__(self, message: str, offset: int):
        super().__init__(message)
        self.message = message
        self.offset = offset


# --- syntax tree ----------------------------------------------------------


@dataclass(frozen=True)
class Expr:
    start: int = field(default=0, compare=False, kw_only=True)
    end: int = field(default=0, compare=False, kw_only=True)

    def children(self) -> tuple[Expr, ...]:
        return ()

    def walk(self) -> Iterator[Expr]:
        """This node and all nodes below it, parents first."""
        yield self
        for child in self.children():
            yield from child.walk()


@dataclass(frozen=True)
class Literal(Expr):
    value: object  # int | float | str | bool | None
    kind: str  # number | string | bool | null | duration


@dataclass(frozen=True)
class Field(Expr):
    name: str
    alias: str | None = None  # set for ``alias.name``

    @property
    def dotted(self) -> str:
        return f"{self.alias}.{self.name}" if self.alias else self.name


@dataclass(frozen=True)
class Param(Expr):
    """``$name`` or ``params.name``: a rule parameter, bound to its value when the rule compiles."""

    name: str


PARAMS_ALIAS = "params"  # ``params.x`` reads a parameter, so no step may be called ``params``


@dataclass(frozen=True)
class Unary(Expr):
    op: str  # "-" or "not"
    operand: Expr

    def children(self) -> tuple[Expr, ...]:
        return (self.operand,)


@dataclass(frozen=True)
class Binary(Expr):
    op: str  # + - * / % == != < <= > >= and or
    left: Expr
    right: Expr

    def children(self) -> tuple[Expr, ...]:
        return (self.left, self.right)


@dataclass(frozen=True)
class Cond(Expr):
    then: Expr
    test: Expr
    other: Expr

    def children(self) -> tuple[Expr, ...]:
        return (self.then, self.test, self.other)


@dataclass(frozen=True)
class ListRef(Expr):
    """``[a, b]`` (items) or ``@name`` (name)."""

    items: tuple[Expr, ...] = ()
    name: str | None = None

    def children(self) -> tuple[Expr, ...]:
        return self.items


@dataclass(frozen=True)
class InList(Expr):
    operand: Expr
    container: ListRef
    negate: bool = False

    def children(self) -> tuple[Expr, ...]:
        return (self.operand, self.container)


@dataclass(frozen=True)
class Call(Expr):
    name: str
    args: tuple[Expr, ...] = ()
    kwargs: tuple[tuple[str, Expr], ...] = ()
    alias: str | None = None  # ``fanin.sum(amount, 24h)``: an earlier step's aggregate, at that step's record

    @property
    def dotted(self) -> str:
        return f"{self.alias}.{self.name}" if self.alias else self.name

    def children(self) -> tuple[Expr, ...]:
        return self.args + tuple(v for _, v in self.kwargs)

    def kwarg(self, name: str) -> Expr | None:
        return dict(self.kwargs).get(name)


COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">="})
ARITHMETIC = frozenset({"+", "-", "*", "/", "%"})


def unquote(token: str) -> str:
    """The text of a string literal (its quotes and escapes undone)."""
    body = token[1:-1]
    out, i = [], 0
    escapes = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            out.append(escapes.get(body[i + 1], body[i + 1]))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def parse_duration(text: str) -> float | None:
    """``"30s"`` -> 30.0; None when the text is not a duration literal."""
    for unit in ("ms", "s", "m", "h", "d", "w"):
        if text.endswith(unit):
            number = text[: -len(unit)]
            if number.replace(".", "", 1).isdigit():
                return float(number) * DURATION_UNITS[unit]
    return None


def depth(expr: Expr) -> int:
    """Levels of the tree (one node: 1), counted without recursion."""
    stack, best = [(expr, 1)], 0
    while stack:
        node, d = stack.pop()
        best = max(best, d)
        stack.extend((c, d + 1) for c in node.children())
    return best
