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


def test_every_text_of_up_to_two_bytes_hashes_apart():
    """All 65,793 byte strings of 0-2 bytes (hypothesis found "" and "\x00" sharing 0: the seed was
    length * golden, and a zero word plus golden cancelled it). Up to three bytes, 16.8M strings, was
    checked by hand."""
    values = [b"", *(bytes([a]) for a in range(256)), *(bytes([a, b]) for a in range(256) for b in range(256))]
    assert len(np.unique(text_hashes(pa.array(values, pa.binary())))) == len(values)


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


_WORDS = ["", "a", "b", "é中", "a\x00", "+8613800138000", "+8613800138001", "w" * 70, "w" * 71]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(_WORDS), unique=True), st.lists(st.sampled_from(_WORDS), unique=True),
       st.sampled_from([pa.string(), pa.large_string()]), st.sampled_from([pa.string(), pa.large_string()]))
def test_union_codes_are_the_dictionary_indices_of_both_texts(a, b, type_a, type_b) -> None:
    """union_codes of two arrays of distinct texts: the codes Arrow's dictionary_encode gives them together."""
    import pyarrow.compute as pc

    want = pc.dictionary_encode(pa.array(a + b, pa.large_string())).indices.to_pylist()
    got = hashing.union_codes(pa.array(a, type_a), pa.array(b, type_b))
    assert got.dtype == np.int64 and got.tolist() == want


@pytest.mark.parametrize("collide", ["within a", "between a and b"])
def test_texts_that_share_a_hash_still_get_their_own_codes(collide: str, monkeypatch) -> None:
    """A shared hash (forced) must not give two texts one code."""
    real = hashing.text_hashes

    def hashes(arr):
        h = real(arr)
        if collide == "within a":
            return np.zeros(len(h), dtype=np.uint64)
        return np.where(np.isin(arr.to_numpy(zero_copy_only=False), ["x", "y"]), np.uint64(7), h)

    monkeypatch.setattr(hashing, "text_hashes", hashes)
    a, b = pa.array(["b", "a", "x", "c"]), pa.array(["y", "a", "d", "x"])
    assert hashing.union_codes(a, b).tolist() == [0, 1, 2, 3, 4, 1, 5, 2]


@pytest.mark.parametrize("seed", range(6))
def test_union_codes_compare_their_hits_a_slice_at_a_time(seed: int, monkeypatch) -> None:
    """Hits are compared as text _CHECK_ROWS at a time: every slice counts, a shared hash in the last one too."""
    import pyarrow.compute as pc

    monkeypatch.setattr(hashing, "_CHECK_ROWS", 3)
    rng = np.random.default_rng(seed)
    pool = [f"+86138{i:08d}" for i in rng.choice(10**6, 60, replace=False)]
    a = [pool[i] for i in rng.permutation(40)]
    b = [pool[i] for i in rng.permutation(np.arange(20, 60))]
    want = pc.dictionary_encode(pa.array(a + b)).indices.to_pylist()
    assert hashing.union_codes(pa.array(a), pa.array(b)).tolist() == want
    # the last text of b that a also has now shares its hash with another text of a
    shared, other = b[max(i for i, t in enumerate(b) if t in a)], next(t for t in a if t not in b)
    real = hashing.text_hashes
    monkeypatch.setattr(hashing, "text_hashes", lambda arr: np.array(
        [real(pa.array([other]))[0] if t == shared else h for t, h in zip(arr.to_pylist(), real(arr))],
        dtype=np.uint64))
    assert hashing.union_codes(pa.array(a), pa.array(b)).tolist() == want
