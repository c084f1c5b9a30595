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

from ..columns.vec import Coded, Vec, distinct_values
from ..pack.model import KEY_SEP

_STR = np.dtypes.StringDType()


def escape_part(value: str) -> str:
    return value.replace("\\", "\\\\").replace(KEY_SEP, "\\" + KEY_SEP)


def key_text(values: Sequence[object]) -> str | None:
    """The key of one record from its fields' values (None when any is None)."""
    if None in values:
        return None
    parts = [v if type(v) is str else str(v) for v in values]
    text = KEY_SEP.join(parts)
    if "\\" not in text and text.count(KEY_SEP) == len(parts) - 1:  # no part to escape (most keys)
        return text
    return KEY_SEP.join(map(escape_part, parts))


def key_column(columns: Mapping[str, Vec], parts: Sequence[str]) -> Vec:
    """The key column of a table from its fields' columns, vectorised.

    The text is built once per distinct tuple of the fields' values, not per row (numpy string
    ufuncs over a million rows cost ~0.5 s): each field is coded, the tuples of codes are coded, and
    each row takes its tuple's text, one str shared by the rows of a tuple."""
    import pandas as pd

    n = len(columns[parts[0]])
    null = np.zeros(n, dtype=bool)
    if n == 0:
        return Vec(np.empty(0, dtype=object), null)
    combo = np.zeros(n, dtype=np.int64)  # code of the tuple of the fields so far
    texts = np.array([""], dtype=_STR)  # text of each tuple code
    for i, name in enumerate(parts):
        col = columns[name]
        null |= col.null
        if isinstance(col, Coded):
            uniq, codes = col.distinct()
        elif col.values.dtype == object:
            uniq, codes = distinct_values(col.values)
        else:  # by bits, so that 0.0 and -0.0 keep their own texts; each value converts as before
            bits = col.values.view(np.int64) if col.values.dtype.kind == "f" else col.values
            codes, _ = pd.factorize(bits, use_na_sentinel=False)
            first = np.empty(int(codes.max()) + 1, dtype=np.int64)
            first[codes[::-1]] = np.arange(n - 1, -1, -1)
            uniq = col.values[first]
        text = np.strings.replace(np.strings.replace(uniq.astype(_STR), "\\", "\\\\"), KEY_SEP, "\\" + KEY_SEP)
        pairs = combo * len(uniq) + codes
        combo, tuples = pd.factorize(pairs, use_na_sentinel=False)
        before, own = np.divmod(tuples, len(uniq))
        texts = text[own] if i == 0 else np.strings.add(np.strings.add(texts[before], KEY_SEP), text[own])
    values = texts.astype(object)[combo]
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
