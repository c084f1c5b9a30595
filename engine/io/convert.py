"""Typing raw values as a stream's fields (docs/design.md §3): per-row problems, one converter per logical type."""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..columns import phones
from ..columns.types import NUMERIC_TYPES, STRING_TYPES
from ..columns.vec import Coded, Vec, coded, empty_array
from ..lang.functions import TS_OUT_OF_RANGE, TS_WALL_CLOCK, timestamp_problems
from ..lang.hints import enum_hint
from ..pack.streams import REQUIRED_FIELDS, FieldSpec, StreamSpec
from .arrow import text_objects, text_vec
from .raw import RawChunk, one_array

NUMBER_RE = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
# Numbers beyond this magnitude are rejected: sums of them would lose their cents (float64 holds
# integers exactly to 2**53 ~ 9.007e15) and 1e305 overflows a window sum to infinity.
MAX_MAGNITUDE = 1e15
_TRUE, _FALSE = ["true", "yes", "1"], ["false", "no", "0"]  # made Arrow arrays where used: pa.array of a list
# imports pandas (pyarrow's shim looks for pandas objects), which then need not be imported before the read starts
_SHOW_CHARS = 60
_CAST_SAMPLE = 64  # rows cast before the whole column


# --- per-row problems ----------------------------------------------------------------


def show_value(value: object) -> str:
    text = value if isinstance(value, str) else str(value)
    if len(text) > _SHOW_CHARS:
        text = text[: _SHOW_CHARS - 3] + "..."
    return repr(text)


def duplicate_id_reason(stream: str, rid: object) -> str:
    """The reject reason of a record whose id an earlier record of its stream has, in every reader and executor
    (alert ids hash the triggering record's id, so a second record with it is refused)."""
    return f"id: duplicate id {show_value(rid)} (an earlier record of stream {stream!r} has it)"


# printable ASCII but ' and \\: what repr() only wraps in quotes
_PLAIN_RE2 = r"^[\x20-\x26\x28-\x5b\x5d-\x7e]*$"


def shown_values(arr: pa.Array, rows: np.ndarray) -> np.ndarray:
    """``show_value`` of the text of ``arr`` (a string array) at ``rows``, as an object array: Arrow
    quotes the plain ASCII text, which is nearly all of it; Python's repr takes the rest."""
    sub = arr.take(pa.array(rows, pa.int64()))
    plain = _np_bool(pc.match_substring_regex(sub, _PLAIN_RE2))
    long = _np_bool(pc.greater(pc.utf8_length(sub), _SHOW_CHARS))
    cut = pc.binary_join_element_wise(pc.utf8_slice_codeunits(sub, 0, _SHOW_CHARS - 3), "...", "")
    text = pc.if_else(pa.array(long), cut, sub)
    out = pc.binary_join_element_wise("'", text, "'", "").to_numpy(zero_copy_only=False).astype(object)
    other = np.flatnonzero(~plain)
    if len(other):
        out[other] = [show_value(v) for v in sub.take(pa.array(other)).to_pylist()]
    return out


class ManyReasons:
    """A reason formatted for many rows in one call: ``fn(rows)`` gives the text of each of ``rows``.
    A run that rejects millions of rows (a wrong file or mapping) formats them a column at a time."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray]):
        self.fn = fn

    def __call__(self, i: int) -> str:
        return str(self.fn(np.array([i], dtype=np.int64))[0])


Reason = "Callable[[int], str] | ManyReasons | str"  # per row, for many rows, or the same for all


class Problems:
    """Per-row problems of a chunk: boolean masks with lazily formatted reasons.

    Reasons are only formatted for the rows that are rejected, so the happy
    path costs one mask per check.
    """

    def __init__(self, n: int):
        self.n = n
        self.items: list[tuple[np.ndarray, Reason]] = []

    def add(self, mask: np.ndarray, reason: Reason) -> None:
        if not mask.any():
            return
        self.items.append((mask, reason))

    def any(self) -> np.ndarray:
        out = np.zeros(self.n, dtype=bool)
        for mask, _ in self.items:
            out |= mask
        return out

    def reasons(self, rows: np.ndarray) -> np.ndarray:
        """The reasons of ``rows`` (object array): each row's problems joined with "; ", in the order
        they were added, formatted a problem at a time over all of its rows."""
        out = np.full(len(rows), "", dtype=object)
        started = np.zeros(len(rows), dtype=bool)
        for mask, reason in self.items:
            hit = np.flatnonzero(mask[rows])
            if not len(hit):
                continue
            at = rows[hit]
            if isinstance(reason, str):
                parts = np.full(len(at), reason, dtype=object)
            elif isinstance(reason, ManyReasons):
                parts = np.asarray(reason.fn(at), dtype=object)
            else:
                parts = np.array([reason(i) for i in at.tolist()], dtype=object)
            out[hit] = np.where(started[hit], out[hit] + "; " + parts, parts)
            started[hit] = True
        return out

    def reason(self, i: int) -> str:
        return str(self.reasons(np.array([i], dtype=np.int64))[0])


# --- value conversion ------------------------------------------------------------------


@dataclass
class Conv:
    vec: Vec
    bad: np.ndarray  # rows whose value does not fit the type
    reason: Reason


def _np_bool(arr: pa.Array) -> np.ndarray:
    return arr.fill_null(False).to_numpy(zero_copy_only=False).astype(bool)


def _strings(arr: pa.Array) -> np.ndarray:
    """Object array of str (nulls as ""): one Python str per distinct value of a column whose
    values repeat (accounts, devices), not one per row (arrow.text_objects)."""
    return text_objects(arr)


def _is_string_view(t: pa.DataType) -> bool:
    return getattr(pa.types, "is_string_view", lambda _t: False)(t)  # pyarrow >= 16


def _empty(arr: pa.Array) -> pa.Array:
    return pc.equal(pc.binary_length(arr), 0)  # much faster than comparing with ""


def no_bad(n: int) -> np.ndarray:
    return np.zeros(n, dtype=bool)


def _type_name(t: pa.DataType) -> str:
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "a decimal number"
    if pa.types.is_integer(t):
        return "an integer"
    if pa.types.is_boolean(t):
        return "true/false"
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return "a timestamp"
    return f"a {t}"


def convert_column(arr: pa.Array | pa.ChunkedArray | None, spec: FieldSpec, region: str, n: int | None = None,
                   *, lenient: bool = False) -> Conv:
    """Convert one input column to its field's type: a Vec, the bad rows and why.

    ``arr`` may be text (CSV, JSON strings, mapping results) or typed (Parquet,
    JSON numbers and booleans, mapping results). ``lenient`` (mapping source
    columns of type string) turns any scalar into text instead of refusing it.
    """
    name, ftype = spec.name, spec.type
    if arr is None:
        assert n is not None
        return Conv(Vec.nulls(ftype, n), no_bad(n), lambda i: "")
    if isinstance(arr, pa.ChunkedArray):
        arr = one_array(arr)
    n = len(arr)
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.cast(t.value_type)
        t = arr.type
    if pa.types.is_null(t):
        return Conv(Vec.nulls(ftype, n), no_bad(n), lambda i: "")
    if pa.types.is_large_string(t) or _is_string_view(t):
        arr = arr.cast(pa.string())
        t = arr.type
    if pa.types.is_string(t):
        return _from_text(arr, spec, region)
    if ftype in NUMERIC_TYPES and (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)):
        return _from_numbers(_as_float64(arr), spec, arr)
    if ftype == "bool" and pa.types.is_boolean(t):
        null = arr.is_null().to_numpy(zero_copy_only=False)
        return Conv(Vec(_np_bool(arr), null), no_bad(n), lambda i: "")
    if ftype == "timestamp" and (pa.types.is_timestamp(t) or pa.types.is_date(t)):
        return _from_timestamps(arr, spec)
    # integers are text for text fields (a phone or an id stored as a number) and 0/1 for bools;
    # a mapping's string source columns take any scalar as text
    if pa.types.is_integer(t) or (lenient and (pa.types.is_primitive(t) or pa.types.is_decimal(t))):
        return _from_text(arr.cast(pa.string()), spec, region)
    # a type that cannot hold this field's values: every non-null row is rejected
    present = ~arr.is_null().to_numpy(zero_copy_only=False)
    want = {"string": "text", "phone": "text", "enum": "text", "bool": "true/false",
            "timestamp": "a timestamp"}.get(ftype, "a number")
    got = _type_name(t)
    return Conv(Vec.nulls(ftype, n), present,
                lambda i: f"{name}: expected {want}, got {got} {show_value(typed_text(arr, i))}")


_NS_PER = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


def _from_timestamps(arr: pa.Array, spec: FieldSpec) -> Conv:
    """Typed timestamps (UTC inside Arrow whatever the zone; naive = UTC) and dates, to int64 ns."""
    t = arr.type
    if pa.types.is_date32(t):
        raw, per = arr.cast(pa.int32()).cast(pa.int64()), 86_400 * 10**9
    elif pa.types.is_date64(t):
        raw, per = arr.cast(pa.int64()), 10**6
    else:
        raw, per = arr.cast(pa.int64()), _NS_PER[t.unit]
    null = raw.is_null().to_numpy(zero_copy_only=False)
    values = raw.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    bad = np.abs(values) > (2**63 - 1) // per  # beyond what int64 nanoseconds hold (years 1677-2262)
    values = np.where(bad, 0, values) * per
    return Conv(Vec(values, null | bad), bad,
                lambda i: f"{spec.name}: timestamp out of range {show_value(typed_text(arr, i))} "
                          f"(int64 nanoseconds hold 1677-09-21 to 2262-04-11)")


def typed_text(arr: pa.Array, i: int) -> str:
    """Value ``i`` of a typed column as text, for a reason; never raises (a far date, a big decimal)."""
    try:
        return str(arr[i].as_py())
    except (ValueError, OverflowError, pa.ArrowException):  # a date Python's datetime cannot hold
        pass
    try:
        return f"{arr.cast(pa.int64())[i].as_py()} ({arr.type})"  # the stored number and its unit
    except (ValueError, OverflowError, pa.ArrowException):
        return f"a value of type {arr.type}"


def _as_float64(arr: pa.Array) -> pa.Array:
    """Typed numbers as float64; int64 beyond 2**53 and decimals round (they are then out of range)."""
    return arr.cast(pa.float64(), safe=False)


def _from_numbers(arr: pa.Array, spec: FieldSpec, original: pa.Array | None = None) -> Conv:
    values = arr.to_numpy(zero_copy_only=False).astype(np.float64)  # nulls -> nan
    null = np.isnan(values)  # a typed NaN is a missing value (pandas writes None as NaN)
    infinite = np.isinf(values)
    with np.errstate(invalid="ignore"):
        huge = ~infinite & (np.abs(values) > MAX_MAGNITUDE)
        notint = ~null & ~infinite & ~huge & (np.floor(values) != values) if spec.type == "int" \
            else no_bad(len(values))
    bad = infinite | huge | notint
    name = spec.name
    original = arr if original is None else original

    def reason(i: int) -> str:
        if huge[i]:
            return f"{name}: {show_value(typed_text(original, i))} is out of range (|x| > 1e15)"
        v = float(values[i])
        return f"{name}: {show_value(repr(v) if math.isfinite(v) else str(v))} is not " + (
            "an integer" if notint[i] else "a number")

    null = null | bad
    return Conv(Vec(np.where(null, 0.0, values), null), bad, reason)


def _from_text(arr: pa.Array, spec: FieldSpec, region: str) -> Conv:
    name, ftype = spec.name, spec.type
    n = len(arr)
    if ftype in STRING_TYPES:
        empty = _empty(arr)
        null = arr.is_null().to_numpy(zero_copy_only=False) | _np_bool(empty)
        if ftype == "phone":
            return Conv(_phones(pc.if_else(empty, pa.scalar(None, pa.string()), arr), null, region), no_bad(n),
                        lambda i: "")
        vec = text_vec(arr, null)
        if ftype == "enum":
            allowed = pa.array(list(spec.values), pa.string())
            bad = ~null & ~_np_bool(pc.is_in(arr, value_set=allowed))
            listed = ", ".join(spec.values)
            if bad.any():  # a bad row keeps its text (for the reason) and is null from here on
                vec.null = null | bad
            return Conv(vec, bad, lambda i: f"{name}: {show_value(vec.values[i])} is not one of {listed}"
                                            + enum_hint(vec.values[i], spec.values))
        return Conv(vec, no_bad(n), lambda i: "")

    trimmed = pc.utf8_trim_whitespace(arr)
    empty = _empty(trimmed)
    null = arr.is_null().to_numpy(zero_copy_only=False) | _np_bool(empty)
    live = pc.if_else(empty, pa.scalar(None, pa.string()), trimmed)

    if ftype in NUMERIC_TYPES:
        try:
            # Arrow's own parser takes the numbers NUMBER_RE admits, and nan/inf
            # (rejected below as not finite); a test checks it takes nothing else.
            values = pc.cast(live, pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)
            okn = ~null
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            ok = pc.match_substring_regex(live, NUMBER_RE)
            parsed = pc.cast(pc.if_else(ok, live, pa.scalar(None, pa.string())), pa.float64())
            values = parsed.to_numpy(zero_copy_only=False).astype(np.float64)
            okn = _np_bool(ok)
        with np.errstate(invalid="ignore"):
            finite = np.isfinite(values)
            bad = ~null & ~(okn & finite)
            huge = ~null & ~bad & (np.abs(values) > MAX_MAGNITUDE)
            notint = ~null & ~bad & ~huge & (np.floor(values) != values) if ftype == "int" else no_bad(n)

        def reasons(rows: np.ndarray) -> np.ndarray:
            what = np.where(huge[rows], " is out of range (|x| > 1e15)",
                            np.where(notint[rows], " is not an integer", " is not a number")).astype(object)
            return f"{name}: " + shown_values(arr, rows) + what

        bad = bad | huge | notint
        null = null | bad
        return Conv(Vec(np.where(null, 0.0, values), null), bad, ManyReasons(reasons))

    if ftype == "bool":
        low = pc.utf8_lower(live)
        is_true = _np_bool(pc.is_in(low, value_set=pa.array(_TRUE)))
        is_false = _np_bool(pc.is_in(low, value_set=pa.array(_FALSE)))
        bad = ~null & ~is_true & ~is_false
        return Conv(Vec(is_true, null | bad), bad, ManyReasons(
            lambda rows: f"{name}: " + shown_values(arr, rows) + " is not true/false (true, false, yes, no, 1, 0)"))

    if ftype == "timestamp":
        ns = None
        for typ in (pa.timestamp("ns", "UTC"), pa.timestamp("ns")):
            # Arrow parses strict ISO 8601 fast; it accepts a subset of what
            # pandas accepts and agrees with it there (tests check this).
            # A cast that fails reads every row first (2-3 µs each): the first rows tell
            # whether the whole column can fit, since it cannot if any of them does not.
            try:
                pc.cast(live.slice(0, _CAST_SAMPLE), typ)
                ns = pc.cast(live, typ).cast(pa.int64())
                break
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                continue
        why = None
        if ns is not None:
            vec = Vec(ns.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64), null.copy())
        else:
            vec, why = timestamp_problems(_strings(live), null, None)
        bad = vec.null & ~null

        def ts_reasons(rows: np.ndarray) -> np.ndarray:
            shown = shown_values(arr, rows)
            code = why[rows] if why is not None else np.zeros(len(rows), dtype=np.int8)
            return np.where(
                code == TS_OUT_OF_RANGE,
                f"{name}: timestamp out of range " + shown + " (int64 nanoseconds hold 1677-09-21 to 2262-04-11)",
                np.where(code == TS_WALL_CLOCK,
                         f"{name}: " + shown + " is the wall clock, not a timestamp (a run must give the same "
                                               "output every time)",
                         f"{name}: bad timestamp " + shown))

        return Conv(vec, bad, ManyReasons(ts_reasons))

    raise ValueError(f"unknown field type {ftype!r}")  # pragma: no cover - streams.py validates types


def _phones(arr: pa.Array, null: np.ndarray, region: str) -> Vec:
    """E.164 normalisation, once per distinct value (Arrow's dictionary encoding); the column stays
    coded by the normalised values (columns.vec.Coded)."""
    n = len(arr)
    if null.all():
        return Vec(empty_array("phone", n), null)
    enc = pc.dictionary_encode(arr)
    # the dictionary is already distinct: normalise it, not the rows. The usual number is already
    # written as E.164: Arrow's kernels say which, and only the rest become str for the parser
    canonical = phones.kept_as_written(enc.dictionary)
    dictionary = enc.dictionary
    idx = enc.indices.fill_null(0).to_numpy(zero_copy_only=False)
    rest = np.flatnonzero(~canonical)
    if len(rest):
        written = np.asarray(dictionary.take(pa.array(rest)).to_pylist(), dtype=object)
        norm, norm_null = phones.normalise(written, np.zeros(len(rest), dtype=bool), region,
                                           np.zeros(len(rest), dtype=bool))
        bad = np.zeros(len(dictionary), dtype=bool)
        bad[rest] = norm_null
        null = null | bad[idx]
        changed = np.zeros(len(dictionary), dtype=bool)
        changed[rest] = True
        dictionary = pc.replace_with_mask(dictionary, pa.array(changed),
                                          pa.array(np.where(norm_null, "", norm), pa.string()))
    # "" last: the value of null rows (never a number's: empty text was made null above)
    codes = np.where(null, len(dictionary), idx).astype(np.int32)
    dictionary = pa.concat_arrays([dictionary, pa.array([""], pa.string())])
    # numbers written apart may normalise alike: coded() merges them; kept as written, all stay apart
    return coded(codes, dictionary, null) if len(rest) else Coded(codes, dictionary, null)


# JSON Lines ----------------------------------------------------------------------------

ARROW_JSON_TYPES = {"number": pa.float64(), "bool": pa.bool_()}  # JSON kinds Arrow may type; the rest are text


def json_kind(ftype: str, lenient: bool) -> str:
    if lenient:
        return "any"
    if ftype in STRING_TYPES:
        return "text"
    if ftype in NUMERIC_TYPES:
        return "number"
    return ftype  # bool | timestamp


_WANT = {"text": "text", "number": "a number", "bool": "true/false", "timestamp": "a timestamp string",
         "any": "a single value"}


# Records are flat objects. Python's parser recurses once per level of nesting, and where it stops depends on the
# version (a RecursionError at ~1,000 levels on 3.11, none at 1,000 on 3.12): a bound of our own gives every
# machine the same reject for the same line (docs/design.md §8).
MAX_JSON_DEPTH = 100


def loads_json(text: str | bytes) -> Any:
    """``json.loads`` of untrusted text (a record line, a message, a request body). Arrays and objects nested
    more than MAX_JSON_DEPTH deep are a ValueError ("nested too deeply"), as any other invalid JSON is, on every
    Python version, and every caller rejects it with the same reason. Text with fewer brackets than that is
    parsed at once (two counts in C); only the rest is scanned for its depth."""
    opens = ("[", "{") if isinstance(text, str) else (b"[", b"{")
    if sum(map(text.count, opens)) > MAX_JSON_DEPTH and _json_depth(text) > MAX_JSON_DEPTH:
        raise ValueError("nested too deeply")
    try:
        return json.loads(text)
    except RecursionError:  # pragma: no cover - the bound above comes first on every version
        raise ValueError("nested too deeply") from None


_DEPTH_STEP = np.zeros(256, dtype=np.int8)
_DEPTH_STEP[[ord("["), ord("{")]] = 1
_DEPTH_STEP[[ord("]"), ord("}")]] = -1


def _json_depth(text: str | bytes) -> int:
    """The deepest nesting of arrays and objects in JSON text, brackets inside strings left out. Over the bytes
    in numpy, no regex and no loop in Python: a 16 MiB line in a fraction of a second whatever it holds (a
    backtracking regex for strings is quadratic on a run of escaped quotes)."""
    b = np.frombuffer(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text, dtype=np.uint8)
    if not len(b):
        return 0
    at = np.arange(len(b))
    # a quote is escaped when an odd run of backslashes ends just before it
    last_plain = np.maximum.accumulate(np.where(b != ord("\\"), at, -1))
    run_before = np.empty(len(b), dtype=np.int64)
    run_before[0] = 0
    run_before[1:] = at[:-1] - last_plain[:-1]
    quote = (b == ord('"')) & (run_before % 2 == 0)
    opened = np.cumsum(quote) - quote  # quotes before each byte: odd inside a string
    step = np.where(opened % 2 == 0, _DEPTH_STEP[b], 0)
    return int(np.cumsum(step, dtype=np.int64).max(initial=0))


def json_type(v: object) -> str:
    if isinstance(v, bool):
        return "true/false"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, dict):
        return "an object"
    if isinstance(v, list):
        return "a list"
    return type(v).__name__


def value_text(v: object, kind: str) -> tuple[str | None, bool]:
    """A JSON (or YAML) value as text for the text converter; (text, ok)."""
    if v is None:
        return None, True
    if isinstance(v, str):
        return v, True
    if isinstance(v, bool):
        return ("true" if v else "false"), kind in ("bool", "any")
    if isinstance(v, int):
        return str(v), kind in ("text", "number", "bool", "any")
    if isinstance(v, float):
        # NaN and Infinity (which Python's JSON reader takes) are not numbers, as in CSV
        return ("nan" if math.isnan(v) else repr(v)), kind in ("number", "any")
    if isinstance(v, _dt.datetime):
        return v.isoformat(), kind in ("timestamp", "any")
    if isinstance(v, _dt.date):
        return v.isoformat(), kind in ("timestamp", "any")
    return None, False


def has_surrogate(text: str) -> bool:
    """A lone surrogate (JSON's "\\ud800"): text that UTF-8 cannot hold."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _shown_json(value: object) -> str:
    try:
        return show_value(json.dumps(value, default=str))
    except (ValueError, RecursionError):  # nested too deep to show
        return show_value(json_type(value))


def dict_rows_to_columns(rows: list[dict], kinds: dict[str, str], n: int
                          ) -> tuple[dict[str, pa.Array], dict[str, tuple[np.ndarray, Callable[[int], str]]]]:
    """Columns of text from parsed objects; values of the wrong JSON type, and text with a lone
    surrogate, are problems."""
    columns: dict[str, pa.Array] = {}
    pre: dict[str, tuple[np.ndarray, Callable[[int], str]]] = {}
    for name, kind in kinds.items():
        if not any(name in r for r in rows):
            continue
        texts: list[str | None] = []
        bad = np.zeros(n, dtype=bool)
        surrogate = np.zeros(n, dtype=bool)
        for i, r in enumerate(rows):
            text, ok = value_text(r.get(name), kind)
            if not ok:
                bad[i] = True
                text = None
            elif text is not None and has_surrogate(text):
                bad[i] = surrogate[i] = True
                text = None
            texts.append(text)
        columns[name] = pa.array(texts, pa.string())
        if bad.any():
            def reason(i: int, name: str = name, kind: str = kind, surrogate: np.ndarray = surrogate) -> str:
                value = rows[i].get(name)
                if surrogate[i]:
                    return f"{name}: invalid text (a lone surrogate) {_shown_json(value)}"
                return f"{name}: expected {_WANT[kind]}, got {json_type(value)} {_shown_json(value)}"

            pre[name] = (bad, reason)
    return columns, pre


# --- normalisation and assembly ---------------------------------------------------------------


@dataclass
class Normalised:
    columns: dict[str, Vec]  # all rows of the chunk
    problems: Problems
    filtered: np.ndarray  # rows a mapping's where left out


def normalise_native(chunk: RawChunk, spec: StreamSpec, region: str) -> Normalised:
    """Type the raw columns of a native input as the stream's fields."""
    n = chunk.n
    problems = Problems(n)
    if "" in chunk.pre:
        problems.add(*chunk.pre[""])
    columns: dict[str, Vec] = {}
    for name, fspec in spec.fields.items():
        pre_bad = no_bad(n)
        if name in chunk.pre:
            pre_bad = chunk.pre[name][0]
            problems.add(*chunk.pre[name])
        arr = chunk.columns.get(name)
        if arr is None:
            columns[name] = Vec.nulls(fspec.type, n)
            if name in REQUIRED_FIELDS:
                problems.add(np.ones(n, dtype=bool), f"missing column {name}")
            continue
        conv = convert_column(arr, fspec, region)
        problems.add(conv.bad, conv.reason)
        if name in REQUIRED_FIELDS:
            problems.add(conv.vec.null & ~conv.bad & ~pre_bad, f"missing {name}")
        columns[name] = conv.vec
    return Normalised(columns, problems, np.zeros(n, dtype=bool))
