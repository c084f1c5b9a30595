"""The history store: a run's context, kept on disk for the next run (docs/design.md §8).

Layout of ``DIR`` (every file is Parquet or JSON; inspect it with any Parquet tool)::

    DIR/
      manifest.json                         the commit point: the live files and the runs so far
      .lock                                 held by the run that writes (flock)
      records/stream=call/day=2026-03-01/run-000003.parquet
                                            records inside the pack's horizon, only the columns
                                            rules read, plus _order (their place in the total order)
      alerts/last-000003.parquet            the last emitted alert per (rule, key)

A run writes its new files first (fsynced), then replaces ``manifest.json`` atomically (write,
fsync, rename, fsync the folder). Readers trust the manifest only, so a run killed at any point
leaves the store as it was; files of a run that never committed are removed when the store is
next opened. Files that the newest run pruned are deleted one run later, so that the newest
run can be replaced (``--replace-run``) by restoring the state before it.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ..errors import FraudRulesError
from ..io.arrow import TS_TYPE
from ..io.files import read_json_document, write_json_durably
from .context import LAST_ALERT_SCHEMA, ORDER, Context
from .horizon import Horizon

FORMAT = "fraudrules-history"
VERSION = 1


class HistoryError(FraudRulesError):
    """The store cannot be used as asked (locked, already committed, incompatible)."""


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def footer_digest(path: str | Path) -> str:
    """SHA-256 of a Parquet file's footer (its schema, row groups, offsets and statistics, with the length and
    magic after it). Page CRCs do not cover the footer, and a changed byte there can still decode: a row
    group's min/max read as another value would prune the wrong rows under the ``ts`` filter."""
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size < 12:
            raise OSError(f"{size} bytes, shorter than any Parquet file")
        fh.seek(size - 8)
        tail = fh.read(8)
        length = int.from_bytes(tail[:4], "little")
        if tail[4:] != b"PAR1" or length + 12 > size:
            raise OSError("no Parquet footer at its end")
        fh.seek(size - 8 - length)
        return hashlib.sha256(fh.read(length + 8)).hexdigest()


def _write_parquet(table: pa.Table, path: Path) -> str:
    """Write ``table`` durably at ``path``; its footer digest, for the manifest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    # page CRCs: a flipped byte in a page is then a damaged store at the next read, not a silently wrong window
    pq.write_table(table, tmp, row_group_size=64 * 1024, write_page_checksum=True)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    digest = footer_digest(tmp)
    os.replace(tmp, path)
    return digest


_VERIFIED = ds.ParquetFileFormat(default_fragment_scan_options=ds.ParquetFragmentScanOptions(
    page_checksum_verification=True))  # pages written without a CRC (stores before it) are read as they are
STORE_READ_ERRORS = (OSError, pa.ArrowException)  # a file missing, cut short, or whose bytes do not decode


def _check_footers(root: Path, rels: list[str], footers: dict[str, str]) -> None:
    """Every file of ``rels`` whose footer digest the manifest holds must still have it (stores written before
    the digests hold none, and are read as they are)."""
    for rel in rels:
        want = footers.get(rel)
        if want is None:
            continue
        path = str(root / rel)
        try:
            got = footer_digest(path)
        except STORE_READ_ERRORS as exc:
            raise _damaged(root, [path], exc) from None
        if got != want:
            raise _damaged(root, [path], ValueError("its footer is not the one the manifest recorded"))


def _damaged(root: Path, paths: list[str], exc: Exception) -> HistoryError:
    """The error for a store file that cannot be read: the first of ``paths`` that fails on its own, named."""
    bad, why = paths[0] if len(paths) == 1 else None, exc
    if bad is None:
        for path in paths:
            try:
                pq.read_table(path, page_checksum_verification=True)
            except STORE_READ_ERRORS as one:
                bad, why = path, one
                break
    where = bad if bad is not None else f"one of {len(paths)} files"
    what = "is missing" if isinstance(why, FileNotFoundError) else f"cannot be read ({why})"
    return HistoryError(f"{root}: the history store is damaged: {where} {what}. Restore the folder from a backup, "
                        "or score into a new history (manifest.json lists the runs it holds)")


def _day(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns // 10**9, dt.timezone.utc).strftime("%Y-%m-%d")


@dataclass
class RunInput:
    path: str
    sha256: str
    bytes: int
    records: int = -1  # rows read; -1 before the run has read it


class HistoryStore:
    """A folder that carries a pack's context from one run to the next."""

    def __init__(self, root: Path, wait: float = 0.0):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock_fh = open(self.root / ".lock", "a+")  # held for the store's lifetime
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() >= deadline:
                    self._lock_fh.close()
                    raise HistoryError(f"{self.root}: another run is using this history store "
                                       f"(waited {wait:g}s; see --history-wait)") from None
                time.sleep(0.1)
        self.manifest = self._read_manifest()
        self._remove_orphans()

    def close(self) -> None:
        if not self._lock_fh.closed:
            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the manifest ------------------------------------------------------------------------
    def _read_manifest(self) -> dict[str, Any]:
        path = self.root / "manifest.json"
        if not path.exists():
            return {"format": FORMAT, "version": VERSION, "state": _empty_state(), "previous": None, "runs": []}
        try:
            manifest = read_json_document(path, "format", FORMAT, "fraudrules history store manifest")
        except FraudRulesError as exc:
            raise HistoryError(str(exc)) from None
        if manifest.get("version") != VERSION:
            raise HistoryError(f"{path}: store version {manifest.get('version')}, this fraudrules reads {VERSION}")
        return manifest

    def _live_files(self) -> set[str]:
        live: set[str] = set()
        for state in (self.manifest["state"], self.manifest.get("previous")):
            if state:
                live.update(f for files in state["records"].values() for f in files)
                if state["last_alerts"]:
                    live.add(state["last_alerts"])
        return live

    def _remove_orphans(self) -> None:
        """Files no manifest state names: left by a run that died before it committed."""
        live = self._live_files()
        for sub in ("records", "alerts"):
            base = self.root / sub
            if not base.exists():
                continue
            for path in sorted(base.rglob("*")):
                if path.is_file() and str(path.relative_to(self.root)) not in live:
                    path.unlink()
            for path in sorted((p for p in base.rglob("*") if p.is_dir()), reverse=True):
                if not any(path.iterdir()):
                    path.rmdir()

    @property
    def runs(self) -> list[dict[str, Any]]:
        return self.manifest["runs"]

    # -- what a run reads --------------------------------------------------------------------
    def check_inputs(self, inputs: list[RunInput], replace: bool) -> None:
        """Refuse inputs already committed, unless replacing the newest run that holds exactly them."""
        # an input that held no records (say a header-only CSV) changes nothing, so it may come again
        seen = {i["sha256"]: (run["run"], i["path"]) for run in self.runs for i in run["inputs"] if i["records"]}
        again = [(seen[i.sha256], i.path) for i in inputs if i.sha256 in seen]
        if not again:
            if replace:
                raise HistoryError("--replace-run: none of these inputs is in a committed run")
            return
        (run_no, old_path), path = again[0]
        if not replace:
            raise HistoryError(f"{path} was already scored into this history by run {run_no} (as {old_path}); "
                               "scoring it again would count its records twice. Use --replace-run to replace "
                               "that run")
        newest = self.runs[-1]
        if {r[0][0] for r in again} != {newest["run"]} or self.manifest.get("previous") is None:
            raise HistoryError(f"--replace-run can replace only the newest run ({newest['run']}); "
                               f"{path} is in run {run_no}")
        self.manifest["state"] = self.manifest["previous"]
        self.manifest["previous"] = None
        self.manifest["runs"] = self.runs[:-1]

    def load(self, horizon: Horizon, schema_fields: dict[str, set[str]]) -> Context:
        """The context for the next run: records no older than each stream's span, with pushdown."""
        state = self.manifest["state"]
        high_water = state["high_water"]
        ctx = Context(horizon, high_water=high_water, next_order=state["next_order"])
        footers = state.get("footers", {})
        if state["last_alerts"]:
            _check_footers(self.root, [state["last_alerts"]], footers)
            path = str(self.root / state["last_alerts"])
            try:
                ctx.last_alerts = pq.read_table(path, schema=LAST_ALERT_SCHEMA, page_checksum_verification=True)
            except STORE_READ_ERRORS as exc:
                raise _damaged(self.root, [path], exc) from None
        stored = state.get("columns", {})
        for stream in horizon.kept_streams():
            files = state["records"].get(stream, [])
            if not files or high_water is None:
                continue
            want = [c for c in horizon.columns(stream) if c in schema_fields.get(stream, set())]
            missing = sorted(set(want) - set(stored.get(stream, [])))
            if missing:
                raise HistoryError(f"{self.root}: the rules now read {stream} field(s) {', '.join(missing)} that "
                                   "this history does not keep; start a new history for the changed pack")
            cutoff = high_water - horizon.span(stream)
            first_day = _day(cutoff)
            rels = [f for f in files if f.split("day=")[1][:10] >= first_day]
            if not rels:
                continue
            _check_footers(self.root, rels, footers)
            paths = [str(self.root / f) for f in rels]
            try:
                dataset = ds.dataset(paths, format=_VERIFIED)
                table = dataset.to_table(columns=[*want, ORDER],
                                         filter=ds.field("ts") >= pa.scalar(cutoff, pa.int64()).cast(TS_TYPE))
            except STORE_READ_ERRORS as exc:
                raise _damaged(self.root, paths, exc) from None
            ctx.records[stream] = table.sort_by(ORDER)
        return ctx

    # -- what a run writes -------------------------------------------------------------------
    def commit(self, before: Context, after: Context, inputs: list[RunInput], summary: dict[str, Any]) -> None:
        """Persist ``after`` (the context once this run's records are in) as the next state, atomically."""
        state = self.manifest["state"]
        old_footers = state.get("footers", {})
        footers: dict[str, str] = {}
        run_no = (self.runs[-1]["run"] + 1) if self.runs else 1
        tag = f"run-{run_no:06d}"
        records: dict[str, list[str]] = {}
        columns: dict[str, list[str]] = {}
        for stream, table in after.records.items():
            old_files = state["records"].get(stream, [])
            columns[stream] = [c for c in table.column_names if c != ORDER]
            new_rows = table.filter(pc.greater_equal(table.column(ORDER), before.next_order))
            kept = [f for f in old_files if _file_may_hold(f, after.high_water, after.horizon.span(stream))]
            footers.update((f, old_footers[f]) for f in kept if f in old_footers)
            if new_rows.num_rows:
                day = pc.strftime(new_rows.column("ts"), format="%Y-%m-%d")
                for d in sorted(set(day.to_pylist())):
                    part = new_rows.filter(pc.equal(day, d))
                    rel = f"records/stream={stream}/day={d}/{tag}.parquet"
                    footers[rel] = _write_parquet(part, self.root / rel)
                    kept.append(rel)
            records[stream] = kept
        last_rel = None
        if after.last_alerts.num_rows:
            last_rel = f"alerts/last-{run_no:06d}.parquet"
            footers[last_rel] = _write_parquet(after.last_alerts, self.root / last_rel)
        new_state = {"high_water": after.high_water, "next_order": after.next_order, "records": records,
                     "columns": columns, "last_alerts": last_rel, "footers": footers,
                     "horizon": {s: after.horizon.span(s) for s in after.horizon.kept_streams()}}
        run = {"run": run_no, "inputs": [i.__dict__ for i in inputs],
               "high_water": _iso(after.high_water), **summary}
        manifest = {"format": FORMAT, "version": VERSION, "state": new_state, "previous": state,
                    "runs": [*self.runs, run]}
        write_json_durably(self.root / "manifest.json", manifest)  # the commit point
        self.manifest = manifest
        self._remove_orphans()  # what neither this state nor the one before it names

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.root.rglob("*.parquet"))


def _empty_state() -> dict[str, Any]:
    return {"high_water": None, "next_order": 0, "records": {}, "columns": {}, "last_alerts": None, "horizon": {}}


def _iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    # whole seconds and microseconds apart: ns / 1e9 as a float is off in the last microsecond digits
    at = dt.datetime.fromtimestamp(ns // 10**9, dt.timezone.utc) + dt.timedelta(microseconds=ns % 10**9 // 1000)
    return at.isoformat().replace("+00:00", "Z")


def _file_may_hold(rel: str, high_water: int | None, span_ns: int) -> bool:
    """Whether a day partition may still hold records inside the horizon (whole days are pruned)."""
    if high_water is None:
        return True
    day = rel.split("day=")[1][:10]
    end = dt.datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc) + dt.timedelta(days=1)
    return int(end.timestamp()) * 10**9 > high_water - span_ns
