"""``quote_toggles`` and ``csv_record_end`` against their oracle, Python's csv module: a newline ends a record
exactly where the csv module's reading of the text ends one, however the quotes stray."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fraudrules.io import read_csv
from fraudrules.io.read_csv import csv_record_end, quote_toggles

# pieces a CSV text is made of: text, separators, quotes alone and doubled, line ends (bare CR aside: the
# readers send those to the slow path before any of this runs)
_PIECE = st.sampled_from(["a", "b", " ", ",", '"', '""', "\n", "\r\n", ',"', '",', '"\n'])
_TEXT = st.lists(_PIECE, max_size=40).map("".join)


def _record_ends(text: str) -> list[int]:
    """The offsets of the newlines that end a record as the csv module reads ``text``. A text that ends inside a
    quote ends its last record at the end of the text, not at a newline: the ``Z`` after it shows which (it joins
    that record, or is a record of its own line)."""
    newlines = [i for i, c in enumerate(text) if c == "\n"]
    reader = csv.reader(io.StringIO(text + "Z", newline=""))
    ends = []
    for _ in reader:
        if reader.line_num <= len(newlines):
            ends.append(newlines[reader.line_num - 1])
    return sorted(set(ends))


def _ends_by_toggles(data: bytes, find=quote_toggles) -> list[int]:
    arr = np.frombuffer(data, dtype=np.uint8)
    toggles = find(arr)
    quotes = np.flatnonzero(arr == 34)
    assert np.isin(toggles, quotes).all() and (np.diff(toggles) > 0).all()
    newlines = np.flatnonzero(arr == 10)
    return newlines[np.searchsorted(toggles, newlines) % 2 == 0].tolist()


@settings(max_examples=500, deadline=None)
@given(_TEXT, st.booleans())
@example('a,5" x\nb,"q\nr"\n', True)  # a stray quote inside a value, then a quoted newline
@example('"a"b"\nc\n', True)  # after a quoted part closes, a quote is text up to the field's end
@example('a,""b\n"\n', True)  # an empty quoted part, then text; the next line's quote opens a field never closed
@example('"a,""",b\n"""\n"\n', True)  # runs of three: a doubled quote then a closing one, or an opening one
def test_record_ends_are_the_csv_modules(text, runs_only):
    """``runs_only``: the state machine over quote runs even where the RFC 4180 check would answer (a buffer's
    regular records go through it whenever one record in the buffer is irregular)."""
    if "\r" in text.replace("\r\n", ""):
        return  # a bare CR made by joining pieces: the slow path's, never this scan's
    toggles = _runs_only if runs_only else quote_toggles
    assert _ends_by_toggles(text.encode(), toggles) == _record_ends(text)


@settings(max_examples=200, deadline=None)
@given(_TEXT)
def test_the_cut_is_after_the_last_record_end(text):
    if "\r" in text.replace("\r\n", ""):
        return
    data = text.encode()
    ends = _record_ends(text)
    last = data.rfind(b"\n")
    assert csv_record_end(data) == (ends[-1] + 1 if ends else last + 1)


def test_a_stray_quote_does_not_hide_the_record_ends_after_it():
    """Quote parity (the old cut) takes every newline after ``5"`` as inside a quote: no record ends there."""
    rows = [b"r%d,x,y" % i for i in range(50)]
    rows[10] = b'r10,5" screen,y'
    data = b"\n".join(rows) + b"\n"
    arr = np.frombuffer(data, dtype=np.uint8)
    assert len(_ends_by_toggles(data)) == 50
    quotes = np.flatnonzero(arr == 34)
    newlines = np.flatnonzero(arr == 10)
    assert np.count_nonzero(np.searchsorted(quotes, newlines) % 2 == 0) == 10  # what parity alone would give
    assert csv_record_end(data) == len(data)


def test_many_stray_quotes_give_the_csv_modules_ends():
    rows = [b'r%d,"q, %d",y' % (i, i) if i % 3 else b'r%d,%d" tall,"a\nb"' % (i, i) for i in range(300)]
    text = b"\n".join(rows) + b"\n"
    assert _ends_by_toggles(text) == _record_ends(text.decode())
    assert len(_record_ends(text.decode())) == 300


def _runs_only(arr: np.ndarray) -> np.ndarray:
    with pytest.MonkeyPatch.context() as m:
        m.setattr(read_csv, "_regular", lambda arr, q, separator: False)
        return quote_toggles(arr)


@settings(max_examples=300, deadline=None)
@given(_TEXT)
def test_the_rfc_4180_check_never_calls_irregular_quotes_regular(text):
    """The check that skips the runs' state machine: where it says every quote toggles, the state machine
    agrees (it may be cautious, never wrong)."""
    arr = np.frombuffer(text.encode(), dtype=np.uint8)
    quotes = np.flatnonzero(arr == 34)
    if read_csv._regular(arr, quotes, read_csv._separators(",")):
        # the same bytes inside a quoted field (two toggles side by side, as ``""`` may give, change nothing)
        others = np.flatnonzero(arr != 34)
        assert (np.searchsorted(_runs_only(arr), others) % 2 == np.searchsorted(quotes, others) % 2).all()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.text(alphabet='ab ,"\n;', max_size=5), min_size=1, max_size=4), max_size=8),
       st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]), st.sampled_from(["\n", "\r\n"]))
def test_what_a_csv_writer_writes_is_regular(rows, quoting, eol):
    """A writer's quotes (RFC 4180) pass the check, so a clean file never pays for the state machine."""
    out = io.StringIO()
    csv.writer(out, quoting=quoting, lineterminator=eol).writerows(rows)
    arr = np.frombuffer(out.getvalue().encode(), dtype=np.uint8)
    quotes = np.flatnonzero(arr == 34)
    assert read_csv._regular(arr, quotes, read_csv._separators(","))
