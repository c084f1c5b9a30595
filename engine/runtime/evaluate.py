"""Vectorised evaluation of expressions over columns.

One evaluator serves every executor and the record mapper: it walks the
syntax tree once per batch of rows and computes whole columns with numpy.
Logic is two-valued (docs/design.md §4): a comparison with a null is false, ``not``
of that is true, and arithmetic on a null is null.
"""

from __future__ import annotations

import operator
from typing import Protocol

import numpy as np

from ..columns.memo import memo_map
from ..columns.phones import normalised_numbers
from ..columns.types import LogicalType, PhysicalKind
from ..columns.vec import ArrowTexts, Coded, Vec, as_bool, distinct_at, empty_values, kind_of
from ..lang.expr import Binary, Call, Cond, Expr, Field, InList, ListRef, Literal, Unary, literal_comparison
from ..lang.functions import FUNCTIONS
from ..pack.model import NamedList

NS = 1_000_000_000


class Env(Protocol):
    """Where an expression finds its inputs, for ``n`` rows: in the executors and the alert
    builder a step of some Bindings (runtime.bindings.StepEnv), in mapping files ColumnsEnv."""

    n: int

    def field(self, alias: str | None, name: str) -> Vec: ...

    def aggregate(self, call: Call) -> Vec: ...

    def aggregate_at(self, call: Call, rows: np.ndarray) -> Vec:
        """``aggregate(call)`` at rows ``rows`` alone: what SubsetEnv asks, so that an executor may compute
        an aggregate only where an ``and`` leaves rows undecided."""
        ...


class ColumnsEnv:
    """An Env over plain columns (record mapping, tests)."""

    def __init__(self, columns: dict[str, Vec], n: int):
        self.columns = columns
        self.n = n

    def field(self, alias: str | None, name: str) -> Vec:
        return self.columns[name]

    def aggregate(self, call: Call) -> Vec:  # pragma: no cover - mapping has no aggregates
        raise KeyError(call.name)

    def aggregate_at(self, call: Call, rows: np.ndarray) -> Vec:  # pragma: no cover - mapping has no aggregates
        raise KeyError(call.name)


class SubsetEnv:
    """The rows ``rows`` of another Env."""

    def __init__(self, env: Env, rows: np.ndarray):
        self.env = env
        self.rows = rows
        self.n = len(rows)

    def field(self, alias: str | None, name: str) -> Vec:
        return self.env.field(alias, name).take(self.rows)

    def aggregate(self, call: Call) -> Vec:
        return self.env.aggregate_at(call, self.rows)

    def aggregate_at(self, call: Call, rows: np.ndarray) -> Vec:
        return self.env.aggregate_at(call, self.rows[rows])


_SEEN_MAX = 65_536  # ListMatcher._seen entries; emptied when full


class ListMatcher:
    """Membership in a named list: exact, or longest prefix."""

    def __init__(self, lst: NamedList, region: str = "CN"):
        self.list = lst
        values = set(lst.values)
        if lst.kind == "exact":
            # a list of numbers written locally still matches normalised records
            values |= normalised_numbers(lst.values, region)
        self.values = values
        self.by_length: dict[int, set[str]] = {}
        self._seen: dict[str, bool] = {}  # contains(), a few rows of a prefix list: value -> listed
        self._value_sets: dict[int, object] | None = None  # _arrow_hits: Arrow arrays of the entries, by length
        if lst.kind == "prefix":
            for v in values:
                self.by_length.setdefault(len(v), set()).add(v)

    def contains(self, v: Vec, few: int = 8) -> np.ndarray:
        """Membership of each value; up to ``few`` rows by set lookups (the stream executor's records: a
        thousand lookups take ~0.1 ms against ~0.7 ms of pandas' fixed costs), more by distinct value."""
        out = np.zeros(len(v), dtype=bool)
        live = ~v.null
        if not live.any() or not self.values:
            return out
        if len(v) <= few:  # a few rows: set lookups beat pandas
            vals, null = v.values.tolist(), v.null.tolist()
            if self.list.kind == "exact":
                return np.array([not nu and x in self.values for x, nu in zip(vals, null)], dtype=bool)
            by_length = self.by_length
            hits = memo_map(vals, self._seen, lambda x: any(x[:n] in p for n, p in by_length.items()), _SEEN_MAX)
            return np.array(hits, dtype=bool) & ~v.null
        if isinstance(v, ArrowTexts):
            # distinct texts kept in Arrow (ids, accounts): looked up there, no str made per row
            return self._arrow_hits(v.arrow) & live
        if isinstance(v, Coded) and len(v.arrow) <= 8 * len(v):  # type: ignore[arg-type]
            # coded text: each dictionary entry looked up in Arrow, read by code (a str per distinct value
            # and a set lookup each took 1.2 s at 10M records); not for a few rows of a large dictionary
            return self._arrow_hits(v.arrow)[v.codes] & live
        uniq, inv = distinct_at(v, live)
        # set lookups per distinct value: pandas' isin would hash the whole list again at every use
        if self.list.kind == "exact":
            values = self.values
            hit = np.fromiter((u in values for u in uniq.tolist()), dtype=bool, count=len(uniq))
        else:
            hit = self._prefixed(uniq)
        out[live] = hit[inv]
        return out

    def _prefixed(self, uniq: np.ndarray) -> np.ndarray:
        """Per distinct value, whether an entry of this prefix list begins it (:meth:`_arrow_hits`); text only,
        as before."""
        import pyarrow as pa  # lazily: compiling a plan (lint) needs no pyarrow (issue #9)

        try:
            arr = pa.array(uniq, type=pa.large_string())
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # not all text: a non-text value never matches
            by_length = self.by_length
            return np.fromiter((isinstance(u, str) and any(u[:n] in p for n, p in by_length.items())
                                for u in uniq.tolist()), dtype=bool, count=len(uniq))
        return self._arrow_hits(arr)

    def _arrow_hits(self, arr: object) -> np.ndarray:
        """Membership of each text of an Arrow string array, in C: an exact list's values hashed once, a prefix
        list's heads cut to each entry length (code points, as str slicing counts) and looked up."""
        import pyarrow as pa
        import pyarrow.compute as pc

        arr = arr.cast(pa.large_string())  # type: ignore[attr-defined]
        if self._value_sets is None:  # made once: a list can hold a million accounts
            groups = {0: self.values} if self.list.kind == "exact" else self.by_length
            self._value_sets = {length: pa.array(sorted(v for v in values if isinstance(v, str)), pa.large_string())
                                for length, values in groups.items()}
        if self.list.kind == "exact":
            return pc.is_in(arr, value_set=self._value_sets[0]).to_numpy(zero_copy_only=False)
        hit = np.zeros(len(arr), dtype=bool)
        for length, prefixes in self._value_sets.items():
            heads = pc.utf8_slice_codeunits(arr, 0, length)
            hit |= pc.is_in(heads, value_set=prefixes).to_numpy(zero_copy_only=False)
        return hit

    def entry(self, value: str) -> str | None:
        """The list entry that matches ``value`` (the longest prefix), for explanations."""
        if self.list.kind == "exact":
            return value if value in self.values else None
        for length in sorted(self.by_length, reverse=True):
            if value[:length] in self.by_length[length]:
                return value[:length]
        return None


def _literal(node: Literal, n: int) -> Vec:
    if node.kind == "null":
        return Vec.nulls(LogicalType.FLOAT, n)
    if node.kind == "string":
        return Vec.full(node.value, LogicalType.STRING, n)
    if node.kind == "bool":
        return Vec.full(bool(node.value), LogicalType.BOOL, n)
    return Vec.full(float(node.value), LogicalType.FLOAT, n)


def _is_ts(v: Vec) -> bool:
    return kind_of(v.values) == PhysicalKind.INT  # only timestamps are held as int64


class Evaluator:
    """Evaluates expanded expressions; holds lists and prepared constants."""

    def __init__(self, lists: dict[str, ListMatcher] | None = None, prepared: dict[Call, object] | None = None,
                 few_rows: int = 8):
        self.lists = lists or {}
        self.prepared = prepared if prepared is not None else {}
        # list membership by set lookups up to this many rows (ListMatcher.contains); the stream executor's
        # micro-batches raise it, the batch path keeps its columns vectorised
        self.few_rows = few_rows

    def truth(self, expr: Expr | None, env: Env) -> np.ndarray:
        """A boolean mask: where ``expr`` holds (null counts as false)."""
        if expr is None:
            return np.ones(env.n, dtype=bool)
        return as_bool(self.compute(expr, env))

    def compute(self, node: Expr, env: Env) -> Vec:
        n = env.n
        if isinstance(node, Literal):
            return _literal(node, n)
        if isinstance(node, Field):
            return env.field(node.alias, node.name)
        if isinstance(node, Unary):
            v = self.compute(node.operand, env)
            if node.op == "not":
                return Vec(~as_bool(v), np.zeros(n, dtype=bool))
            return Vec(-v.values, v.null.copy())
        if isinstance(node, Binary):
            return self._binary(node, env)
        if isinstance(node, Cond):
            test = self.truth(node.test, env)
            a, b = self.compute(node.then, env), self.compute(node.other, env)
            coded = _coded_choice(test, a, b)
            if coded is not None:
                return coded
            a, b = _unify(a, b)
            return Vec(np.where(test, a.values, b.values), np.where(test, a.null, b.null))
        if isinstance(node, InList):
            v = self.compute(node.operand, env)
            hit = self._contains(node.container, v, env)
            return Vec((~hit & ~v.null) if node.negate else hit, np.zeros(n, dtype=bool))
        if isinstance(node, Call):
            fn = None if node.alias else FUNCTIONS.get(node.name)
            if fn is None:
                return env.aggregate(node)
            # a call repeated in one expression (often via a macro) is computed once per env
            state = getattr(env, "__dict__", None)
            cache = state.setdefault("_calls", {}) if state is not None else {}
            if node not in cache and isinstance(env, SubsetEnv):  # the whole env's column, when it has it
                whole = getattr(env.env, "_calls", None)
                if whole is not None and node in whole:
                    cache[node] = whole[node].take(env.rows)
            if node not in cache:
                # a constant argument (a zone, a pattern) reaches the body prepared (_constant), never as a column
                args = [None if i in fn.constant_args else self.compute(a, env) for i, a in enumerate(node.args)]
                cache[node] = fn.apply(args, self._constant(node, fn))
            return cache[node]
        raise TypeError(f"cannot evaluate {type(node).__name__}")

    def _constant(self, node: Call, fn) -> object:
        """The prepared constant argument of a call (a compiled regex, a zone), cached."""
        if fn.prepare is None:
            return None
        if node not in self.prepared:
            consts = [a.value if isinstance(a, Literal) else None for a in node.args]
            self.prepared[node] = fn.prepare(consts)
        return self.prepared[node]

    def _contains(self, ref: ListRef, v: Vec, env: Env) -> np.ndarray:
        if ref.name is not None:
            return self.lists[ref.name].contains(v, self.few_rows)
        values = [it.value for it in ref.items if isinstance(it, Literal) and it.value is not None]
        if v.values.dtype == object:
            import pandas as pd

            hit = pd.Series(v.values, dtype=object).isin([str(x) for x in values]).to_numpy()
        else:
            nums = [float(x) for x in values if isinstance(x, (int, float)) and not isinstance(x, bool)]
            hit = np.isin(v.values, nums)
        return hit & ~v.null

    def _binary(self, node: Binary, env: Env) -> Vec:
        n = env.n
        if node.op in ("and", "or"):
            left = self.truth(node.left, env)
            # the right side only matters where the left does not decide: evaluate
            # it on those rows alone (country() or a regex on 5% of rows, not all)
            undecided = left if node.op == "and" else ~left
            count = int(undecided.sum())
            if count == 0:
                return Vec(left, np.zeros(n, dtype=bool))
            if count == n:
                right = self.truth(node.right, env)
            else:
                rows = np.flatnonzero(undecided)
                right = np.zeros(n, dtype=bool)
                right[rows] = self.truth(node.right, SubsetEnv(env, rows))
            return Vec(left & right if node.op == "and" else left | right, np.zeros(n, dtype=bool))
        op = node.op
        scalar = _scalar_operand(node) if op in _COMPARE else None
        if scalar is not None:
            # ``amount >= 1000``, ``direction == "out"``: the literal compared as it is, not spread over a
            # column of n rows first
            expr, value, cmp = scalar
            v = self.compute(expr, env)
            hit = _compare_with(v, value, cmp)
            if hit is not None:
                return Vec(hit & ~v.null, np.zeros(n, dtype=bool))
            a, b = (v, _literal(node.right, n)) if expr is node.left else (_literal(node.left, n), v)  # type: ignore[arg-type]
        else:
            a, b = self.compute(node.left, env), self.compute(node.right, env)
        null = a.null | b.null
        if op in _COMPARE:
            a, b = _unify(a, b)
            with np.errstate(invalid="ignore"):
                res = _COMPARE[op](a.values, b.values)
            return Vec(np.asarray(res, dtype=bool) & ~null, np.zeros(n, dtype=bool))
        return _arith(op, a, b, null)


_COMPARE = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
            ">=": operator.ge}


def _scalar_operand(node: Binary) -> tuple[Expr, float | str, str] | None:
    """(the other side, the literal's value as _literal holds it, the comparison with the literal on the
    right) of a comparison with a number, duration or text literal on one side; None otherwise."""
    got = literal_comparison(node, ("number", "duration", "string"))
    if got is None:
        return None
    other, lit, cmp = got
    return other, (str(lit.value) if lit.kind == "string" else float(lit.value)), cmp  # type: ignore[arg-type]


def _compare_with(v: Vec, value: float | str, cmp: str) -> np.ndarray | None:
    """``v cmp value`` per row, nulls not yet masked; None where the literal must be spread as a column
    (other types, which _unify brings together)."""
    if isinstance(value, str):
        if isinstance(v, Coded) and cmp in ("==", "!="):  # text read as codes: once per distinct value
            hit = v.equals(value)
            return hit if cmp == "==" else ~hit
        if v.values.dtype != object:
            return None
        return np.asarray(_COMPARE[cmp](v.values, value), dtype=bool)
    if v.values.dtype != np.float64:  # the literal's own type: _unify would change neither side
        return None
    with np.errstate(invalid="ignore"):
        return _COMPARE[cmp](v.values, value)


def _coded_choice(test: np.ndarray, a: Vec, b: Vec) -> Coded | None:
    """``a if test else b`` kept as coded text when the branches are coded text over one dictionary, or
    one of them is null everywhere (``number if overseas(number) else null``): the rows' texts are not made,
    and what reads the result (country(), number_type()) still sees the column's dictionary. Its null rows
    take the code of "", the filler of a text column's null slots (io.arrow.text_vec); a dictionary without
    "" takes the object path."""
    if isinstance(b, Coded) and not isinstance(a, Coded):
        test, a, b = ~test, b, a
    if not isinstance(a, Coded):
        return None
    if isinstance(b, Coded) and b.arrow is a.arrow:
        codes = np.where(test, a.codes, b.codes)
    elif b.null.all():
        codes = a.codes
    else:
        return None
    import pyarrow.compute as pc  # loaded: a Coded column came from Arrow

    blank = pc.index(a.arrow, "").as_py()
    if blank < 0:
        return None
    null = np.where(test, a.null, b.null)
    return Coded(np.where(null, np.int32(blank), codes).astype(a.codes.dtype, copy=False), a.arrow, null)


def _unify(a: Vec, b: Vec) -> tuple[Vec, Vec]:
    """Bring two vectors to one physical type (a null literal adopts the other's)."""
    if a.values.dtype == b.values.dtype:
        return a, b
    if a.null.all():
        return Vec(empty_values(kind_of(b.values), len(a)), a.null), b
    if b.null.all():
        return a, Vec(empty_values(kind_of(a.values), len(b)), b.null)
    if _is_ts(a) or _is_ts(b):
        return a, b
    if a.values.dtype == object or b.values.dtype == object:
        return Vec(a.filled_strings(), a.null), Vec(b.filled_strings(), b.null)
    return Vec(a.values.astype(np.float64), a.null), Vec(b.values.astype(np.float64), b.null)


def _arith(op: str, a: Vec, b: Vec, null: np.ndarray) -> Vec:
    a_ts, b_ts = _is_ts(a), _is_ts(b)
    if a_ts and b_ts:  # timestamp - timestamp = duration in seconds
        return Vec((a.values - b.values) / NS, null)
    if a_ts or b_ts:  # timestamp +/- seconds
        ts, sec = (a, b) if a_ts else (b, a)
        with np.errstate(over="ignore", invalid="ignore"):
            nanos = np.round(sec.values.astype(np.float64) * NS)
        huge = ~(np.abs(nanos) < 2.0**62)  # beyond any timestamp difference (or nan): null, not a wrapped int
        delta = np.where(huge, 0, nanos).astype(np.int64)
        if op == "-":
            delta = -delta
        with np.errstate(over="ignore"):
            out = ts.values + delta
        wrapped = ((ts.values > 0) & (delta > 0) & (out < 0)) | ((ts.values < 0) & (delta < 0) & (out >= 0))
        null = null | huge | wrapped
        return Vec(np.where(null, 0, out).astype(np.int64), null)
    av = a.values.astype(np.float64)
    bv = b.values.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # a result that is not finite is null
        if op == "+":
            out = av + bv
        elif op == "-":
            out = av - bv
        elif op == "*":
            out = av * bv
        elif op == "/":
            out = av / bv
        else:
            out = np.fmod(av, bv)
    bad = ~np.isfinite(out)  # x / 0 and x % 0 are null
    null = null | bad
    return Vec(np.where(null, 0.0, out), null)
