"""Record inputs: readers, normalisation, rejects and the total order (docs/design.md §3, §5).

Inputs are CSV or JSON Lines (optionally ``.gz``, ``.bz2`` or ``.xz``) or Parquet files, each read
into one stream, natively (columns named after the stream's fields) or through
a mapping file (:mod:`engine.mapping`). Every value is normalised to its
field's type:

- ``string``: kept as written (only CSV's own quoting is removed);
- ``enum``: kept as written and checked against the allowed values;
- ``int``, ``float``, ``duration``: float64; text must be a decimal number
  (``12``, ``-3.5``, ``1e6``; surrounding blanks allowed); an ``int`` must be
  integral; ``nan``/``inf`` (also JSON's NaN and Infinity) are not numbers, and
  a magnitude above 1e15 is out of range;
- ``bool``: ``true/false/yes/no/1/0`` in any case;
- ``timestamp``: ISO 8601, converted to UTC; text without an offset is UTC;
  years outside 1678-2261 (int64 nanoseconds) are out of range, and ``now``
  and ``today`` are refused (the output would depend on the wall clock);
- ``phone``: E.164 when valid in the default region; otherwise kept as
  written (short codes, garbage, text with letters) and never rejected.

An empty value is null. ``id`` and ``ts`` are required: a row without them,
or with any value that does not fit its type, is **rejected** with its input,
line and reason; nothing is dropped silently, and for every input
``read = scored + rejected (+ filtered by a mapping's where)``. A line is the
physical line in a CSV (the header is line 1) or JSON Lines file, and the
1-based row number in a Parquet file. A record whose id an earlier record of
its stream has (earlier in the inputs as given, then by line) is rejected as a
"duplicate id": alert ids hash the triggering record's id, so they stay unique.
Unknown extra columns are ignored; a column named twice is an InputError.

All records of all inputs are put in one **total order**: by ``ts``, then by
the position of the input in the order given, then by line (docs/design.md §5). Each
stream's :class:`Table` is sorted by that order and carries the global rank
(``seq``) of each record.

The readers stream: a text file (decompressed as it is read) is cut into
blocks of about 8 MB and 256K lines at record ends, and each block is parsed
on its own, so memory is bounded by the block, not by the file or its
compression ratio; lines stay the file's physical lines. The readers are
vectorised: a clean block is parsed by pyarrow in one pass and normalised
column by column (phone numbers once per distinct value). Blocks with blank
lines, quoted newlines, wrong column counts or invalid UTF-8 take a
still-vectorised path that locates record boundaries with numpy; only CSV that
neither can parse exactly (stray quotes, bare CR line ends) and JSON Lines
chunks with bad lines fall back to per-record Python parsing (for CSV, the
whole input again, streaming through Python's csv module). Results never
depend on the path taken, on the block size or on ``chunk_rows``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..columns.hashing import text_hashes
from ..columns.types import LogicalType
from ..columns.vec import Coded, Vec, concat
from ..errors import InputError
from ..pack.streams import Schema, StreamSpec
from ..runtime.heap import trim_thread_heaps
from .arrow import vec_to_arrow
from .convert import Normalised, dict_rows_to_columns, duplicate_id_reason, json_kind, normalise_native
from .raw import RawChunk, SlowPathNeeded
from .read_csv import DELIMITER, CsvReader
from .read_jsonl import JsonlReader
from .read_parquet import ParquetReader
from .spill import Spill
from .tables import FORMATS, InputSpec, InputStats, RecordSet, Rejects, Table
from .threads import Background, map_ahead, map_on_threads, read_ahead

if TYPE_CHECKING:  # pragma: no cover
    from .mapping import Mapping


__all__ = [
    "InputSpec", "RecordSet", "Table", "parse_inputs", "read_inputs", "records_from_dicts",
]

_EXTENSIONS = {
    **{f".csv{z}": "csv" for z in ("", ".gz", ".bz2", ".xz")},
    **{f".{ext}{z}": "jsonl" for ext in ("jsonl", "json", "ndjson") for z in ("", ".gz", ".bz2", ".xz")},
    ".parquet": "parquet", ".pq": "parquet",
}

# --- inputs ------------------------------------------------------------------------


def _split_ext(path: Path) -> tuple[str, str | None]:
    """(stem, format) of a file name: ``call.csv.gz`` -> ("call", "csv")."""
    name = path.name
    lower = name.lower()
    for ext in sorted(_EXTENSIONS, key=len, reverse=True):
        if lower.endswith(ext) and len(name) > len(ext):
            return name[: -len(ext)], _EXTENSIONS[ext]
    return path.stem, None


_NAME_SEPARATORS = ("_", "-", ".")


def stream_of_name(stem: str, streams: Iterable[str]) -> str | None:
    """The stream a file is named after: its stem is the stream's name, or starts with it and a separator
    (``call_2026-03-01``, ``payment-20260301``, ``SMS.part1``: daily exports carry a date), in any case.
    The longest name wins (``sim_event_0301`` is sim_event's even beside a stream named ``sim``)."""
    lower = stem.lower()
    best = None
    for name in streams:
        n = name.lower()
        if (lower == n or (lower.startswith(n) and lower[len(n):len(n) + 1] in _NAME_SEPARATORS)) \
                and (best is None or len(name) > len(best)):
            best = name
    return best


def _data_files(folder: Path) -> Iterator[tuple[Path, str, str]]:
    """(file, stem, format) of each data file (.csv, .jsonl, .parquet ...) of a folder, in name order; hidden
    files, subfolders and other files left out."""
    for child in sorted(folder.iterdir(), key=lambda p: p.name):
        if not child.name.startswith(".") and child.is_file():
            stem, fmt = _split_ext(child)
            if fmt is not None:
                yield child, stem, fmt


def skipped_in_folders(args: list[str], specs: list[InputSpec]) -> list[Path]:
    """The data files in the folders among ``args`` that ``specs`` do not read: named after no stream, so
    :func:`parse_inputs` left them out. A caller says so: a day's payment file named ``payments_0301.csv``
    would otherwise go unscored without a word."""
    read = {spec.path for spec in specs}
    return [child for arg in args if Path(arg).is_dir() for child, _, _ in _data_files(Path(arg))
            if child not in read]


def _format_of(path: Path, mapping: Mapping | None = None) -> str:
    if mapping is not None and mapping.format:
        return mapping.format
    fmt = _split_ext(path)[1]
    if fmt is None:
        raise InputError(f"{path}: cannot tell the format from the file name "
                         f"(use .csv, .jsonl, .json, .ndjson, each optionally .gz, .bz2 or .xz, .parquet or .pq)")
    return fmt


def parse_inputs(args: list[str], schema: Schema, *, mapping: Mapping | None = None) -> list[InputSpec]:
    """Turn command-line inputs into InputSpecs, in the order given.

    - ``STREAM=PATH``: PATH read natively into STREAM.
    - a directory: its files named after streams (``call.csv``,
      ``payment.parquet``, ``sms.jsonl``, ``call_2026-03-01.csv`` ...: :func:`stream_of_name`),
      sorted by name; other files (``labels.csv``, ``README``) are skipped
      (:func:`skipped_in_folders` lists the data files among them).
    - a file: with a ``mapping``, read through it (stream None); without, its
      name must be a stream's (``call.csv``) or it is an InputError.

    With a ``mapping``, ``STREAM=PATH`` is read through it too (STREAM must be the
    mapping's stream). A file given twice (also through a folder) is an InputError:
    its records would be scored twice.
    """
    specs = _parse_inputs(args, schema, mapping)
    seen: dict[tuple[int, int], str] = {}
    for spec in specs:
        try:
            st = spec.path.stat()  # the file itself, however it is named (symlink, hard link, ./x)
        except OSError:  # reading it fails with its own message
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen:
            raise InputError(f"{spec.path}: given twice (also as {seen[key]}); each input is read once")
        seen[key] = str(spec.path)
    return specs


def _parse_inputs(args: list[str], schema: Schema, mapping: Mapping | None) -> list[InputSpec]:
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
            if mapping is not None:
                if stream != mapping.stream:
                    raise InputError(f"{arg}: the mapping {mapping.path} reads stream {mapping.stream!r}, "
                                     f"not {stream!r}")
                specs.append(InputSpec(path, None, _format_of(path, mapping)))
                continue
            specs.append(InputSpec(path, stream, _format_of(path)))
            continue
        path = Path(arg)
        if path.is_dir():
            found = []
            for child, stem, fmt in _data_files(path):
                stream = stream_of_name(stem, streams)
                if stream is not None:
                    found.append(InputSpec(child, stream, fmt))
            if not found:
                raise InputError(f"{path}: no files named after a stream (expected e.g. call.csv, "
                                 f"call_2026-03-01.csv, payment.parquet, sms.jsonl; streams: {', '.join(streams)})")
            specs.extend(found)
        elif path.is_file():
            if mapping is not None:
                specs.append(InputSpec(path, None, _format_of(path, mapping)))
                continue
            stream = stream_of_name(_split_ext(path)[0], streams)
            if stream is None:
                raise InputError(f"{path}: cannot tell which stream this is: name the file after a stream "
                                 f"({', '.join(streams)}, or e.g. call_2026-03-01.csv), write STREAM={path}, "
                                 f"or give a mapping file")
            specs.append(InputSpec(path, stream, _format_of(path)))
        else:
            raise InputError(f"{path}: no such file or directory")
    return specs


TRIM_ROWS = 10_000  # a block or a joined column this large hands its temporaries back (smaller ones: nothing to gain)


@dataclass
class RejectLog:
    """An input's rejected rows as (line, reason) columns, a block at a time: formatted and kept a
    column at a time, so that a run rejecting millions of rows makes no object per row but its text."""

    lines: list[np.ndarray] = field(default_factory=list)
    reasons: list[np.ndarray] = field(default_factory=list)

    def add(self, lines: np.ndarray, reasons: np.ndarray) -> None:
        if len(lines):
            self.lines.append(np.asarray(lines, dtype=np.int64))
            self.reasons.append(np.asarray(reasons, dtype=object))

    def extend(self, pairs: list[tuple[int, str]]) -> None:
        if pairs:
            self.add(np.array([line for line, _ in pairs], dtype=np.int64),
                     np.array([reason for _, reason in pairs], dtype=object))

    def __len__(self) -> int:
        return sum(len(b) for b in self.lines)

    def first(self, k: int) -> list[tuple[int, str]]:
        """The first ``k`` (line, reason) pairs as they were recorded, without sorting the rest."""
        pairs: list[tuple[int, str]] = []
        for lines, reasons in zip(self.lines, self.reasons):
            pairs += zip(lines[: k - len(pairs)].tolist(), map(str, reasons[: k - len(pairs)].tolist()))
            if len(pairs) >= k:
                break
        return pairs

    def sorted(self) -> tuple[np.ndarray, np.ndarray]:
        """(lines, reasons) by line; rows of one line (records given with the same ``_line``) by reason."""
        if not self.lines:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object)
        lines, reasons = np.concatenate(self.lines), np.concatenate(self.reasons)
        order = np.argsort(lines, kind="stable")
        lines, reasons = lines[order], reasons[order]
        if len(lines) > 1 and np.any(lines[1:] == lines[:-1]):
            pairs = sorted(zip(lines.tolist(), reasons.tolist()))
            lines = np.array([line for line, _ in pairs], dtype=np.int64)
            reasons = np.array([reason for _, reason in pairs], dtype=object)
        return lines, reasons

    def of_input(self, path: str) -> Rejects:
        lines, reasons = self.sorted()
        return Rejects(np.full(len(lines), path, dtype=object), lines, reasons)


@dataclass
class _InputResult:
    stats: InputStats
    stream: str
    chunks: list[dict[str, Vec]] = field(default_factory=list)
    lines: list[np.ndarray] = field(default_factory=list)
    rejects: RejectLog = field(default_factory=RejectLog)
    order: list[np.ndarray] = field(default_factory=list)  # secondary sort key after ts (default: line)
    id_hashes: _SortedRuns | None = None  # of the ids kept so far (SeenIds)

    def column(self, name: str, ltype: Any) -> Vec:
        """A field's column, the blocks joined (coded text stays coded)."""
        parts = [c[name] for c in self.chunks]
        return concat(parts) if parts else Vec.nulls(ltype, 0)

    def take_column(self, name: str, ltype: Any) -> Vec:
        """:meth:`column`, and the blocks let go of that field: joined one field at a time, the read
        never holds its blocks and its joined columns whole at once."""
        vec = self.column(name, ltype)
        for c in self.chunks:
            del c[name]
        if len(vec) >= TRIM_ROWS:  # the blocks' pages back to the system before the next field's join needs pages
            trim_thread_heaps()
        return vec

    def columns(self, spec: StreamSpec) -> dict[str, Vec]:
        return {name: self.column(name, fspec.type) for name, fspec in spec.fields.items()}

    def join_blocks(self, spec: StreamSpec) -> None:
        """Join the blocks into one, a field at a time on the join threads, as soon as the input is read.
        The blocks' dictionaries hold each text once a block, and merging them is the join's peak (67 MB
        for the callers of 131k customers): here it meets this input's blocks alone, not every input's,
        and the inputs read after it pile up on its merged columns, not on its blocks."""
        if len(self.chunks) <= 1:
            return
        fields = list(spec.fields.items())
        joined = map_on_threads(lambda f: self.take_column(f[0], f[1].type), fields)
        self.chunks = [dict(zip((name for name, _ in fields), joined))]
        self.lines = [self.line()]

    def line(self) -> np.ndarray:
        return np.concatenate(self.lines) if self.lines else np.zeros(0, dtype=np.int64)

    def add(self, chunk: RawChunk, norm: Normalised, ids: SeenIds | None = None) -> np.ndarray:
        """Count the chunk, keep its good rows, record its rejects; returns the kept row indices.

        With ``ids``, a record whose id an earlier record of its stream has is rejected."""
        bad = norm.problems.any()
        keep = ~bad & ~norm.filtered
        self.rejects.extend(chunk.rejects)
        rows = np.flatnonzero(bad)
        self.rejects.add(chunk.line[rows], norm.problems.reasons(rows))
        if ids is not None:
            id_vec = norm.columns["id"]
            dup = ids.duplicates(self, id_hashes(id_vec), keep)
            rows = np.flatnonzero(dup)
            if len(rows):
                texts = id_vec.take(rows).values  # those rows' text alone, not the column's objects
                self.rejects.add(chunk.line[rows], np.array(
                    [duplicate_id_reason(self.stream, text) for text in texts], dtype=object))
            bad = bad | dup
            keep &= ~dup
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


class SeenIds:
    """The ids read so far, per stream, so that a later record with an id already seen is rejected
    ("duplicate id"): alert ids hash the triggering record's id, and must stay unique.

    Ids are compared by a 64-bit hash (columns.hashing), 8 bytes per record kept: a false match
    among 10^8 ids has a probability below 10^-3. An input's ids join the stream's once the input
    is read whole, so a retried read (the CSV slow path) starts from the same state.
    """

    def __init__(self) -> None:
        self.by_stream: dict[str, _SortedRuns] = {}

    def duplicates(self, result: _InputResult, hashes: np.ndarray, keep: np.ndarray) -> np.ndarray:
        """Rows of ``keep`` whose id (``hashes``: :func:`id_hashes` per row) an earlier one's; remembers
        the others in ``result``."""
        dup = np.zeros(len(hashes), dtype=bool)
        idx = np.flatnonzero(keep)
        if not len(idx):
            return dup
        hashes = hashes[idx]
        needles = np.sort(hashes)  # a SIMD sort; the rows' order only where a duplicate is found (rare)
        later = np.zeros(len(needles), dtype=bool)
        later[1:] = needles[1:] == needles[:-1]
        if result.id_hashes is None:
            result.id_hashes = _SortedRuns()
        for seen in (self.by_stream.get(result.stream), result.id_hashes):
            if seen is not None:
                later |= seen.contains(needles)
        if later.any():
            order = np.argsort(hashes, kind="stable")  # stable: of equal ids, the earliest row comes first
            dup[idx[order[later]]] = True
        result.id_hashes.add(needles[~later])
        return dup

    def commit(self, result: _InputResult) -> None:
        """The input was read whole: its ids count for the inputs after it."""
        if result.id_hashes is not None:
            self.by_stream.setdefault(result.stream, _SortedRuns()).extend(result.id_hashes)
            result.id_hashes = None


def id_hashes(vec: Vec) -> np.ndarray:
    """A 64-bit hash of each row's id text (columns.hashing), from Arrow's bytes: a coded column's
    dictionary hashed once, any other as ``io.arrow.vec_to_arrow`` gives it (ids already in Arrow as they
    are). No str object per row."""
    if isinstance(vec, Coded):
        return text_hashes(vec.arrow)[vec.codes]
    return text_hashes(vec_to_arrow(vec, LogicalType.STRING))


class _SortedRuns:
    """A set of uint64 as sorted runs whose sizes halve, like a binary counter: adding a chunk
    merges runs of similar size only, so n values cost O(n log n) in all (re-sorting everything
    at each chunk would cost O(n) per chunk), and a lookup is a binary search per run."""

    def __init__(self) -> None:
        self.runs: list[np.ndarray] = []

    def add(self, values: np.ndarray) -> None:
        """Add sorted values."""
        if not len(values):
            return
        self.runs.append(values)
        while len(self.runs) > 1 and len(self.runs[-2]) <= 2 * len(self.runs[-1]):
            merged = np.concatenate((self.runs[-2], self.runs.pop()))
            merged.sort(kind="mergesort")  # two sorted runs: timsort merges them in linear time
            self.runs[-1] = merged

    def extend(self, other: _SortedRuns) -> None:
        for run in other.runs:
            self.add(run)

    def contains(self, needles: np.ndarray) -> np.ndarray:
        """Which of the sorted ``needles`` are in the set (sorted, the searches walk each run once)."""
        found = np.zeros(len(needles), dtype=bool)
        for run in self.runs:
            pos = np.minimum(np.searchsorted(run, needles), len(run) - 1)
            found |= run[pos] == needles
        return found


def _source(spec: InputSpec, fmt: str, requested: list[str], kinds: dict[str, str], chunk_rows: int, *,
            slow: bool = False, delimiter: str | None = None, encoding: str | None = None):
    if fmt == "parquet":
        if not spec.path.is_file():
            raise InputError(f"{spec.path}: no such file")
        return ParquetReader(spec.path, requested, chunk_rows)
    if fmt == "csv":
        return CsvReader(spec.path, requested, chunk_rows, slow=slow, delimiter=delimiter or DELIMITER,
                         encoding=encoding)
    if fmt == "jsonl":
        return JsonlReader(spec.path, kinds, chunk_rows)
    raise InputError(f"{spec.path}: unknown format {fmt!r} (one of {', '.join(FORMATS)})")


EARLY_REJECTS = 1_000_000  # rejects of one input after which a read that fails on their share may stop early


def _stop_if_mostly_rejected(result: _InputResult, max_share: float | None) -> None:
    """With ``max_share`` (a run that fails when an input rejects more than that share), stop an input once it
    has EARLY_REJECTS rejects and they are more than ``max_share`` of what it has read. A wrong file (another
    stream, a column of another type) of 100M rows would otherwise hold a reason for each row, about 1 KB,
    before the run could say that it is wrong."""
    stats = result.stats
    if max_share is None or stats.rejected < EARLY_REJECTS or stats.rejected <= max_share * stats.read:
        return
    shown = "; ".join(f"line {line}: {reason}" for line, reason in result.rejects.first(3))
    raise InputError(f"{stats.path}: stopped reading after {stats.read:,} records: {stats.rejected:,} of them "
                     f"({stats.rejected / stats.read:.0%}) were rejected, more than {max_share:.0%}. The first: "
                     f"{shown}. A wrong file, stream or mapping? --accept-rejects reads such an input whole")


def _read_one(spec: InputSpec, schema: Schema, region: str, mapping: Mapping | None, chunk_rows: int,
              progress: Callable[[int], None] | None, done_before: int,
              on_block: Callable[[_InputResult], None] | None = None, ids: SeenIds | None = None,
              max_reject_share: float | None = None) -> _InputResult:
    if spec.stream is None:
        if mapping is None:
            raise InputError(f"{spec.path}: no stream given and no mapping file")
        stream = mapping.stream
        fmt = mapping.format or spec.format
        requested = mapping.read_columns()
        kinds = mapping.json_kinds()
        region = mapping.region or region
    else:
        if spec.stream not in schema.streams:
            raise InputError(f"{spec.path}: unknown stream {spec.stream!r}")
        stream, fmt = spec.stream, spec.format
        sspec = schema.streams[stream]
        requested = list(sspec.fields)
        kinds = {name: json_kind(f.type, False) for name, f in sspec.fields.items()}
    target = schema.streams[stream]

    mapped = mapping if spec.stream is None else None  # a mapping's source options apply to its inputs

    def attempt(slow: bool) -> _InputResult:
        result = _InputResult(InputStats(str(spec.path), stream, fmt), stream)
        src = _source(spec, fmt, requested, kinds, chunk_rows, slow=slow,
                      delimiter=mapped.delimiter if mapped else None, encoding=mapped.encoding if mapped else None)
        if spec.stream is None:
            assert mapping is not None
            mapping.check_columns(src.header, str(spec.path))
        def normalise(chunk: RawChunk) -> Normalised:
            if spec.stream is None:
                assert mapping is not None
                norm = mapping.apply(chunk, target, region)
            else:
                norm = normalise_native(chunk, target, region)
            if chunk.read >= TRIM_ROWS:  # this thread's pool: mimalloc keeps freed pages per thread
                trim_thread_heaps()
            return norm

        for chunk, norm in map_ahead(normalise, read_ahead(src.chunks())):
            result.add(chunk, norm, ids)
            _stop_if_mostly_rejected(result, max_reject_share)
            # the block's parse and normalisation temporaries go back to the system now, not at the end of
            # the read: a read kept ~200 MB of them at 1M records, the peak of the read (~1 ms a block)
            if chunk.read >= TRIM_ROWS:
                trim_thread_heaps()
            if on_block is not None:
                on_block(result)
            if progress is not None:
                progress(done_before + result.stats.read)
        return result

    try:
        result: _InputResult | None = attempt(False)
    except SlowPathNeeded:
        result = None
    if result is None:  # outside the handler: the failed attempt's frames (its blocks) are freed first
        result = attempt(True)
    if ids is not None:
        ids.commit(result)
    return result


def _assemble(schema: Schema, results: list[_InputResult], keys: list[tuple[np.ndarray, np.ndarray]]
              ) -> tuple[dict[str, Table], Rejects]:
    """Tables in the total order (ts, key1, key2) and the sorted rejects."""
    cols = _joined_blocks(schema, results)
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
            vec = concat([cols[i][name] for i in members])
            columns[name] = vec if perm is None else vec.take(perm)
        if perm is not None:
            seq, inp, line = seq[perm], inp[perm], line[perm]
        tables[stream] = Table(stream, columns, seq, inp, line)
    return tables, Rejects.joined([r_.rejects.of_input(r_.stats.path) for r_ in results])


def _joined_blocks(schema: Schema, results: list[_InputResult]) -> list[dict[str, Vec]]:
    """Each input's columns, its blocks joined as it was read (``join_blocks``); the block is used up."""
    out: list[dict[str, Vec]] = []
    for r_ in results:
        spec = schema.streams[r_.stream]
        r_.join_blocks(spec)  # nothing to do after read_time_chunks, which joins every input of a read that fits
        block = r_.chunks[0] if r_.chunks else {}
        out.append({name: block[name] if name in block else Vec.nulls(f.type, 0) for name, f in spec.fields.items()})
        r_.chunks.clear()
    return out


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
    return read_time_chunks(specs, schema, region=region, mapping=mapping, chunk_rows=chunk_rows,
                            progress=progress).whole()


def read_time_chunks(specs: list[InputSpec], schema: Schema, *, region: str = "CN", mapping: Mapping | None = None,
                     chunk_rows: int = 1_000_000, progress: Callable[[int], None] | None = None,
                     memory_rows: int | None = None, spill_dir: Path | None = None,
                     max_reject_share: float | None = None) -> TimeChunks:
    """Read every input; when more than ``memory_rows`` records would be held, spill them to
    ``spill_dir`` and hand them back in time-ordered chunks of about that many records. With
    ``max_reject_share``, an input whose rejects pass that share stops the read early (InputError), once
    they are EARLY_REJECTS or more."""
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be positive")
    results: list[_InputResult] = []
    spill = Spill(schema, memory_rows, spill_dir) if memory_rows is not None else None
    done = 0
    ids = SeenIds()
    try:
        for index, spec in enumerate(specs):
            on_block = (lambda res, index=index: spill.after_block(results, res, index)) if spill else None
            res = _read_one(spec, schema, region, mapping, chunk_rows, progress, done, on_block, ids,
                            max_reject_share)
            if spill is None or not spill.active:  # a spill writes its blocks out: nothing to join
                res.join_blocks(schema.streams[res.stream])
            done += res.stats.read
            results.append(res)
        if spill is not None and spill.active:
            spill.after_block(results, None, -1)
    except BaseException:  # a bad input or a cancelled read: the blocks spilled so far go too
        if spill is not None:
            spill.close()
        raise
    return TimeChunks(schema, results, spill if spill is not None and spill.active else None)


class TimeChunks:
    """All records of a read, as one RecordSet or as time-ordered chunks of one (from a spill)."""

    def __init__(self, schema: Schema, results: list[_InputResult], spill: Spill | None):
        self.schema, self.results, self.spill = schema, results, spill
        self._used = False
        self.inputs = [r_.stats for r_ in results]
        self.rejects = Rejects.joined([r_.rejects.of_input(r_.stats.path) for r_ in results])

    @property
    def spilled(self) -> bool:
        return self.spill is not None

    def whole(self) -> RecordSet:
        """The records as one RecordSet, once: it uses up the read's blocks, joining them one field at
        a time so that they are never held twice."""
        if self.spill is not None:
            raise ValueError("the records were spilled: read them with chunks()")
        if self._used:
            raise ValueError("whole() was called already: its blocks are the tables it returned")
        self._used = True
        keys = []
        for i, res in enumerate(self.results):
            line = res.line()
            keys.append((np.full(len(line), i, dtype=np.int64), line))
        tables, rejects = _assemble(self.schema, self.results, keys)
        return RecordSet(tables, self.inputs, rejects)

    def chunks(self) -> Iterator[RecordSet]:
        """RecordSets in time order; every record of one timestamp is in one chunk. Each carries
        the inputs' stats; the rejects come with the first."""
        if self.spill is None:
            yield self.whole()
            return
        for i, tables in enumerate(self.spill.chunks()):
            yield RecordSet(tables, self.inputs, self.rejects if i == 0 else Rejects())

    def close(self) -> None:
        """Remove the spill files, if any."""
        if self.spill is not None:
            self.spill.close()


class PendingRead:
    """A read of the inputs started on a thread before the rule pack is loaded (``start_read``): the
    inputs are parsed in Arrow's C++ (the GIL released) while the rules' YAML is parsed in Python.
    ``jobs.score.score`` takes it when it was started with the arguments it would read with, else
    reads anew."""

    def __init__(self, inputs: list[InputSpec], schema: Schema, *, mapping: Mapping | None, region: str,
                 chunk_rows: int, memory_rows: int | None, spill_dir: Path | None,
                 max_reject_share: float | None = None):
        self.inputs, self.schema, self.mapping = inputs, schema, mapping
        self.args = (region, chunk_rows, memory_rows, spill_dir, max_reject_share)
        self.progress: Callable[[int], None] | None = None  # set when the run that takes the read starts

        def report(check: Callable[[], None], n: int) -> None:
            check()  # a cancelled read stops at its next block
            if self.progress is not None:
                self.progress(n)

        self._task: Background[TimeChunks] = Background(
            lambda check: read_time_chunks(inputs, schema, region=region, mapping=mapping, chunk_rows=chunk_rows,
                                           progress=lambda n: report(check, n), memory_rows=memory_rows,
                                           spill_dir=spill_dir, max_reject_share=max_reject_share),
            name="fraudrules-read", discard=TimeChunks.close)

    def fits(self, inputs: list[InputSpec], schema: Schema, mapping: Mapping | None, region: str,
             chunk_rows: int, memory_rows: int | None, spill_dir: Path | None,
             max_reject_share: float | None = None) -> bool:
        return (inputs is self.inputs and mapping is self.mapping and schema == self.schema
                and (region, chunk_rows, memory_rows, spill_dir, max_reject_share) == self.args)

    def result(self, progress: Callable[[int], None] | None) -> TimeChunks:
        self.progress = progress
        return self._task.result()

    def cancel(self) -> None:
        """Stop the read and drop what it made; nothing once ``score`` has taken it."""
        self._task.cancel()


def start_read(inputs: list[InputSpec], schema: Schema, *, mapping: Mapping | None = None, region: str = "CN",
               chunk_rows: int = 1_000_000, memory_rows: int | None = None,
               spill_dir: Path | None = None, max_reject_share: float | None = None) -> PendingRead:
    """Start reading ``inputs`` now, for a ``jobs.score.score`` called later with the same arguments
    (``started=``). The caller cancels it if it never calls ``score``."""
    return PendingRead(inputs, schema, mapping=mapping, region=region, chunk_rows=chunk_rows,
                       memory_rows=memory_rows, spill_dir=spill_dir, max_reject_share=max_reject_share)


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
        if not isinstance(stream, str) or stream not in schema.streams:
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
    order = np.argsort(rejects.line, kind="stable")  # by line across streams (the inputs' order within one)
    rejects = Rejects(rejects.input[order], rejects.line[order], rejects.reason[order])
    return RecordSet(tables, [r_.stats for r_ in results], rejects)
