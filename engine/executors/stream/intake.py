"""One record's fields converted value by value, without building an Arrow table.

``records_from_dicts`` costs about 1 ms whatever the batch size (a dozen
Arrow calls per field), which was most of a single-record ``feed``. Here each
value of a *clean* record is converted by a scalar converter that gives
exactly what the vectorised converters (:mod:`fraudrules.io.convert`) give:

- string: the text as written; an empty text is null;
- enum: the text, which must be one of the listed values;
- phone: as written when the vectorised path keeps it so without the parser
  (:func:`fraudrules.columns.phones.kept_one`: a Chinese mobile in ``+861[3-9]``
  form, or ``+``, a country code and digits with no national prefix to strip),
  otherwise :func:`fraudrules.columns.phones.normalise_one` (the same memoised
  call the vectorised path makes once per distinct value), whose empty result is null;
- int, float, duration: a decimal number, spaces around it allowed, as float;
  an ``int`` must be integral and every number finite;
- bool: true/false/yes/no/1/0 in any case;
- timestamp: strict ISO 8601 (``YYYY-MM-DD``, ``T`` or a space, ``HH:MM``,
  optional ``:SS`` and up to 9 fraction digits, optional ``Z`` or an offset
  ``+HH``, ``+HHMM``, ``+HH:MM``) as int nanoseconds UTC; no offset means UTC.

Anything else -- an unknown field, a JSON value of the wrong kind, a value
that does not fit its type, a missing ``id``/``ts``, or merely an unusual
spelling (a tab around a number, a leap second, a non-ASCII digit) -- makes
:meth:`ScalarIntake.convert` return ``None`` and the caller takes the
vectorised path for that record. So the values and the reject reasons are
those of ``records_from_dicts`` by construction: the scalar path only ever
answers for records that path would accept, and ``tests/test_intake.py``
checks with hypothesis that the two agree value for value.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ...columns.memo import memo_map
from ...columns.phones import kept_one, normalise_one
from ...columns.types import NUMERIC_TYPES
from ...io.convert import MAX_MAGNITUDE, json_kind, value_text
from ...pack.streams import REQUIRED_FIELDS, FieldSpec, Schema

_NUMBER = re.compile(r" *([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?) *")
_BOOLS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
_ISO = re.compile(r" *([0-9]{4})-([0-9]{2})-([0-9]{2})"
                  r"(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?"
                  r"(Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)? *")
_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_NO = object()  # "not for the scalar path"


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


_OFFSET = re.compile(r"(Z|[+-][0-9]{2}(?::?[0-9]{2})?)?")
_CACHE_MAX = 65_536  # entries per memo below; emptied when full
_hour_memo: dict[str, Any] = {}  # "YYYY-MM-DDTHH" -> seconds since 1970-01-01, None or _FULL (_hour_of)
_FULL = object()  # not the positional shape: the full pattern decides
_MISS = object()
_offset_memo: dict[str, int | None] = {}  # "", "Z", "+08:00"... -> seconds to subtract, None when not one


def _date_days(y: int, mo: int, d: int) -> int | None:
    """Days since 1970-01-01 of a date, None when it is no date or outside the years the engine takes."""
    if not 1900 <= y <= 2200 or not 1 <= mo <= 12 or d < 1:
        return None
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    if d > _DAYS[mo - 1] + (mo == 2 and leap):
        return None
    return _days_from_civil(y, mo, d)


def _day_of(text: str) -> int | None:
    """Days of a "YYYY-MM-DD" text (digits checked by the caller), None outside what _ISO takes."""
    return _date_days(int(text[:4]), int(text[5:7]), int(text[8:10]))


def _offset_of(text: str) -> int | None:
    m = _OFFSET.fullmatch(text)
    if m is None:
        return None
    off = m.group(1)
    if off is None or off == "Z":
        return 0
    digits = off[1:].replace(":", "")
    oh, om = int(digits[:2]), int(digits[2:] or 0)
    if oh > 23 or om > 59:
        return None
    return (oh * 3600 + om * 60) * (1 if off[0] == "+" else -1)


def _memo(memo: dict, key: str, make: Callable[[str], Any]) -> Any:
    if key in memo:
        return memo[key]
    if len(memo) >= _CACHE_MAX:
        memo.clear()
    v = memo[key] = make(key)
    return v


def _hour_of(text: str) -> Any:
    """Seconds of a "YYYY-MM-DDTHH" text, None when not a valid one, _FULL when not that shape (a non-digit)."""
    if text[4] != "-" or text[7] != "-" or text[10] not in "T ":
        return _FULL
    digits = text[:4] + text[5:7] + text[8:10] + text[11:13]
    if not (digits.isascii() and digits.isdigit()):
        return _FULL
    days, h = _day_of(text[:10]), int(text[11:13])
    return None if days is None or h > 23 else days * 86400 + h * 3600


def timestamp_ns(text: str) -> int | None:
    """Strict ISO 8601 text -> int ns UTC, or None when the scalar path does not take it.

    ``YYYY-MM-DDTHH:MM:SS`` and an offset (the usual shape) is read by position, its date and hour
    and its offset memoised (a stream's records share hours); any other text goes through the full
    pattern (:func:`_timestamp_ns_full`)."""
    if len(text) >= 19 and text[13] == ":" and text[16] == ":" and text[19:20] in ("", "Z", "+", "-"):
        ms = text[14:16] + text[17:19]
        if ms.isascii() and ms.isdigit():
            hour = text[:13]
            base = _hour_memo.get(hour, _MISS)
            if base is _MISS:
                base = _memo(_hour_memo, hour, _hour_of)
            if base is not _FULL:
                suffix = text[19:]
                off = _offset_memo.get(suffix, _MISS)
                if off is _MISS:
                    off = _memo(_offset_memo, suffix, _offset_of)
                if base is None or off is None:
                    return None
                mi, sec = int(text[14:16]), int(text[17:19])
                if mi > 59 or sec > 59:
                    return None
                return (base + mi * 60 + sec - off) * 1_000_000_000
    return _timestamp_ns_full(text)


def _timestamp_ns_full(text: str) -> int | None:
    """:func:`timestamp_ns` by the full pattern (spaces around, no seconds, a fraction, a date alone)."""
    m = _ISO.fullmatch(text)
    if m is None:
        return None
    days = _date_days(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    if days is None:
        return None
    secs = days * 86400
    frac = 0
    if m.group(4) is not None:
        h, mi = int(m.group(4)), int(m.group(5))
        s = int(m.group(6)) if m.group(6) is not None else 0
        if h > 23 or mi > 59 or s > 59:
            return None
        secs += h * 3600 + mi * 60 + s
        if m.group(7) is not None:
            frac = int(m.group(7).ljust(9, "0"))
        off = m.group(8)
        if off is not None and off != "Z":
            digits = off[1:].replace(":", "")
            oh, om = int(digits[:2]), int(digits[2:] or 0)
            if oh > 23 or om > 59:
                return None
            secs -= (oh * 3600 + om * 60) * (1 if off[0] == "+" else -1)
    return secs * 1_000_000_000 + frac


def _converter(spec: FieldSpec, region: str) -> Callable[[str], Any]:
    """text (not None) -> the normalised value, None for null, or _NO."""
    ftype = spec.type
    if ftype == "string":
        return lambda t: t if t else None
    if ftype == "enum":
        allowed = frozenset(spec.values)
        return lambda t: (t if t in allowed else _NO) if t else None
    if ftype == "phone":
        seen: dict[str, Any] = {}  # numbers recur (callers, payers): one pattern test per distinct one

        def phone(t: str) -> Any:
            if not t:
                return None
            v = seen.get(t, _NO)
            if v is _NO:
                if len(seen) >= _CACHE_MAX:
                    seen.clear()
                v = seen[t] = t if kept_one(t) else (normalise_one(t, region) or None)
            return v
        return phone
    if ftype in NUMERIC_TYPES:
        integral = ftype == "int"

        def number(t: str) -> Any:
            if not t.isascii():
                return _NO
            if t.replace(".", "", 1).isdigit():  # 12, 12.5, .5, 5.: what the pattern takes, as written
                v = float(t)
            else:
                m = _NUMBER.fullmatch(t)
                if m is None:
                    return None if not t.strip(" ") else _NO
                v = float(m.group(1))
            if v - v != 0.0 or abs(v) > MAX_MAGNITUDE or (integral and v != int(v)):
                return _NO  # inf/nan, out of range, or a fraction in an int field
            return v
        return number
    if ftype == "bool":
        def boolean(t: str) -> Any:
            if not t.isascii():
                return _NO
            s = t.strip(" ")
            return _BOOLS.get(s.lower(), _NO) if s else None
        return boolean
    if ftype == "timestamp":
        def ts(t: str) -> Any:
            if not t.isascii():
                return _NO
            if not t.strip(" "):
                return None
            v = timestamp_ns(t)
            return _NO if v is None else v
        return ts
    raise ValueError(f"unknown field type {ftype!r}")  # pragma: no cover - streams.py validates types


_NONE = type(None)
_STR = frozenset({str})
_STR_OR_NONE = frozenset({str, _NONE})
_NUMBERS_OR_NONE = frozenset({int, float, _NONE})
_BOOLS_OR_NONE = frozenset({bool, _NONE})

JsonColumn = Callable[[Sequence, set], "list | None"]


def _ascii_texts(raw: Sequence, types: set) -> bool | None:
    """True: every value an ASCII ``str``; None: the same but some are None; False: anything else."""
    if types == _STR:
        return "".join(raw).isascii()
    if types <= _STR_OR_NONE:
        return None if "".join(filter(None, raw)).isascii() else False
    return False


def _json_numbers(integral: bool) -> JsonColumn:
    """A numeric field's column of JSON numbers (Python int and float, and None) as :meth:`ScalarIntake.convert`
    types each of them (``value_text`` then the text converter: ``float`` of the value, finite, within
    MAX_MAGNITUDE, integral for an int field), with the checks over numpy; None when the column holds anything
    else or a value that fails them (the per-value way then decides, and rejects it)."""

    def column(raw: Sequence, types: set) -> list | None:
        if not types <= _NUMBERS_OR_NONE:
            return None
        try:
            if _NONE in types:
                values = [None if x is None else float(x) for x in raw]
                a = np.array([v for v in values if v is not None], dtype=np.float64)
            else:
                values = list(map(float, raw))
                a = np.array(values, dtype=np.float64)
        except OverflowError:  # an int beyond float's range: not a number the field takes
            return None
        ok = np.isfinite(a) & (np.abs(a) <= MAX_MAGNITUDE)
        if integral:
            ok &= a == np.trunc(a)
        return values if ok.all() else None

    return column


def _json_bools(raw: Sequence, types: set) -> list | None:
    """A bool field's column of JSON booleans (and None), as convert types each: the value itself."""
    return list(raw) if types <= _BOOLS_OR_NONE else None


def _json_column(ftype: str) -> JsonColumn | None:
    """The typed-column reader of a field type whose JSON values come as numbers or booleans, else None."""
    if ftype in NUMERIC_TYPES:
        return _json_numbers(ftype == "int")
    if ftype == "bool":
        return _json_bools
    return None


def _column(raw: Sequence, fn: Callable[[str], Any], plain: bool, memo: dict | None,
            json_values: JsonColumn | None = None) -> list:
    """``[None if x is None else fn(x) if type(x) is str and x.isascii() else _NO for x in raw]`` (for a
    string field, ``x or None`` for ``fn(x)``), with the per-value Python work taken out where the column
    allows: ASCII texts checked in one join, a string column taken as it is, a text seen before looked
    up in ``memo``, timestamps of the usual shapes (:func:`_timestamps`) over numpy, and JSON numbers or
    booleans (``json_values``: what a producer that types its values sends) typed as convert types them."""
    types = set(map(type, raw))
    clean = _ascii_texts(raw, types)
    if clean is False and json_values is not None:
        got = json_values(raw, types)
        if got is not None:
            return got
    if clean is False:  # some value convert() must look at: the per-value way
        if plain:
            return [(x or None) if x is None or (type(x) is str and x.isascii()) else _NO for x in raw]
        return [None if x is None else fn(x) if type(x) is str and x.isascii() else _NO for x in raw]
    if plain:
        return raw if clean and all(raw) else [x or None for x in raw]
    if memo is None:  # a timestamp
        got = _timestamps(raw, fn) if clean and len(raw) >= _TS_NUMPY_MIN else None
        return got if got is not None else [None if x is None else fn(x) for x in raw]
    return memo_map(raw, memo, lambda x: None if x is None else fn(x), _CACHE_MAX)


# timestamps over numpy from this many in a column: below, numpy's ~35 calls (~0.3 ms) cost more than
# timestamp_ns per value (~3-5 µs)
_TS_NUMPY_MIN = 128
# "YYYY-MM-DDTHH:MM:SS": where each of its digits is
_TS_DIGITS = np.array([0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18])
_CUM_DAYS = np.cumsum([0, *_DAYS[:-1]])  # days before each month, not a leap year
_FRACTION_SCALE = 10 ** np.arange(8, -1, -1, dtype=np.int64)  # a fraction's digits, as nanoseconds


def _suffix_shape(text: str) -> tuple[int, int] | None:
    """(fraction digits, offset characters: 0, 1 for ``Z`` or 6 for ``+HH:MM``) of the text after
    ``YYYY-MM-DDTHH:MM:SS``, from its length and last characters alone: the layout every text of a column
    must then have (checked over numpy); None when it is not one of these shapes."""
    rest = len(text) - 19
    if text.endswith("Z"):
        off = 1
    elif rest >= 6 and text[-6] in "+-" and text[-3] == ":":
        off = 6
    else:
        off = 0
    frac = rest - off  # "" or "." and 1-9 digits
    if frac == 0:
        return 0, off
    return (frac - 1, off) if 2 <= frac <= 10 else None


def _timestamps(raw: Sequence, fn: Callable[[str], Any]) -> list | None:
    """:func:`timestamp_ns` of a column of ASCII texts all of one of the usual shapes,
    ``YYYY-MM-DDTHH:MM:SS`` (``T`` or a space), then an optional fraction of 1-9 digits, then nothing, ``Z``
    or ``+HH:MM``/``-HH:MM``, over numpy; a text with a field out of range is left to ``fn`` (the column's
    converter); texts of different lengths or another shape: None for the whole column."""
    n = len(raw)
    lengths = set(map(len, raw))
    if n == 0 or len(lengths) != 1:
        return None
    width = lengths.pop()
    shape = _suffix_shape(raw[0]) if width >= 19 else None
    if shape is None:
        return None
    frac, off = shape
    b = np.frombuffer("".join(raw).encode("ascii"), dtype=np.uint8).reshape(n, width)
    fits = ((b[:, 4] == 45) & (b[:, 7] == 45) & ((b[:, 10] == 84) | (b[:, 10] == 32)) & (b[:, 13] == 58)
            & (b[:, 16] == 58))
    digits = [b[:, _TS_DIGITS]]
    if frac:
        fits &= b[:, 19] == 46
        digits.append(b[:, 20:20 + frac])
    if off == 1:
        fits &= b[:, width - 1] == 90
    elif off == 6:
        fits &= ((b[:, width - 6] == 43) | (b[:, width - 6] == 45)) & (b[:, width - 3] == 58)
        digits.append(b[:, [width - 5, width - 4, width - 2, width - 1]])
    d = np.concatenate(digits, axis=1).astype(np.int64) - 48
    if not (fits.all() and ((d >= 0) & (d <= 9)).all()):
        return None
    y = d[:, 0] * 1000 + d[:, 1] * 100 + d[:, 2] * 10 + d[:, 3]
    mo, day, h, mi, sec = (d[:, k] * 10 + d[:, k + 1] for k in range(4, 14, 2))
    leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    ok = (y >= 1900) & (y <= 2200) & (mo >= 1) & (mo <= 12) & (day >= 1) & (h <= 23) & (mi <= 59) & (sec <= 59)
    seconds = h * 3600 + mi * 60 + sec
    if off == 6:
        oh, om = d[:, -4] * 10 + d[:, -3], d[:, -2] * 10 + d[:, -1]
        ok &= (oh <= 23) & (om <= 59)
        seconds -= np.where(b[:, width - 6] == 43, 1, -1) * (oh * 3600 + om * 60)
    m0 = np.clip(mo, 1, 12) - 1
    ok &= day <= np.asarray(_DAYS)[m0] + ((m0 == 1) & leap)
    # days since 1970-01-01: whole years, their leap days, then the months and days of this year
    yp = y - 1
    days = ((y - 1970) * 365 + (yp // 4 - yp // 100 + yp // 400) - (1969 // 4 - 1969 // 100 + 1969 // 400)
            + _CUM_DAYS[m0] + ((m0 >= 2) & leap) + day - 1)
    ns = (days * 86400 + seconds) * 1_000_000_000
    if frac:
        ns += d[:, 14:14 + frac] @ _FRACTION_SCALE[:frac]
    out = ns.tolist()
    if not ok.all():
        for k in np.flatnonzero(~ok).tolist():
            out[k] = fn(raw[k])
    return out


class ScalarIntake:
    """Scalar conversion of clean records of a schema's streams (see the module docstring)."""

    def __init__(self, schema: Schema, region: str):
        self.schema = schema
        self.region = region
        # stream -> field -> (index, JSON kind, converter, a string field: the text as written, taken inline)
        self._conv: dict[str, dict[str, tuple[int, str, Callable[[str], Any], bool]]] = {
            s: {name: (i, json_kind(f.type, False), _converter(f, region), f.type == "string")
                for i, (name, f) in enumerate(spec.fields.items())}
            for s, spec in schema.streams.items()}
        self._width = {s: len(spec.fields) for s, spec in schema.streams.items()}
        for conv in self._conv.values():  # names convert() skips, field or not
            for name in [n for n in conv if n == "stream" or n.startswith("_")]:
                del conv[name]
        self._required = {s: [conv[r][0] for r in REQUIRED_FIELDS if r in conv] for s, conv in self._conv.items()}
        self._ts_index = {s: conv["ts"][0] for s, conv in self._conv.items()}
        # the names a record may carry for convert_many's column way (others: convert decides)
        self._names = {s: frozenset(conv) | {"stream"} for s, conv in self._conv.items()}
        # convert_many: stream -> field -> text -> value (or _NO) for the fields whose texts recur; None: the
        # field is a timestamp (numpy) or a string (taken as written)
        self._memos: dict[str, dict[str, dict | None]] = {
            s: {name: None if plain or spec.fields[name].type == "timestamp" else {}
                for name, (_i, _k, _fn, plain) in self._conv[s].items()}
            for s, spec in schema.streams.items()}
        # convert_many: stream -> field -> its reader of a column of JSON numbers or booleans (None: no such type)
        self._json_columns: dict[str, dict[str, JsonColumn | None]] = {
            s: {name: _json_column(spec.fields[name].type) for name in self._conv[s]}
            for s, spec in schema.streams.items()}
        # a record with every name: its values in the order of _conv by one call (None: fewer than two names)
        self._getter = {s: operator.itemgetter(*conv) if len(conv) >= 2 else None for s, conv in self._conv.items()}

    def convert_many(self, records: list) -> list[tuple[str, int, tuple] | None]:
        """``[convert(r) for r in records]`` for a micro-batch, a column at a time per stream: each field's
        values are taken from every record and converted together (:func:`_column`: a text seen before
        by a dictionary lookup, timestamps of the usual shapes over numpy, a column of JSON numbers or booleans
        checked at once), instead of a dictionary walk and a converter dispatch per value. A record with
        anything but the usual (an unknown or ``_`` name, a value neither an ASCII text nor a JSON number or
        boolean where its field takes one, a value a converter refuses, a missing id or ts) is left to
        :meth:`convert`, so the answers are the same (tests/test_intake.py)."""
        out: list[tuple[str, int, tuple] | None] = [None] * len(records)
        by_stream: dict[str, list[int]] = {}
        for i, rec in enumerate(records):
            stream = rec.get("stream")
            if type(stream) is str:
                got = by_stream.get(stream)
                if got is None:
                    by_stream[stream] = [i]
                else:
                    got.append(i)
            else:
                out[i] = self.convert(rec)
        # per stream, its records as (positions, each record's values in _conv order, or None: take them by name)
        groups: list[tuple[str, list[int], list | None]] = []
        for stream, idx in by_stream.items():
            names, getter = self._names.get(stream), self._getter.get(stream)
            if names is None:
                for i in idx:
                    out[i] = self.convert(records[i])
                continue
            width = len(names)
            every = [i for i in idx if len(records[i]) == width]
            if every and getter is not None:
                try:  # as many names as the stream has and each of its fields: exactly its names
                    groups.append((stream, every, list(map(getter, [records[i] for i in every]))))
                    if len(every) == len(idx):
                        continue
                    every_set = set(every)
                    idx = [i for i in idx if i not in every_set]
                except KeyError:  # an unknown name instead of a field: by name, below
                    pass
            part = []
            for i in idx:
                if records[i].keys() <= names:
                    part.append(i)
                else:
                    out[i] = self.convert(records[i])
            if part:
                groups.append((stream, part, None))
        for stream, idx, rows in groups:
            recs = [records[i] for i in idx]
            n = len(recs)
            cols: list = [[None] * n] * self._width[stream]  # a name convert() skips: null
            redo: set[int] = set()  # positions in idx that convert decides
            required = self._required[stream]
            conv = self._conv[stream]
            raws = zip(*rows) if rows is not None else ([r.get(name) for r in recs] for name in conv)
            for name, (i, _kind, fn, plain), raw in zip(conv, conv.values(), raws):
                col = _column(raw, fn, plain, self._memos[stream][name], self._json_columns[stream][name])
                if _NO in col:
                    redo.update(k for k, v in enumerate(col) if v is _NO)
                if i in required and None in col:
                    redo.update(k for k, v in enumerate(col) if v is None)
                cols[i] = col
            tsi = self._ts_index[stream]
            for k, row in zip(idx, zip(*cols)):
                out[k] = (stream, row[tsi], row)
            for k in redo:
                out[idx[k]] = self.convert(recs[k])
        return out

    def convert(self, rec: dict) -> tuple[str, int, tuple] | None:
        """(stream, ts ns, row in field order) of a clean record, or None: take the vectorised path."""
        stream = rec.get("stream")
        conv = self._conv.get(stream) if type(stream) is str else None
        if conv is None:
            return None
        row: list[Any] = [None] * self._width[stream]
        for name, raw in rec.items():
            c = conv.get(name)
            if c is None:
                if name == "stream" or (type(name) is str and name.startswith("_")):
                    continue
                return None  # unknown field: a reject, with records_from_dicts' reason
            if raw is None:
                continue
            i, kind, fn, plain = c
            if type(raw) is str:
                if plain and raw.isascii():  # most fields: _converter's string case without the call
                    if raw:
                        row[i] = raw
                    continue
                text = raw
            else:
                text, ok = value_text(raw, kind)
                if not ok:
                    return None
                if text is None:  # NaN for a number: null
                    continue
            if not text.isascii():
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:  # a lone surrogate: Arrow refuses it, records_from_dicts decides
                    return None
            v = fn(text)
            if v is _NO:
                return None
            row[i] = v
        for i in self._required[stream]:
            if row[i] is None:
                return None
        return stream, row[self._ts_index[stream]], tuple(row)
