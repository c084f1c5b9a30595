"""64-bit hashes of text columns, computed on Arrow's bytes with numpy: no Python str per row.

The read rejects a record whose id an earlier record of its stream has (io.records.SeenIds). It
compares ids by a 64-bit hash; hashing a block's ids through Python objects (pandas' ``hash_array``)
held the GIL for about 0.4 s per million rows, on the one thread that keeps the read's blocks in order.
Here each text is cut into 8-byte words, mixed word by word (the multiply and xor-shift steps of
splitmix64) from a seed of its length, all as uint64 array arithmetic.

The hash of a text depends on its UTF-8 bytes alone: not on the Arrow type (string, large_string,
a slice of either), nor on the block or the rows around it. It is not keyed, so it is no defence
against crafted collisions; nor was pandas' (a fixed, public key). A collision makes a record a
"duplicate id" reject, with its line, never a silent loss.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .vec import search_sorted

if TYPE_CHECKING:  # pyarrow is loaded by whoever has Arrow arrays to hash
    import pyarrow as pa

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_WORD_BYTES = 8
_SCAN_BYTES = 64  # up to here each word scans every row's length; beyond, only the long texts


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, in place: every input bit reaches every output bit."""
    h ^= h >> np.uint64(30)
    h *= _MIX1
    h ^= h >> np.uint64(27)
    h *= _MIX2
    h ^= h >> np.uint64(31)
    return h


def text_hashes(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """uint64 hash per element of an Arrow string or large_string array (nulls hash as "")."""
    import pyarrow as pa

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], pa.large_string())
    n = len(arr)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    if not (pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type)
            or pa.types.is_string(arr.type) or pa.types.is_binary(arr.type)):
        arr = arr.cast(pa.large_string())
    if n > _SLICE_ROWS:  # a slice's temporaries stay in cache: 478k phones hash in 0.06 s, not 0.15, in 11 MB, not 56
        return np.concatenate([_slice_hashes(arr.slice(i, _SLICE_ROWS)) for i in range(0, n, _SLICE_ROWS)])
    return _slice_hashes(arr)


_SLICE_ROWS = 1 << 16


def _slice_hashes(arr: pa.Array) -> np.ndarray:
    """:func:`text_hashes` of a string or binary array (a slice of one: only its own bytes are read)."""
    import pyarrow as pa

    n = len(arr)
    wide = pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type)
    buffers = arr.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int64 if wide else np.int32)[arr.offset: arr.offset + n + 1]
    base = int(offsets[0])
    starts = offsets[:-1].astype(np.int64) - base
    lengths = (offsets[1:] - offsets[:-1]).astype(np.int64)
    if arr.null_count:  # a null's bytes are not defined: it is "" here
        valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        lengths = np.where(valid, lengths, 0)
    data = (np.frombuffer(buffers[2], dtype=np.uint8)[base: int(offsets[-1])] if buffers[2] is not None
            else np.zeros(0, np.uint8))
    # the bytes as aligned words, with a zero word after the last: a word at any byte position is two
    # aligned words shifted together
    words = np.zeros(len(data) // _WORD_BYTES + 2, dtype="<u8")
    words.view(np.uint8)[: len(data)] = data
    # seeded with (length + 1): a seed of length * golden made "" 0, a fixed point of the mix, and "\x00"
    # too, as its one word (0, plus golden) cancelled its seed
    h = (lengths.astype(np.uint64) + np.uint64(1)) * _GOLDEN
    word = 0
    long_rows: np.ndarray | None = None
    while True:
        if word < _SCAN_BYTES:
            reaching = lengths > word  # texts that reach this word
            live = slice(None) if reaching.all() else np.flatnonzero(reaching)
        else:  # long texts only, longest first, so that each further word is a prefix of them
            if long_rows is None:
                long_rows = np.flatnonzero(lengths > word)
                long_rows = long_rows[np.argsort(-lengths[long_rows], kind="stable")]
            live = long_rows[: int(np.count_nonzero(lengths[long_rows] > word))] if len(long_rows) else long_rows
            long_rows = live
        if isinstance(live, np.ndarray) and not len(live):
            break
        h[live] = _mix(h[live] ^ _word_at(words, starts[live] + word, lengths[live] - word) + _GOLDEN)
        word += _WORD_BYTES
    return _mix(h)


def _word_at(words: np.ndarray, pos: np.ndarray, left: np.ndarray) -> np.ndarray:
    """The 8 bytes at byte positions ``pos`` as little-endian uint64, bytes beyond ``left`` (the text's
    remaining length, >= 1) zeroed."""
    q = pos >> 3
    shift = ((pos & 7) * 8).astype(np.uint64)
    w = words[q] >> shift
    # the next word's low bytes fill the top; a shift of 64 is undefined, and there is nothing to fill
    w |= np.where(shift == 0, np.uint64(0), words[q + 1] << ((np.uint64(64) - shift) & np.uint64(63)))
    partial = left < _WORD_BYTES
    if partial.any():
        bits = (np.minimum(left[partial], _WORD_BYTES) * 8).astype(np.uint64)
        w[partial] &= (np.uint64(1) << bits) - np.uint64(1)
    return w


_CHECK_ROWS = 1 << 16  # texts compared with the text their hash found at a time


def union_codes(a: pa.Array, b: pa.Array) -> np.ndarray:
    """The codes of ``a``'s texts, then ``b``'s, in one space, as ``dictionary_encode(concat(a, b))`` gives
    them, for two string arrays of distinct texts without nulls (Coded dictionaries): text i of ``a`` is
    i, a text of ``b`` found in ``a`` has its code there, and the others follow ``a`` in ``b``'s order.

    Found by sorting ``a``'s hashes and searching ``b``'s among them: no hash table. Joining callers and
    callees at 2.3M records (557k and 628k texts) held 49 MB where factorizing both texts' hashes held 108,
    the largest block of several rules' peaks; Arrow's own hash tables cost about 250 bytes a text. Each
    text of ``b`` is compared with the text its hash found, so a shared hash never joins two texts: on
    one, the codes come from Arrow's dictionary_encode instead."""
    import pyarrow as pa
    import pyarrow.compute as pc

    na = len(a)
    if not na:
        return np.arange(len(b), dtype=np.int64)
    codes = _union_by_hashes(a, b)
    if codes is None:  # a shared hash: Arrow's hash table of both
        both = pa.concat_arrays([a.cast(pa.large_string()), b.cast(pa.large_string())])
        return np.asarray(pc.dictionary_encode(both).indices.to_numpy(), dtype=np.int64)
    new = codes < 0
    codes[new] = na + np.arange(int(new.sum()), dtype=np.int64)
    return np.r_[np.arange(na, dtype=np.int64), codes]


def _union_by_hashes(a: pa.Array, b: pa.Array) -> np.ndarray | None:
    """Per text of ``b``, its index in ``a`` or -1; None when a text of ``b`` found another text by its hash
    (two texts of ``a`` that share a hash do no harm: ``a``'s codes are its positions, and a search that
    finds the other one of them is caught the same way)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    hashes = text_hashes(a)
    order = np.argsort(hashes)
    ranked = hashes[order]
    del hashes
    wanted = text_hashes(b)
    pos = search_sorted(ranked, wanted)
    np.minimum(pos, len(ranked) - 1, out=pos)
    found = ranked[pos] == wanted
    del ranked, wanted
    at = order[pos]
    del order, pos
    hits = np.flatnonzero(found)
    for i in range(0, len(hits), _CHECK_ROWS):
        rows = hits[i: i + _CHECK_ROWS]
        if not pc.all(pc.equal(b.take(pa.array(rows)), a.take(pa.array(at[rows])))).as_py():
            return None  # a text of b shares its hash with another text of a
    at[~found] = -1
    return at
