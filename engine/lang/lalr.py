"""The expression grammar as a lark LALR parser: the reference for ``expr.parse_expr``.

``parse_expr`` parses the usual expression with a recursive descent (``expr._Descent``) and comes here for
everything else: a syntax error, whose message, hints and offset are lark's, and the rare valid text outside
the descent's subset. ``tests/unit/test_descent.py`` checks that the two give the same trees, positions
included. Imported on first use: lark's import and its tables cost ~0.07 s of every command's start.
"""

from __future__ import annotations

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .hints import unexpected_char_hint, unexpected_token_hint
from .tree import (
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


def _span(meta) -> dict[str, int]:
    if getattr(meta, "empty", True):
        return {"start": 0, "end": 0}
    return {"start": meta.start_pos, "end": meta.end_pos}



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
        return Literal(unquote(str(children[0])), "string", **_span(meta))

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




def parse_lalr(text: str) -> Expr:
    """Parse ``text`` with lark; raises ExprSyntaxError with a character offset, a message and a hint.
    ``expr.parse_expr`` checks its size and nesting first."""
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
    if depth(expr) > MAX_EXPR_DEPTH * 2:
        raise ExprSyntaxError(f"expression nested deeper than {MAX_EXPR_DEPTH} levels", 0)
    return expr
