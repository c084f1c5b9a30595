"""Writing the data set: one CSV per stream, labels.csv and the reported_*.txt lists.

Each file is written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import os
import pathlib
import tempfile
from collections.abc import Callable, Sequence
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .entities import BANKS, COUNTRIES, Entities
from .schema import CHANNELS, COLUMNS, EVENTS, ID_PREFIX, STREAMS
from .strings import digits, ids, money, timestamps, to_arrow

_CHUNK = 1_000_000  # rows per arrow batch: bounds the memory of the string columns
_DIR = pa.array(["in", "out"])
_TRUNK = pa.array(["domestic", "international"])
_EVENT = pa.array(EVENTS)
_CHANNEL = pa.array(CHANNELS)
_CSV = pacsv.WriteOptions(include_header=False, quoting_style="none")


def write_dataset(out_dir: pathlib.Path, data: dict[str, dict[str, np.ndarray]], E: Entities,
                  typologies: Sequence[str], case_ids: Sequence[str], reported_accounts: Sequence[int],
                  reported_numbers: Sequence[int], lookalikes: Sequence[str] = (),
                  registered_businesses: Sequence[int] = (), registered_lines: Sequence[int] = ()) -> dict[str, int]:
    """Write every file into out_dir (emptying ``data`` as it goes); return rows per file.

    Records carry ``case`` (index into case_ids, -1 for background) and ``typ`` (index into typologies;
    -1 for background, ``-2 - i`` for a record of lookalike kind ``lookalikes[i]``). With lookalikes,
    ``lookalikes.csv``, ``collection_accounts.txt`` and ``enterprise_lines.txt`` are written too.
    """
    acct_bank, acct_country = E.acct_tables()
    counts: dict[str, int] = {}
    label_parts, lookalike_parts = [], []
    for stream in STREAMS:
        cols = data[stream]
        counts[f"{stream}.csv"] = _write_stream(out_dir / f"{stream}.csv", stream, cols, E, acct_bank, acct_country)
        rows = np.flatnonzero(cols["case"] >= 0)
        label_parts.append((stream, rows, cols["typ"][rows], cols["case"][rows]))
        rows = np.flatnonzero(cols["typ"] <= -2)
        lookalike_parts.append((stream, rows, -2 - cols["typ"][rows].astype(np.int64)))
        del data[stream]  # free each stream once written
    # labels: by stream, then record id
    s_idx, rec_ids = _record_ids([(s, rows) for s, rows, _, _ in label_parts])
    labels = pa.RecordBatch.from_arrays(
        [_small(pa.array(STREAMS), s_idx), rec_ids,
         _small(pa.array(typologies), np.concatenate([p[2] for p in label_parts])),
         _small(pa.array(case_ids), np.concatenate([p[3] for p in label_parts]))], names=COLUMNS["labels"])
    _write_table(out_dir / "labels.csv", labels)
    counts["labels.csv"] = labels.num_rows
    lists = [("reported_accounts.txt", E.account, reported_accounts),
             ("reported_numbers.txt", E.phone, reported_numbers)]
    if lookalikes:
        s_idx, rec_ids = _record_ids([(s, rows) for s, rows, _ in lookalike_parts])
        table = pa.RecordBatch.from_arrays(
            [_small(pa.array(STREAMS), s_idx), rec_ids,
             _small(pa.array(list(lookalikes)), np.concatenate([p[2] for p in lookalike_parts]))],
            names=["stream", "record_id", "kind"])
        _write_table(out_dir / "lookalikes.csv", table)
        counts["lookalikes.csv"] = table.num_rows
        lists.append(("collection_accounts.txt", E.account, registered_businesses))
        lists.append(("enterprise_lines.txt", E.phone, registered_lines))
    for name, reg, vals in lists:
        text = "".join(s + "\n" for s in reg.take(np.array(vals, np.int64)).to_pylist())
        _atomic_write(out_dir / name, lambda fh, t=text: fh.write(t.encode()))
        counts[name] = len(vals)
    return counts


def _record_ids(parts: list[tuple[str, np.ndarray]]) -> tuple[np.ndarray, pa.Array]:
    """(stream index, record id) of the given rows of each stream, by stream then row."""
    s_idx = np.concatenate([np.full(rows.size, STREAMS.index(s)) for s, rows in parts]).astype(np.int64)
    rows = np.concatenate([rows for _, rows in parts])
    rec_ids = pc.binary_join_element_wise(
        _small(pa.array([ID_PREFIX[s] for s in STREAMS]), s_idx), to_arrow(digits(rows + 1, 9)), "")
    return s_idx, rec_ids


def _write_table(path: pathlib.Path, table: pa.RecordBatch) -> None:
    def write(fh: BinaryIO) -> None:
        fh.write((",".join(table.schema.names) + "\n").encode())
        pacsv.write_csv(table, fh, _CSV)

    _atomic_write(path, write)


def _small(tab: pa.Array, idx: np.ndarray) -> pa.Array:
    """Values of a small lookup table by code."""
    return pc.take(tab, pa.array(np.asarray(idx, dtype=np.int64)))


def _batch(stream: str, cols: dict[str, np.ndarray], lo: int, hi: int, E: Entities,
           acct_bank: np.ndarray, acct_country: np.ndarray) -> pa.RecordBatch:
    s = {k: v[lo:hi] for k, v in cols.items()}
    n = hi - lo
    arrays: list[pa.Array] = [ids(ID_PREFIX[stream], lo + 1, n), timestamps(s["ts"])]
    if stream == "call":
        arrays += [E.phone.take(s["caller"]), E.phone.take(s["callee"]), _small(_DIR, s["direction"]),
                   pa.array(s["duration"], pa.int64()), pa.array(s["answered"], pa.bool_()), E.imsi.take(s["imsi"]),
                   E.imei.take(s["imei"]), E.cell.take(s["cell"]), _small(_TRUNK, s["trunk"])]
    elif stream == "sms":
        arrays += [E.phone.take(s["sender"]), E.phone.take(s["receiver"]), _small(_DIR, s["direction"])]
    elif stream == "sim_event":
        arrays += [E.phone.take(s["msisdn"]), _small(_EVENT, s["event"]), E.imsi.take(s["imsi"]),
                   E.imei.take(s["imei"]), E.iddoc.take(s["iddoc"])]
    else:
        arrays += [E.account.take(s["payer"]), E.phone.take(s["payer_phone"]), E.account.take(s["payee"]),
                   _small(pa.array(BANKS), acct_bank[s["payee"]]),
                   _small(pa.array(COUNTRIES), acct_country[s["payee"]]),
                   money(s["cents"]), _small(pa.array(["CNY"]), np.zeros(n, np.int64)),
                   _small(_CHANNEL, s["channel"]), E.device.take(s["device"]), E.ip.take(s["ip"]),
                   money(s["bal_before"]), money(s["bal_after"])]
    return pa.RecordBatch.from_arrays(arrays, names=COLUMNS[stream])


def _atomic_write(path: pathlib.Path, write: Callable[[BinaryIO], object]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        umask = os.umask(0)  # mkstemp creates 0600; give the file the mode open() would
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _write_stream(path: pathlib.Path, stream: str, cols: dict[str, np.ndarray], E: Entities,
                  acct_bank: np.ndarray, acct_country: np.ndarray) -> int:
    n = cols["ts"].size

    def write(fh: BinaryIO) -> None:
        fh.write((",".join(COLUMNS[stream]) + "\n").encode())
        writer = None
        for lo in range(0, n, _CHUNK):
            b = _batch(stream, cols, lo, min(n, lo + _CHUNK), E, acct_bank, acct_country)
            if writer is None:
                writer = pacsv.CSVWriter(fh, b.schema, write_options=_CSV)
            writer.write_batch(b)
        if writer is not None:
            writer.close()

    _atomic_write(path, write)
    return n
