"""columns.hashing.text_hashes: a text's hash is its bytes' alone, and different texts hash apart."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fraudrules.columns.hashing as hashing
from fraudrules.columns.hashing import text_hashes

# short ids, texts around the 8-byte word edges, multi-byte UTF-8, NUL bytes, and texts past the 64 bytes
# from where only the long texts are scanned
texts = st.one_of(
    st.text(max_size=20),
    st.text(alphabet="ab\x00é中", min_size=6, max_size=18),
    st.text(alphabet="xy", min_size=60, max_size=140),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(texts, max_size=60), st.integers(0, 5), st.sampled_from([pa.string(), pa.large_string()]))
def test_equal_texts_hash_equal_and_a_text_hashes_the_same_alone_sliced_or_chunked(values, cut, typ):
    arr = pa.array(values, typ)
    h = text_hashes(arr)
    assert h.dtype == np.uint64 and len(h) == len(values)
    # each element as it hashes alone: nothing depends on the rows around it, nor on the Arrow type
    alone = [int(text_hashes(pa.array([v], pa.large_string()))[0]) for v in values]
    assert h.tolist() == alone
    # a slice (an offset into the buffers) and a chunked array give the same hashes
    cut = min(cut, len(values))
    assert text_hashes(arr.slice(cut)).tolist() == alone[cut:]
    assert text_hashes(pa.chunked_array([arr.slice(0, cut), arr.slice(cut)], typ)).tolist() == alone
    # equal texts hash equal and, among these few, different texts hash apart
    by_text: dict[str, int] = {}
    for v, x in zip(values, alone):
        assert by_text.setdefault(v, x) == x
    assert len(set(by_text.values())) == len(by_text)


def test_a_null_hashes_as_the_empty_text_and_bytes_past_a_text_do_not_count():
    h = text_hashes(pa.array([None, "", "a", "a\x00", "abcdefgh", "abcdefgh\x00", "abcdefghi"]))
    assert h[0] == h[1]
    assert len(set(h[1:].tolist())) == 6  # a trailing NUL is a different text: the length is hashed too


def test_a_million_distinct_ids_do_not_collide():
    ids = pa.array([f"c{i:010d}" for i in range(1_000_000)])
    assert len(np.unique(text_hashes(ids))) == 1_000_000


@settings(max_examples=60, deadline=None)
@given(st.lists(texts, max_size=40), st.integers(1, 7))
def test_a_long_array_hashed_in_slices_hashes_as_it_does_whole(values, rows) -> None:
    """text_hashes hashes a long array slice by slice (only each slice's bytes copied): the same hashes."""
    arr = pa.array(values, pa.string())
    whole = text_hashes(arr).tolist()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hashing, "_SLICE_ROWS", rows)
        assert text_hashes(arr).tolist() == whole
        assert text_hashes(arr.slice(min(2, len(values)))).tolist() == whole[min(2, len(values)):]


@settings(max_examples=120, deadline=None)
@given(st.lists(st.sampled_from(["", "a", "b", "é中", "a\x00", "+8613800138000", "w" * 70]), max_size=60),
       st.sampled_from([pa.string(), pa.large_string()]))
def test_text_codes_from_hashes_are_arrows_dictionary_indices(values, typ) -> None:
    """text_codes by hashes (forced at every size) and by Arrow: the same code per text, first-seen order."""
    import pyarrow.compute as pc

    arr = pa.array(values, typ)
    want = pc.dictionary_encode(arr).indices.to_pylist()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hashing, "HASHED_CODES_MIN", 0)
        got = hashing.text_codes(arr)
    assert got.dtype == np.int64 and got.tolist() == want
    assert hashing.text_codes(arr).tolist() == want  # Arrow's way, below the size


def test_texts_that_share_a_hash_still_get_their_own_codes(monkeypatch) -> None:
    """A collision (forced: every text hashes alike) must not give two texts one code."""
    monkeypatch.setattr(hashing, "HASHED_CODES_MIN", 0)
    monkeypatch.setattr(hashing, "text_hashes", lambda arr: np.zeros(len(arr), dtype=np.uint64))
    assert hashing.text_codes(pa.array(["b", "a", "b", "c", "a"])).tolist() == [0, 1, 0, 2, 1]
