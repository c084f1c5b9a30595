"""columns.arrow_text reads a large_string array's bytes in place: of a slice, only the slice's own."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudrules.columns.arrow_text import holds_json_escapes, joined_bytes, value_offsets

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)


@settings(max_examples=300, deadline=None)
@given(st.lists(TEXT, max_size=12), st.integers(0, 12), st.integers(0, 12))
def test_the_bytes_of_a_slice_are_its_values_joined(values, a, b):
    lo, hi = min(a, b, len(values)), min(max(a, b), len(values))
    part = pa.array(values, pa.large_string()).slice(lo, hi - lo)
    own = values[lo:hi]
    assert joined_bytes(part).to_pybytes() == "".join(own).encode()
    offsets = value_offsets(part)
    assert [int(e - s) for s, e in zip(offsets[:-1], offsets[1:])] == [len(v.encode()) for v in own]
    assert holds_json_escapes(part) == any(c in '"\\' or ord(c) < 0x20 for v in own for c in v)
