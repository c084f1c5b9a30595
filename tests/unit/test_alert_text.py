"""Alert text held as bytes (runtime.alert_text): what a spool is given is what its source reads back,
at any offsets, from memory or from its file, and the file is gone from the folder once it is held."""

from __future__ import annotations

import os
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudrules.runtime import alert_text
from fraudrules.runtime.alert_text import ByteSpool

PIECES = st.lists(st.binary(max_size=40), max_size=30)


@settings(max_examples=200, deadline=None)
@given(PIECES, st.sampled_from([0, 1, 50, 1 << 20]), st.sampled_from([1, 7, 64]),
       st.lists(st.tuples(st.integers(0, 1300), st.integers(0, 1300)), max_size=12))
def test_a_source_reads_back_what_its_spool_was_given(tmp_path_factory, pieces, memory_bytes, window, spans):
    folder = tmp_path_factory.mktemp("spool")
    real_window = alert_text.READ_WINDOW
    alert_text.READ_WINDOW = window  # windows smaller than a read, and reads across windows
    try:
        spool = ByteSpool(str(folder), memory_bytes=memory_bytes)
        for piece in pieces:
            spool.write(piece)
        source = spool.close()
        whole = b"".join(pieces)
        assert source.size == len(whole)
        assert source.in_file == (len(whole) > memory_bytes)
        named = list(folder.iterdir())
        assert [f.read_bytes() for f in named] == ([whole] if source.in_file else [])
        source = pickle.loads(pickle.dumps(source))  # a worker's result, before the parent holds it
        source.hold()
        assert list(folder.iterdir()) == []  # held: no name left behind
        for start, end in spans:
            start, end = min(start, end, len(whole)), min(max(start, end), len(whole))
            assert source.read(start, end) == whole[start:end]
        assert b"".join(source.blocks()) == whole
        assert b"".join(source.blocks(len(whole) // 3, len(whole) // 2)) == whole[len(whole) // 3:len(whole) // 2]
        source.close()
    finally:
        alert_text.READ_WINDOW = real_window


def test_a_held_file_does_not_leave_its_process(tmp_path):
    spool = ByteSpool(str(tmp_path), memory_bytes=0)
    spool.write(b"line\n")
    source = spool.close()
    name = next(tmp_path.iterdir())
    assert name.read_bytes() == b"line\n"
    source.hold()
    assert not name.exists() and source.read(0, 4) == b"line"
    with pytest.raises(TypeError):
        pickle.dumps(source)


def test_a_small_spool_makes_no_file(tmp_path):
    spool = ByteSpool(str(tmp_path))
    spool.write(b"x" * 1000)
    source = spool.close().hold()
    assert not source.in_file and os.listdir(tmp_path) == [] and source.read(10, 13) == b"xxx"


def test_reads_in_order_across_window_edges(tmp_path, monkeypatch):
    monkeypatch.setattr(alert_text, "READ_WINDOW", 8)
    whole = bytes(range(97, 123)) * 4
    spool = ByteSpool(str(tmp_path), memory_bytes=0)
    spool.write(whole)
    source = spool.close().hold()
    for start in range(len(whole)):  # each read's window is the last one's, or starts at the read
        for length in range(0, 11):
            assert source.read(start, min(start + length, len(whole))) == whole[start:start + length]
