"""Type checking of rules against the stream schemas, lists and macros.

Every expression is typed in a :class:`Scope`: the fields of its own stream
(unqualified names), the fields of earlier sequence steps (``alias.field``),
whether aggregates may appear, and the pack's lists and macros. Each problem
is a RuleError at the file:line:col of the offending sub-expression.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from ..columns.phones import DEFAULT_REGION, normalise_one
from ..columns.types import LogicalType
from ..errors import RuleError
from ..lang.aggregates import AGGREGATES, MAX_ANY_FIELDS, MIN_ANY_FIELDS, NESTABLE, SOURCE_KWARGS, window_bound
from ..lang.expr import (
    ARITHMETIC,
    COMPARISONS,
    PARAMS_ALIAS,
    Binary,
    Call,
    Cond,
    Expr,
    Field,
    InList,
    ListRef,
    Literal,
    Param,
    Unary,
    conjuncts,
    number_comparison,
    unparse,
)
from ..lang.functions import FUNCTIONS, TypeProblem, compatible, constant_timestamp_problem, is_numeric, is_stringy
from ..lang.hints import FUNCTION_ALIASES, enum_hint, literal_word_hint, name_hint
from .model import (
    MAX_MACRO_DEPTH,
    MAX_RETENTION,
    ExprSource,
    Macro,
    ParamDef,
    Rule,
    RulePack,
    Step,
    is_composite,
    key_parts,
)
from .streams import FieldSpec, StreamSpec

_E164 = re.compile(r"\+[0-9]+")  # the form a phone field holds; a +number kept as written looks the same


# Bounds on an expression once its macros are expanded: the depth bound alone lets a macro that
# uses another ten times, eight levels down, expand to 10**8 nodes (in the checker and the plan).
MAX_EXPANDED_NODES = 20_000
MAX_EXPANDED_DEPTH = 128


_NEG = float("-inf")


@dataclass(frozen=True)
class _Shape:
    """Size and depth of an expression once its macros are expanded, as functions of the sizes and
    depths of the parameters it leaves open: size = const + sum(coef[p] * size(p)) (substitution
    copies an argument once per use) and depth = max(top, max(off[p] + depth(p)))."""

    size: int
    coef: tuple[tuple[str, int], ...] = ()
    top: float = 1
    off: tuple[tuple[str, float], ...] = ()


def _combine(children: list[_Shape]) -> _Shape:
    """A node over ``children``: one more node, one level deeper."""
    coef: dict[str, int] = {}
    off: dict[str, float] = {}
    for c in children:
        for p, k in c.coef:
            coef[p] = coef.get(p, 0) + k
        for p, o in c.off:
            off[p] = max(off.get(p, _NEG), o + 1)
    top = 1 + max((c.top for c in children), default=0)
    return _Shape(1 + sum(c.size for c in children), tuple(coef.items()), top, tuple(off.items()))


def _apply(body: _Shape, params: tuple[str, ...], args: list[_Shape]) -> _Shape:
    """A macro's body with its parameters bound to argument shapes."""
    bound = dict(zip(params, args))
    size, coef, top, off = body.size, {}, body.top, {}
    for p, k in body.coef:
        a = bound.get(p)
        if a is None:
            continue
        size += k * a.size
        for q, j in a.coef:
            coef[q] = coef.get(q, 0) + k * j
    for p, o in body.off:
        a = bound.get(p)
        if a is None:
            continue
        top = max(top, o + a.top)
        for q, j in a.off:
            off[q] = max(off.get(q, _NEG), o + j)
    return _Shape(size, tuple(coef.items()), top, tuple(off.items()))


def expanded_shape(expr: Expr, macros: dict[str, Macro], params: tuple[str, ...] = (), depth: int = 0,
                   memo: dict | None = None) -> _Shape:
    """Size and depth of ``expr`` after the plan's macro expansion (runtime.plan.expand_macros),
    computed without expanding: linear in the text of the pack, however the macros multiply."""
    memo = {} if memo is None else memo
    stack: list[tuple[Expr, bool]] = [(expr, False)]
    done: dict[int, _Shape] = {}
    while stack:  # iterative post-order: the tree may be deep
        node, ready = stack.pop()
        if isinstance(node, Field) and node.alias is None and node.name in params:
            done[id(node)] = _Shape(0, ((node.name, 1),), _NEG, ((node.name, 0),))
            continue
        kids = node.children()
        if not ready:
            stack.append((node, True))
            stack.extend((k, False) for k in kids)
            continue
        shapes = [done[id(k)] for k in kids]
        if isinstance(node, Call) and node.alias is None and node.name in macros and depth < MAX_MACRO_DEPTH:
            macro = macros[node.name]
            key = (macro.name, depth)
            if key not in memo:  # keyed by depth too, so a macro that uses itself stops at MAX_MACRO_DEPTH
                memo[key] = expanded_shape(macro.body.ast, macros, macro.params, depth + 1, memo)
            done[id(node)] = _apply(memo[key], macro.params, shapes[: len(node.args)])
        else:
            done[id(node)] = _combine(shapes)
    return done[id(expr)]
TRUTH = frozenset({LogicalType.BOOL, LogicalType.NULL})  # the types a condition may have
LITERAL_TYPES = {"number": LogicalType.FLOAT, "string": LogicalType.STRING, "bool": LogicalType.BOOL,
                 "null": LogicalType.NULL, "duration": LogicalType.DURATION}  # by Literal.kind


@dataclass
class Scope:
    own: StreamSpec | None
    aliases: dict[str, StreamSpec] = field(default_factory=dict)
    allow_aggregates: bool = False
    extra: dict[str, LogicalType] = field(default_factory=dict)  # extra names, e.g. ``row`` in mappings
    what: str = "expression"
    params: dict[str, ParamDef] = field(default_factory=dict)  # the rule's params, read as $name
    later: tuple[str, ...] = ()  # aliases of the steps after this one: named, but not readable here
    # a sequence's explain: an aggregate must name the step it is evaluated at (its aliases, in order)
    steps_for_aggregates: tuple[str, ...] = ()
    # per step alias: the earlier steps whose ts may bound that step's aggregates (``where=ts > swap.ts``),
    # evaluated per chain (the first step has none)
    bounds_at: dict[str, tuple[str, ...]] = field(default_factory=dict)
    bounds: tuple[str, ...] = ()  # the same for an unqualified aggregate here
    bounds_why: str = ""  # why no bound is allowed here, for the error
    own_key: FieldSpec | None = None  # the step's key: what ``agg(..., stream=, key=)`` matches
    alias_keys: dict[str, FieldSpec] = field(default_factory=dict)  # each alias's step key


BOUNDS_WHERE = "a window can start at an earlier step (ts > alias.ts) only in a sequence, in a step after the first"


class Checker:
    def __init__(self, pack: RulePack | None, lists=None, macros=None):
        self.region = pack.region if pack else DEFAULT_REGION  # phone literals are read as the run reads numbers
        self.lists = pack.lists if pack else (lists or {})
        self.streams: dict[str, StreamSpec] = pack.schema.streams if pack else {}
        self.macros: dict[str, Macro] = pack.macros if pack else (macros or {})
        self.errors: list[RuleError] = []
        self.warnings: list[RuleError] = []  # traps that compile: lint shows them, loading does not fail
        self.used_lists: set[str] = set()
        self.used_macros: set[str] = set()
        self.used_params: set[tuple[str, str]] = set()  # (rule path, param name)
        self._operands: set[int] = set()  # ids of bare names compared with something: maybe unquoted text

    # -- entry points ----------------------------------------------------------
    def check(self, src: ExprSource, scope: Scope, want_bool: bool = True) -> LogicalType | None:
        before = len(self.errors)
        shape = expanded_shape(src.ast, self.macros)
        if shape.size > MAX_EXPANDED_NODES or shape.top > MAX_EXPANDED_DEPTH:
            # checked before inferring, which walks the expansion too
            self._err(src, src.ast, f"{scope.what}: with its macros expanded, the expression has {shape.size:,} "
                                    f"parts, nested {int(shape.top)} deep (at most {MAX_EXPANDED_NODES:,} and "
                                    f"{MAX_EXPANDED_DEPTH})")
            return None
        t = self._infer(src.ast, src, scope, {}, 0, in_aggregate=False)
        if t is not None and want_bool and t not in TRUTH and len(self.errors) == before:
            self._err(src, src.ast, f"{scope.what} must be true/false, not {t}")
        if len(self.errors) == before:
            self._never_true(src.ast, src)
        return t

    def _never_true(self, node: Expr, src: ExprSource, in_chain: bool = False) -> None:
        """Each chain of ``and`` (``a and b and c``, wherever it sits) whose comparisons of one expression with
        number literals no value meets, such as ``hour(ts) >= 22 and hour(ts) < 6``: never true, and the rule
        silent."""
        is_and = isinstance(node, Binary) and node.op == "and"
        if is_and and not in_chain:
            self._empty_range(conjuncts(node), src)
        for child in node.children():
            self._never_true(child, src, is_and)

    def _empty_range(self, parts: list[Expr], src: ExprSource) -> None:
        # per expression (its text): the tightest lower and upper bound so far, (value, strict, the comparison)
        lows: dict[str, tuple[float, bool, Expr]] = {}
        highs: dict[str, tuple[float, bool, Expr]] = {}
        nots: dict[str, dict[float, Expr]] = {}  # the values ``!=`` leaves out
        reported: set[str] = set()
        for part in parts:
            got = number_comparison(part)
            if got is None:
                continue
            other, value, op = got
            key = unparse(other)
            if key in reported:
                continue
            if op == "!=":
                nots.setdefault(key, {}).setdefault(value, part)
            lo, hi = lows.get(key), highs.get(key)
            if op in (">", ">=", "==") and (lo is None or value > lo[0] or (value == lo[0] and op == ">")):
                lo = lows[key] = (value, op == ">", part)
            if op in ("<", "<=", "==") and (hi is None or value < hi[0] or (value == hi[0] and op == "<")):
                hi = highs[key] = (value, op == "<", part)
            if lo is None or hi is None or lo[0] < hi[0]:
                continue
            point = lo[0] == hi[0] and not (lo[1] or hi[1])  # a single value is left: empty if ``!=`` takes it
            if point and lo[0] not in nots.get(key, {}):
                continue
            first = nots[key][lo[0]] if point and part is not nots[key][lo[0]] else lo[2] if hi[2] is part else hi[2]
            hint = ""
            if isinstance(other, Call) and other.name in ("hour", "weekday"):
                hint = (f"; a range that wraps around (22h to 6h) is an 'or': ({key} >= 22 or {key} < 6)"
                        if other.name == "hour" else "; a range that wraps around is an 'or' of its two ends")
            self._err(src, part, f"'{src.snippet(first)}' and '{src.snippet(part)}' never hold together, so the "
                                 f"condition is never true and the rule never fires{hint}")
            reported.add(key)  # one error per expression

    def _err(self, src: ExprSource, node: Expr, message: str) -> None:
        self.errors.append(RuleError(message, src.location(node)))

    def _warn(self, src: ExprSource, node: Expr, message: str) -> None:
        self.warnings.append(RuleError(message, src.location(node), severity="warning"))

    # -- inference ---------------------------------------------------------------
    def _field_type(self, spec: FieldSpec) -> LogicalType:
        return spec.type

    def _infer(self, node: Expr, src: ExprSource, scope: Scope, params: dict[str, LogicalType], depth: int,
               in_aggregate: bool) -> LogicalType | None:
        recur = lambda n: self._infer(n, src, scope, params, depth, in_aggregate)  # noqa: E731
        if isinstance(node, Literal):
            return LITERAL_TYPES[node.kind]
        if isinstance(node, Field):
            return self._field(node, src, scope, params, in_aggregate)
        if isinstance(node, Param):
            param = self._param(node, src, scope)
            return LITERAL_TYPES[param.kind] if param else None
        if isinstance(node, Unary):
            t = recur(node.operand)
            if t is None:
                return None
            if node.op == "not":
                if t not in TRUTH:
                    self._err(src, node, f"'not' needs true/false, not {t}")
                return LogicalType.BOOL
            if not is_numeric(t):
                self._err(src, node, f"cannot negate {t}")
                return None
            return t
        if isinstance(node, Binary):
            if node.op in ("==", "!="):  # ``channel == web``: web may be text that lost its quotes
                for side, other in ((node.left, node.right), (node.right, node.left)):
                    if isinstance(side, Field) and (isinstance(other, Field) or
                                                    isinstance(other, Literal) and other.kind == "string"):
                        self._operands.add(id(side))
            lt, rt = recur(node.left), recur(node.right)
            if lt is None or rt is None:
                return LogicalType.BOOL if node.op in COMPARISONS or node.op in ("and", "or") else None
            if node.op in ("and", "or"):
                for side, t in ((node.left, lt), (node.right, rt)):
                    if t not in TRUTH:
                        self._err(src, side, f"'{node.op}' needs true/false on both sides, not {t}")
                return LogicalType.BOOL
            if node.op in COMPARISONS:
                if self._null_comparison(node, src):
                    return LogicalType.BOOL
                if not compatible(lt, rt):
                    self._err(src, node, f"cannot compare {lt} with {rt}")
                elif node.op not in ("==", "!=") and LogicalType.BOOL in (lt, rt):
                    self._err(src, node, f"'{node.op}' does not order true/false")
                self._check_enum_literal(node.left, node.right, src, scope)
                self._check_enum_literal(node.right, node.left, src, scope)
                if node.op in ("==", "!="):
                    self._check_phone_literal(lt, node.right, src)
                    self._check_phone_literal(rt, node.left, src)
                self._check_bare_seconds(node, lt, rt, src, scope)
                return LogicalType.BOOL
            if node.op in ARITHMETIC:
                return self._arith(node, lt, rt, src)
        if isinstance(node, Cond):
            tt = recur(node.test)
            if tt is not None and tt not in TRUTH:
                self._err(src, node.test, f"the condition after 'if' must be true/false, not {tt}")
            a, b = recur(node.then), recur(node.other)
            if a is None or b is None:
                return None
            if not compatible(a, b):
                self._err(src, node, f"both branches must have the same type ({a} vs {b})")
                return None
            return b if a == LogicalType.NULL else a
        if isinstance(node, InList):
            t = recur(node.operand)
            self._container(node.container, t, src, scope, params, depth, in_aggregate)
            return LogicalType.BOOL
        if isinstance(node, Call):
            return self._call(node, src, scope, params, depth, in_aggregate)
        self._err(src, node, "unsupported expression")
        return None

    def _null_comparison(self, node: Binary, src: ExprSource) -> bool:
        """``x == null`` is false for every x (any comparison with null is): an error that says what to write."""
        sides = [s for s in (node.left, node.right) if isinstance(s, Literal) and s.kind == "null"]
        if not sides:
            return False
        other = node.right if sides[0] is node.left else node.left
        x = unparse(other)
        if node.op == "==":
            hint = f"write is_null({x})"
        elif node.op == "!=":
            hint = f"write not is_null({x})"
        else:
            hint = f"test is_null({x}) instead"
        self._err(src, node, f"'{src.snippet(node)}' is always false (any comparison with null is false); {hint}")
        return True

    def _check_bare_seconds(self, node: Binary, lt: LogicalType, rt: LogicalType, src: ExprSource,
                            scope: Scope) -> None:
        """``duration > 10`` means 10 seconds; a unit makes it say so (and catches 10 meant as minutes)."""
        for t, other in ((lt, node.right), (rt, node.left)):
            if t != LogicalType.DURATION:
                continue
            number = self._bare_number(other, scope)
            if number is None or number == 0:
                continue
            shown = int(number) if float(number).is_integer() else number
            what = f"${other.name} ({shown})" if isinstance(other, Param) else f"{shown}"
            self._warn(src, other, f"{what} is compared with a duration and is read as seconds: write {shown}s "
                                   f"(or {shown}m, {shown}h ... if you meant another unit)"
                                   + (" in params" if isinstance(other, Param) else ""))

    @staticmethod
    def _bare_number(node: Expr, scope: Scope) -> float | None:
        if isinstance(node, Unary) and node.op == "-":
            inner = Checker._bare_number(node.operand, scope)
            return None if inner is None else -inner
        if isinstance(node, Literal) and node.kind == "number":
            return float(node.value)  # type: ignore[arg-type]
        if isinstance(node, Param) and node.name in scope.params and scope.params[node.name].kind == "number":
            return float(scope.params[node.name].value)  # type: ignore[arg-type]
        return None

    def _param(self, node: Param, src: ExprSource, scope: Scope) -> ParamDef | None:
        param = scope.params.get(node.name)
        if param is None:
            known = ", ".join(f"${p}" for p in scope.params) or "none: declare them under params:"
            self._err(src, node, f"unknown param ${node.name}{name_hint(node.name, list(scope.params))} "
                                 f"(params of this rule: {known})")
            return None
        self.used_params.add((str(param.loc.path), param.name))
        return param

    def _constant(self, node: Expr, scope: Scope) -> tuple[bool, object]:
        """(is it a constant, its value): a literal, or a param, which is bound before the rule runs."""
        if isinstance(node, Literal):
            return True, node.value
        if isinstance(node, Param) and node.name in scope.params:
            return True, scope.params[node.name].value
        return False, None

    def _field(self, node: Field, src: ExprSource, scope: Scope, params: dict[str, LogicalType],
               in_aggregate: bool) -> LogicalType | None:
        if node.alias is None and node.name in params:
            return params[node.name]
        if node.alias is None:
            if node.name in scope.extra:
                return scope.extra[node.name]
            if scope.own is not None and node.name in scope.own.fields:
                return self._field_type(scope.own.fields[node.name])
            if node.name in scope.aliases:
                self._err(src, node, f"{node.name!r} is a step alias: name one of its fields, e.g. {node.name}.id")
                return None
            where = f"stream {scope.own.name!r}" if scope.own else "this context"
            hint = literal_word_hint(node.name) or _suggest(node.name, scope)
            if not hint and id(node) in self._operands:
                hint = f"; if you meant the text, quote it: \"{node.name}\""
            self._err(src, node, f"unknown field {node.name!r} in {where}{hint}")
            return None
        if in_aggregate:
            self._err(src, node, "an aggregate can only use fields of its own record, not of other steps" + (
                "; the one read of another step inside where= is a bound on the window's start, a conjunct "
                "`ts > alias.ts` or `ts >= alias.ts` (alias: an earlier step)" if in_aggregate == "where" else ""))
            return None
        spec = scope.aliases.get(node.alias)
        if spec is None:
            if scope.what == "absent":  # looked for, never bound to the chain
                self._err(src, node, f"the absent step's where reads its own fields only, not {node.dotted}: "
                                     "it is matched by its key (or follows:), not by other steps")
                return None
            known = ", ".join(sorted(scope.aliases)) or "none here"
            self._err(src, node, f"unknown alias {node.alias!r} (earlier steps: {known})")
            return None
        if node.name not in spec.fields:
            self._err(src, node, f"stream {spec.name!r} (alias {node.alias!r}) has no field {node.name!r}")
            return None
        return self._field_type(spec.fields[node.name])

    def _enum_values(self, node: Expr, scope: Scope) -> tuple[str, ...]:
        if not isinstance(node, Field):
            return ()
        spec = scope.aliases.get(node.alias) if node.alias else scope.own
        if spec is None or node.name not in spec.fields:
            return ()
        return spec.fields[node.name].values

    def _check_enum_literal(self, field_node: Expr, lit: Expr, src: ExprSource, scope: Scope) -> None:
        values = self._enum_values(field_node, scope)
        if values and isinstance(lit, Literal) and lit.kind == "string" and lit.value not in values:
            self._err(src, lit, f"{lit.value!r} is not a value of {field_node.dotted} ({', '.join(values)})"
                                + enum_hint(lit.value, values))

    def _check_phone_literal(self, field_type: LogicalType | None, lit: Expr, src: ExprSource) -> None:
        """A phone field holds a valid number in E.164 (``+8613800138000``), whatever way its record wrote it: a
        literal the reader would rewrite never equals one, and its rule would silently never match."""
        if field_type != LogicalType.PHONE or not isinstance(lit, Literal) or lit.kind != "string":
            return
        text = str(lit.value)
        if _E164.fullmatch(text):
            return  # already the form records hold (or a +number kept as written): no parse needed
        e164 = normalise_one(text, self.region)
        if e164 != text:
            self._err(src, lit, f"phone fields hold valid numbers in E.164, so {text!r} never equals one; write "
                                f"{e164!r} (read in region {self.region})")

    def _arith(self, node: Binary, lt: LogicalType, rt: LogicalType, src: ExprSource) -> LogicalType | None:
        op = node.op
        ts = LogicalType.TIMESTAMP
        if LogicalType.NULL in (lt, rt):
            return rt if lt == LogicalType.NULL else lt
        if ts in (lt, rt):
            if op == "-" and lt == rt == ts:
                return LogicalType.DURATION
            if op in "+-" and lt == ts and is_numeric(rt):
                return ts
            if op == "+" and rt == ts and is_numeric(lt):
                return ts
            self._err(src, node, f"cannot apply '{op}' to {lt} and {rt}")
            return None
        if not (is_numeric(lt) and is_numeric(rt)):
            self._err(src, node, f"cannot apply '{op}' to {lt} and {rt} (use concat() to join text)")
            return None
        if LogicalType.DURATION in (lt, rt):
            if op == "/" and lt == rt == LogicalType.DURATION:
                return LogicalType.FLOAT
            return LogicalType.DURATION
        return LogicalType.FLOAT

    def _container(self, ref: ListRef, operand_type: LogicalType | None, src: ExprSource, scope: Scope,
                   params: dict[str, LogicalType], depth: int, in_aggregate: bool) -> None:
        if ref.name is not None:
            if ref.name not in self.lists:
                known = ", ".join(sorted(self.lists)) or "none"
                self._err(src, ref, f"unknown list @{ref.name} (lists: {known})")
                return
            self.used_lists.add(ref.name)
            if operand_type is not None and not is_stringy(operand_type):
                self._err(src, ref, f"@{ref.name} holds text; cannot look up a {operand_type}")
            return
        if not ref.items:
            self._err(src, ref, "empty list")
        for item in ref.items:
            if not isinstance(item, Literal):
                hint = ""
                if isinstance(item, Field) and item.alias is None:
                    hint = literal_word_hint(item.name) or f"; quote text: \"{item.name}\""
                self._err(src, item, f"list items must be literals{hint}")
                continue
            it = self._infer(item, src, scope, params, depth, in_aggregate)
            if operand_type is not None and it is not None and not compatible(operand_type, it):
                self._err(src, item, f"list item of type {it} cannot match a {operand_type}")
            else:
                self._check_phone_literal(operand_type, item, src)

    def _call(self, node: Call, src: ExprSource, scope: Scope, params: dict[str, LogicalType], depth: int,
              in_aggregate: bool) -> LogicalType | None:
        if node.alias is not None:
            return self._step_aggregate(node, src, scope, params, depth, in_aggregate)
        if node.name in AGGREGATES and scope.steps_for_aggregates:
            first, last = scope.steps_for_aggregates[0], scope.steps_for_aggregates[-1]
            self._err(src, node, f"in a sequence's explain, say which step's record {node.name}() is evaluated at: "
                                 f"write {last}.{src.snippet(node)} for the last step, or "
                                 f"{first}.{node.name}(...) for the first (docs/rules.md §3)")
            return None
        if node.name in AGGREGATES:
            return self._aggregate(node, src, scope, params, depth, in_aggregate)
        if node.name in self.macros:
            return self._macro(node, src, scope, params, depth, in_aggregate)
        wall = node.args[0] if node.name in ("timestamp", "parse_time") and node.args else None
        if isinstance(wall, Literal) and str(wall.value).strip().lower() in ("now", "today"):
            self._err(src, wall, f"{node.name}({unparse(wall)}) would read the wall clock, so no two runs would "
                                 f"agree; write the instant, e.g. \"2026-03-01T00:00:00+08:00\"")
            return None
        if node.name == "timestamp" and isinstance(wall, Literal) and isinstance(wall.value, str):
            problem = constant_timestamp_problem(wall.value)
            if problem:  # null at every record: each comparison with it false, and the rule silent
                self._err(src, wall, f"timestamp({unparse(wall)}) is null at every record: {problem}; write an "
                                     f"ISO 8601 instant, e.g. \"2026-03-01T00:00:00+08:00\"")
                return None
        fn = FUNCTIONS.get(node.name)
        if fn is None:
            known = sorted(set(FUNCTIONS) | set(AGGREGATES) | set(self.macros))
            self._err(src, node, f"unknown function {node.name!r}{name_hint(node.name, known, FUNCTION_ALIASES)}")
            return None
        if node.kwargs:
            self._err(src, node.kwargs[0][1], f"{node.name}() takes no keyword arguments")
        if not fn.min_args <= len(node.args) <= fn.max_args:
            n = fn.min_args if fn.min_args == fn.max_args else f"{fn.min_args} to {fn.max_args}"
            self._err(src, node, f"{node.name}() takes {n} argument(s), got {len(node.args)}")
            return None
        types = [self._infer(a, src, scope, params, depth, in_aggregate) for a in node.args]
        if any(t is None for t in types):
            return None
        consts: list[object] = []
        for i, arg in enumerate(node.args):
            if i in fn.constant_args:
                constant, value = self._constant(arg, scope)
                if not constant:
                    self._err(src, arg, f"argument {i + 1} of {node.name}() must be a literal")
                    return None
                consts.append(value)
            else:
                consts.append(None)
        try:
            result = fn.infer(types)
            if fn.prepare is not None:
                fn.prepare(consts)
        except TypeProblem as exc:
            target = node.args[exc.arg] if exc.arg is not None and exc.arg < len(node.args) else node
            self._err(src, target, f"{node.name}(): {exc.message}")
            return None
        return result

    def _step_aggregate(self, node: Call, src: ExprSource, scope: Scope, params: dict[str, LogicalType],
                        depth: int, in_aggregate: bool) -> LogicalType | None:
        """``alias.agg(...)``: the window aggregate over that step's stream and key, at that step's record."""
        if node.name not in AGGREGATES:
            if node.name in self.macros or node.name in FUNCTIONS:
                what = "a macro" if node.name in self.macros else "a function"
                self._err(src, node, f"{node.dotted}(): only a window aggregate can be read from a step "
                                     f"({', '.join(AGGREGATES)}); {node.name}() is {what}, so write "
                                     f"{node.name}({node.alias}.field, ...)")
            else:
                self._err(src, node, f"{node.dotted}(): unknown aggregate {node.name!r}"
                                     f"{name_hint(node.name, list(AGGREGATES), FUNCTION_ALIASES)}")
            return None
        spec = scope.aliases.get(node.alias)
        if spec is None:
            earlier = ", ".join(a for a in scope.aliases) or "none here"
            if node.alias in scope.later:
                self._err(src, node, f"{node.dotted}(): step {node.alias!r} comes later; a step reads only its own "
                                     f"and earlier steps' aggregates (here: {earlier})")
            else:
                self._err(src, node, f"unknown alias {node.alias!r} in {node.dotted}() (steps here: {earlier})")
            return None
        # the aggregate's value and where= read the named step's record: its stream's fields
        inner = replace(scope, own=spec, steps_for_aggregates=(), what=f"{scope.what} ({node.dotted}())",
                        bounds=scope.bounds_at.get(node.alias, ()),
                        bounds_why=f"{node.dotted}() is evaluated at step {node.alias!r}, the first step: no "
                                   "earlier step can bound its window",
                        own_key=scope.alias_keys.get(node.alias))
        return self._aggregate(node, src, inner, params, depth, in_aggregate)

    def _aggregate(self, node: Call, src: ExprSource, scope: Scope, params: dict[str, LogicalType], depth: int,
                   in_aggregate: bool) -> LogicalType | None:
        agg = AGGREGATES[node.name]
        if not scope.allow_aggregates:
            self._err(src, node, f"aggregate {node.name}() is not allowed in {scope.what}")
            return None
        if in_aggregate and not (in_aggregate == "where" and node.name in NESTABLE and node.alias is None):
            self._err(src, node, "aggregates cannot be nested" + (
                f"; inside where= only is_new(x, w) may be used, not {node.dotted}()" if in_aggregate == "where"
                else "; not even is_new() inside the where= of an aggregate over another stream or key (stream=, "
                     "key=): it would need a key of the other records" if in_aggregate == "other" else ""))
            return None
        nested = bool(in_aggregate)
        want = 2 if agg.takes_value else 1
        if len(node.args) != want:
            self._err(src, node, f"{node.name}() takes {want} argument(s): {agg.usage}, optional where=...")
            return None
        for k, _ in node.kwargs:
            if k != "where" and k not in SOURCE_KWARGS:
                self._err(src, node, f"{node.name}(): unknown keyword {k!r} (where=, stream=, key=)")
                return None
        foreign = any(k in SOURCE_KWARGS for k, _ in node.kwargs)
        if foreign:
            other = self._other_records(node, src, scope)
            if other is None:
                return None
            scope = other
        window = node.args[-1]
        seconds = window.value if isinstance(window, Literal) and window.kind == "duration" else None
        if isinstance(window, Param):
            param = self._param(window, src, scope)
            if param is None:
                return None
            seconds = param.value if param.kind == "duration" else None
        if isinstance(seconds, (int, float)) and seconds <= 0:  # a duration, but an empty window
            self._err(src, window, f"the window of {node.name}() must be longer than 0s: a window of "
                                   f"{seconds:g}s holds only the records of the same instant (write e.g. 1s or 1h)")
            return None
        if not isinstance(seconds, (int, float)):
            self._err(src, window, f"the window of {node.name}() must be a duration literal such as 1h or 7d"
                                   + (" (or a param whose value is one)" if isinstance(window, Param) else ""))
            return None

        if seconds > MAX_RETENTION:
            self._err(src, window, f"window beyond the retention limit of {int(MAX_RETENTION // 86400)}d")
            return None
        vtype = None
        if agg.takes_value:
            vtype = self._infer(node.args[0], src, scope, params, depth, True)
            if vtype is None:
                return None
        try:
            result = agg.infer(vtype)
        except TypeProblem as exc:
            self._err(src, node.args[0], f"{node.name}() {exc.message}")
            return None
        where = node.kwarg("where")
        if where is not None:
            parts = conjuncts(where)
            bounds = [c for c in parts if window_bound(c) is not None]
            if bounds and foreign and not nested:  # neither executor builds per-chain slices of the joint index
                self._err(src, bounds[0], f"{node.name}(): a window over another stream or key (stream=, key=) "
                                          "cannot start at an earlier step (ts > alias.ts) yet")
                parts = [c for c in parts if window_bound(c) is None]
            elif bounds and self._bounds_ok(node, bounds, src, scope, nested):
                parts = [c for c in parts if window_bound(c) is None]
            inside = True if nested else "other" if foreign else "where"
            for part in parts:  # inside: is_new, not other aggregates (unless this is a nested is_new already)
                wt = self._infer(part, src, scope, params, depth, inside)
                if wt is not None and wt not in TRUTH:
                    self._err(src, part, f"where= must be true/false, not {wt}")
        return result

    def _bounds_ok(self, node: Call, bounds: list[Expr], src: ExprSource, scope: Scope, nested: bool) -> bool:
        """``ts > alias.ts`` inside where=: allowed for the last step's aggregates, bounded by an earlier step.
        False inside a nested is_new, where the field check says what is supported."""
        if nested:
            return False
        first = bounds[0]
        alias = window_bound(first)[0]  # type: ignore[index]
        if node.name == "is_new":
            self._err(src, first, "is_new() cannot start at an earlier step: it asks whether the value was seen "
                                  "in the whole window; bound the aggregate around it instead, e.g. "
                                  "count(1h, where=ts > swap.ts and is_new(payee_account, 180d))")
        elif len(bounds) > 1:
            self._err(src, bounds[1], f"{node.name}(): one bound on the window's start only (ts > alias.ts)")
        elif alias not in scope.bounds:
            if alias in scope.later:
                reason = f"step {alias!r} comes later"
            elif not scope.bounds:
                reason = scope.bounds_why or BOUNDS_WHERE
            elif alias not in scope.aliases:
                reason = f"unknown alias {alias!r}"
            else:
                reason = f"step {alias!r} is the step the aggregate is evaluated at, not an earlier one"
            known = ", ".join(scope.bounds) or "none here"
            self._err(src, first, f"{node.name}(): {reason} (steps that may bound this window: {known})")
        return True

    def _other_records(self, node: Call, src: ExprSource, scope: Scope) -> Scope | None:
        """``agg(..., stream=s, key=f)``: the scope of the value and where= (stream s's fields), once s exists,
        has a field f, and f holds the same kind of value as the step's key; None after an error."""
        if not AGGREGATES[node.name].other_records:
            others = ", ".join(a.name for a in AGGREGATES.values() if a.other_records)
            self._err(src, node, f"{node.name}() reads only earlier records of the record's own key: it takes no "
                                 f"stream= or key= (those work with {others})")
            return None
        mine = scope.own_key
        if scope.own is None or mine is None:
            self._err(src, node, f"{node.name}(): stream= and key= are not allowed in {scope.what}")
            return None
        if is_composite(mine.name):
            self._err(src, node, f"{node.name}(): stream= and key= match one field against the step's key, and "
                                 f"this step's key has several fields ({show_key(mine.name)}): not supported yet "
                                 "(docs/rules.md §9)")
            return None
        names: dict[str, str] = {}
        several: list[Field] = []
        for k in SOURCE_KWARGS:
            arg = node.kwarg(k)
            if arg is None:
                continue
            if k == "key" and isinstance(arg, ListRef) and arg.name is None:  # key=[f1, f2]: any of them
                several = list(arg.items)
                listed = [f.name for f in several]
                if not MIN_ANY_FIELDS <= len(listed) <= MAX_ANY_FIELDS or len(set(listed)) != len(listed):
                    self._err(src, arg, f"{node.name}(): key=[...] lists {MIN_ANY_FIELDS} to {MAX_ANY_FIELDS} "
                                        f"different fields (one field is written key=sender)")
                    return None
                names[k] = listed[0]
                continue
            if not isinstance(arg, Field) or arg.alias is not None:
                example = "stream=sms" if k == "stream" else "key=sender"
                self._err(src, arg, f"{node.name}(): {k}= takes a {'stream' if k == 'stream' else 'field'} name "
                                    f"as written, e.g. {example}, not {unparse(arg)}")
                return None
            names[k] = arg.name
        spec = scope.own
        if "stream" in names:
            spec = self.streams.get(names["stream"])
            if spec is None:
                self._err(src, node.kwarg("stream"), f"{node.name}(): unknown stream {names['stream']!r}"
                          f"{name_hint(names['stream'], list(self.streams))} (streams: {', '.join(self.streams)})")
                return None
        for key_name, at in ([(f.name, f) for f in several] if several
                             else [(names.get("key", mine.name), node.kwarg("key") or node.kwarg("stream"))]):
            theirs = spec.fields.get(key_name)
            if theirs is None:
                how = "" if "key" in names else " (the step's key); say which field with key=, e.g. key=sender"
                self._err(src, at, f"{node.name}(): stream {spec.name!r} has no field {key_name!r}{how}"
                                   f"{name_hint(key_name, list(spec.fields))}")
                return None
            if not (theirs.type == mine.type or LogicalType.PHONE not in (theirs.type, mine.type)
                    and compatible(theirs.type, mine.type)):
                self._err(src, at or node, f"{node.name}(): key {spec.name}.{key_name} ({theirs.type}) is matched "
                                           f"against the step's key {mine.name} ({mine.type}): these never hold "
                                           f"equal values")
                return None
        by = "any of " + ", ".join(f.name for f in several) if several else names.get("key", mine.name)
        return replace(scope, own=spec, what=f"{scope.what} ({node.name}() over {spec.name} by {by})")

    def _macro(self, node: Call, src: ExprSource, scope: Scope, params: dict[str, LogicalType], depth: int,
               in_aggregate: bool) -> LogicalType | None:
        macro = self.macros[node.name]
        self.used_macros.add(macro.name)
        if depth >= MAX_MACRO_DEPTH:
            self._err(src, node, f"macros nested deeper than {MAX_MACRO_DEPTH} (a macro that uses itself?)")
            return None
        if len(node.args) != len(macro.params) or node.kwargs:
            self._err(src, node, f"macro {macro.name}() takes {len(macro.params)} argument(s): "
                                 f"{', '.join(macro.params) or 'none'}")
            return None
        arg_types = {}
        for p, a in zip(macro.params, node.args):
            t = self._infer(a, src, scope, params, depth, in_aggregate)
            if t is None:
                return None
            arg_types[p] = t
        before = len(self.errors)
        t = self._infer(macro.body.ast, macro.body, scope, arg_types, depth + 1, in_aggregate)
        if len(self.errors) > before:
            self._err(src, node, f"macro {macro.name}() does not fit here (see the error in its body)")
        return t


def _suggest(name: str, scope: Scope) -> str:
    import difflib

    names = list(scope.own.fields) if scope.own else []
    names += list(scope.extra)
    close = difflib.get_close_matches(name, names, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def rule_scopes(rule: Rule, pack: RulePack) -> tuple[list[Scope], list[RuleError]]:
    """The scope of each step's where, checking streams, keys, aliases and follows."""
    errors: list[RuleError] = []
    scopes: list[Scope] = []
    seen: dict[str, StreamSpec] = {}
    keys: dict[str, FieldSpec | None] = {}
    for i, step in enumerate(rule.steps):
        spec = pack.schema.streams.get(step.stream)
        if spec is None:
            errors.append(RuleError(f"unknown stream {step.stream!r} (streams: {', '.join(pack.schema.streams)})",
                                    step.at("stream")))
            return [], errors
        errors.extend(key_problems(spec, step.key, step.at("key")))
        if step.alias in seen:
            errors.append(RuleError(f"alias {step.alias!r} is used twice", step.loc))
        if step.follows is not None:
            if i == 0:
                errors.append(RuleError("the first step cannot follow another", step.at("follows")))
            else:
                a, f = step.follows
                if a not in seen:
                    errors.append(RuleError(f"follows: unknown alias {a!r} (earlier steps: {', '.join(seen)})",
                                            step.at("follows")))
                elif f not in seen[a].fields:
                    errors.append(RuleError(f"follows: stream {seen[a].name!r} has no field {f!r}", step.at("follows")))
                else:
                    errors.extend(_key_join(step.at("follows"), (step.alias, spec, step.key), (a, seen[a], f),
                                            "follows"))
        elif i > 0:
            prev = rule.steps[i - 1]
            prev_spec = pack.schema.streams.get(prev.stream)
            if prev_spec is not None:
                errors.extend(_key_join(step.at("key"), (step.alias, spec, step.key), (prev.alias, prev_spec, prev.key),
                                        "key"))
        errors.extend(_run_problems(step, spec))
        keys[step.alias] = key_field(spec, step.key)
        bounds = tuple(seen)
        why = "" if i else (f"step {step.alias!r} is the first step: no earlier step can bound its window"
                            if len(rule.steps) > 1 else BOUNDS_WHERE)
        before = [s.alias for s in rule.steps[:i + 1]]
        scopes.append(Scope(spec, {**seen, step.alias: spec}, allow_aggregates=True,
                            what=f"the where of step {step.alias!r}", params=rule.params,
                            later=tuple(s.alias for s in rule.steps[i + 1:]),
                            bounds_at={a: tuple(before[:j]) for j, a in enumerate(before)}, bounds=bounds,
                            bounds_why=why, own_key=keys[step.alias], alias_keys=dict(keys)))
        seen[step.alias] = spec
    if rule.unless is not None:
        u = rule.unless
        spec = pack.schema.streams.get(u.stream)
        if spec is None:
            errors.append(RuleError(f"unless: unknown stream {u.stream!r}", u.at("stream")))
        else:
            errors.extend(key_problems(spec, u.key, u.at("key"), "unless: "))
        if u.on not in seen:
            errors.append(RuleError(f"unless: 'on' names an unknown alias {u.on!r}", u.at("on")))
        elif spec is not None:
            on = next(s for s in rule.steps if s.alias == u.on)
            errors.extend(_key_join(u.at("key"), ("unless", spec, u.key), (u.on, seen[u.on], on.key), "unless"))
    if rule.absent is not None:
        errors.extend(_absent_problems(rule, pack, seen))
    return scopes, errors


def _run_problems(step: Step, spec: StreamSpec) -> list[RuleError]:
    """A repeated step (``runs: n``): its distinct field exists, and its where reads its own record only."""
    if not step.is_run:
        return []
    out: list[RuleError] = []
    if step.distinct is not None and step.distinct not in spec.fields:
        hint = name_hint(step.distinct, list(spec.fields))
        out.append(RuleError(f"distinct: stream {spec.name!r} has no field {step.distinct!r}{hint}",
                             step.distinct_loc or step.loc))
    if step.where is not None:
        for node in step.where.ast.walk():
            if isinstance(node, (Field, Call)) and node.alias not in (None, step.alias, PARAMS_ALIAS):
                out.append(RuleError(f"step {step.alias!r} repeats (runs: {step.runs}): its where reads only its "
                                     f"own records, not {node.alias}.{node.name} (not supported yet: docs/rules.md §9)",
                                     step.where.location(node)))
                break
    return out


def _absent_problems(rule: Rule, pack: RulePack, seen: dict[str, StreamSpec]) -> list[RuleError]:
    """``absent:``: its stream, key, alias and join, checked like a step's."""
    a = rule.absent
    assert a is not None
    errors: list[RuleError] = []
    spec = pack.schema.streams.get(a.stream)
    if spec is None:
        return [RuleError(f"absent: unknown stream {a.stream!r} (streams: {', '.join(pack.schema.streams)})",
                          a.at("stream"))]
    errors.extend(key_problems(spec, a.key, a.at("key"), "absent: "))
    if a.alias in seen:
        errors.append(RuleError(f"alias {a.alias!r} is used twice", a.loc))
    for step in rule.steps:  # both came in the same release, and their joins were not built together
        if step.is_run:
            errors.append(RuleError(f"step {step.alias!r} repeats (runs: {step.runs}) in a rule with absent: the two "
                                    "do not combine yet (docs/rules.md §9)", step.loc))
    if rule.unless is not None and len(rule.steps) < 2:
        errors.append(RuleError("unless needs two positive steps (it cancels a chain between its first and last "
                                "step); with one step, fold the condition into its where", rule.unless.loc))
    if a.follows is not None:
        src, f = a.follows
        if src not in seen:
            errors.append(RuleError(f"absent: follows: unknown alias {src!r} (steps: {', '.join(seen)})",
                                    a.at("follows")))
        elif f not in seen[src].fields:
            errors.append(RuleError(f"absent: follows: stream {seen[src].name!r} has no field {f!r}", a.at("follows")))
        else:
            errors.extend(_key_join(a.at("follows"), (a.alias, spec, a.key), (src, seen[src], f), "follows"))
    elif rule.steps:
        last = rule.steps[-1]
        if last.alias in seen:
            errors.extend(_key_join(a.at("key"), (a.alias, spec, a.key), (last.alias, seen[last.alias], last.key),
                                    "key"))
    return errors


KEY_PART_TYPES = (LogicalType.STRING, LogicalType.PHONE)


def key_field(spec: StreamSpec, key: str) -> FieldSpec | None:
    """What a step's key holds: its field, or for a key of several fields a text field of that name (the
    executors derive it, runtime/keys.py); None when the key is not one of the stream's."""
    if not is_composite(key):
        return spec.fields.get(key)
    if any(p not in spec.fields or spec.fields[p].type not in KEY_PART_TYPES for p in key_parts(key)):
        return None
    return FieldSpec(key, LogicalType.STRING)


def show_key(key: str) -> str:
    return f"[{', '.join(key_parts(key))}]" if is_composite(key) else key


def key_problems(spec: StreamSpec, key: str, loc, what: str = "") -> list[RuleError]:
    """The key's fields exist; those of a key of several fields hold text or phone numbers."""
    if not is_composite(key):
        return [] if key in spec.fields else [
            RuleError(f"{what}stream {spec.name!r} has no key field {key!r}{name_hint(key, list(spec.fields))}", loc)]
    out = []
    for p in key_parts(key):
        f = spec.fields.get(p)
        if f is None:
            out.append(RuleError(f"{what}key {show_key(key)}: stream {spec.name!r} has no field {p!r}"
                                 f"{name_hint(p, list(spec.fields))}", loc))
        elif f.type not in KEY_PART_TYPES:
            out.append(RuleError(f"{what}key {show_key(key)}: field {p!r} is {f.type}; a key of several fields is "
                                 f"made of text or phone fields", loc))
    return out


def _key_join(loc, mine: tuple[str, StreamSpec, str], theirs: tuple[str, StreamSpec, str],
              how: str) -> list[RuleError]:
    """Two keys that join (or a key and a ``follows`` field): the same number of fields, and field by field
    the same kind of value (_join_problem). Nothing when either side is already an error elsewhere."""
    (alias, spec, key), (other, ospec, okey) = mine, theirs
    if how == "follows" and is_composite(key):
        return [RuleError(f"step {alias!r}: follows with a key of several fields ({show_key(key)}) is not "
                          "supported: follows names one field (docs/rules.md §9)", loc)]
    parts, oparts = key_parts(key), key_parts(okey)
    if len(parts) != len(oparts):
        joined = {"key": "joins the previous step's key", "unless": "is matched against the key of step"}[how]
        return [RuleError(f"step {alias!r}: key {show_key(key)} ({len(parts)} field(s)) {joined} {other!r} "
                          f"{show_key(okey)} ({len(oparts)} field(s)): keys that join have the same number of fields",
                          loc)]
    out = []
    for p, q in zip(parts, oparts):
        if p in spec.fields and q in ospec.fields:
            out.extend(_join_problem(loc, (alias, spec.fields[p]), (other, ospec.fields[q]), how))
    return out


def _join_problem(loc, mine: tuple[str, FieldSpec], theirs: tuple[str, FieldSpec], how: str) -> list[RuleError]:
    """Keys that join must hold the same kind of value: a phone number never equals an account or an amount.

    Phone fields are normalised to E.164 (+8613...), other text is kept as written, so a phone joined to
    a text field matches nothing in practice, and the sequence would compile and never fire.
    """
    (alias, a), (other, b) = mine, theirs
    if a.type == b.type or LogicalType.PHONE not in (a.type, b.type) and compatible(a.type, b.type):
        return []
    joined = {"key": "joins the previous step's key", "follows": "follows",
              "unless": "is matched against the key of step"}[how]
    fix = " (join a phone field to a phone field, e.g. payer_phone)" if LogicalType.PHONE in (a.type, b.type) else ""
    return [RuleError(f"step {alias!r}: key {a.name} ({a.type}) {joined} {other!r} {b.name} ({b.type}): "
                      f"these never hold equal values, so the rule can never match{fix}", loc)]


def check_rule(rule: Rule, pack: RulePack, checker: Checker) -> None:
    scopes, errors = rule_scopes(rule, pack)
    checker.errors.extend(errors)
    if errors:
        return
    for step, scope in zip(rule.steps, scopes):
        if step.where is not None:
            checker.check(step.where, scope)
    if rule.unless is not None and rule.unless.where is not None:
        spec = pack.schema.streams[rule.unless.stream]
        checker.check(rule.unless.where, Scope(spec, {}, allow_aggregates=False, what="unless", params=rule.params))
    if rule.absent is not None and rule.absent.where is not None:
        # the absent record's own fields only: it is looked for, not bound, so it reads no step and no window
        spec = pack.schema.streams[rule.absent.stream]
        checker.check(rule.absent.where, Scope(spec, {rule.absent.alias: spec}, allow_aggregates=False, what="absent",
                                               params=rule.params))
    for case in rule.tests:
        for name, _ in case.lists:
            if name not in pack.lists:
                known = ", ".join(sorted(pack.lists)) or "none"
                checker.errors.append(RuleError(f"test {case.name!r}: unknown list {name!r}"
                                                f"{name_hint(name, sorted(pack.lists))} (lists: {known})", case.loc))
    if rule.explain is not None:
        last = rule.steps[-1]
        aliases = {s.alias: pack.schema.streams[s.stream] for s in rule.steps}
        # an unqualified aggregate in a sequence's explain is an error: it used to be evaluated at the last
        # step silently, and read as the first step's count ("1 different payers" where there were 6)
        keys = {s.alias: key_field(pack.schema.streams[s.stream], s.key) for s in rule.steps}
        earlier = tuple(s.alias for s in rule.steps[:-1])
        scope = Scope(pack.schema.streams[last.stream], aliases, allow_aggregates=True, what="explain",
                      params=rule.params, own_key=keys[last.alias], alias_keys=keys,
                      steps_for_aggregates=tuple(s.alias for s in rule.steps) if len(rule.steps) > 1 else (),
                      bounds_at={s.alias: tuple(a.alias for a in rule.steps[:j]) for j, s in enumerate(rule.steps)},
                      bounds=earlier if len(rule.steps) > 1 else (),
                      bounds_why="" if len(rule.steps) > 1 else BOUNDS_WHERE)
        for part in rule.explain.parts:
            if part.expr is None:
                continue
            t = checker.check(part.expr, scope, want_bool=False)
            if t is not None and part.spec:
                sample: object = 1.5 if is_numeric(t) else ("x" if t != LogicalType.BOOL else True)
                if t == LogicalType.TIMESTAMP:
                    sample = "x"
                try:
                    format(sample, part.spec)
                except (ValueError, TypeError) as exc:
                    checker.errors.append(RuleError(f"explain: format spec {part.spec!r} does not fit a {t}: {exc}",
                                                    part.expr.location()))


def check_pack(pack: RulePack) -> list[RuleError]:
    checker = Checker(pack)
    for macro in pack.macros.values():
        if len(set(macro.params)) != len(macro.params):
            checker.errors.append(RuleError(f"macro {macro.name}: parameter names repeat", macro.loc))
    for rule in pack.rules:
        check_rule(rule, pack, checker)
    return checker.errors
