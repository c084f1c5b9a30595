"""An Arrow large_string array's bytes, read in place: what the writers that build text with Arrow share.

A column of JSON literals or CSV lines joined by Arrow lies back to back in its data buffer, so a writer
hands that buffer over in one piece (:func:`joined_bytes`) instead of a str per row; and one scan of those
bytes tells whether any value needs JSON escaping (:func:`holds_json_escapes`), so the regex and the
escaping run only when one does.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def large_text(text: str) -> pa.Scalar:
    """A text constant to join with large_string columns (Arrow's join wants one type)."""
    return pa.scalar(text, pa.large_string())


def value_offsets(arr: pa.Array) -> np.ndarray:
    """The int64 offsets of a large_string array's values into its data buffer (``len(arr) + 1`` of them)."""
    return np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset: arr.offset + len(arr) + 1]


def joined_bytes(arr: pa.Array) -> pa.Buffer:
    """The bytes of a large_string array's values, one after the other, without a copy."""
    offsets = value_offsets(arr)
    first, end = int(offsets[0]), int(offsets[-1])
    data = arr.buffers()[2]
    return pa.py_buffer(b"") if data is None or end == first else data.slice(first, end - first)


def holds_json_escapes(arr: pa.Array) -> bool:
    """Whether any value of a large_string array holds a character JSON escapes (a control character, a quote
    or a backslash): one scan of its bytes, no regex."""
    if len(arr) == 0 or arr.buffers()[2] is None:
        return False
    offsets = value_offsets(arr)
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[int(offsets[0]): int(offsets[-1])]
    return bool(((data < 0x20) | (data == 0x22) | (data == 0x5C)).any())
