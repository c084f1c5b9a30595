"""Scalar evaluation of expressions: one record at a time, as Python closures.

The vectorised :class:`~engine.runtime.evaluate.Evaluator` costs tens of microseconds
per node whatever the number of rows (numpy calls, masks, small arrays), which is
most of the stream executor's time on a record fed alone. :class:`ScalarCompiler`
compiles each expression tree once into a closure ``fn(values, aggs) -> value`` over
one record: ``values`` is the record's tuple of field values (Python objects as the
stream executor keeps them, ``None`` for null) and ``aggs`` maps each window
aggregate of the step to its ``(value, null)`` pair.

The closures give what the vectorised evaluator gives for that row, value for value
(docs/design.md §4-§5); ``tests/test_scalar.py`` checks it with hypothesis:

- null is ``None``; a comparison with a null is false, ``not`` of that is true,
  arithmetic on a null is null, ``and``/``or`` are two-valued;
- numbers are Python floats (float64, as numpy holds them); ``x / 0``, ``x % 0`` and
  any non-finite result are null;
- timestamps are int nanoseconds: ``ts - ts`` is float seconds (int64 arithmetic,
  wrapping like numpy's), ``ts +/- seconds`` rounds half to even to nanoseconds and is
  null past int64;
- where numpy would bring two branches to one dtype (``if``/``else``, ``coalesce``,
  ``least``/``greatest``), the value is brought to the same type;
- the functions have scalar bodies equal to their vectorised ones; a function without
  one (the conversions meant for mapping files) runs its vectorised body on one row,
  memoised by its arguments.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from ..columns import phones
from ..columns.types import PhysicalKind
from ..columns.vec import DTYPES, FILLERS, Vec, kind_of
from ..lang.aggregates import AGGREGATES
from ..lang.expr import Binary, Call, Cond, Expr, Field, InList, Literal, Unary
from ..lang.functions import FUNCTIONS, TEXT_OF_KIND, is_round_one
from .evaluate import Evaluator
from .plan import AggregateSpec

NS = 1_000_000_000
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_CLOCK_LO, _CLOCK_HI = -2_208_988_800 * NS, 7_258_118_400 * NS  # 1900-01-01 .. 2200-01-01: zoneinfo as pandas
MEMO_MAX = 4096  # memoised one-row calls per call site; cleared when full

Values = tuple
Aggs = Mapping[AggregateSpec, tuple[Any, bool]]
Scalar = Callable[[Values, Aggs], Any]
FLT, TS, BOOL, OBJ = PhysicalKind.FLOAT, PhysicalKind.INT, PhysicalKind.BOOL, PhysicalKind.OBJECT

_COMPARE = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
            ">=": operator.ge}


def _constant_comparison(op: str, left: Scalar, i: int | None, c: Any) -> Scalar:
    """``x op c`` for a non-null constant ``c`` of x's kind; ``i``: x is field ``i`` of the record."""
    if op == "==":
        if i is not None:
            return lambda v, a: v[i] == c  # None == c is False
        return lambda v, a: left(v, a) == c
    fn = _COMPARE[op]
    if i is not None:
        def compare_field(v, a):
            x = v[i]
            return x is not None and fn(x, c)

        return compare_field

    def compare(v, a):
        x = left(v, a)
        return x is not None and fn(x, c)

    return compare


def _none(v: Values, a: Aggs) -> None:
    """The closure of an expression that is null on every row (a null literal, ``x + null``...):
    where the vectorised evaluator meets an all-null column it adopts the other side's dtype."""
    return None


def _wrap64(v: int) -> int:
    """int64 wrap-around, as numpy's integer arithmetic does."""
    if _I64_MIN <= v <= _I64_MAX:
        return v
    return (v - _I64_MIN) % (1 << 64) + _I64_MIN


def _promoted(a: PhysicalKind, b: PhysicalKind) -> PhysicalKind:
    """The kind numpy gives two kinds in one array (np.where / np.minimum)."""
    if a == b:
        return a
    return kind_of(np.empty(0, dtype=np.result_type(DTYPES[a], DTYPES[b])))


def _caster(kind: PhysicalKind) -> Callable[[Any], Any]:
    if kind == FLT:
        return float
    if kind == TS:
        return int
    if kind == BOOL:
        return bool
    return lambda v: v


def _vec1(value: Any, kind: PhysicalKind) -> Vec:
    """One row as a Vec of a physical kind."""
    arr = np.empty(1, dtype=DTYPES[kind])
    arr[0] = FILLERS[kind] if value is None else value
    return Vec(arr, np.array([value is None]))


class ScalarCompiler:
    """Compiles expressions of one stream's records (a step's local ``where``, an ``unless``
    condition, an aggregate's ``where=``/value) to closures over ``(values, aggs)``.

    ``fields`` maps each field name to its position in the values tuple, ``kinds`` to its
    physical kind. ``evaluator`` supplies the named lists and the prepared constants (the
    compiled regexes, the zones), shared with the vectorised path. ``agg_slot`` maps an
    aggregate to its key in ``aggs`` (default: the spec itself; an int index is cheaper to
    look up than a spec, whose hash walks its expressions).
    """

    def __init__(self, evaluator: Evaluator, fields: Mapping[str, int], kinds: Mapping[str, PhysicalKind],
                 agg_slot: Callable[[AggregateSpec], Any] | None = None):
        self.evaluator = evaluator
        self.fields = fields
        self.kinds = kinds
        self.agg_slot = agg_slot or (lambda spec: spec)

    # -- entry points --------------------------------------------------------------------------
    def value(self, expr: Expr, aggregates: Mapping[Call, AggregateSpec] | None = None) -> Scalar:
        """A closure giving the expression's value (None for null)."""
        return self._compile(expr, aggregates or {})[0]

    def truth(self, expr: Expr | None, aggregates: Mapping[Call, AggregateSpec] | None = None) -> Scalar:
        """A closure giving whether the expression holds (null counts as false), as a bool."""
        if expr is None:
            return lambda v, a: True
        return self._truth(expr, aggregates or {})

    def kind(self, expr: Expr, aggregates: Mapping[Call, AggregateSpec] | None = None) -> PhysicalKind:
        """The physical kind of the vectorised result (the dtype numpy would give)."""
        return self._compile(expr, aggregates or {})[1]

    # -- compilation ---------------------------------------------------------------------------
    def _truth(self, expr: Expr, aggs: Mapping[Call, AggregateSpec]) -> Scalar:
        if isinstance(expr, Binary) and expr.op in ("and", "or"):
            left, right = self._truth(expr.left, aggs), self._truth(expr.right, aggs)
            if expr.op == "and":
                return lambda v, a: left(v, a) and right(v, a)
            return lambda v, a: left(v, a) or right(v, a)
        if isinstance(expr, Binary) and expr.op in _COMPARE:
            return self._comparison(expr, aggs)[0]
        fn = self._compile(expr, aggs)[0]
        return lambda v, a: bool(fn(v, a))  # None -> False; as numpy's astype(bool): 0, 0.0 and "" are false

    def _compile(self, node: Expr, aggs: Mapping[Call, AggregateSpec]) -> tuple[Scalar, PhysicalKind]:
        if isinstance(node, Literal):
            return self._literal(node)
        if isinstance(node, Field):
            i = self.fields[node.name]
            return (lambda v, a: v[i]), self.kinds[node.name]
        if isinstance(node, Unary):
            if node.op == "not":
                test = self._truth(node.operand, aggs)
                return (lambda v, a: not test(v, a)), BOOL
            fn, kind = self._compile(node.operand, aggs)
            if fn is _none:
                return _none, kind

            def neg(v, a):
                x = fn(v, a)
                if x is None:
                    return None
                return _wrap64(-x) if kind == TS else -x

            return neg, kind
        if isinstance(node, Binary):
            if node.op in ("and", "or") or node.op in _COMPARE:
                return self._truth(node, aggs), BOOL
            return self._arith(node, aggs)
        if isinstance(node, Cond):
            if isinstance(node.test, Literal) and node.test.value is None:
                # never true: the vectorised branch is the other side, null adopting no kind of its own
                return self._compile(node.other, aggs)
            test = self._truth(node.test, aggs)
            (then, tk), (other, ok) = self._compile(node.then, aggs), self._compile(node.other, aggs)
            kind = self._unified(then, tk, other, ok)
            if then is _none and other is _none:
                return _none, kind
            cast = _caster(kind)
            if kind in (tk, OBJ) and kind in (ok, OBJ):
                return (lambda v, a: then(v, a) if test(v, a) else other(v, a)), kind

            def cond(v, a):
                x = then(v, a) if test(v, a) else other(v, a)
                return None if x is None else cast(x)

            return cond, kind
        if isinstance(node, InList):
            return self._in_list(node, aggs), BOOL
        if isinstance(node, Call):
            if node.name in FUNCTIONS:
                return self._call(node, aggs)
            spec = aggs[node]
            kind = AGGREGATES[spec.func].kind
            slot = self.agg_slot(spec)

            def aggregate(v, a):
                x, null = a[slot]
                return None if null else x

            return aggregate, kind
        raise TypeError(f"cannot evaluate {type(node).__name__}")

    @staticmethod
    def _literal(node: Literal) -> tuple[Scalar, PhysicalKind]:
        if node.kind == "null":
            return _none, FLT
        if node.kind == "string":
            s = node.value
            return (lambda v, a: s), OBJ
        if node.kind == "bool":
            b = bool(node.value)
            return (lambda v, a: b), BOOL
        x = float(node.value)
        return (lambda v, a: x), FLT

    @staticmethod
    def _unified(left: Scalar, lk: PhysicalKind, right: Scalar, rk: PhysicalKind) -> PhysicalKind:
        """The kind of evaluate._unify's pair: an all-null side adopts the other side's kind."""
        if left is _none:
            return rk
        if right is _none:
            return lk
        if lk == rk or OBJ in (lk, rk):
            return lk if lk == rk else OBJ
        return _promoted(lk, rk)

    def _comparison(self, node: Binary, aggs: Mapping[Call, AggregateSpec]) -> tuple[Scalar, PhysicalKind]:
        (left, lk), (right, rk) = self._compile(node.left, aggs), self._compile(node.right, aggs)
        op = _COMPARE[node.op]
        if left is _none or right is _none:
            return (lambda v, a: False), BOOL
        if lk == rk and isinstance(node.right, Literal):  # the usual ``field op constant``: one closure
            i = self.fields[node.left.name] if isinstance(node.left, Field) else None
            return _constant_comparison(node.op, left, i, right(None, None)), BOOL
        if lk != rk and OBJ not in (lk, rk):
            # numpy compares an int64 with a float64 (or bool) column as float64
            cast = _caster(_promoted(lk, rk))
            return _holds(left, right, lambda x, y: op(cast(x), cast(y))), BOOL
        return _holds(left, right, op), BOOL

    def _arith(self, node: Binary, aggs: Mapping[Call, AggregateSpec]) -> tuple[Scalar, PhysicalKind]:
        (left, lk), (right, rk) = self._compile(node.left, aggs), self._compile(node.right, aggs)
        op = node.op
        if left is _none or right is _none:  # null, of the kind the vectorised branch gives
            return _none, (FLT if lk == rk == TS else TS if TS in (lk, rk) else FLT)
        if lk == TS and rk == TS:  # timestamp - timestamp = seconds (int64 difference, then float64)

            def diff(v, a):
                x = left(v, a)
                if x is None:
                    return None
                y = right(v, a)
                return None if y is None else float(_wrap64(x - y)) / NS

            return diff, FLT
        if TS in (lk, rk):  # timestamp +/- seconds
            ts_fn, sec_fn = (left, right) if lk == TS else (right, left)
            sign = -1 if op == "-" else 1

            def shift(v, a):
                t = ts_fn(v, a)
                if t is None:
                    return None
                s = sec_fn(v, a)
                if s is None:
                    return None
                nanos = float(s) * NS
                if not abs(nanos) < 2.0**62:  # beyond any timestamp difference (or nan)
                    return None
                out = t + sign * round(nanos)
                return out if _I64_MIN <= out <= _I64_MAX else None

            return shift, TS
        body = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
                "%": math.fmod}[op]

        def arith(v, a):
            x = left(v, a)
            if x is None:
                return None
            y = right(v, a)
            if y is None:
                return None
            try:
                out = body(float(x), float(y))
            except (ZeroDivisionError, OverflowError, ValueError):
                return None
            return out if math.isfinite(out) else None

        return arith, FLT

    def _in_list(self, node: InList, aggs: Mapping[Call, AggregateSpec]) -> Scalar:
        fn, kind = self._compile(node.operand, aggs)
        ref = node.container
        negate = node.negate
        if ref.name is not None:
            matcher = self.evaluator.lists[ref.name]
            values = matcher.values
            if matcher.list.kind == "exact":
                def hit(x):
                    return x in values
            else:
                groups = [(n, p) for n, p in matcher.by_length.items()]

                def hit(x):
                    return any(x[:n] in p for n, p in groups)
        else:
            items = [it.value for it in ref.items if isinstance(it, Literal) and it.value is not None]
            if kind == OBJ:
                members = frozenset(str(x) for x in items)
            else:
                members = frozenset(float(x) for x in items if isinstance(x, (int, float)) and not isinstance(x, bool))

            def hit(x):
                return x in members
        if ref.name is not None and not values:
            return lambda v, a: negate and fn(v, a) is not None

        def contains(v, a):
            x = fn(v, a)
            if x is None:
                return False
            return not hit(x) if negate else hit(x)

        return contains

    # -- functions -------------------------------------------------------------------------------
    def _call(self, node: Call, aggs: Mapping[Call, AggregateSpec]) -> tuple[Scalar, PhysicalKind]:
        fn = FUNCTIONS[node.name]
        compiled = [self._compile(arg, aggs) for arg in node.args]
        args = [c[0] for c in compiled]
        kinds = [c[1] for c in compiled]
        const = self.evaluator._constant(node, fn)
        body = _SCALAR_BODIES.get(node.name)
        if body is not None:
            made = body(args, kinds, const)
            if made is not None:
                return made
        return self._one_row(node, fn, args, kinds, const)

    @staticmethod
    def _one_row(node: Call, fn, args: list[Scalar], kinds: list[PhysicalKind], const: object
                 ) -> tuple[Scalar, PhysicalKind]:
        """The vectorised body on one row, memoised by the arguments (the result kind from a probe)."""
        probe = fn.apply([_vec1(None, k) for k in kinds], const)
        kind = kind_of(probe.values)
        memo: dict[tuple, Any] = {}

        def call(v, a):
            key = tuple(f(v, a) for f in args)
            try:
                return memo[key]
            except KeyError:
                pass
            except TypeError:  # pragma: no cover - an unhashable value
                return fn.apply([_vec1(x, k) for x, k in zip(key, kinds)], const).to_python(0)
            if len(memo) >= MEMO_MAX:
                memo.clear()
            out = memo[key] = fn.apply([_vec1(x, k) for x, k in zip(key, kinds)], const).to_python(0)
            return out

        return call, kind


# Each body: (argument closures, their kinds, the prepared constant) -> (closure, result kind),
# or None to use the vectorised body on one row.

def _unary(fn: Callable[[Any], Any], kind: PhysicalKind) -> Callable:
    def make(args, kinds, const):
        arg = args[0]
        if arg is _none:
            return _none, kind

        def call(v, a):
            x = arg(v, a)
            return None if x is None else fn(x)

        return call, kind

    return make


def _local_time(ts: int, tz: ZoneInfo) -> datetime:
    # the vectorised body floors nanoseconds to microseconds before converting (functions._local)
    return (_EPOCH + timedelta(microseconds=ts // 1000)).astimezone(tz)


def _clock(name: str, part: Callable[[datetime], int]) -> Callable:
    def make(args, kinds, const):
        if kinds[0] != TS:
            return None
        arg = args[0]
        if arg is _none:
            return _none, FLT
        tz = ZoneInfo(str(const))
        body = FUNCTIONS[name].apply

        def call(v, a):
            x = arg(v, a)
            if x is None:
                return None
            if _CLOCK_LO <= x < _CLOCK_HI:
                return float(part(_local_time(x, tz)))
            # far dates: numpy's own conversion near the ends of int64 is what batch gives
            return body([_vec1(x, TS)], const).to_python(0)

        return call, FLT

    return make


def _extreme(pick: Callable[[Any, Any], Any]) -> Callable:
    def make(args, kinds, const):
        kind = _promoted(kinds[0], kinds[1])
        if kind not in (FLT, TS):
            return None
        cast = _caster(kind)
        x_fn, y_fn = args
        if _none in args:
            return _none, kind

        def call(v, a):
            x = x_fn(v, a)
            if x is None:
                return None
            y = y_fn(v, a)
            return None if y is None else cast(pick(x, y))

        return call, kind

    return make


def _holds(left: Scalar, right: Scalar, test: Callable[[Any, Any], bool]) -> Scalar:
    """A test of two values under two-valued logic: false when either is null (docs/design.md §4)."""
    def run(v, a):
        x = left(v, a)
        if x is None:
            return False
        y = right(v, a)
        return y is not None and test(x, y)

    return run


def _text_test(test: Callable[[str, str], bool]) -> Callable:
    def make(args, kinds, const):
        return _holds(args[0], args[1], test), BOOL

    return make


def _matches(args, kinds, const):
    arg = args[0]
    search = const.search
    memo: dict[str, bool] = {}  # the RE2 binding costs ~10 µs a call; the same numbers come back

    def call(v, a):
        x = arg(v, a)
        if x is None:
            return False
        hit = memo.get(x)
        if hit is None:
            if len(memo) >= MEMO_MAX:
                memo.clear()
            hit = memo[x] = search(x) is not None
        return hit

    return call, BOOL


def _is_null(args, kinds, const):
    arg = args[0]
    return (lambda v, a: arg(v, a) is None), BOOL


def _coalesce(args, kinds, const):
    x_fn, y_fn = args
    if x_fn is _none:  # as the vectorised body: an all-null argument is skipped, adopting no kind
        return y_fn, kinds[1]
    if y_fn is _none:
        return x_fn, kinds[0]
    kind = _promoted(kinds[0], kinds[1])
    cast = _caster(kind)

    def call(v, a):
        x = x_fn(v, a)
        if x is None:
            x = y_fn(v, a)
        return None if x is None else cast(x)

    return call, kind


def _is_round(args, kinds, const):
    """x a multiple of unit as lang.functions._is_round reads them (decimals), for float arguments: the same
    float operations per value (functions.is_round_one; each unit's decimals are cached there)."""
    if kinds != [FLT, FLT]:
        return None
    x_fn, u_fn = args

    def call(v, a):
        return is_round_one(x_fn(v, a), u_fn(v, a))

    return call, BOOL


def _string(args, kinds, const):
    text = TEXT_OF_KIND.get(kinds[0])
    if text is None:
        return None
    arg = args[0]

    def call(v, a):
        x = arg(v, a)
        return None if x is None else text(x)

    return call, OBJ


def _concat(args, kinds, const):
    texts = [TEXT_OF_KIND.get(k) for k in kinds]
    if None in texts:
        return None
    parts = list(zip(args, texts))

    def call(v, a):
        out = []
        for arg, text in parts:
            x = arg(v, a)
            if x is not None:  # null as empty; the result is never null
                out.append(text(x))
        return "".join(out)

    return call, OBJ


def _same_kind(make: Callable) -> Callable:
    """Use a scalar body only for a float argument (else the vectorised body on one row)."""
    def guarded(args, kinds, const):
        return make(args, kinds, const) if kinds[0] == FLT else None

    return guarded


def _np_min(x, y):
    return x if x < y else y  # as np.minimum: the second when equal (0.0 and -0.0)


def _np_max(x, y):
    return x if x > y else y


_SCALAR_BODIES: dict[str, Callable] = {
    "country": _unary(phones.country_one, OBJ),  # the vectorised bodies map these once per distinct value
    "number_type": _unary(phones.type_one, OBJ),
    "hour": _clock("hour", lambda d: d.hour),
    "weekday": _clock("weekday", lambda d: d.isoweekday()),
    "minutes": _same_kind(_unary(lambda x: x / 60.0, FLT)),
    "is_round": _is_round,
    "abs": _same_kind(_unary(abs, FLT)),
    "least": _extreme(_np_min),
    "greatest": _extreme(_np_max),
    "lower": _unary(str.lower, OBJ),
    "upper": _unary(str.upper, OBJ),
    "length": _unary(lambda s: float(len(s)), FLT),
    "startswith": _text_test(str.startswith),
    "endswith": _text_test(str.endswith),
    "contains": _text_test(lambda x, y: y in x),
    "matches": _matches,
    "is_null": _is_null,
    "coalesce": _coalesce,
    "string": _string,
    "concat": _concat,
}
