"""Scalar functions of the rule language: signatures and vectorised bodies.

Each :class:`Function` declares how to type its arguments (``infer``) and how
to compute over whole columns (``apply``). Functions that need a constant
argument (a time zone, a regex, a format) get it as a Python value at plan
time, so the regex is compiled once and bounded (RE2: linear time).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import re2 as _re  # RE2 guarantees linear-time matching: a rule cannot hang the engine

from ..columns import phones
from ..columns.types import NUMERIC_TYPES, STRING_TYPES, LogicalType, PhysicalKind
from ..columns.vec import Coded, Vec, distinct_at, empty_array

if TYPE_CHECKING:  # pandas loads where a body needs it: lint and --help never evaluate (issue #9)
    import pandas as pd

MAX_REGEX_CHARS = 1000


class TypeProblem(Exception):
    """A typing error; ``arg`` is the index of the offending argument (or None)."""

    def __init__(self, message: str, arg: int | None = None):
        super().__init__(message)
        self.message = message
        self.arg = arg


def is_numeric(t: LogicalType) -> bool:
    return t in NUMERIC_TYPES or t == LogicalType.NULL


def is_stringy(t: LogicalType) -> bool:
    return t in STRING_TYPES or t == LogicalType.NULL


@dataclass(frozen=True)
class Function:
    name: str
    min_args: int
    max_args: int
    infer: Callable[[list[LogicalType]], LogicalType]  # argument types -> result type, or TypeProblem
    apply: Callable[..., Vec]
    constant_args: tuple[int, ...] = ()  # positions that must be literals: read prepared, None in ``args``
    prepare: Callable[[list[object]], object] | None = None  # validates constants
    doc: str = ""


def _want(types: list[LogicalType], i: int, ok: Callable[[LogicalType], bool], what: str) -> None:
    if i < len(types) and not ok(types[i]):
        raise TypeProblem(f"argument {i + 1} must be {what}, not {types[i]}", i)


def _str_map(v: Vec, fn: Callable[[str], object], out_type: LogicalType) -> Vec:
    """Apply a Python function once per distinct string value."""
    return _str_map_many(v, lambda texts: [fn(t) for t in texts], out_type)


def _str_map_many(v: Vec, many: Callable[[list[str]], list], out_type: LogicalType, pure: bool = False) -> Vec:
    """Apply ``many`` (the distinct string values -> their results, None for null) once over the distinct
    values of ``v``. ``pure``: ``many`` answers a text the same every time, so that on coded text its answers
    are kept per dictionary entry (:class:`_DictionaryAnswers`) for the next call on the same column."""
    n = len(v)
    out = empty_array(out_type, n)
    null = v.null.copy()
    live = ~v.null
    if live.any():
        if pure and isinstance(v, Coded):
            mvals, mnull = _DictionaryAnswers.of(v, many, out_type)
            codes = v.codes[live]
            out[live] = mvals[codes]
            null[live] = mnull[codes]
            return Vec(out, null)
        uniq, inv = distinct_at(v, live)
        mvals, mnull = _answers(many(list(uniq)), out_type)
        out[live] = mvals[inv]
        null[live] = mnull[inv]
    return Vec(out, null)


def _answers(mapped: list, out_type: LogicalType) -> tuple[np.ndarray, np.ndarray]:
    """The results of ``many`` as (values with fillers for None, which are None)."""
    filler = empty_array(out_type, 1)[0]
    return (np.array([filler if m is None else m for m in mapped], dtype=empty_array(out_type, 0).dtype),
            np.array([m is None for m in mapped], dtype=bool))


class _DictionaryAnswers:
    """A pure function's answers per entry of a coded column's dictionary, kept while the dictionary lives.

    Rules of a run read the same columns (country() and number_type() of the callee in several rules), and a
    rule's rows keep their table's dictionary: each entry is answered once per process, not once per rule
    (number_type() took 11% of the rules' time at 1M records, six times over one column)."""

    # id(dictionary) -> (a weak reference to it, {(many, type): (answers, null, answered)}); an Arrow array
    # is not hashable (its == is per element), so it is kept by id, and dropped as the array goes
    _kept: dict[int, tuple[weakref.ref, dict]] = {}

    @classmethod
    def of(cls, v: Coded, many: Callable[[list[str]], list], out_type: LogicalType
           ) -> tuple[np.ndarray, np.ndarray]:
        """(answer, null) per dictionary entry, every entry ``v`` uses answered."""
        key = id(v.arrow)
        entry = cls._kept.get(key)
        if entry is None or entry[0]() is not v.arrow:
            entry = cls._kept[key] = (weakref.ref(v.arrow), {})
            weakref.finalize(v.arrow, cls._kept.pop, key, None)
        per_fn = entry[1]
        got = per_fn.get((many, out_type))
        k = len(v.arrow)  # type: ignore[arg-type]
        if got is None:
            got = per_fn[(many, out_type)] = (empty_array(out_type, k), np.ones(k, dtype=bool),
                                              np.zeros(k, dtype=bool))
        mvals, mnull, done = got
        used = np.zeros(k, dtype=bool)
        used[v.codes[~v.null]] = True
        todo = np.flatnonzero(used & ~done)
        if len(todo):
            vals, nulls = _answers(many(list(v.texts(todo))), out_type)
            mvals[todo], mnull[todo], done[todo] = vals, nulls, True
        return mvals, mnull


# --- bodies ---------------------------------------------------------------


def _country(args: list[Vec], const: object) -> Vec:
    return _str_map_many(args[0], phones.country_many, LogicalType.STRING, pure=True)


def _number_type(args: list[Vec], const: object) -> Vec:
    return _str_map_many(args[0], phones.type_many, LogicalType.STRING, pure=True)


def _prepare_tz(consts: list[object]) -> object:
    tz = consts[1] if len(consts) > 1 and consts[1] is not None else "UTC"
    if not isinstance(tz, str):
        raise TypeProblem("time zone must be a string such as \"Asia/Shanghai\"", 1)
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise TypeProblem(f"unknown time zone {tz!r}", 1) from None
    return tz


def _local(args: list[Vec], tz: object) -> pd.DatetimeIndex:
    # in microseconds: a time near the end of int64 nanoseconds (2262-04-11) would overflow in a zone
    # east of UTC; hours and days begin on whole seconds, so flooring to microseconds changes neither
    import pandas as pd

    with np.errstate(invalid="ignore"):  # a null row's filler need not be a time: its hour is dropped
        nanos = args[0].values.astype("datetime64[ns]").view(np.int64)
    # floor division, not astype("datetime64[us]"): numpy 2.5 raises OverflowError converting the first
    # nanoseconds of the range (1677-09-21T00:12:43.145224193Z) that way, where 2.4 floors them
    micros = (nanos // 1000).view("datetime64[us]")
    return pd.DatetimeIndex(micros).tz_localize("UTC").tz_convert(str(tz))


def _hour(args: list[Vec], tz: object) -> Vec:
    return Vec(_local(args, tz).hour.to_numpy().astype(np.float64), args[0].null.copy())


def _weekday(args: list[Vec], tz: object) -> Vec:
    # ISO numbering: Monday = 1 ... Sunday = 7 (as DuckDB's isodow).
    return Vec(_local(args, tz).day_of_week.to_numpy().astype(np.float64) + 1, args[0].null.copy())


def _minutes(args: list[Vec], const: object) -> Vec:
    return Vec(args[0].values / 60.0, args[0].null.copy())


def _decimal(v: float) -> Decimal:
    """The shortest decimal that prints ``v``: ``0.01`` is one cent, not the binary value near it."""
    return Decimal(repr(float(v)))


# x * 10^k rounded is x's value in units of its k-th decimal only while the product's error, up to |product|
# * 2^-52 (x's own rounding and the multiplication's), stays under 1/2: below 2^50 it is under 1/4, and two
# numbers of k decimals cannot then be the same float. At 2^51-2^53 the shortcut was off by one for some x
# (35912233913555.05 was no multiple of 0.05); products that large take the exact way.
_ROUND_EXACT = 2.0 ** 50


def _is_round(args: list[Vec], const: object) -> Vec:
    """x is a multiple of unit, both read as the decimals they print as (docs/rules.md), so that
    ``is_round(12.34, 0.01)`` holds as the exact sums do; a remainder of binary fractions would not.

    Per distinct unit of k decimals, x is scaled by 10^k: it is a multiple when the scaled value
    is an integer that gives x back (x has no more decimals than the unit) and the integer
    remainder by the scaled unit is 0. Values whose scaled value is too large for that to be exact
    (:data:`_ROUND_EXACT`) fall back to ``decimal``."""
    x, unit = args
    n = len(x)
    ok = np.zeros(n, dtype=bool)
    xv = np.asarray(x.values, dtype=np.float64)
    uv = np.asarray(unit.values, dtype=np.float64)
    valid = ~x.null & ~unit.null & np.isfinite(xv) & np.isfinite(uv) & (uv != 0)
    if not valid.any():
        return Vec(ok, np.zeros(n, dtype=bool))
    for u in np.unique(uv[valid]).tolist():
        rows = np.flatnonzero(valid & (uv == u))
        du, k, scaled_u = round_unit(u)
        vals = xv[rows]
        if k <= 15 and scaled_u < 2.0 ** 53:
            scale = 10.0 ** k
            with np.errstate(over="ignore", invalid="ignore"):
                big = np.round(vals * scale)
                fast = np.abs(big) < _ROUND_EXACT
                exact = (big / scale) == vals
                ok[rows] = fast & exact & (np.fmod(big, scaled_u) == 0)
            slow = rows[~fast]
        else:
            slow = rows
        for i in slow.tolist():
            ok[i] = _multiple(_decimal(xv[i]), du)
    return Vec(ok, np.zeros(n, dtype=bool))


@lru_cache(maxsize=4096)  # a rule's units are a handful of constants or parameters, read at every record
def round_unit(u: float) -> tuple[Decimal, int, float]:
    """An ``is_round`` unit (finite, not 0) as both bodies read it: the decimal it prints as, its decimals k,
    and the unit scaled by 10^k (an integer)."""
    du = _decimal(abs(u))
    k = max(0, -int(du.as_tuple().exponent))
    return du, k, float(du.scaleb(k))


def is_round_at(x: float, unit: tuple[Decimal, int, float]) -> bool:
    """:func:`_is_round` of one finite x by a unit from :func:`round_unit`, by the same float operations in
    the same order (scalar evaluators: ~1 µs where the vectorised body on one row costs ~30)."""
    du, k, scaled_u = unit
    if k <= 15 and scaled_u < 2.0 ** 53:
        scale = 10.0 ** k
        product = x * scale
        if math.isfinite(product):
            big = float(round(product))  # half to even, as np.round
            if abs(big) < _ROUND_EXACT:
                return big / scale == x and math.fmod(big, scaled_u) == 0
    return _multiple(_decimal(x), du)


def is_round_one(x: float | None, unit: float | None) -> bool:
    """``is_round`` of one pair of values, nulls included: :func:`is_round_at` behind the vectorised body's
    checks (runtime.scalar's body for float arguments)."""
    if x is None or unit is None:
        return False
    x, unit = float(x), float(unit)
    if unit == 0 or not (math.isfinite(x) and math.isfinite(unit)):
        return False
    return is_round_at(x, round_unit(unit))


def _multiple(x: Decimal, unit: Decimal) -> bool:
    """x is a whole multiple of unit, exactly: as fractions, since Decimal's remainder raises
    DivisionImpossible once the quotient has more digits than its context (2.7e16 by 0.0273)."""
    return Fraction(x) % Fraction(unit) == 0


def _abs(args: list[Vec], const: object) -> Vec:
    return Vec(np.abs(args[0].values), args[0].null.copy())


def _least(args: list[Vec], const: object) -> Vec:
    a, b = args
    return Vec(np.minimum(a.values, b.values), a.null | b.null)


def _greatest(args: list[Vec], const: object) -> Vec:
    a, b = args
    return Vec(np.maximum(a.values, b.values), a.null | b.null)


def _lower(args: list[Vec], const: object) -> Vec:
    return _str_map(args[0], str.lower, LogicalType.STRING)


def _upper(args: list[Vec], const: object) -> Vec:
    return _str_map(args[0], str.upper, LogicalType.STRING)


def _length(args: list[Vec], const: object) -> Vec:
    return _str_map(args[0], lambda s: float(len(s)), LogicalType.FLOAT)


def _pairwise_str(args: list[Vec], scalar_fn: Callable[[str, str], bool],
                  array_fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Vec:
    """A text test of two arguments: once per distinct value when the second is
    constant (the usual case), else element-wise in numpy's string routines."""
    a, b = args
    sa, sb = a.filled_strings(), b.filled_strings()
    if len(sb) == 0 or (sb == sb[0]).all():
        needle = sb[0] if len(sb) else ""
        hit = _str_map(a, lambda s: scalar_fn(s, needle), LogicalType.BOOL).values
    else:
        hit = np.asarray(array_fn(sa.astype(str), sb.astype(str)), dtype=bool)
    return Vec(hit & ~a.null & ~b.null, np.zeros(len(a), dtype=bool))


def _startswith(args: list[Vec], const: object) -> Vec:
    return _pairwise_str(args, str.startswith, np.char.startswith)


def _endswith(args: list[Vec], const: object) -> Vec:
    return _pairwise_str(args, str.endswith, np.char.endswith)


def _contains(args: list[Vec], const: object) -> Vec:
    return _pairwise_str(args, lambda x, y: y in x, lambda x, y: np.char.find(x, y) >= 0)


def _prepare_regex(consts: list[object]) -> object:
    pattern = consts[1]
    if not isinstance(pattern, str):
        raise TypeProblem("the regex must be a string literal", 1)
    if len(pattern) > MAX_REGEX_CHARS:
        raise TypeProblem(f"regex longer than {MAX_REGEX_CHARS} characters", 1)
    try:
        options = _re.Options()
        options.max_mem = 8 << 20  # bounded automaton size
        options.log_errors = False  # else RE2 also logs each bad pattern to stderr, beside the located error
        return _re.compile(pattern, options)
    except Exception as exc:  # re2.error, whose message is bytes
        why = exc.args[0] if exc.args else exc
        why = why.decode("utf-8", "replace") if isinstance(why, bytes) else str(why)
        raise TypeProblem(f"regex does not compile (RE2 syntax): {why}", 1) from None


# Below this many distinct values a Python loop over RE2 costs less than building an Arrow array.
_ARROW_REGEX_MIN = 64


def _matches(args: list[Vec], compiled: object) -> Vec:
    v = args[0]
    live = ~v.null
    if int(live.sum()) >= _ARROW_REGEX_MIN:
        uniq, inv = distinct_at(v, live)
        hit = _arrow_search(uniq, compiled.pattern) if len(uniq) >= _ARROW_REGEX_MIN else None
        if hit is not None:
            out = np.zeros(len(v), dtype=bool)
            out[live] = hit[inv]
            return Vec(out, np.zeros(len(v), dtype=bool))
    res = _str_map(v, lambda s: compiled.search(s) is not None, LogicalType.BOOL)
    return Vec(res.values & ~args[0].null, np.zeros(len(args[0]), dtype=bool))


def _arrow_search(values: np.ndarray, pattern: str) -> np.ndarray | None:
    """RE2 search of each value in one C++ pass (Arrow's kernel: the same RE2 library and default
    options as the re2 module, so the same answers); None when Arrow cannot take the values (text
    that is not valid UTF-8) or the pattern, and the Python loop decides."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        return pc.match_substring_regex(pa.array(values, pa.string()), pattern).to_numpy(zero_copy_only=False)
    except (pa.ArrowException, UnicodeError, TypeError):
        return None


def _is_null(args: list[Vec], const: object) -> Vec:
    return Vec(args[0].null.copy(), np.zeros(len(args[0]), dtype=bool))


def _coalesce(args: list[Vec], const: object) -> Vec:
    a, b = args
    # an argument null on every row (a null literal) is skipped, not unified: np.where would turn
    # coalesce(null, ts) into a float, where the type checker and the scalar path see a timestamp
    if a.null.all():
        return b
    if b.null.all():
        return a
    return Vec(np.where(a.null, b.values, a.values), a.null & b.null)


def _concat(args: list[Vec], const: object) -> Vec:
    n = len(args[0])
    out = np.empty(n, dtype=object)
    out[:] = ""
    for a in args:
        out = out + _to_text(a)
    return Vec(out, np.zeros(n, dtype=bool))


def _to_text(v: Vec) -> np.ndarray:
    vals = v.values
    if vals.dtype == object:
        text = vals.astype(object)
    elif vals.dtype == np.float64:
        # integral floats print without ".0" so ids built from numbers look natural
        integral = np.isfinite(vals) & (np.floor(vals) == vals) & (np.abs(vals) < 2**53)
        text = np.empty(len(vals), dtype=object)
        text[integral] = _int_texts(vals[integral].astype(np.int64))
        text[~integral] = vals[~integral].astype(str)
    else:
        text = vals.astype(str).astype(object)
    text[v.null] = ""
    return text


def _float_text(x: float) -> str:
    if math.isfinite(x) and math.floor(x) == x and abs(x) < 2.0 ** 53:
        return str(int(x))
    return str(np.float64(x))


# one value of each physical kind as _to_text writes its column (the scalar bodies of string and concat)
TEXT_OF_KIND: dict[PhysicalKind, Callable[[object], str]] = {
    PhysicalKind.OBJECT: str, PhysicalKind.FLOAT: _float_text, PhysicalKind.INT: str,
    PhysicalKind.BOOL: lambda b: "True" if b else "False"}


def _int_texts(ints: np.ndarray) -> np.ndarray:
    """str() of each integer, by Arrow (numpy's astype(str) formats ~10x slower)."""
    import pyarrow as pa

    return pa.array(ints, pa.int64()).cast(pa.string()).to_numpy(zero_copy_only=False)


def _string(args: list[Vec], const: object) -> Vec:
    return Vec(_to_text(args[0]), args[0].null.copy())


def _number(args: list[Vec], const: object) -> Vec:
    v = args[0]
    if v.values.dtype != object:
        return Vec(v.values.astype(np.float64), v.null.copy())
    import pandas as pd

    parsed = pd.to_numeric(pd.Series(v.filled_strings(), dtype=object).str.strip(), errors="coerce")
    arr = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.isnan(arr) | v.null
    return Vec(np.where(bad, 0.0, arr), bad)


def constant_timestamp_problem(text: str) -> str:
    """Why ``timestamp(text)`` of this constant text is null at every record ("" when it is a timestamp): the
    checker refuses such a literal, which would make each comparison with it false and its rule silent."""
    code = timestamp_problems(np.array([text], dtype=object), np.zeros(1, dtype=bool), None)[1][0]
    if code == TS_OUT_OF_RANGE:
        return "the instant is out of range (int64 nanoseconds hold 1677-09-21 to 2262-04-11)"
    return "" if code == TS_OK else "the text is not a timestamp"


def _timestamp(args: list[Vec], const: object) -> Vec:
    return parse_timestamps(args[0].filled_strings(), args[0].null, None)


def _prepare_format(consts: list[object]) -> object:
    fmt = consts[1]
    if not isinstance(fmt, str) or "%" not in fmt:
        raise TypeProblem("the format must be a strptime string literal such as \"%Y-%m-%d %H:%M:%S %z\"", 1)
    return fmt


def _parse_time(args: list[Vec], fmt: object) -> Vec:
    return parse_timestamps(args[0].filled_strings(), args[0].null, str(fmt))


def parse_timestamps(text: np.ndarray, null: np.ndarray, fmt: str | None) -> Vec:
    """Parse text to int64 ns UTC, vectorised; unparseable text becomes null.

    ISO 8601 text with an offset is converted to UTC; text without an offset
    is read as UTC (say the zone in the data, or convert in a mapping file).
    Instants outside int64 nanoseconds (years 1678-2261) and the words
    ``now`` and ``today`` (pandas reads them as the wall clock, so a run
    would not be repeatable) are null too; :func:`timestamp_problems` says why.
    """
    return timestamp_problems(text, null, fmt)[0]


TS_OK, TS_BAD, TS_OUT_OF_RANGE, TS_WALL_CLOCK = 0, 1, 2, 3
_TS_MIN_NS, _TS_MAX_NS = -(2**63) + 1, 2**63 - 1  # what int64 nanoseconds hold (INT64_MIN is NaT)
_UNIT_NS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
_WALL_CLOCK = ("now", "today")
_YEAR = r"^\s*([+-]?[0-9]{4,})-"


def timestamp_problems(text: np.ndarray, null: np.ndarray, fmt: str | None) -> tuple[Vec, np.ndarray]:
    """:func:`parse_timestamps`, plus a code per row: TS_OK (or null), TS_BAD (not a timestamp),
    TS_OUT_OF_RANGE (a date int64 nanoseconds cannot hold), TS_WALL_CLOCK (``now``/``today``).

    Each text is read on its own, so a column whose texts repeat (a mapping's constant, a date
    without a time) is parsed once per distinct text (pandas takes 2-3 µs a row)."""
    import pandas as pd

    live = np.flatnonzero(~null)
    if len(live) >= _DISTINCT_MIN:
        local, uniq = pd.factorize(pd.Series(text[live], dtype=object))
        if len(uniq) * 2 <= len(live):
            once, why_once = _timestamp_problems(np.asarray(uniq, dtype=object), np.zeros(len(uniq), dtype=bool), fmt)
            values = np.zeros(len(text), dtype=np.int64)
            bad, why = null.copy(), np.zeros(len(text), dtype=np.int8)
            values[live], bad[live], why[live] = once.values[local], once.null[local], why_once[local]
            return Vec(values, bad), why
    return _timestamp_problems(text, null, fmt)


_DISTINCT_MIN = 1024  # rows from which the distinct texts are looked for


def _timestamp_problems(text: np.ndarray, null: np.ndarray, fmt: str | None) -> tuple[Vec, np.ndarray]:
    import pandas as pd

    series = pd.Series(text, dtype=object).where(~null, None)
    out = np.zeros(len(series), dtype=np.int64)
    bad = null.copy()
    why = np.zeros(len(series), dtype=np.int8)
    stripped = series.str.strip()
    wall = stripped.str.lower().isin(_WALL_CLOCK).to_numpy(dtype=bool) & ~null
    if wall.any():  # never handed to pandas, which would read the clock
        series = series.where(~wall, None)
        bad |= wall
        why[wall] = TS_WALL_CLOCK
    if fmt:
        groups = [~bad]
    else:
        # RFC 3339 allows a lower-case "t" and "z"; pandas does not: read them as "T" and "Z"
        stripped = stripped.str.replace(_LOWER_TZ, lambda m: m.group(1) + m.group(2).upper(), regex=True)
        stripped = stripped.str.replace(_LOWER_T, lambda m: m.group(1) + "T", regex=True)
        series = stripped.where(~wall, None)
        # Text with and without an offset is parsed in separate calls: pandas
        # versions disagree on naive text mixed with offsets in one column.
        has_offset = series.str.contains(_OFFSET, regex=True, na=False).to_numpy(dtype=bool)
        groups = [has_offset & ~bad, ~has_offset & ~bad]
    for rows in groups:
        if not rows.any():
            continue
        part = series[rows]
        if fmt:
            parsed = pd.to_datetime(part, format=fmt, utc=True, errors="coerce")
        else:
            parsed = pd.to_datetime(part, format="ISO8601", utc=True, errors="coerce")
        missing = parsed.isna().to_numpy()
        # pandas >= 2 may parse into seconds or microseconds: check the range in that unit, exactly
        native = parsed.dt.tz_localize(None).to_numpy()
        per = _UNIT_NS[np.datetime_data(native.dtype)[0]]
        vals = native.view(np.int64)
        outside = ~missing & ((vals < -(-_TS_MIN_NS // per)) | (vals > _TS_MAX_NS // per))
        missing = missing | outside
        ns = np.zeros(len(part), dtype=np.int64)
        inside = ~missing
        if inside.any():
            ns[inside] = parsed[inside].dt.as_unit("ns").to_numpy(dtype="datetime64[ns]").view(np.int64)
        out[rows] = ns
        bad[rows] |= missing
        codes = np.where(outside, TS_OUT_OF_RANGE, np.where(missing, TS_BAD, TS_OK)).astype(np.int8)
        why[rows] = codes
    # pandas versions that parse into nanoseconds give NaT for far years: say why from the text
    unparsed = (why == TS_BAD) & ~null
    if unparsed.any():
        years = pd.to_numeric(series[unparsed].str.extract(_YEAR, expand=False), errors="coerce").to_numpy()
        far = ~np.isnan(years) & ((years < 1678) | (years > 2261))
        idx = np.flatnonzero(unparsed)[far]
        why[idx] = TS_OUT_OF_RANGE
    return Vec(np.where(bad, 0, out).astype(np.int64), bad), why


_OFFSET = r"[T ].*(?:Z|z|[+-]\d\d(?::?\d\d)?)$"  # a time part, then Z or an offset
_LOWER_TZ = r"^(\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?)(z)$"  # a time, then a lower-case z
_LOWER_T = r"^(\d{4}-\d\d-\d\d)t(?=\d\d:)"  # a date, a lower-case t, a time


# --- type rules -------------------------------------------------------------


def _t_phoneish(types: list[LogicalType]) -> None:
    _want(types, 0, is_stringy, "a phone number")


def _ret(result: LogicalType, check: Callable[[list[LogicalType]], None] | None = None
         ) -> Callable[[list[LogicalType]], LogicalType]:
    def infer(types: list[LogicalType]) -> LogicalType:
        if check:
            check(types)
        return result

    return infer


def _same_numeric(types: list[LogicalType]) -> LogicalType:
    for i in range(len(types)):
        _want(types, i, is_numeric, "a number or duration")
    return LogicalType.DURATION if LogicalType.DURATION in types else LogicalType.FLOAT


def _same_ordered(types: list[LogicalType]) -> LogicalType:
    a, b = types
    if LogicalType.TIMESTAMP in (a, b):
        if {a, b} - {LogicalType.TIMESTAMP, LogicalType.NULL}:
            raise TypeProblem(f"cannot compare {a} with {b}", 1)
        return LogicalType.TIMESTAMP
    return _same_numeric(types)


def _coalesce_type(types: list[LogicalType]) -> LogicalType:
    a, b = types
    if a == LogicalType.NULL:
        return b
    if b != LogicalType.NULL and not compatible(a, b):
        raise TypeProblem(f"both arguments must have the same type ({a} vs {b})", 1)
    return a


def compatible(a: LogicalType, b: LogicalType) -> bool:
    """Whether values of types a and b can be compared with each other."""
    if LogicalType.NULL in (a, b) or a == b:
        return True
    if is_numeric(a) and is_numeric(b):
        return True
    if is_stringy(a) and is_stringy(b):
        return True
    return False


def _timestamp_arg(types: list[LogicalType]) -> None:
    _want(types, 0, lambda x: x in (LogicalType.TIMESTAMP, LogicalType.NULL), "a timestamp")


def _each(n: int, ok: Callable[[LogicalType], bool], what: str) -> Callable[[list[LogicalType]], None]:
    """A check that the first ``n`` arguments are ``what``."""

    def check(types: list[LogicalType]) -> None:
        for i in range(n):
            _want(types, i, ok, what)

    return check


def _strings(n: int) -> Callable[[list[LogicalType]], None]:
    return _each(n, is_stringy, "a string")


def _numbers(n: int, what: str) -> Callable[[list[LogicalType]], None]:
    return _each(n, is_numeric, what)


FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in [
        Function("country", 1, 1, _ret(LogicalType.STRING, _t_phoneish), _country,
                 doc="ISO 3166 code of a phone number's country; null when not a valid number"),
        Function("number_type", 1, 1, _ret(LogicalType.STRING, _t_phoneish), _number_type,
                 doc="mobile, fixed, fixed_or_mobile, toll_free, premium_rate, voip, ...; null when invalid"),
        Function("hour", 1, 2, _ret(LogicalType.FLOAT, _timestamp_arg), _hour, constant_args=(1,),
                 prepare=_prepare_tz, doc="hour 0-23 of a timestamp in a time zone (default UTC)"),
        Function("weekday", 1, 2, _ret(LogicalType.FLOAT, _timestamp_arg), _weekday, constant_args=(1,),
                 prepare=_prepare_tz, doc="ISO weekday, Monday=1 ... Sunday=7, in a time zone"),
        Function("minutes", 1, 1, _ret(LogicalType.FLOAT, _numbers(1, "a duration")), _minutes,
                 doc="a duration in minutes"),
        Function("is_round", 2, 2, _ret(LogicalType.BOOL, _numbers(2, "a number")), _is_round,
                 doc="true when x is a multiple of unit, both as the decimals they print as"),
        Function("abs", 1, 1, _same_numeric, _abs, doc="absolute value"),
        Function("least", 2, 2, _same_ordered, _least, doc="the smaller of two values (null if either is)"),
        Function("greatest", 2, 2, _same_ordered, _greatest, doc="the larger of two values (null if either is)"),
        Function("lower", 1, 1, _ret(LogicalType.STRING, _strings(1)), _lower, doc="lower-case"),
        Function("upper", 1, 1, _ret(LogicalType.STRING, _strings(1)), _upper, doc="upper-case"),
        Function("length", 1, 1, _ret(LogicalType.FLOAT, _strings(1)), _length, doc="number of characters"),
        Function("startswith", 2, 2, _ret(LogicalType.BOOL, _strings(2)), _startswith, doc="string prefix test"),
        Function("endswith", 2, 2, _ret(LogicalType.BOOL, _strings(2)), _endswith, doc="string suffix test"),
        Function("contains", 2, 2, _ret(LogicalType.BOOL, _strings(2)), _contains, doc="substring test"),
        Function("matches", 2, 2, _ret(LogicalType.BOOL, _strings(2)), _matches, constant_args=(1,),
                 prepare=_prepare_regex, doc="RE2 regex search (linear time)"),
        Function("is_null", 1, 1, _ret(LogicalType.BOOL), _is_null, doc="true when the value is null"),
        Function("coalesce", 2, 2, _coalesce_type, _coalesce, doc="the first argument unless null, else the second"),
        # conversions, mostly for mapping files
        Function("concat", 1, 16, _ret(LogicalType.STRING), _concat, doc="join values as text (null as empty)"),
        Function("string", 1, 1, _ret(LogicalType.STRING), _string, doc="a value as text"),
        Function("number", 1, 1, _ret(LogicalType.FLOAT), _number, doc="text to number; null when not numeric"),
        Function("timestamp", 1, 1, _ret(LogicalType.TIMESTAMP, _strings(1)), _timestamp,
                 doc="ISO 8601 text to a timestamp; null when unparseable"),
        Function("parse_time", 2, 2, _ret(LogicalType.TIMESTAMP, _strings(2)), _parse_time, constant_args=(1,),
                 prepare=_prepare_format, doc="text to a timestamp with a strptime format"),
    ]
}
