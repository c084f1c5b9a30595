"""The expression language: grammar, syntax tree and parser.

Expressions are parsed with a real LALR parser (lark) into small frozen
dataclasses. Nothing here evaluates anything, and the grammar has no
attribute access beyond ``alias.field``, no names with leading underscores,
no lambdas and no calls on anything but a bare function name, so a rule can
never reach Python objects.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .hints import unexpected_char_hint, unexpected_token_hint

MAX_EXPR_CHARS = 10_000
MAX_EXPR_DEPTH = 64
MAX_NUMBER_CHARS = 32  # a number or duration literal: int() of 5,000 digits raises, and no rule needs more

DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

_GRAMMAR = r"""
?start: expr
?expr: ternary
?ternary: or_expr
        | or_expr "if" or_expr "else" ternary      -> cond
?or_expr: and_expr
        | or_expr "or" and_expr                     -> or_
?and_expr: not_expr
         | and_expr "and" not_expr                  -> and_
?not_expr: "not" not_expr                           -> not_
         | comparison
?comparison: sum
           | sum COMP_OP sum                        -> compare
           | sum "in" container                     -> in_
           | sum "not" "in" container               -> not_in
?sum: product
    | sum ADD_OP product                            -> binary
?product: unary
        | product MUL_OP unary                      -> binary
?unary: "-" unary                                   -> neg
      | atom
?atom: DURATION                                     -> duration
     | NUMBER                                       -> number
     | STRING                                       -> string
     | "true"                                       -> true
     | "false"                                      -> false
     | "null"                                       -> null
     | NAME "(" [arguments] ")"                     -> call
     | NAME "." NAME "(" [arguments] ")"            -> qualified_call
     | NAME "." NAME                                -> qualified
     | "$" NAME                                     -> param
     | NAME                                         -> name
     | "(" expr ")"
container: "[" [expr ("," expr)*] "]"               -> list_literal
         | "@" NAME                                 -> named_list
arguments: argument ("," argument)*
?argument: expr
         | NAME "=" expr                            -> kwarg
         | NAME "=" "[" NAME ("," NAME)* "]"        -> kwarg_fields
COMP_OP: "==" | "!=" | "<=" | ">=" | "<" | ">"
ADD_OP: "+" | "-"
MUL_OP: "*" | "/" | "%"
DURATION.3: /[0-9]+(\.[0-9]+)?(ms|s|m|h|d|w)(?![A-Za-z0-9_])/
NUMBER.2: /[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?/
STRING: /"([^"\\\n]|\\.)*"/ | /'([^'\\\n]|\\.)*'/
NAME: /[A-Za-z][A-Za-z0-9_]*/
%ignore /[ \t\r\n]+/
%ignore /#[^\n]*/
"""

_PARSER = Lark(_GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=True)


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


def _span(meta) -> dict[str, int]:
    if getattr(meta, "empty", True):
        return {"start": 0, "end": 0}
    return {"start": meta.start_pos, "end": meta.end_pos}


def _unquote(token: str) -> str:
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


@v_args(meta=True)
class _Build(Transformer):
    def duration(self, meta, children):
        tok = children[0]
        return Literal(parse_duration(str(tok)), "duration", **_span(meta))

    def number(self, meta, children):
        text = str(children[0])
        value: object = float(text) if any(c in text for c in ".eE") else int(text)
        return Literal(value, "number", **_span(meta))

    def string(self, meta, children):
        return Literal(_unquote(str(children[0])), "string", **_span(meta))

    def true(self, meta, children):
        return Literal(True, "bool", **_span(meta))

    def false(self, meta, children):
        return Literal(False, "bool", **_span(meta))

    def null(self, meta, children):
        return Literal(None, "null", **_span(meta))

    def name(self, meta, children):
        return Field(str(children[0]), **_span(meta))

    def qualified(self, meta, children):
        if str(children[0]) == PARAMS_ALIAS:
            return Param(str(children[1]), **_span(meta))
        return Field(str(children[1]), alias=str(children[0]), **_span(meta))

    def param(self, meta, children):
        return Param(str(children[0]), **_span(meta))

    def call(self, meta, children, alias: str | None = None):
        name, arguments = children
        args: list[Expr] = []
        kwargs: list[tuple[str, Expr]] = []
        for arg in arguments or []:
            if isinstance(arg, tuple):
                kwargs.append(arg)
            else:
                if kwargs:
                    raise ExprSyntaxError("positional argument after keyword argument", arg.start)
                args.append(arg)
        return Call(str(name), tuple(args), tuple(kwargs), alias=alias, **_span(meta))

    def qualified_call(self, meta, children):
        alias, name, arguments = children
        if str(alias) == PARAMS_ALIAS:
            raise ExprSyntaxError(f"params.{name}(...) is not a call: params hold values, read as ${name}",
                                  _span(meta)["start"])
        return self.call(meta, [name, arguments], alias=str(alias))

    def arguments(self, meta, children):
        return children

    def kwarg(self, meta, children):
        return (str(children[0]), children[1])

    def kwarg_fields(self, meta, children):
        # ``key=[payer_account, payee_account]``: field names (a window over several key fields)
        fields = tuple(Field(str(t), start=t.start_pos, end=t.end_pos) for t in children[1:])
        start = children[1].start_pos - 1
        return (str(children[0]), ListRef(items=fields, start=start, end=_span(meta)["end"]))

    def list_literal(self, meta, children):
        return ListRef(items=tuple(c for c in children if c is not None), **_span(meta))

    def named_list(self, meta, children):
        return ListRef(name=str(children[0]), **_span(meta))

    def neg(self, meta, children):
        return Unary("-", children[0], **_span(meta))

    def not_(self, meta, children):
        return Unary("not", children[0], **_span(meta))

    def binary(self, meta, children):
        left, op, right = children
        return Binary(str(op), left, right, **_span(meta))

    def compare(self, meta, children):
        left, op, right = children
        return Binary(str(op), left, right, **_span(meta))

    def and_(self, meta, children):
        return Binary("and", children[0], children[1], **_span(meta))

    def or_(self, meta, children):
        return Binary("or", children[0], children[1], **_span(meta))

    def in_(self, meta, children):
        return InList(children[0], children[1], False, **_span(meta))

    def not_in(self, meta, children):
        return InList(children[0], children[1], True, **_span(meta))

    def cond(self, meta, children):
        then, test, other = children
        return Cond(then, test, other, **_span(meta))


def _depth(expr: Expr) -> int:
    stack, best = [(expr, 1)], 0
    while stack:
        node, d = stack.pop()
        best = max(best, d)
        stack.extend((c, d + 1) for c in node.children())
    return best


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
    try:
        tree = _PARSER.parse(text)
    except UnexpectedCharacters as exc:
        message = _describe_char(text, exc.pos_in_stream)
        hint = unexpected_char_hint(text, exc.pos_in_stream)
        raise ExprSyntaxError(f"{message}; {hint}" if hint else message, exc.pos_in_stream) from None
    except UnexpectedToken as exc:
        tok: Token = exc.token
        pos = tok.start_pos if tok.start_pos is not None and tok.type != "$END" else len(text.rstrip())
        what = "end of expression" if tok.type == "$END" else f"{tok.value!r}"
        hint, at = ("", pos) if tok.type == "$END" else unexpected_token_hint(text, pos, str(tok.value))
        if at != pos:  # the mistake is an earlier word, which the parser took for a name
            what, pos = repr(text[at:pos].strip()), at
        raise ExprSyntaxError(f"unexpected {what}; {hint}" if hint else f"unexpected {what}", pos) from None
    except UnexpectedEOF:
        raise ExprSyntaxError("unexpected end of expression", len(text)) from None
    except UnexpectedInput as exc:  # pragma: no cover - the three above cover LALR
        raise ExprSyntaxError("syntax error", getattr(exc, "pos_in_stream", 0) or 0) from None
    _check_tree(tree)
    try:
        expr = _Build().transform(tree)
    except Exception as exc:  # lark wraps transformer errors
        inner = getattr(exc, "orig_exc", exc)
        if isinstance(inner, ExprSyntaxError):
            raise inner from None
        raise
    if _depth(expr) > MAX_EXPR_DEPTH * 2:
        raise ExprSyntaxError(f"expression nested deeper than {MAX_EXPR_DEPTH} levels", 0)
    return expr


def _check_tree(tree: Tree) -> None:
    """Bound the parse tree before the (recursive) transformer sees it: 2,000 ``not`` or a chain
    of 5,000 ``+`` have no parentheses to count, and would exhaust Python's stack."""
    stack: list[tuple[Tree | Token, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, Token):
            if node.type in ("NUMBER", "DURATION") and len(node) > MAX_NUMBER_CHARS:
                raise ExprSyntaxError(f"number literal longer than {MAX_NUMBER_CHARS} characters",
                                      node.start_pos or 0)
            continue
        if depth > MAX_EXPR_DEPTH * 2:
            meta = node.meta
            raise ExprSyntaxError(f"expression nested deeper than {MAX_EXPR_DEPTH} levels",
                                  0 if getattr(meta, "empty", True) else meta.start_pos)
        stack.extend((child, depth + 1) for child in node.children if child is not None)


def _describe_char(text: str, pos: int) -> str:
    ch = text[pos] if pos < len(text) else ""
    if ch == "_" or (ch.isalpha() and pos > 0 and text[pos - 1] == "_"):
        return "names must start with a letter (no leading underscore)"
    if ch in "\"'":
        return "unterminated string"
    return f"unexpected character {ch!r}"


def conjuncts(expr: Expr) -> list[Expr]:
    """Split a top-level ``a and b and c`` into [a, b, c]."""
    if isinstance(expr, Binary) and expr.op == "and":
        return conjuncts(expr.left) + conjuncts(expr.right)
    return [expr]


# a comparison read the other way round: ``5 < x`` is ``x > 5``
MIRRORED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


def literal_comparison(node: Expr, kinds: tuple[str, ...]) -> tuple[Expr, Literal, str] | None:
    """A comparison with a literal of one of ``kinds`` on one side (the right one first), as (the other side,
    the literal, the comparison with the literal on the right); None for anything else."""
    if not isinstance(node, Binary) or node.op not in MIRRORED:
        return None
    for lit, other, op in ((node.right, node.left, node.op), (node.left, node.right, MIRRORED[node.op])):
        if isinstance(lit, Literal) and lit.kind in kinds:
            return other, lit, op
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
