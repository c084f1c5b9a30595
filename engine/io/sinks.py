"""Output files: alerts, scored records, rejects and the summary.

Each writer takes a ``place``: how its file comes to be. :func:`atomic_path` (the default) writes
a temporary file beside the target, fsyncs it and renames it into place, so a reader never sees
half a file and a crash leaves the old one intact. ``score`` passes
:func:`~fraudrules.io.output_set.staged_path` instead: its files are written into a staging
folder and committed together (:mod:`fraudrules.io.output_set`). Files get the permissions a new
file gets (0666 less the umask), not the 0600 of a temporary file. A CSV cell that a spreadsheet
would run as a formula is written with a leading ``'`` (:func:`csv_safe`).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..columns.arrow_text import holds_json_escapes, joined_bytes, large_text
from ..runtime.alerts import Alerts
from .output_set import check_out_dir, fsync_path, start_writeback  # noqa: F401  (check_out_dir: its callers import it here)
from .threads import ahead_threads, map_ahead

if TYPE_CHECKING:  # pyarrow.parquet loads when a Parquet file is written (~15 ms a run)
    import pyarrow.parquet as pq

FORMATS = ("jsonl", "csv", "parquet")
FLAT_ALERT_COLUMNS = [
    "alert_id", "rule_id", "rule_version", "title", "severity", "score", "status", "shadow", "key", "ts",
    "stream", "record_id", "risk_score", "decision", "explain", "evidence", "conditions", "rule_pack",
]
# the CSV is for spreadsheets: one scalar per cell, evidence and conditions summarised as text
# (the lossless forms are JSON Lines and Parquet), and who is behind each count
CSV_ALERT_COLUMNS = [*FLAT_ALERT_COLUMNS[:-1], "behind", "rule_pack"]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()  # read once, at import: setting it to read it is not thread-safe
# how a writer's file comes to be: given the target, yield the path to write, commit on success
Place = Callable[[Path], AbstractContextManager[Path]]


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path that replaces ``target`` when the block succeeds (fsynced first)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; an output is as readable as any new file
        fsync_path(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# A cell a spreadsheet reads as a formula: =, @, a tab or CR first; or + or - followed by something
# other than a number or phone number (digits, spaces and . ( ) - + e E). "+8613800000001" and
# "-3.5" stay as written; "=HYPERLINK(...)", "@SUM(A1)", "+cmd|' /C calc'!A0" get a leading '.
_FORMULA_START = r"^[=@\t\r]"
_SIGNED = r"^[+-]"
_SIGNED_NUMBER = r"^[+-][0-9. ()+\-eE]*$"


def _formula_cells(arr: pa.Array) -> np.ndarray:
    """Which cells of ``arr`` (text) a spreadsheet would read as a formula."""
    hit = pc.or_(pc.match_substring_regex(arr, _FORMULA_START),
                 pc.and_(pc.match_substring_regex(arr, _SIGNED),
                         pc.invert(pc.match_substring_regex(arr, _SIGNED_NUMBER))))
    return pc.fill_null(hit, False).to_numpy(zero_copy_only=False)


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with formula-like text cells prefixed by ``'`` (CSV outputs only: JSON Lines and
    Parquet keep values as they are)."""
    out = None
    for name, col in frame.items():
        if not (col.dtype == object or pd.api.types.is_string_dtype(col.dtype)) or not len(col):
            continue
        arr = pa.array(col.astype(object).where(col.notna(), None).to_numpy(), type=pa.string(), from_pandas=True)
        hit = _formula_cells(arr)
        if hit.any():
            out = frame.copy() if out is None else out
            fixed = col.astype(object).to_numpy(copy=True)
            fixed[hit] = ["'" + str(v) for v in fixed[hit]]
            out[name] = fixed
    return frame if out is None else out


@lru_cache(maxsize=1)
def _csv_quoted() -> str:
    """RE2 for the cells the csv module (QUOTE_MINIMAL, "\\n" lines) quotes. Asked of the module
    itself rather than assumed: a lone "\\r" is not quoted, "\\n" is."""
    def quotes(c: str) -> bool:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow(["a" + c, "b"])
        return out.getvalue().startswith('"')

    return "[" + "".join({"\r": r"\r", "\n": r"\n"}.get(c, c) for c in ',"\r\n' if quotes(c)) + "]"


def _csv_cells(col: pd.Series) -> pa.Array | None:
    """A column as CSV cells (formula guard and quoting applied) built by Arrow, or None where the
    fast path does not handle it: floats, dates, nullable numbers, anything but integers, booleans and
    text (a missing text is an empty cell, as pandas writes it). A categorical of text: each category's
    cell once, then a cell per row by its code (the guard and the quoting look at a few texts, not at
    every row: 4 of the scored records' 6 columns)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy()
        categories = col.cat.categories
        # (more categories than rows, in a slice of a long file: the rows' text is less work)
        if len(categories) and len(categories) <= len(col) and (codes >= 0).all() \
                and all(isinstance(c, str) for c in categories):
            cells = _csv_cells(pd.Series(list(categories), dtype=object))
            if cells is not None:
                return cells.take(pa.array(codes.astype(np.int64)))
        col = plain_text_column(col)
    if pd.api.types.is_integer_dtype(col.dtype) and not col.isna().any():
        return pa.array(col.to_numpy(dtype=np.int64)).cast(pa.large_string())
    if pd.api.types.is_bool_dtype(col.dtype) and not col.isna().any():  # Python's spelling, as pandas writes it
        return pc.if_else(pa.array(col.to_numpy(dtype=bool)), large_text("True"), large_text("False"))
    if not (col.dtype == object or pd.api.types.is_string_dtype(col.dtype)):
        return None
    try:
        arr = pa.array(col, type=pa.large_string(), from_pandas=True)  # Arrow-backed text: no copy
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # not all text
        return None
    if arr.null_count:
        arr = pc.fill_null(arr, "")
    # GBs of text join without overflowing large_string's offsets; cells that need no change stay as they are
    formula = _formula_cells(arr)
    if formula.any():
        arr = pc.if_else(pa.array(formula), pc.binary_join_element_wise(large_text("'"), arr, large_text("")), arr)
    needs = pc.match_substring_regex(arr, _csv_quoted())
    if pc.any(needs).as_py():
        quoted = pc.binary_join_element_wise(large_text('"'), pc.replace_substring(arr, '"', '""'), large_text('"'),
                                             large_text(""))
        arr = pc.if_else(needs, quoted, arr)
    return arr


def csv_pieces(frame: pd.DataFrame, header: bool) -> list[str | pa.Buffer]:
    """CSV of a frame, in pieces written one after the other: byte-identical to
    ``csv_safe(frame).to_csv(index=False, header=header, lineterminator="\\n")``. Built column-wise by
    Arrow for integer and text columns (rejects, late records), by pandas for the rest. (A lone
    column is pandas' too: the csv module quotes an empty cell that is a whole row.)"""
    cells = [_csv_cells(col) for _, col in frame.items()] if len(frame) and len(frame.columns) > 1 else [None]
    if any(c is None for c in cells):
        return [csv_safe(plain_text(frame)).to_csv(index=False, header=header, lineterminator="\n")]
    rows = pc.binary_join_element_wise(*cells, large_text(","))
    lines = pc.binary_join_element_wise(rows, large_text("\n"), large_text(""))
    body = joined_bytes(lines)  # the lines lie back to back in the array's data buffer: handed over in one piece
    head = pd.DataFrame(columns=frame.columns).to_csv(index=False, lineterminator="\n") if header else ""
    return [head, body]


def _flat_alerts(alerts: Iterable[dict[str, Any]]) -> pd.DataFrame:
    return _alert_frame(alerts, FLAT_ALERT_COLUMNS, {
        "evidence": lambda a: json.dumps(a["evidence"], ensure_ascii=False, separators=(",", ":")),
        "conditions": lambda a: json.dumps(a["conditions"], ensure_ascii=False, separators=(",", ":"))})


def _alert_frame(alerts: Iterable[dict[str, Any]], columns: list[str],
                 made: dict[str, Callable[[dict[str, Any]], Any]]) -> pd.DataFrame:
    """A frame of ``columns``, one row per alert: each column a field of the alert, or made of it by ``made``.
    Built a column at a time (a list each), not from a dict per row."""
    cols: dict[str, list[Any]] = {name: [] for name in columns}
    plain = [(cols[name].append, name) for name in columns if name not in made]
    derived = [(cols[name].append, fn) for name, fn in made.items()]
    for a in alerts:
        for add, name in plain:
            add(a[name])
        for add, fn in derived:
            add(fn(a))
    return pd.DataFrame(cols, columns=columns)


def _csv_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def evidence_text(evidence: list[dict[str, Any]]) -> str:
    """``call:c1@2026-03-01T02:00:00Z; pay:p1@...``: each step's record id and time."""
    return "; ".join(f"{e.get('step')}:{e.get('id')}@{e.get('ts')}" for e in evidence)


def conditions_text(conditions: list[dict[str, Any]]) -> str:
    """``name=value; ...`` of the values the conditions held with, each pair once, plus ``@list=entry``.

    A sequence's names carry their step (``pay.amount``), since steps share field names."""
    steps = {c.get("step") for c in conditions}
    pairs: dict[str, None] = {}  # an ordered set
    for c in conditions:
        prefix = f"{c.get('step')}." if len(steps) > 1 else ""
        for name, value in (c.get("values") or {}).items():
            pairs[f"{prefix}{name}={_csv_value(value)}"] = None
        if c.get("list"):
            pairs[f"@{c['list']}={_csv_value(c.get('list_entry'))}"] = None
    return "; ".join(pairs)


def behind_text(conditions: list[dict[str, Any]]) -> str:
    """``distinct(payer_account, 1d) 6: A1 A2 ... (+1)``: what each count or distinct counted."""
    parts: dict[str, None] = {}
    for c in conditions:
        for expr, members in (c.get("behind") or {}).items():
            shown = members.get("records", members.get("values", []))
            more = members["total"] - len(shown)
            parts[f"{expr} {members['total']}: " + " ".join(_csv_value(v) for v in shown)
                  + (f" (+{more})" if more > 0 else "")] = None
    return "; ".join(parts)


def _csv_alerts(alerts: Iterable[dict[str, Any]]) -> pd.DataFrame:
    return _alert_frame(alerts, CSV_ALERT_COLUMNS, {
        "evidence": lambda a: evidence_text(a["evidence"]), "conditions": lambda a: conditions_text(a["conditions"]),
        "behind": lambda a: behind_text(a["conditions"])})


def write_alerts(alerts: Sequence[dict[str, Any]], path: Path, fmt: str, place: Place = atomic_path) -> None:
    if fmt == "jsonl":
        with place(path) as tmp, open(tmp, "wb") as fh:  # a window at a time (ByteSource.blocks), not one copy
            Alerts.of(alerts).write_lines(fh)
        return
    frame_of = _csv_alerts if fmt == "csv" else _flat_alerts
    with FrameWriter(path, fmt, place) as writer:  # a block of alerts is a part, as a chunk's scored records
        for block in _alert_blocks(alerts):
            writer.write(frame_of(block))


ALERT_BLOCK = 1 << 16  # alerts parsed and written at once in the CSV and Parquet forms


def _alert_blocks(alerts: Sequence[dict[str, Any]]) -> Iterator[Iterator[dict[str, Any]]]:
    """The alerts as dicts, a block at a time (an alert storm is never parsed whole), each block to be
    read through before the next; at least one block, so that no alerts still give a header and a schema.
    Each dict is parsed as it is read and let go once its row is made: a block held as a list of
    dicts made every full collection walk it (18 s against 4 s of parsing at 430k alerts)."""
    each = iter(alerts)
    for _ in range(0, max(1, len(alerts)), ALERT_BLOCK):
        yield itertools.islice(each, ALERT_BLOCK)


_NEEDS_ESCAPE = r'[\x00-\x1f"\\]'
_NEEDS_ESCAPE_RE = re.compile(_NEEDS_ESCAPE)
# a column with at most this share of distinct values is rendered once per distinct value
_LOW_CARDINALITY = 0.125
# rows rendered at once across the cores (half a slice each on two): a slice's text is held two or three times
# while it renders, so 131k-row slices were the peak of a 400k-record run (230 MB; 216 at 65k, written as fast)
JSONL_SLICE_ROWS = 1 << 16
JSONL_MIN_SLICE_ROWS = 1 << 14  # a slice's fixed cost: an Arrow call or two per column


def _pandas_jsonl(frame: pd.DataFrame) -> str:
    """pandas' JSON Lines, the reference the fast path reproduces byte for byte."""
    # pandas escapes "/" as "\\/"; JSON allows both, people read the plain one
    text = (frame.to_json(orient="records", lines=True, force_ascii=False) or "").replace("\\/", "/")
    return text if not text or text.endswith("\n") else text + "\n"


def _json_strings(values: list[str]) -> list[str]:
    """JSON string literals as pandas writes them: plain text quoted; text that needs escaping
    escaped by pandas itself (one call for all of them)."""
    out = ['"' + v + '"' for v in values]
    odd = [i for i, v in enumerate(values) if _NEEDS_ESCAPE_RE.search(v)]
    if odd:
        lines = _pandas_jsonl(pd.DataFrame({"x": [values[i] for i in odd]})).split("\n")
        for i, line in zip(odd, lines):
            out[i] = line[len('{"x":'):-1]
    return out


def _quoted(arr: pa.Array) -> pa.Array:
    """Per row, the JSON literal of a text column, built by Arrow; pandas escapes the few that need it."""
    text = pc.binary_join_element_wise(large_text('"'), arr, large_text('"'), large_text(""))
    odd = pc.match_substring_regex(arr, _NEEDS_ESCAPE)
    mask = odd.to_numpy(zero_copy_only=False)
    fixed = _json_strings(arr.filter(odd).to_pylist())  # the odd rows only
    return pc.replace_with_mask(text, pa.array(mask), pa.array(fixed, pa.large_string()))


@dataclass
class _Coded:
    """A column of few distinct values: a code per row and each value's JSON text."""

    codes: np.ndarray  # int64
    texts: list[str]


@dataclass
class _Plain:
    """Text that needs no escaping: its JSON literal is the text in quotes, which the literal
    text on either side carries, so Arrow joins the column as it is."""

    arr: pa.Array


def _few_distinct(arr: pa.Array, limit: int) -> bool:
    """A guess from a sample, so that a column of ids is not hashed in full for nothing."""
    n = len(arr)
    if n <= 4096:
        return True
    sample = arr.take(pa.array(np.linspace(0, n - 1, 2048).astype(np.int64)))
    return pc.count_distinct(sample).as_py() <= min(limit, 2048) // 4


def _json_column(col: pd.Series, n: int) -> _Coded | _Plain | pa.Array | None:
    """A column as JSON values: coded when its values repeat, else per row; None when the fast
    path does not handle it (nulls, floats, bools)."""
    limit = max(16, int(n * _LOW_CARDINALITY))
    if isinstance(col.dtype, pd.CategoricalDtype):  # already coded: its few texts rendered once each
        categories, codes = col.cat.categories, col.cat.codes.to_numpy()
        if (codes < 0).any():  # nulls: pandas' path
            return None
        if len(categories) > limit or not all(isinstance(c, str) for c in categories):
            return _json_column(plain_text_column(col), n)
        return _Coded(codes.astype(np.int64), _json_strings(list(categories)))
    if pd.api.types.is_integer_dtype(col.dtype):
        if col.isna().any():
            return None
        values = pa.array(col.to_numpy(dtype=np.int64))
        if _few_distinct(values, limit):  # a guess first: line numbers are not hashed in full for nothing
            codes, uniq = pd.factorize(values.to_numpy())
            if len(uniq) <= limit:
                return _Coded(codes.astype(np.int64), [str(int(u)) for u in uniq.tolist()])
        return values.cast(pa.large_string())
    if not (col.dtype == object or pd.api.types.is_string_dtype(col.dtype)):
        return None
    if col.isna().any():
        return None
    try:
        arr = pa.array(col, type=pa.large_string(), from_pandas=True)  # zero-copy for Arrow-backed text
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # an object column that is not all text
        return None
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if _few_distinct(arr, limit):
        enc = pc.dictionary_encode(arr)
        if len(enc.dictionary) <= limit:
            return _Coded(enc.indices.to_numpy(zero_copy_only=False).astype(np.int64),
                          _json_strings(enc.dictionary.to_pylist()))
    return _quoted(arr) if holds_json_escapes(arr) else _Plain(arr)


def _segment(parts: list[str | _Coded], n: int) -> pa.Array | pa.Scalar:
    """Literal text and coded columns side by side, joined per distinct combination of codes (a
    handful: stream and input, decision and rules) and then taken per row."""
    coded = [p for p in parts if isinstance(p, _Coded)]
    if not coded:
        return large_text("".join(parts))  # type: ignore[arg-type]
    combo = np.zeros(n, dtype=np.int64)
    steps: list[tuple[np.ndarray, int]] = []  # per coded column: (combination codes, its width)
    for c in coded:
        width = len(c.texts)
        combo, uniq = pd.factorize(combo * width + c.codes)  # dense again after each column: no overflow
        steps.append((uniq, width))
    # walk back from the final combinations to each coded column's code
    k = len(steps[-1][0])
    ids = np.arange(k, dtype=np.int64)
    per_col: list[np.ndarray] = [np.zeros(0, np.int64)] * len(coded)
    for j in range(len(coded) - 1, -1, -1):
        uniq, width = steps[j]
        full = uniq[ids]
        per_col[j] = full % width
        ids = full // width
    texts = []
    for row in range(k):  # one string per distinct combination, not per record
        out, j = [], 0
        for p in parts:
            if isinstance(p, _Coded):
                out.append(p.texts[int(per_col[j][row])])
                j += 1
            else:
                out.append(p)
        texts.append("".join(out))
    return pa.array(texts, pa.large_string()).take(pa.array(combo.astype(np.int64)))


def plain_text_column(col: pd.Series) -> pd.Series:
    """A categorical column of text as plain text; any other column as it is."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        return col.astype(col.cat.categories.dtype)
    return col


def plain_text(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with categorical columns as their text: what CSV (whose formula guard looks at text
    columns) and Parquet (whose schema stays that of text) are written from."""
    coded = [name for name, col in frame.items() if isinstance(col.dtype, pd.CategoricalDtype)]
    if not coded:
        return frame
    return frame.assign(**{name: plain_text_column(frame[name]) for name in coded})


def jsonl_buffer(frame: pd.DataFrame) -> pa.Buffer | bytes:
    """JSON Lines of a frame, byte-identical to pandas' ``to_json(orient="records", lines=True)``
    (with "/" unescaped), built column-wise by Arrow: a column whose values repeat is rendered once
    per distinct value. Frames the fast path does not handle (nulls, floats) go through pandas."""
    n = len(frame)
    if n == 0 or len(frame.columns) == 0:
        return b""
    pieces: list[pa.Array | pa.Scalar] = []
    parts: list[str | _Coded] = []
    for i, (name, col) in enumerate(frame.items()):
        parts.append(("{" if i == 0 else ",") + json.dumps(name, ensure_ascii=False) + ":")
        rendered = _json_column(col, n)
        if rendered is None:
            return _pandas_jsonl(frame).encode("utf-8")
        if isinstance(rendered, _Coded):
            parts.append(rendered)
        elif isinstance(rendered, _Plain):
            pieces += [_segment(parts + ['"'], n), rendered.arr]
            parts = ['"']
        else:
            pieces += [_segment(parts, n), rendered]
            parts = []
    parts.append("}\n")
    pieces.append(_segment(parts, n))
    lines = pieces[0] if len(pieces) == 1 else pc.binary_join_element_wise(*pieces, large_text(""))
    return joined_bytes(lines)  # the lines lie back to back in the array's data buffer: handed over in one piece


class FrameWriter:
    """Writes a frame part by part, in order, to one file that appears (through ``place``) on ``close``.

    A run scored in time-ordered chunks writes each chunk's scored records as it goes, so the
    whole table is never in memory; a single part gives the same file as ``write_frame``.
    """

    def __init__(self, path: Path, fmt: str, place: Place = atomic_path):
        self.fmt = fmt
        self._atomic = place(Path(path))
        self._tmp = self._atomic.__enter__()
        self._fh = None if fmt == "parquet" else open(self._tmp, "w", encoding="utf-8", newline="\n")
        self._parquet: pq.ParquetWriter | None = None
        self._parts = 0

    def write(self, frame: pd.DataFrame) -> None:
        first = self._parts == 0
        self._parts += 1
        if self.fmt == "parquet":  # as text: the schema of a text column (CSV codes its cells itself, _csv_cells)
            table = pa.Table.from_pandas(plain_text(frame), preserve_index=False)
            if self._parquet is None:
                import pyarrow.parquet as pq

                self._parquet = pq.ParquetWriter(self._tmp, table.schema)
            self._parquet.write_table(table.cast(self._parquet.schema))
            return
        assert self._fh is not None
        if self.fmt == "csv":
            for piece in csv_pieces(frame, header=first):
                if isinstance(piece, str):
                    self._fh.write(piece)
                else:
                    self._fh.flush()  # the text before the bytes
                    self._fh.buffer.write(piece)
            return
        self._fh.flush()  # the text so far (a header, nothing else today) before the bytes
        # a slice at a time: buffers of tens of MB that the allocator reuses, not one of the whole file;
        # slices are rendered on every core (Arrow joins the text, the GIL released), written in order
        threads = ahead_threads()
        # as much rendered text in flight as on one core, and a smaller frame in two slices a thread: rendering
        # holds a slice's text two or three times over, and a frame of 100k records was one slice, the peak of
        # its run
        rows = max(JSONL_MIN_SLICE_ROWS, min(JSONL_SLICE_ROWS // threads, -(-len(frame) // (2 * threads))))
        starts = iter(range(0, len(frame), rows))
        for _, buf in map_ahead(lambda start: jsonl_buffer(frame.iloc[start: start + rows]), starts):
            at = self._fh.buffer.tell()
            self._fh.buffer.write(buf)
            start_writeback(self._fh.buffer, at)  # the disk writes this slice while the next ones render

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
        if self._parquet is not None:
            self._parquet.close()
        elif self.fmt == "parquet":  # nothing was written: an empty file would not be Parquet
            import pyarrow.parquet as pq

            pq.write_table(pa.table({}), self._tmp)
        self._atomic.__exit__(None, None, None)

    def abort(self, exc: BaseException) -> None:
        if self._fh is not None:
            self._fh.close()
        if self._parquet is not None:
            self._parquet.close()
        try:
            self._atomic.__exit__(type(exc), exc, exc.__traceback__)
        except BaseException:  # the place re-raises after removing its file
            pass

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            self.close()
        else:
            self.abort(exc)


FRAME_SLICE_ROWS = 1 << 16  # rows of a frame written at once: the text cells' temporaries stay this size


def write_frame(frame: pd.DataFrame, path: Path, fmt: str, place: Place = atomic_path) -> None:
    """``frame`` as one file, a slice of rows at a time (at least one, for the header or schema): a run that
    rejects every row of a wrong file renders its rejects a slice at a time, not all at once."""
    with FrameWriter(path, fmt, place) as writer:
        for start in range(0, max(1, len(frame)), FRAME_SLICE_ROWS):
            writer.write(frame.iloc[start: start + FRAME_SLICE_ROWS])


def write_json(data: Any, path: Path, place: Place = atomic_path) -> None:
    with place(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n", encoding="utf-8")
