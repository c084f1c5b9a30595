"""Keys of several fields (``key: [payer_account, device_id]``, docs/design.md §5 "Keys").

Such a key is one text column of the stream, derived from its fields where an executor takes the
records in (batch: ``executors.batch.Tables``; stream: ``StreamExecutor._arrive``), so windows, joins,
``unless``, suppression, checkpoints and routing see an ordinary one-field key. The column is never
stored: a history store keeps the fields (store/horizon.py) and each run derives it again.

Its value is the fields' values joined by ``|``, each with ``\\`` and ``|`` escaped by a backslash, so
two different tuples never give the same text (("a|b", "c") is ``a\\|b|c``, ("a", "b|c") is ``a|b\\|c``)
and an alert id, a function of the key text, stays a function of the tuple. A null in any field: no key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..columns.vec import Vec
from ..pack.model import KEY_SEP

_STR = np.dtypes.StringDType()


def escape_part(value: str) -> str:
    return value.replace("\\", "\\\\").replace(KEY_SEP, "\\" + KEY_SEP)


def key_text(values: Sequence[object]) -> str | None:
    """The key of one record from its fields' values (None when any is None)."""
    if any(v is None for v in values):
        return None
    return KEY_SEP.join(escape_part(str(v)) for v in values)


def key_column(columns: Mapping[str, Vec], parts: Sequence[str]) -> Vec:
    """The key column of a table from its fields' columns, vectorised (numpy string ufuncs)."""
    null = np.zeros(len(columns[parts[0]]), dtype=bool)
    out = None
    for i, name in enumerate(parts):
        col = columns[name]
        null |= col.null
        text = np.strings.replace(np.strings.replace(col.values.astype(_STR), "\\", "\\\\"), KEY_SEP, "\\" + KEY_SEP)
        out = text if i == 0 else np.strings.add(np.strings.add(out, KEY_SEP), text)
    values = out.astype(object)
    values[null] = ""  # the filler of a null slot (columns/vec.py)
    return Vec(values, null)


def with_keys(columns: dict[str, Vec], derived: Mapping[str, Sequence[str]]) -> dict[str, Vec]:
    """``columns`` plus each derived key column (a new dict: the caller's table is left as it was)."""
    if not derived:
        return columns
    return {**columns, **{name: key_column(columns, parts) for name, parts in derived.items()}}


def row_keys(row: tuple, index: Mapping[str, int], derived: Mapping[str, Sequence[str]]) -> tuple:
    """One record's row (values in schema order) extended by its derived keys, in ``derived`` order."""
    return row + tuple(key_text([row[index[p]] for p in parts]) for parts in derived.values())
