"""The scalar one-record intake gives exactly what records_from_dicts gives.

``ScalarIntake.convert`` answers only for records the vectorised path accepts,
with the same values (E.164 phones, int ns UTC timestamps, floats, enums,
bools); for everything else it answers None and the executor takes the
vectorised path, whose reject reasons are therefore unchanged. Hypothesis
draws records from valid and invalid spellings of every field type.
"""

from __future__ import annotations

import datetime
import functools

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fraudrules.executors.stream import StreamExecutor
from fraudrules.executors.stream.bindings import py_values
from fraudrules.executors.stream.intake import _NO, ScalarIntake, _json_bools, _json_numbers, _timestamps, timestamp_ns
from fraudrules.io.records import records_from_dicts
from fraudrules.pack.loader import load_pack
from fraudrules.pack.streams import FieldSpec, Schema, StreamSpec
from fraudrules.runtime.plan import compile_pack
from tests.helpers import RULES

FIELDS = {
    "id": FieldSpec("id", "string"),
    "ts": FieldSpec("ts", "timestamp"),
    "s": FieldSpec("s", "string"),
    "p": FieldSpec("p", "phone"),
    "e": FieldSpec("e", "enum", ("in", "out")),
    "i": FieldSpec("i", "int"),
    "f": FieldSpec("f", "float"),
    "d": FieldSpec("d", "duration"),
    "b": FieldSpec("b", "bool"),
}
SCHEMA = Schema({"t": StreamSpec("t", FIELDS)})

PHONES = ["+8613800000001", "13800000001", "+86 138 0000 0001", "95588", "110", "+85523900111",
          "+447700900123", "garbage", " ", "", "+8613800000001\n", "0086 138 0000 0001", "+88213000123",
          "138-0000-0001", "(+86)13800000002", "+861380000000"]
NUMBERS = ["12", "-3.5", "1e6", " 42 ", "+7", ".5", "5.", "1e400", "nan", "inf", "-inf", "1,000", "abc", "",
           "  ", "0x10", "1_000", "\t3", "３", "2.50", "1E-3", 7, 7.25, -0.0, 10**20, True, False, float("nan")]
BOOLS = ["true", "False", "YES", "no", "1", "0", " true ", "t", "", "2", True, False, 1, 0, 2, 1.0]
DIGITS = st.integers(0, 9).map(str)


@st.composite
def timestamps(draw) -> object:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(["", " ", "2026-02-30T10:00:00Z", "2026-13-01T00:00:00Z", "2026-03-01T24:00:00",
                                     "2016-12-31T23:59:60Z", "yesterday", "2026-03-01T10:00:00+25:00", "1e9",
                                     1_700_000_000, "2026-03-01T10:00:00z", "2026-03-01T10:00:00.1234567891Z",
                                     "2026/03/01 10:00", "2026-03-01T10:00:00 +08:00", "1850-01-01T00:00:00Z"]))
    y = draw(st.integers(1970, 2100))
    mo = draw(st.integers(1, 12))
    d = draw(st.integers(1, 31 if draw(st.booleans()) else 28))
    h, mi, s = draw(st.integers(0, 23)), draw(st.integers(0, 59)), draw(st.integers(0, 59))
    text = f"{y:04d}-{mo:02d}-{d:02d}"
    form = draw(st.integers(0, 4))
    if form:
        text += draw(st.sampled_from(["T", " "])) + f"{h:02d}:{mi:02d}"
        if form >= 2:
            text += f":{s:02d}"
        if form >= 3:
            text += "." + "".join(draw(st.lists(DIGITS, min_size=1, max_size=9)))
        text += draw(st.sampled_from(["", "Z", "+08:00", "-05:30", "+0545", "+08", "-11:00", "+00:00"]))
    return draw(st.sampled_from(["", " "])) + text + draw(st.sampled_from(["", " "]))


@functools.cache
def _fitting(name: str, pool: tuple) -> list:
    """The values of ``pool`` that a record accepts in field ``name``."""
    return [v for v in pool if not isinstance(vectorised({"stream": "t", "id": "a", "ts": "2026-01-01", name: v}), str)]


@st.composite
def records(draw) -> dict:
    rec: dict = {"stream": "t"}
    clean = draw(st.booleans())  # half the records draw only values that fit: the scalar path's share
    if clean or draw(st.integers(0, 19)):
        rec["id"] = draw(st.sampled_from(["r1", "x", "é", 17] if clean else ["r1", "r2", "x", "", "é", 17, None]))
    if clean or draw(st.integers(0, 19)):
        rec["ts"] = draw(timestamps())
    for name, pool in (("s", ["a", "", " b ", "ü", 5, 1.5, True]), ("p", PHONES + [13800000001]),
                       ("e", ["in", "out", "IN", "", " in", 3]), ("i", NUMBERS), ("f", NUMBERS), ("d", NUMBERS),
                       ("b", BOOLS)):
        if clean:
            pool = _fitting(name, tuple(pool))
        if draw(st.booleans()):
            rec[name] = draw(st.sampled_from(pool + [None]))
    if not clean and draw(st.integers(0, 29)) == 0:
        rec["unknown"] = 1
    if draw(st.integers(0, 9)) == 0:
        rec["_note"] = "ignored"
    return rec


def vectorised(rec: dict, schema: Schema = SCHEMA) -> tuple[str, int, tuple] | str:
    rs = records_from_dicts([rec], schema, region="CN")
    if rs.rejects:
        return rs.rejects[0].reason
    ((stream, table),) = rs.tables.items()
    row = tuple(py_values(table.columns[f])[0] for f in schema.streams[stream].fields)
    return stream, table.columns["ts"].values.tolist()[0], row


SCALAR = ScalarIntake(SCHEMA, "CN")
SEEN = {"scalar": 0, "vectorised": 0}


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records())
@example({"stream": "t", "id": "a", "ts": "2026-03-01T10:00:00+08:00", "p": "13800000001", "i": " 42 ", "b": "YES"})
@example({"stream": "t", "id": "a", "ts": "2026-03-01", "f": 7.25, "d": 10**20, "e": "out"})
@example({"stream": "t", "id": "a", "ts": "2026-03-01T10:00:00", "f": float("nan"), "p": " "})
def test_scalar_intake_equals_records_from_dicts(rec):
    got = SCALAR.convert(rec)
    want = vectorised(rec)
    if got is None:  # the vectorised path decides: reasons are its own
        SEEN["vectorised"] += 1
        return
    SEEN["scalar"] += 1
    assert not isinstance(want, str), f"scalar path accepted a record that is rejected: {want}"
    assert got == want
    assert [type(v) for v in got[2]] == [type(v) for v in want[2]]


def test_scalar_intake_takes_the_usual_records():
    """The samples (as watch/serve receive them) all go the scalar way, with the same values."""
    pack = load_pack(RULES)
    from fraudrules.io.records import parse_inputs
    from fraudrules.jobs.watch import ordered_records

    recs = ordered_records(parse_inputs(["samples"], pack.schema), pack.schema)
    intake = ScalarIntake(pack.schema, "CN")
    for rec in recs[::7]:
        got = intake.convert(rec)
        assert got is not None, rec
        assert got == vectorised(rec, pack.schema)


def test_timestamp_parser_edges():
    assert timestamp_ns("1970-01-01T00:00:00Z") == 0
    assert timestamp_ns("2026-03-01T10:00:00+08:00") == timestamp_ns("2026-03-01T02:00:00Z")
    assert timestamp_ns("2024-02-29") is not None and timestamp_ns("2023-02-29") is None
    assert timestamp_ns("2026-03-01T10:00:00.5Z") == timestamp_ns("2026-03-01T10:00:00Z") + 500_000_000


def _calendar_ns(y: int, mo: int, d: int) -> int | None:
    """Nanoseconds of midnight UTC of a date by the standard library's calendar, None when it is no date."""
    try:
        return int(datetime.datetime(y, mo, d, tzinfo=datetime.timezone.utc).timestamp()) * 1_000_000_000
    except ValueError:
        return None


def test_month_ends_and_leap_days_follow_the_calendar_on_every_path():
    """The last days of every month, in leap and common years and in the century years (2000 is a leap year;
    1900, 2100 and 2200 are not), on each way a timestamp is read: by position (the usual shape), by the full
    pattern (a fraction, a date alone) and over numpy (a column), against the standard library's calendar."""
    texts, want = [], []
    for y in (1900, 1904, 1999, 2000, 2023, 2024, 2100, 2104, 2200):
        for mo in range(1, 13):
            for d in (28, 29, 30, 31, 32):
                midnight = _calendar_ns(y, mo, d)
                text = f"{y:04d}-{mo:02d}-{d:02d}T06:07:08Z"
                at = None if midnight is None else midnight + (6 * 3600 + 7 * 60 + 8) * 1_000_000_000
                assert timestamp_ns(text) == at, text
                assert timestamp_ns(text[:10]) == midnight, text[:10]
                assert timestamp_ns(text[:19] + ".25+08:00") == (
                    None if at is None else at + 250_000_000 - 8 * 3600 * 1_000_000_000), text
                texts.append(text)
                want.append(_NO if at is None else at)
    assert _timestamps(texts, _ts_converter) == want


def test_feed_of_one_record_rejects_with_the_vectorised_reason():
    plan = compile_pack(load_pack(RULES), "CN")
    ex = StreamExecutor(plan)
    bad = {"stream": "payment", "id": "p1", "ts": "2026-03-01T10:00:00Z", "amount": "12,5"}
    ex.feed(bad)
    assert ex.rejected_records == [(bad, vectorised(bad, plan.schema))]
    assert "amount: '12,5' is not a number" in ex.rejected_records[0][1]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records(), min_size=1, max_size=12))
def test_column_intake_equals_record_by_record(recs):
    """convert_many (a micro-batch, a column at a time) answers what convert answers for each record."""
    recs = recs + [{**r, "stream": "nope"} for r in recs[:1]] + [{"id": "x", "ts": "2026-01-01"}]
    got = SCALAR.convert_many(recs)
    want = [SCALAR.convert(r) for r in recs]
    assert got == want
    assert [[type(v) for v in g[2]] for g in got if g] == [[type(v) for v in w[2]] for w in want if w]


def test_column_intake_takes_the_usual_records():
    pack = load_pack(RULES)
    from fraudrules.io.records import parse_inputs
    from fraudrules.jobs.watch import ordered_records

    recs = ordered_records(parse_inputs(["samples"], pack.schema), pack.schema)
    intake = ScalarIntake(pack.schema, "CN")
    assert intake.convert_many(recs) == [intake.convert(r) for r in recs]


@st.composite
def usual_timestamps(draw) -> str:
    """``YYYY-MM-DDTHH:MM:SS``, sometimes a fraction of 1-9 digits, then nothing, ``Z`` or ``+HH:MM`` (the shapes
    convert_many reads over numpy), each field sometimes out of range."""
    y = draw(st.sampled_from([1899, 1900, 1970, 2000, 2024, 2100, 2200, 2201]) | st.integers(1890, 2210))
    mo, d = draw(st.integers(0, 13)), draw(st.integers(0, 32))
    h, mi, s = draw(st.integers(0, 25)), draw(st.integers(0, 61)), draw(st.integers(0, 61))
    text = f"{y:04d}-{mo:02d}-{d:02d}{draw(st.sampled_from('T '))}{h:02d}:{mi:02d}:{s:02d}"
    return text + draw(FRACTIONS) + draw(OFFSETS)


# one fraction and one suffix per column: a column's texts share a length, the shape the numpy path reads
FRACTIONS = st.sampled_from(["", ".5", ".123", ".000001", ".999999999", ".12345678"])
OFFSETS = st.one_of(st.sampled_from(["", "Z"]), st.builds(
    lambda sign, oh, om: f"{sign}{oh:02d}:{om:02d}", st.sampled_from("+-"), st.integers(0, 25),
    st.sampled_from([0, 30, 45, 59, 60, 99])))


@st.composite
def usual_timestamp_columns(draw) -> list[str]:
    """1-40 texts of one shape: the fraction's length and the kind of suffix the same in each."""
    fraction, offset = draw(FRACTIONS), draw(OFFSETS)
    texts = draw(st.lists(usual_timestamps(), min_size=1, max_size=40))
    out = []
    for t in texts:
        head = t[:19]
        suffix = offset if len(offset) < 6 else t[-6:] if t[-6] in "+-" and t[-3] == ":" else offset
        out.append(head + fraction + suffix)
    return out


def _ts_converter(text: str) -> object:
    v = timestamp_ns(text)
    return _NO if v is None else v


@settings(max_examples=300, deadline=None)
@given(usual_timestamp_columns())
@example(["2026-03-01T10:00:00Z", "2024-02-29 23:59:59Z"])
@example(["2026-03-01T10:00:00.5+08:00", "2023-02-29T00:00:00.1-05:30"])
@example(["2026-03-01T10:00:00", "2026-03-01T10:00:60"])
def test_timestamps_over_numpy_equal_the_scalar_parser(texts):
    """convert_many's timestamp column (numpy, intake._timestamps) gives what timestamp_ns gives, value by
    value, out-of-range fields (Feb 30, hour 24, offset +25:00) included; a column whose texts differ in
    length or layout is not taken."""
    assert _timestamps(texts, _ts_converter) == [_ts_converter(t) for t in texts]
    assert _timestamps(texts + [texts[0] + " "], _ts_converter) is None
    assert _timestamps(texts + [texts[0][:10] + "/" + texts[0][11:]], _ts_converter) is None
    if texts[0].endswith("Z"):
        assert _timestamps(texts + [texts[0][:-1] + "z"], _ts_converter) is None
    recs = [{"stream": "t", "id": f"r{k}", "ts": t} for k, t in enumerate(texts * (128 // len(texts) + 1))]
    assert len(recs) >= 128  # a column convert_many types over numpy (_TS_NUMPY_MIN)
    assert SCALAR.convert_many(recs) == [SCALAR.convert(r) for r in recs]


JSON_NUMBERS = st.one_of(
    st.integers(-(10**16), 10**16), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -0.0, 7, 7.25, 2**53 + 1, 10**15, 10**15 + 1, 1e15, -1e15, 1.5, 10**400]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.fixed_dictionaries({}, optional={
    "i": JSON_NUMBERS | st.none(), "f": JSON_NUMBERS | st.none(), "d": JSON_NUMBERS | st.none(),
    "b": st.booleans() | st.none()}), min_size=1, max_size=30))
@example([{"i": 12, "f": 2.5, "d": 30, "b": True}, {"i": 7.0, "f": -0.0, "d": None, "b": False}])
@example([{"i": 7.5}, {"i": 10**400}, {"f": float("nan")}, {"f": float("inf")}, {"d": 1e16}])
def test_json_numbers_and_booleans_by_column_equal_record_by_record(values):
    """A producer that types its values sends numbers and booleans as JSON values. convert_many reads a column
    of them at once (intake._json_numbers over numpy); each record's values equal convert's, value and
    Python type, and a record convert refuses (NaN, a fraction in an int field, beyond 1e15) is refused too."""
    recs = [{"stream": "t", "id": f"r{k}", "ts": "2026-03-01T10:00:00Z", **v} for k, v in enumerate(values)]
    got = SCALAR.convert_many(recs)
    want = [SCALAR.convert(r) for r in recs]
    assert got == want
    assert [[type(v) for v in g[2]] for g in got if g] == [[type(v) for v in w[2]] for w in want if w]
    for rec, row in zip(recs, got):  # and what the vectorised path gives, for the records convert takes
        if row is not None:
            assert row == vectorised(rec)


@pytest.mark.parametrize("field", ["s", "p", "e", "ts"])
@pytest.mark.parametrize("column", [[True, False, None], [True, True], [7, 2.5, None], [False, 3]])
def test_json_numbers_and_booleans_in_fields_of_text_are_what_convert_makes_of_them(field, column):
    """A whole column of JSON booleans or numbers where the field takes a text (a string, phone, enum or
    timestamp): convert_many reads no such column at once, so each record gets convert's answer, and a
    record either path takes is the vectorised path's."""
    base = {"stream": "t", "ts": "2026-03-01T10:00:00Z", "s": "x", "p": "13800000001", "e": "in"}
    recs = [{**base, "id": f"r{k}", field: v} for k, v in enumerate(column)]
    got = SCALAR.convert_many(recs)
    assert got == [SCALAR.convert(r) for r in recs]
    for rec, row in zip(recs, got):
        if row is not None:
            assert row == vectorised(rec)
    assert any(row is None for row in got)  # a boolean or a number is no text: the vectorised path decides


def test_column_intake_with_every_name_some_names_and_an_unknown_one():
    """convert_many takes a record with every field by one itemgetter call, the others by name; a record
    with as many names as the stream has but an unknown one for a field is convert's; the answers are
    convert's, record by record, and again when the same texts come back (the column memos)."""
    full = {"stream": "t", "id": "a", "ts": "2026-03-01T10:00:00+08:00", "s": "x", "p": "13800000001",
            "e": "out", "i": "12", "f": " 2.5 ", "d": "30", "b": "yes"}
    recs = [full, {**full, "id": "b", "p": "+8613800000001"}, {k: v for k, v in full.items() if k != "f"},
            {**{k: v for k, v in full.items() if k != "b"}, "bb": "1"}, {**full, "id": "", "e": "IN"},
            {**full, "ts": "2026-02-30T10:00:00+08:00"}, {**full, "p": None, "i": 7}]
    for _ in range(2):
        got = SCALAR.convert_many(recs)
        assert got == [SCALAR.convert(r) for r in recs]
    assert got[3] is None and got[0] is not None and got[2] is not None


def test_json_number_and_boolean_columns_are_read_at_once():
    """The typed-column readers answer for a whole column, or leave it (None) to the per-value way."""
    ints, floats = _json_numbers(integral=True), _json_numbers(integral=False)
    assert ints([12, 7.0, None, -3], {int, float, type(None)}) == [12.0, 7.0, None, -3.0]
    assert floats([0.1, 2], {int, float}) == [0.1, 2.0]
    for refused in ([7.5], [float("nan")], [float("inf")], [1e16], [10**400]):
        assert ints(refused, set(map(type, refused))) is None
    assert floats([2.5, True], {float, bool}) is None  # a boolean is not a number
    assert floats(["2.5"], {str}) is None  # texts: the text converters
    assert _json_bools([True, None, False], {bool, type(None)}) == [True, None, False]
    assert _json_bools([True, 1], {bool, int}) is None

