"""Record inputs: readers, normalisation, rejects and the total order (DESIGN §3, §5).

Inputs are CSV (optionally ``.gz``), JSON Lines or Parquet files, each read
into one stream, natively (columns named after the stream's fields) or through
a mapping file (:mod:`engine.mapping`). Every value is normalised to its
field's type:

- ``string``: kept as written (only CSV's own quoting is removed);
- ``enum``: kept as written and checked against the allowed values;
- ``int``, ``float``, ``duration``: float64; text must be a decimal number
  (``12``, ``-3.5``, ``1e6``; surrounding blanks allowed); an ``int`` must be
  integral; ``nan``/``inf`` are not numbers;
- ``bool``: ``true/false/yes/no/1/0`` in any case;
- ``timestamp``: ISO 8601, converted to UTC; text without an offset is UTC;
- ``phone``: E.164 when valid in the default region; otherwise kept as
  written (short codes, garbage) and never rejected.

An empty value is null. ``id`` and ``ts`` are required: a row without them,
or with any value that does not fit its type, is **rejected** with its input,
line and reason; nothing is dropped silently, and for every input
``read = scored + rejected (+ filtered by a mapping's where)``. A line is the
physical line in a CSV (the header is line 1) or JSON Lines file, and the
1-based row number in a Parquet file. Duplicate ids within a stream are *not*
rejected: the data's ids are kept as they are (note that alert ids hash the
triggering record's id, so two records with one id can give equal alert ids).
Unknown extra columns are ignored.

All records of all inputs are put in one **total order**: by ``ts``, then by
the position of the input in the order given, then by line (DESIGN §5). Each
stream's :class:`Table` is sorted by that order and carries the global rank
(``seq``) of each record.

The readers are vectorised: a clean CSV is parsed by pyarrow in one pass and
normalised column by column (phone numbers once per distinct value). Files
with blank lines, quoted newlines, wrong column counts or invalid UTF-8 take
a still-vectorised path that locates record boundaries with numpy; only CSV
that neither can parse exactly (stray quotes, bare CR line ends) and JSON Lines
chunks with bad lines fall back to per-record Python parsing. Results never
depend on the path taken or on ``chunk_rows``.
"""

from __future__ import annotations

import csv
import datetime as _dt
import gzip
import io
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from ..columns import phones
from ..columns.vec import NUMERIC_TYPES, STRING_TYPES, Vec, empty_array
from ..errors import InputError
from ..lang.functions import parse_timestamps
from ..pack.streams import REQUIRED_FIELDS, FieldSpec, Schema, StreamSpec

if TYPE_CHECKING:  # pragma: no cover
    from .mapping import Mapping

__all__ = [
    "Table", "InputStats", "Reject", "RecordSet", "InputSpec",
    "parse_inputs", "read_inputs", "records_from_dicts", "convert_column", "Problems",
]

FORMATS = ("csv", "jsonl", "parquet")
_EXTENSIONS = {
    ".csv": "csv", ".csv.gz": "csv",
    ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl",
    ".jsonl.gz": "jsonl", ".json.gz": "jsonl", ".ndjson.gz": "jsonl",
    ".parquet": "parquet", ".pq": "parquet",
}
_NUMBER_RE = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
_TRUE = pa.array(["true", "yes", "1"])
_FALSE = pa.array(["false", "no", "0"])
_SHOW_CHARS = 60


# --- public data model ----------------------------------------------------------


@dataclass
class Table:
    """One stream's records, sorted by the total order."""

    stream: str
    columns: dict[str, Vec]  # every field of the stream, in schema order
    seq: np.ndarray  # int64 global total-order position (0..N-1 over all streams)
    input_index: np.ndarray  # int32 index into RecordSet.inputs
    line: np.ndarray  # int64 source line (CSV/JSONL physical line; Parquet row number, 1-based)

    @property
    def n(self) -> int:
        return len(self.seq)

    def ts(self) -> np.ndarray:
        return self.columns["ts"].values


@dataclass
class InputStats:
    path: str
    stream: str
    format: str
    read: int = 0
    rejected: int = 0
    scored: int = 0
    filtered: int = 0  # rows a mapping's ``where`` left out; read = scored + rejected + filtered


@dataclass
class Reject:
    input: str
    line: int
    reason: str


@dataclass
class RecordSet:
    tables: dict[str, Table]  # every stream that appeared in the inputs (possibly with 0 records)
    inputs: list[InputStats]
    rejects: list[Reject]  # sorted by (input order, line)

    @property
    def total(self) -> int:
        return sum(t.n for t in self.tables.values())


@dataclass(frozen=True)
class InputSpec:
    path: Path
    stream: str | None  # None: read through the mapping
    format: str  # csv | jsonl | parquet


# --- inputs ------------------------------------------------------------------------


def _split_ext(path: Path) -> tuple[str, str | None]:
    """(stem, format) of a file name: ``call.csv.gz`` -> ("call", "csv")."""
    name = path.name
    lower = name.lower()
    for ext in sorted(_EXTENSIONS, key=len, reverse=True):
        if lower.endswith(ext) and len(name) > len(ext):
            return name[: -len(ext)], _EXTENSIONS[ext]
    return path.stem, None


def _format_of(path: Path, mapping: Mapping | None = None) -> str:
    if mapping is not None and mapping.format:
        return mapping.format
    fmt = _split_ext(path)[1]
    if fmt is None:
        raise InputError(f"{path}: cannot tell the format from the file name "
                         f"(use .csv, .csv.gz, .jsonl, .json, .ndjson, .parquet or .pq)")
    return fmt


def parse_inputs(args: list[str], schema: Schema, *, mapping: Mapping | None = None) -> list[InputSpec]:
    """Turn command-line inputs into InputSpecs, in the order given.

    - ``STREAM=PATH``: PATH read natively into STREAM.
    - a directory: its files named after streams (``call.csv``,
      ``payment.parquet``, ``sms.jsonl`` ...), sorted by name; other files
      (``labels.csv``, ``README``) are skipped.
    - a file: with a ``mapping``, read through it (stream None); without, its
      name must be a stream's (``call.csv``) or it is an InputError.
    """
    specs: list[InputSpec] = []
    streams = schema.streams
    for arg in args:
        m = re.match(r"^([A-Za-z][A-Za-z0-9_]*)=(.+)$", arg)
        if m and (m.group(1) in streams or not Path(arg).exists()):
            stream, path = m.group(1), Path(m.group(2))
            if stream not in streams:
                raise InputError(f"{arg}: unknown stream {stream!r} (streams: {', '.join(streams)})")
            if path.is_dir():
                raise InputError(f"{arg}: STREAM=PATH takes a file; give a directory alone, its files named "
                                 f"after their streams")
            if not path.is_file():
                raise InputError(f"{path}: no such file")
            specs.append(InputSpec(path, stream, _format_of(path)))
            continue
        path = Path(arg)
        if path.is_dir():
            found = []
            for child in sorted(path.iterdir(), key=lambda p: p.name):
                if child.name.startswith(".") or not child.is_file():
                    continue
                stem, fmt = _split_ext(child)
                if fmt is not None and stem in streams:
                    found.append(InputSpec(child, stem, fmt))
            if not found:
                raise InputError(f"{path}: no files named after a stream (expected e.g. "
                                 f"call.csv, payment.parquet, sms.jsonl; streams: {', '.join(streams)})")
            specs.extend(found)
        elif path.is_file():
            if mapping is not None:
                specs.append(InputSpec(path, None, _format_of(path, mapping)))
                continue
            stem, fmt = _split_ext(path)
            if stem not in streams:
                raise InputError(f"{path}: cannot tell which stream this is: name the file after a stream "
                                 f"({', '.join(streams)}), write STREAM={path}, or give a mapping file")
            specs.append(InputSpec(path, stem, _format_of(path)))
        else:
            raise InputError(f"{path}: no such file or directory")
    return specs


# --- per-row problems ----------------------------------------------------------------


def _show(value: object) -> str:
    text = value if isinstance(value, str) else str(value)
    if len(text) > _SHOW_CHARS:
        text = text[: _SHOW_CHARS - 3] + "..."
    return repr(text)


class Problems:
    """Per-row problems of a chunk: boolean masks with lazily formatted reasons.

    Reasons are only formatted for the rows that are rejected, so the happy
    path costs one mask per check.
    """

    def __init__(self, n: int):
        self.n = n
        self.items: list[tuple[np.ndarray, Callable[[int], str]]] = []

    def add(self, mask: np.ndarray, reason: Callable[[int], str] | str) -> None:
        if not mask.any():
            return
        fn = (lambda i, r=reason: r) if isinstance(reason, str) else reason
        self.items.append((mask, fn))

    def any(self) -> np.ndarray:
        out = np.zeros(self.n, dtype=bool)
        for mask, _ in self.items:
            out |= mask
        return out

    def reason(self, i: int) -> str:
        return "; ".join(fn(i) for mask, fn in self.items if mask[i])


# --- value conversion ------------------------------------------------------------------


@dataclass
class Conv:
    vec: Vec
    bad: np.ndarray  # rows whose value does not fit the type
    reason: Callable[[int], str]


def _np_bool(arr: pa.Array) -> np.ndarray:
    return arr.fill_null(False).to_numpy(zero_copy_only=False).astype(bool)


def _strings(arr: pa.Array) -> np.ndarray:
    """Object array of str (nulls as ""). Columns with few distinct values go
    through a dictionary, which makes one Python str per distinct value."""
    arr = arr.fill_null("")
    n = len(arr)
    if n > 50_000 and pc.count_distinct(arr.slice(0, 16_384)).as_py() < 4_096:
        enc = pc.dictionary_encode(arr)
        distinct = enc.dictionary.to_numpy(zero_copy_only=False).astype(object, copy=False)
        return distinct[enc.indices.to_numpy(zero_copy_only=False)]
    return arr.to_numpy(zero_copy_only=False).astype(object, copy=False)


def _is_string_view(t: pa.DataType) -> bool:
    return getattr(pa.types, "is_string_view", lambda _t: False)(t)  # pyarrow >= 16


def _empty(arr: pa.Array) -> pa.Array:
    return pc.equal(pc.binary_length(arr), 0)  # much faster than comparing with ""


def _no_bad(n: int) -> np.ndarray:
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
        return Conv(Vec.nulls(ftype, n), _no_bad(n), lambda i: "")
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    n = len(arr)
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.cast(t.value_type)
        t = arr.type
    if pa.types.is_null(t):
        return Conv(Vec.nulls(ftype, n), _no_bad(n), lambda i: "")
    if pa.types.is_large_string(t) or _is_string_view(t):
        arr = arr.cast(pa.string())
        t = arr.type
    if pa.types.is_string(t):
        return _from_text(arr, spec, region)
    if ftype in NUMERIC_TYPES and (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)):
        return _from_numbers(arr.cast(pa.float64()), spec)
    if ftype == "bool" and pa.types.is_boolean(t):
        null = arr.is_null().to_numpy(zero_copy_only=False)
        return Conv(Vec(_np_bool(arr), null), _no_bad(n), lambda i: "")
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
    return Conv(Vec.nulls(ftype, n), present, lambda i: f"{name}: expected {want}, got {got} {_show(arr[i].as_py())}")


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
                lambda i: f"{spec.name}: {_show(str(arr[i].as_py()))} is out of the range of timestamps")


def _from_numbers(arr: pa.Array, spec: FieldSpec) -> Conv:
    values = arr.to_numpy(zero_copy_only=False).astype(np.float64)  # nulls -> nan
    null = np.isnan(values)  # a typed NaN is a missing value (pandas writes None as NaN)
    infinite = np.isinf(values)
    with np.errstate(invalid="ignore"):
        notint = ~null & ~infinite & (np.floor(values) != values) if spec.type == "int" else _no_bad(len(values))
    bad = infinite | notint
    name = spec.name

    def reason(i: int) -> str:
        v = float(values[i])
        return f"{name}: {_show(repr(v) if math.isfinite(v) else str(v))} is not " + (
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
            return Conv(_phones(pc.if_else(empty, pa.scalar(None, pa.string()), arr), null, region), _no_bad(n),
                        lambda i: "")
        values = _strings(arr)
        if null.any():
            values[null] = ""
        if ftype == "enum":
            allowed = pa.array(list(spec.values), pa.string())
            bad = ~null & ~_np_bool(pc.is_in(arr, value_set=allowed))
            listed = ", ".join(spec.values)
            return Conv(Vec(values, null | bad), bad, lambda i: f"{name}: {_show(values[i])} is not one of {listed}")
        return Conv(Vec(values, null), _no_bad(n), lambda i: "")

    trimmed = pc.utf8_trim_whitespace(arr)
    empty = _empty(trimmed)
    null = arr.is_null().to_numpy(zero_copy_only=False) | _np_bool(empty)
    live = pc.if_else(empty, pa.scalar(None, pa.string()), trimmed)

    if ftype in NUMERIC_TYPES:
        try:
            # Arrow's own parser takes the numbers _NUMBER_RE admits, and nan/inf
            # (rejected below as not finite); a test checks it takes nothing else.
            values = pc.cast(live, pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)
            okn = ~null
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            ok = pc.match_substring_regex(live, _NUMBER_RE)
            parsed = pc.cast(pc.if_else(ok, live, pa.scalar(None, pa.string())), pa.float64())
            values = parsed.to_numpy(zero_copy_only=False).astype(np.float64)
            okn = _np_bool(ok)
        with np.errstate(invalid="ignore"):
            finite = np.isfinite(values)
            bad = ~null & ~(okn & finite)
            notint = ~null & ~bad & (np.floor(values) != values) if ftype == "int" else _no_bad(n)

        def reason(i: int) -> str:
            what = "is not an integer" if notint[i] else "is not a number"
            return f"{name}: {_show(arr[i].as_py())} {what}"

        bad = bad | notint
        null = null | bad
        return Conv(Vec(np.where(null, 0.0, values), null), bad, reason)

    if ftype == "bool":
        low = pc.utf8_lower(live)
        is_true, is_false = _np_bool(pc.is_in(low, value_set=_TRUE)), _np_bool(pc.is_in(low, value_set=_FALSE))
        bad = ~null & ~is_true & ~is_false
        return Conv(Vec(is_true, null | bad), bad,
                    lambda i: f"{name}: {_show(arr[i].as_py())} is not true/false (true, false, yes, no, 1, 0)")

    if ftype == "timestamp":
        ns = None
        for typ in (pa.timestamp("ns", "UTC"), pa.timestamp("ns")):
            # Arrow parses strict ISO 8601 fast; it accepts a subset of what
            # pandas accepts and agrees with it there (tests check this).
            try:
                ns = pc.cast(live, typ).cast(pa.int64())
                break
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                continue
        if ns is not None:
            vec = Vec(ns.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64), null.copy())
        else:
            vec = parse_timestamps(_strings(live), null, None)
        bad = vec.null & ~null
        return Conv(vec, bad, lambda i: f"{name}: bad timestamp {_show(arr[i].as_py())}")

    raise ValueError(f"unknown field type {ftype!r}")  # pragma: no cover - streams.py validates types


def _phones(arr: pa.Array, null: np.ndarray, region: str) -> Vec:
    """E.164 normalisation, once per distinct value (Arrow's dictionary encoding)."""
    n = len(arr)
    out = empty_array("phone", n)
    if null.all():
        return Vec(out, null)
    enc = pc.dictionary_encode(arr)
    # the dictionary is already distinct: normalise it, not the rows
    dictionary = np.empty(len(enc.dictionary), dtype=object)
    dictionary[:] = enc.dictionary.to_pylist()
    norm, norm_null = phones.normalise(dictionary, np.zeros(len(dictionary), dtype=bool), region)
    idx = enc.indices.fill_null(0).to_numpy(zero_copy_only=False)
    out = norm[idx]
    null = null | norm_null[idx]
    if null.any():
        out[null] = ""
    return Vec(out, null)


# --- raw readers ------------------------------------------------------------------------


@dataclass
class RawChunk:
    """Rows of one input as read, before typing: text or typed Arrow columns."""

    columns: dict[str, pa.Array]  # requested source columns present in the input
    n: int  # parsed rows
    line: np.ndarray  # int64 per parsed row
    row: np.ndarray  # int64 1-based ordinal of the row among the input's records
    rejects: list[tuple[int, str]] = field(default_factory=list)  # rows that could not be parsed
    # values of the wrong type found while parsing (JSON), by column ("" = the whole record)
    pre: dict[str, tuple[np.ndarray, Callable[[int], str]]] = field(default_factory=dict)

    @property
    def read(self) -> int:
        return self.n + len(self.rejects)


class _Fallback(Exception):
    """The vectorised path cannot read this input exactly: use the slow one."""


def _read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
        if path.name.lower().endswith(".gz"):
            data = gzip.decompress(data)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data


def _utf8_ok(data: bytes) -> bool:
    if data.isascii():
        return True
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _bad_utf8_records(data: bytes, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Which records (byte spans) are not valid UTF-8; decodes only non-ASCII ones."""
    bad = np.zeros(len(starts), dtype=bool)
    if _utf8_ok(data):
        return bad
    high = np.flatnonzero(buf >= 0x80)
    rec = np.searchsorted(starts, high, side="right") - 1
    for r in np.unique(rec[rec >= 0]):  # only records with non-ASCII bytes
        try:
            data[starts[r]: ends[r]].decode("utf-8")
        except UnicodeDecodeError:
            bad[r] = True
    return bad


def _runs_buffer(data: bytes, starts: np.ndarray, ends: np.ndarray, keep: np.ndarray) -> pa.Buffer:
    """The bytes of the kept records, as few slices as possible, newline-joined."""
    idx = np.flatnonzero(keep)
    if len(idx) == 0:
        return pa.py_buffer(b"")
    breaks = np.flatnonzero(np.diff(idx) != 1)
    firsts = np.concatenate(([idx[0]], idx[breaks + 1]))
    lasts = np.concatenate((idx[breaks], [idx[-1]]))
    view = memoryview(data)
    if len(firsts) == 1:
        return pa.py_buffer(view[starts[firsts[0]]: ends[lasts[0]]])
    return pa.py_buffer(b"\n".join(view[starts[a]: ends[b]] for a, b in zip(firsts, lasts)))


# CSV -----------------------------------------------------------------------------------


def _parse_header(raw: bytes, path: Path) -> list[str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: the header line is not valid UTF-8") from None
    rows = list(csv.reader([text.rstrip("\r\n")]))
    return [h.strip() for h in rows[0]] if rows else []


class _Csv:
    """A CSV input: the header, and chunks of rows as Arrow text columns."""

    def __init__(self, path: Path, data: bytes, requested: list[str], chunk_rows: int, *, slow: bool = False):
        self.path, self.data, self.chunk_rows = path, data, chunk_rows
        self.requested = requested
        self.header: list[str] = []
        self._plan: Callable[[], Iterator[RawChunk]] = lambda: iter(())
        if not data or data.isspace():
            return
        if slow:
            self._slow()
            return
        self.buf = np.frombuffer(data, dtype=np.uint8)
        self.nl = np.flatnonzero(self.buf == 10)  # every physical line end
        if b"\r" in data:
            cr = np.flatnonzero(self.buf == 13)
            if cr[-1] == len(data) - 1 or not (self.buf[cr + 1] == 10).all():
                self._slow()  # a bare CR line end: only the slow path counts lines as Arrow reads them
                return
        if not (self._fast() or self._general()):
            self._slow()

    def chunks(self) -> Iterator[RawChunk]:
        return self._plan()

    # column selection: the first occurrence of each requested name
    def _selection(self) -> dict[str, int]:
        where: dict[str, int] = {}
        for i, h in enumerate(self.header):
            if h in self.requested and h not in where:
                where[h] = i
        return where

    def _arrow_read(self, buffer: pa.Buffer, newlines_in_values: bool, on_invalid: list) -> pa.Table:
        ncols = len(self.header)
        names = [f"c{i}" for i in range(ncols)]
        sel = self._selection()
        include = [names[i] for i in sel.values()] or [names[0]]

        def handler(row) -> str:
            on_invalid.append(row)
            return "skip"

        return pa_csv.read_csv(
            pa.BufferReader(buffer),
            read_options=pa_csv.ReadOptions(column_names=names, block_size=1 << 24),
            parse_options=pa_csv.ParseOptions(newlines_in_values=newlines_in_values, invalid_row_handler=handler),
            convert_options=pa_csv.ConvertOptions(column_types={c: pa.string() for c in include},
                                                  include_columns=include, check_utf8=False),
        )

    def _columns(self, table: pa.Table, lo: int, hi: int) -> dict[str, pa.Array]:
        out = {}
        for name, i in self._selection().items():
            col = table.column(f"c{i}").slice(lo, hi - lo)
            out[name] = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
        return out

    def _fast(self) -> bool:
        """One-line records, no blank lines, valid UTF-8: one Arrow pass, line = row + 2."""
        data, buf, nls = self.data, self.buf, self.nl
        if data[:1] in (b"\n", b"\r"):
            return False
        gaps = np.diff(nls)
        if (gaps == 1).any() or ((gaps == 2) & (buf[nls[1:] - 1] == 13)).any():
            return False  # blank lines: Arrow skips them, so rows would not be lines
        if not _utf8_ok(data):
            return False
        nl = int(nls[0]) if len(nls) else -1
        self.header = _parse_header(data if nl < 0 else data[:nl], self.path)
        if not self.header:
            return False
        body = memoryview(data)[nl + 1:] if nl >= 0 else memoryview(b"")
        nlines = len(nls) - 1 + (0 if data.endswith(b"\n") else 1) if len(body) else 0
        invalid: list = []
        try:
            table = self._arrow_read(pa.py_buffer(body), False, invalid) if nlines else None
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return False
        if invalid or (table is not None and table.num_rows != nlines):
            return False

        def plan() -> Iterator[RawChunk]:
            for lo in range(0, nlines, self.chunk_rows):
                hi = min(nlines, lo + self.chunk_rows)
                rows = np.arange(lo + 1, hi + 1, dtype=np.int64)
                yield RawChunk(self._columns(table, lo, hi), hi - lo, rows + 1, rows)

        self._plan = plan
        return True

    def _general(self) -> bool:
        """Record boundaries from numpy (quote parity), then Arrow per chunk."""
        data, buf, nl = self.data, self.buf, self.nl
        quotes = None
        quoted_newlines = False
        if b'"' in data:
            quotes = np.flatnonzero(buf == 34)
            if len(quotes) % 2 or not _quotes_well_formed(buf, quotes):
                return False
            parity = np.searchsorted(quotes, nl) % 2
            term = nl[parity == 0]
            quoted_newlines = bool(parity.any())
        else:
            term = nl
        starts = np.concatenate(([0], term + 1)).astype(np.int64)
        ends = np.concatenate((term, [len(buf)])).astype(np.int64)
        has_cr = (ends > starts) & (buf[np.clip(ends - 1, 0, None)] == 13)
        ends = ends - has_cr
        keep = ends > starts
        starts, ends = starts[keep], ends[keep]
        if len(starts) == 0:
            return True
        lines = np.searchsorted(nl, starts) + 1
        self.header = _parse_header(data[starts[0]: ends[0]], self.path)
        starts, ends, lines = starts[1:], ends[1:], lines[1:]
        nrec = len(starts)
        bad_utf8 = _bad_utf8_records(data, buf, starts, ends)
        commas = np.flatnonzero(buf == 44)
        if quotes is not None:
            commas = commas[np.searchsorted(quotes, commas) % 2 == 0]
        ncols = np.searchsorted(commas, ends) - np.searchsorted(commas, starts) + 1
        want = len(self.header)
        bad_cols = (ncols != want) & ~bad_utf8

        def plan() -> Iterator[RawChunk]:
            for lo in range(0, nrec, self.chunk_rows):
                hi = min(nrec, lo + self.chunk_rows)
                sl = slice(lo, hi)
                good = ~bad_utf8[sl] & ~bad_cols[sl]
                rejects = [(int(lines[lo + i]), "invalid UTF-8") for i in np.flatnonzero(bad_utf8[sl])]
                rejects += [(int(lines[lo + i]), f"expected {want} columns, got {int(ncols[lo + i])}")
                            for i in np.flatnonzero(bad_cols[sl])]
                ngood = int(good.sum())
                columns: dict[str, pa.Array] = {}
                if ngood:
                    invalid: list = []
                    try:
                        table = self._arrow_read(_runs_buffer(data, starts[sl], ends[sl], good), quoted_newlines,
                                                 invalid)
                    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                        raise _Fallback() from None
                    if invalid or table.num_rows != ngood:
                        raise _Fallback()
                    columns = self._columns(table, 0, ngood)
                rows = np.arange(lo + 1, hi + 1, dtype=np.int64)
                yield RawChunk(columns, ngood, lines[sl][good].astype(np.int64), rows[good], sorted(rejects))

        self._plan = plan
        return True

    def _slow(self) -> None:
        """Python's csv module, record by record: exact physical lines for odd files."""
        text = self.data.decode("utf-8", "surrogateescape")
        surrogate = re.compile("[\udc80-\udcff]")
        reader = csv.reader(io.StringIO(text, newline=""))
        records: list[tuple[int, list[str] | None, str]] = []  # (line, fields or None, reason)
        prev = 0
        header: list[str] | None = None
        while True:
            try:
                fields = next(reader)
                reason = ""
            except StopIteration:
                break
            except csv.Error as exc:
                fields, reason = None, f"malformed CSV: {exc}"
            start, prev = prev + 1, reader.line_num
            if fields is not None and not fields:
                continue  # a blank line
            if header is None:
                if fields is None or surrogate.search("".join(fields)):
                    raise InputError(f"{self.path}: the header line cannot be read")
                header = [h.strip() for h in fields]
                continue
            if fields is not None and surrogate.search("".join(fields)):
                fields, reason = None, "invalid UTF-8"
            elif fields is not None and len(fields) != len(header):
                reason = f"expected {len(header)} columns, got {len(fields)}"
                fields = None
            records.append((start, fields, reason))
        self.header = header or []

        def plan() -> Iterator[RawChunk]:
            sel = self._selection()
            for lo in range(0, len(records), self.chunk_rows):
                part = records[lo: lo + self.chunk_rows]
                good = [(k, r) for k, r in enumerate(part) if r[1] is not None]
                columns = {name: pa.array([r[1][i] for _, r in good], pa.string()) for name, i in sel.items()}
                yield RawChunk(columns, len(good), np.array([r[0] for _, r in good], dtype=np.int64),
                               np.array([lo + k + 1 for k, _ in good], dtype=np.int64),
                               [(r[0], r[2]) for r in part if r[1] is None])

        self._plan = plan


def _quotes_well_formed(buf: np.ndarray, q: np.ndarray) -> bool:
    """Every quote opens a field, closes one, or is half of a doubled quote.

    Under this condition a newline is a record end exactly when an even number
    of quotes precede it, which is how Arrow (and RFC 4180) read the file.
    """
    n = len(buf)
    seps = np.array([44, 10, 13], dtype=np.uint8)
    opening, closing = q[0::2], q[1::2]
    prev = buf[np.clip(opening - 1, 0, None)]
    prev_ok = (opening == 0) | np.isin(prev, seps) | ((prev == 34) & np.isin(opening - 1, closing))
    nxt = buf[np.clip(closing + 1, None, n - 1)]
    next_ok = (closing == n - 1) | np.isin(nxt, seps) | ((nxt == 34) & np.isin(closing + 1, opening))
    return bool(prev_ok.all() and next_ok.all())


# JSON Lines ----------------------------------------------------------------------------

_ARROW_TYPE = {"number": pa.float64(), "bool": pa.bool_()}  # JSON kinds Arrow may type; the rest are text


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


def _json_type(v: object) -> str:
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
        if math.isnan(v):
            return None, kind in ("number", "any")
        return repr(v), kind in ("number", "any")
    if isinstance(v, _dt.datetime):
        return v.isoformat(), kind in ("timestamp", "any")
    if isinstance(v, _dt.date):
        return v.isoformat(), kind in ("timestamp", "any")
    return None, False


def dict_rows_to_columns(rows: list[dict], kinds: dict[str, str], n: int
                          ) -> tuple[dict[str, pa.Array], dict[str, tuple[np.ndarray, Callable[[int], str]]]]:
    """Columns of text from parsed objects; values of the wrong JSON type are problems."""
    columns: dict[str, pa.Array] = {}
    pre: dict[str, tuple[np.ndarray, Callable[[int], str]]] = {}
    for name, kind in kinds.items():
        if not any(name in r for r in rows):
            continue
        texts: list[str | None] = []
        bad = np.zeros(n, dtype=bool)
        for i, r in enumerate(rows):
            text, ok = value_text(r.get(name), kind)
            if not ok:
                bad[i] = True
                text = None
            texts.append(text)
        columns[name] = pa.array(texts, pa.string())
        if bad.any():
            pre[name] = (bad, lambda i, name=name, kind=kind: f"{name}: expected {_WANT[kind]}, got "
                         f"{_json_type(rows[i].get(name))} {_show(json.dumps(rows[i].get(name), default=str))}")
    return columns, pre


class _Jsonl:
    """A JSON Lines input: one object per line."""

    def __init__(self, path: Path, data: bytes, kinds: dict[str, str], chunk_rows: int):
        self.path, self.data, self.kinds, self.chunk_rows = path, data, kinds, chunk_rows
        self.header = None
        self.schema = pa.schema([(k, _ARROW_TYPE.get(kind, pa.string())) for k, kind in kinds.items()])
        self._plan: Callable[[], Iterator[RawChunk]] = lambda: iter(())
        if not data or data.isspace():
            return
        if not self._fast():
            self._general()

    def chunks(self) -> Iterator[RawChunk]:
        return self._plan()

    def _arrow(self, buffer: pa.Buffer) -> pa.Table:
        if not len(self.schema):
            raise pa.ArrowInvalid("no columns")
        return pa_json.read_json(pa.BufferReader(buffer), read_options=pa_json.ReadOptions(block_size=1 << 24),
                                 parse_options=pa_json.ParseOptions(explicit_schema=self.schema,
                                                                    unexpected_field_behavior="ignore"))

    def _fast(self) -> bool:
        data = self.data
        tail = data[data.rfind(b"\n") + 1:]
        if re.match(rb"[ \t\r]*\n", data) or re.search(rb"\n[ \t\r]*\n", data) or (tail and not tail.strip()):
            return False
        if not _utf8_ok(data):
            return False
        nlines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
        try:
            table = self._arrow(pa.py_buffer(data))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return False
        if table.num_rows != nlines:
            return False

        def plan() -> Iterator[RawChunk]:
            for lo in range(0, nlines, self.chunk_rows):
                hi = min(nlines, lo + self.chunk_rows)
                cols = {}
                for name in table.column_names:
                    col = table.column(name).slice(lo, hi - lo)
                    cols[name] = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
                rows = np.arange(lo + 1, hi + 1, dtype=np.int64)
                yield RawChunk(cols, hi - lo, rows, rows)

        self._plan = plan
        return True

    def _general(self) -> None:
        data = self.data
        buf = np.frombuffer(data, dtype=np.uint8)
        nl = np.flatnonzero(buf == 10)
        starts = np.concatenate(([0], nl + 1)).astype(np.int64)
        ends = np.concatenate((nl, [len(buf)])).astype(np.int64)
        if starts[-1] == len(buf):
            starts, ends = starts[:-1], ends[:-1]
        lines = np.arange(1, len(starts) + 1, dtype=np.int64)
        nonws = ~np.isin(buf, np.array([9, 10, 13, 32], dtype=np.uint8))
        seg = np.logical_or.reduceat(nonws, starts) if len(starts) else np.zeros(0, dtype=bool)
        seg &= ends > starts
        starts, ends, lines = starts[seg], ends[seg], lines[seg]
        bad_utf8 = _bad_utf8_records(data, buf, starts, ends)
        nrec = len(starts)

        def plan() -> Iterator[RawChunk]:
            for lo in range(0, nrec, self.chunk_rows):
                hi = min(nrec, lo + self.chunk_rows)
                sl = slice(lo, hi)
                good = ~bad_utf8[sl]
                rejects = [(int(lines[lo + i]), "invalid UTF-8") for i in np.flatnonzero(bad_utf8[sl])]
                rows = np.arange(lo + 1, hi + 1, dtype=np.int64)
                ngood = int(good.sum())
                table = None
                if ngood:
                    try:
                        table = self._arrow(_runs_buffer(data, starts[sl], ends[sl], good))
                        if table.num_rows != ngood:
                            table = None
                    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                        table = None
                if table is not None or not ngood:
                    cols = {c: table.column(c).combine_chunks() for c in table.column_names} if table else {}
                    yield RawChunk(cols, ngood, lines[sl][good], rows[good], rejects)
                    continue
                # per-line parsing of this chunk only: find the bad lines and type the rest
                parsed: list[dict] = []
                keep_lines, keep_rows = [], []
                for i in np.flatnonzero(good):
                    raw = data[starts[lo + i]: ends[lo + i]]
                    try:
                        obj = json.loads(raw)
                    except ValueError as exc:
                        msg = getattr(exc, "msg", str(exc))
                        col = getattr(exc, "colno", None)
                        where = f" (column {col})" if col else ""
                        rejects.append((int(lines[lo + i]), f"invalid JSON: {msg}{where}"))
                        continue
                    if not isinstance(obj, dict):
                        rejects.append((int(lines[lo + i]), f"not a JSON object (got {_json_type(obj)})"))
                        continue
                    parsed.append(obj)
                    keep_lines.append(lines[lo + i])
                    keep_rows.append(rows[i])
                cols, pre = dict_rows_to_columns(parsed, self.kinds, len(parsed))
                yield RawChunk(cols, len(parsed), np.array(keep_lines, dtype=np.int64),
                               np.array(keep_rows, dtype=np.int64), sorted(rejects), pre)

        self._plan = plan


# Parquet -------------------------------------------------------------------------------


class _Parquet:
    def __init__(self, path: Path, requested: list[str], chunk_rows: int):
        self.path, self.chunk_rows = path, chunk_rows
        try:
            self.file = pq.ParquetFile(path)
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"{path}: cannot read Parquet: {exc}") from None
        self.header = list(self.file.schema_arrow.names)
        self.present = [c for c in requested if c in self.header]

    def chunks(self) -> Iterator[RawChunk]:
        lo = 0
        try:
            if not self.present:
                total = self.file.metadata.num_rows
                for lo in range(0, total, self.chunk_rows):
                    k = min(self.chunk_rows, total - lo)
                    rows = np.arange(lo + 1, lo + k + 1, dtype=np.int64)
                    yield RawChunk({}, k, rows, rows)
                return
            for batch in self.file.iter_batches(batch_size=self.chunk_rows, columns=self.present):
                k = batch.num_rows
                rows = np.arange(lo + 1, lo + k + 1, dtype=np.int64)
                yield RawChunk({c: batch.column(c) for c in self.present}, k, rows, rows)
                lo += k
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"{self.path}: cannot read Parquet: {exc}") from None


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
        pre_bad = _no_bad(n)
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


@dataclass
class _InputResult:
    stats: InputStats
    stream: str
    chunks: list[dict[str, Vec]] = field(default_factory=list)
    lines: list[np.ndarray] = field(default_factory=list)
    rejects: list[tuple[int, str]] = field(default_factory=list)
    order: list[np.ndarray] = field(default_factory=list)  # secondary sort key after ts (default: line)

    def columns(self, spec: StreamSpec) -> dict[str, Vec]:
        out = {}
        for name, fspec in spec.fields.items():
            parts = [c[name] for c in self.chunks]
            if not parts:
                out[name] = Vec.nulls(fspec.type, 0)
            elif len(parts) == 1:
                out[name] = parts[0]
            else:
                out[name] = Vec(np.concatenate([p.values for p in parts]), np.concatenate([p.null for p in parts]))
        return out

    def line(self) -> np.ndarray:
        return np.concatenate(self.lines) if self.lines else np.zeros(0, dtype=np.int64)

    def add(self, chunk: RawChunk, norm: Normalised) -> np.ndarray:
        """Count the chunk, keep its good rows, record its rejects; returns the kept row indices."""
        bad = norm.problems.any()
        keep = ~bad & ~norm.filtered
        self.rejects.extend(chunk.rejects)
        for i in np.flatnonzero(bad):
            self.rejects.append((int(chunk.line[i]), norm.problems.reason(int(i))))
        self.stats.read += chunk.read
        self.stats.rejected += len(chunk.rejects) + int(bad.sum())
        self.stats.filtered += int(norm.filtered.sum())
        self.stats.scored += int(keep.sum())
        idx = np.flatnonzero(keep)
        if len(idx) == chunk.n:
            self.chunks.append(norm.columns)
            self.lines.append(chunk.line.astype(np.int64))
        else:
            self.chunks.append({k: v.take(idx) for k, v in norm.columns.items()})
            self.lines.append(chunk.line[idx].astype(np.int64))
        return idx


def _source(spec: InputSpec, fmt: str, requested: list[str], kinds: dict[str, str], chunk_rows: int, *,
            slow: bool = False):
    if fmt == "parquet":
        if not spec.path.is_file():
            raise InputError(f"{spec.path}: no such file")
        return _Parquet(spec.path, requested, chunk_rows)
    data = _read_bytes(spec.path)
    if fmt == "csv":
        return _Csv(spec.path, data, requested, chunk_rows, slow=slow)
    if fmt == "jsonl":
        return _Jsonl(spec.path, data, kinds, chunk_rows)
    raise InputError(f"{spec.path}: unknown format {fmt!r} (one of {', '.join(FORMATS)})")


def _read_one(spec: InputSpec, schema: Schema, region: str, mapping: Mapping | None, chunk_rows: int,
              progress: Callable[[int], None] | None, done_before: int) -> _InputResult:
    if spec.stream is None:
        if mapping is None:
            raise InputError(f"{spec.path}: no stream given and no mapping file")
        stream = mapping.stream
        fmt = mapping.format or spec.format
        requested = list(mapping.columns)
        kinds = {c: json_kind(mapping.source_type(c), mapping.source_type(c) == "string") for c in requested}
        region = mapping.region or region
    else:
        if spec.stream not in schema.streams:
            raise InputError(f"{spec.path}: unknown stream {spec.stream!r}")
        stream, fmt = spec.stream, spec.format
        sspec = schema.streams[stream]
        requested = list(sspec.fields)
        kinds = {name: json_kind(f.type, False) for name, f in sspec.fields.items()}
    target = schema.streams[stream]

    def attempt(slow: bool) -> _InputResult:
        result = _InputResult(InputStats(str(spec.path), stream, fmt), stream)
        src = _source(spec, fmt, requested, kinds, chunk_rows, slow=slow)
        if spec.stream is None:
            assert mapping is not None
            mapping.check_columns(src.header, str(spec.path))
        for chunk in src.chunks():
            if spec.stream is None:
                assert mapping is not None
                norm = mapping.apply(chunk, target, region)
            else:
                norm = normalise_native(chunk, target, region)
            result.add(chunk, norm)
            if progress is not None:
                progress(done_before + result.stats.read)
        return result

    try:
        return attempt(False)
    except _Fallback:
        return attempt(True)


def _assemble(schema: Schema, results: list[_InputResult], keys: list[tuple[np.ndarray, np.ndarray]]
              ) -> tuple[dict[str, Table], list[Reject]]:
    """Tables in the total order (ts, key1, key2) and the sorted rejects."""
    cols = [r_.columns(schema.streams[r_.stream]) for r_ in results]
    if results:
        ts = np.concatenate([c["ts"].values for c in cols])
        k1 = np.concatenate([k[0] for k in keys])
        k2 = np.concatenate([k[1] for k in keys])
    else:
        ts = k1 = k2 = np.zeros(0, dtype=np.int64)
    if _in_order(ts, k1, k2):
        seq_all = np.arange(len(ts), dtype=np.int64)
    else:
        order = np.lexsort((k2, k1, ts))
        seq_all = np.empty(len(order), dtype=np.int64)
        seq_all[order] = np.arange(len(order), dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum([len(c["ts"].values) for c in cols]))).astype(np.int64)

    tables: dict[str, Table] = {}
    for stream in dict.fromkeys(r_.stream for r_ in results):
        members = [i for i, r_ in enumerate(results) if r_.stream == stream]
        spec = schema.streams[stream]
        seq = np.concatenate([seq_all[offsets[i]: offsets[i + 1]] for i in members])
        inp = np.concatenate([np.full(offsets[i + 1] - offsets[i], i, dtype=np.int32) for i in members])
        line = np.concatenate([results[i].line() for i in members]).astype(np.int64)
        perm = None if np.all(seq[1:] > seq[:-1]) else np.argsort(seq, kind="stable")
        columns = {}
        for name in spec.fields:
            parts = [cols[i][name] for i in members]
            values = np.concatenate([p.values for p in parts]) if len(parts) > 1 else parts[0].values
            null = np.concatenate([p.null for p in parts]) if len(parts) > 1 else parts[0].null
            columns[name] = Vec(values, null) if perm is None else Vec(values[perm], null[perm])
        if perm is not None:
            seq, inp, line = seq[perm], inp[perm], line[perm]
        tables[stream] = Table(stream, columns, seq, inp, line)
    rejects = [Reject(r_.stats.path, line, reason) for r_ in results for line, reason in sorted(r_.rejects)]
    return tables, rejects


def _in_order(ts: np.ndarray, k1: np.ndarray, k2: np.ndarray) -> bool:
    """Whether rows are already sorted by (ts, k1, k2), strictly."""
    if len(ts) < 2:
        return True
    a, b = slice(None, -1), slice(1, None)
    later = (ts[b] > ts[a]) | ((ts[b] == ts[a]) & ((k1[b] > k1[a]) | ((k1[b] == k1[a]) & (k2[b] > k2[a]))))
    return bool(later.all())


def read_inputs(specs: list[InputSpec], schema: Schema, *, region: str = "CN", mapping: Mapping | None = None,
                chunk_rows: int = 1_000_000, progress: Callable[[int], None] | None = None) -> RecordSet:
    """Read, normalise and order every input; rejects are kept with their reasons.

    Inputs whose ``stream`` is None are read through ``mapping`` (whose
    ``region``, if set, is the default phone region of that source).
    """
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be positive")
    results: list[_InputResult] = []
    done = 0
    for spec in specs:
        res = _read_one(spec, schema, region, mapping, chunk_rows, progress, done)
        done += res.stats.read
        results.append(res)
    keys = []
    for i, res in enumerate(results):
        line = res.line()
        keys.append((np.full(len(line), i, dtype=np.int64), line))
    tables, rejects = _assemble(schema, results, keys)
    return RecordSet(tables, [r_.stats for r_ in results], rejects)


def records_from_dicts(records: list[dict], schema: Schema, *, region: str = "CN") -> RecordSet:
    """Records written inline (rule tests): ``{stream: call, id: c1, ts: "...", ...}``.

    The position of a record is its place in the list (ties in ``ts`` keep list
    order); its line is ``_line`` if given, else its index + 1. Keys starting
    with ``_`` are ignored; an unknown field rejects the record (a typo in a
    test must not pass silently). Values are typed as in JSON Lines.
    """
    by_stream: dict[str, list[int]] = {}
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise InputError(f"record {i + 1}: expected a mapping of field values")
        stream = rec.get("stream")
        if stream not in schema.streams:
            raise InputError(f"record {i + 1}: unknown or missing stream {stream!r} "
                             f"(streams: {', '.join(schema.streams)})")
        by_stream.setdefault(stream, []).append(i)
    results: list[_InputResult] = []
    keys = []
    for stream, idx in by_stream.items():
        spec = schema.streams[stream]
        rows = [{k: v for k, v in records[i].items() if k != "stream" and not str(k).startswith("_")} for i in idx]
        lines = np.array([int(records[i].get("_line", i + 1)) for i in idx], dtype=np.int64)
        n = len(rows)
        kinds = {name: json_kind(f.type, False) for name, f in spec.fields.items()}
        cols, pre = dict_rows_to_columns(rows, kinds, n)
        unknown = np.array([any(k not in spec.fields for k in r) for r in rows], dtype=bool)
        if unknown.any():
            pre[""] = (unknown, lambda j, rows=rows, spec=spec: "unknown field " + ", ".join(
                repr(k) for k in rows[j] if k not in spec.fields) + f" in stream {spec.name!r}")
        chunk = RawChunk(cols, n, lines, np.arange(1, n + 1, dtype=np.int64), [], pre)
        res = _InputResult(InputStats("<records>", stream, "records"), stream)
        kept = res.add(chunk, normalise_native(chunk, spec, region))
        # the order key after ts is the position in the list, whatever the stream
        results.append(res)
        keys.append((np.zeros(len(kept), dtype=np.int64), np.array(idx, dtype=np.int64)[kept]))
    tables, rejects = _assemble(schema, results, keys)
    rejects.sort(key=lambda r: r.line)
    return RecordSet(tables, [r_.stats for r_ in results], rejects)
