"""columns/vec.py ``Coded``: text kept as Arrow dictionary codes from the reader to prepare().

Every path that reads the codes instead of the objects is checked against the object path it
replaces (the old one, still taken by text that is not coded): the same values, the same codes in
the same first-seen order, the same joint codes, the same key text.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudrules.columns.types import LogicalType
from fraudrules.columns.vec import Coded, Vec, concat, distinct_values, sorted_distinct
from fraudrules.io.arrow import arrow_to_vec, text_objects, text_vec
from fraudrules.io.convert import convert_column
from fraudrules.pack.streams import FieldSpec
from fraudrules.runtime.keys import key_column
from fraudrules.runtime.windows import ColumnCodes, joint_codes

WORDS = ["", "a", "b", "a|b", "c\\", "ü", "+8613800138000", "13800138000", "+86 138 0013 8000", "x" * 40]


def random_text(rng: np.random.Generator, n: int, words: int) -> list[str | None]:
    pool = WORDS[: max(1, min(words, len(WORDS)))] + [f"w{i}" for i in range(max(0, words - len(WORDS)))]
    out: list[str | None] = [pool[i] for i in rng.integers(0, len(pool), n)]
    for i in np.flatnonzero(rng.random(n) < 0.1):
        out[i] = None
    return out


def plain(vec: Vec) -> Vec:
    """The same column as the object array the readers made before codes."""
    return Vec(np.array(list(vec.values), dtype=object), vec.null.copy())


@pytest.mark.parametrize("seed", range(24))
def test_coded_text_has_the_object_paths_values_codes_and_joint_codes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    blocks = []
    for _ in range(int(rng.integers(1, 4))):
        raw = pa.array(random_text(rng, int(rng.integers(0, 60)), int(rng.integers(1, 14))), pa.string())
        null = raw.is_null().to_numpy(zero_copy_only=False)
        vec = text_vec(raw, null)
        expect = text_objects(raw)
        expect[null] = ""
        assert list(vec.values) == list(expect)
        assert list(vec.null) == list(null)
        blocks.append(vec)
    whole = concat(blocks)
    assert list(whole.values) == [v for b in blocks for v in b.values]
    perm = rng.permutation(len(whole))
    for vec in (whole, whole.take(perm)):
        got, want = ColumnCodes(vec), ColumnCodes(plain(vec))
        assert list(got.codes) == list(want.codes)  # the same codes: first-seen order, -1 for null
        assert list(got.uniq) == list(want.uniq)
        if isinstance(vec, Coded):
            uniq, codes = vec.distinct()
            old_uniq, old_codes = distinct_values(plain(vec).values)
            assert list(uniq) == list(old_uniq) and list(codes) == list(old_codes)
    other = text_vec(pa.array(random_text(rng, 50, 8), pa.string()), np.zeros(50, dtype=bool))
    for a, b in ((whole, other), (other, whole)):
        got = joint_codes(ColumnCodes(a), ColumnCodes(b))
        want = joint_codes(ColumnCodes(plain(a)), ColumnCodes(plain(b)))
        assert [list(x) for x in got] == [list(x) for x in want]
    cols = {"f": whole, "g": whole.take(perm)}
    old = key_column({k: plain(v) for k, v in cols.items()}, ["f", "g"])
    new = key_column(cols, ["f", "g"])
    assert list(new.values) == list(old.values) and list(new.null) == list(old.null)


def test_a_column_of_distinct_values_is_not_coded_and_mixes_with_coded_blocks() -> None:
    ids = pa.array([f"id{i}" for i in range(100)], pa.string())
    vec = text_vec(ids, np.zeros(100, dtype=bool))
    assert not isinstance(vec, Coded)
    rep = text_vec(pa.array(["a", "b"] * 50, pa.string()), np.zeros(100, dtype=bool))
    assert isinstance(rep, Coded)
    # a column whose reader saw repeats in some blocks only (PaySim's accounts): coded as a whole, one code per
    # text across the parts, nulls kept; an empty block (a plain Vec) does not turn it into objects
    again = text_vec(pa.array(["id3", "a", "zz"], pa.string()), np.array([False, False, True]))
    empty = text_vec(pa.array([], pa.string()), np.zeros(0, dtype=bool))
    for parts in ([rep, vec], [vec, rep], [rep, empty, vec, again], [empty, vec, again]):
        both = concat(parts)
        want = [v for p in parts for v in p.values.tolist()]
        assert list(both.values) == want
        assert both.null.tolist() == [b for p in parts for b in p.null.tolist()]
        assert isinstance(both, Coded) == any(isinstance(p, Coded) for p in parts)
        if isinstance(both, Coded):
            texts = both.arrow.to_pylist()
            assert len(set(texts)) == len(texts)  # each text in the dictionary once: equal texts, equal codes
    assert not isinstance(concat([vec, empty]), Coded) and list(concat([vec, empty]).values) == list(vec.values)


@pytest.mark.parametrize("ftype", ["string", "enum", "phone"])
def test_converted_text_columns_are_coded_with_the_values_of_before(ftype: str) -> None:
    rng = np.random.default_rng(7)
    raw = random_text(rng, 400, 10)
    spec = FieldSpec(name="f", type=ftype, values=("a", "b") if ftype == "enum" else ())
    conv = convert_column(pa.array(raw, pa.string()), spec, "CN")
    assert isinstance(conv.vec, Coded)
    # the object path: the same column, uncoded (a plain object array of its text), converted the same
    values = conv.vec.values
    for i, text in enumerate(raw):
        if conv.vec.null[i] and not conv.bad[i]:
            assert values[i] == ""
        elif ftype != "phone":
            assert values[i] == text
    if ftype == "phone":  # two spellings of one number: one value, one code
        live = ~conv.vec.null
        assert len(set(values[live])) == len(set(conv.vec.codes[live]))
        assert {values[i] for i, t in enumerate(raw) if t in ("13800138000", "+8613800138000")} == {"+8613800138000"}
    if ftype == "enum":
        assert conv.bad.any() and all(values[i] == raw[i] for i in np.flatnonzero(conv.bad))


def test_arrow_columns_read_back_are_coded_when_they_repeat() -> None:
    arr = pa.chunked_array([pa.array(["a", None, "b", "a"] * 10), pa.array(["c", "a", None] * 10)])
    vec = arrow_to_vec(arr, "string")
    assert isinstance(vec, Coded)
    assert list(vec.values) == ["a", "", "b", "a"] * 10 + ["c", "a", ""] * 10


def test_coded_text_goes_to_arrow_as_its_values_do() -> None:
    from fraudrules.io.arrow import vec_to_arrow

    rng = np.random.default_rng(3)
    for _ in range(5):
        vec = text_vec(pa.array(random_text(rng, 80, 6), pa.string()), np.zeros(80, dtype=bool))
        vec.null = vec.null | (rng.random(80) < 0.2)
        assert isinstance(vec, Coded)
        got = vec_to_arrow(vec, "string")
        assert got.equals(vec_to_arrow(plain(vec), "string")) and got.type == pa.string()


def _large_coded(rng: np.random.Generator, n: int) -> Coded:
    """A column of phone-like text with many distinct values (a dictionary larger than a few rows)."""
    pool = [f"+86138{i:08d}" for i in range(400)] + ["+44 20 7946 0000", "13800138000", "abc", ""]
    raw = pa.array([None if rng.random() < 0.1 else pool[int(i)] for i in rng.integers(0, len(pool), n)],
                   pa.string())
    null = raw.is_null().to_numpy(zero_copy_only=False)
    vec = text_vec(raw, null)
    assert isinstance(vec, Coded)
    return vec


@pytest.mark.parametrize("seed", range(6))
def test_work_per_distinct_value_on_codes_equals_the_object_path(seed: int) -> None:
    """distinct_at, a few rows' values, list membership, regex, country() and lower() on codes: the
    answers of the object arrays they no longer make."""
    from fraudrules.columns.vec import distinct_at
    from fraudrules.errors import SourceLocation
    from fraudrules.lang.functions import FUNCTIONS
    from fraudrules.pack.model import NamedList
    from fraudrules.runtime.evaluate import ListMatcher

    rng = np.random.default_rng(seed)
    whole = _large_coded(rng, 3000)
    for rows in (np.sort(rng.choice(len(whole), 7, replace=False)), rng.permutation(len(whole))[:2500]):
        vec = whole.take(rows)
        old = plain(vec)
        assert list(vec.values) == list(old.values)  # a few rows of a large dictionary: only their texts
        live = ~vec.null
        uniq, inv = distinct_at(vec, live)
        assert sorted(uniq) == sorted(set(old.values[live]))
        assert list(uniq[inv]) == list(old.values[live])
        for kind, entries in (("exact", ("+8613800000007", "abc")), ("prefix", ("+861380000001", "+44"))):
            lst = NamedList("l", kind, entries, "", "", "", SourceLocation("x"))
            assert list(ListMatcher(lst).contains(vec)) == list(ListMatcher(lst).contains(old))
        for name, const in (("matches", None), ("country", None), ("lower", None)):
            fn = FUNCTIONS[name]
            args = [vec] if name != "matches" else [vec, Vec.full("7$", LogicalType.STRING, len(vec))]
            old_args = [old] + args[1:]
            c = fn.prepare([None, "7$"]) if fn.prepare and name == "matches" else const
            got, want = fn.apply(args, c), fn.apply(old_args, c)
            assert list(got.values) == list(want.values) and list(got.null) == list(want.null)


@pytest.mark.parametrize("seed", range(4))
def test_comparisons_with_a_text_literal_on_codes_equal_the_object_path(seed: int) -> None:
    from fraudrules.lang.expr import parse_expr
    from fraudrules.runtime.evaluate import ColumnsEnv, Evaluator

    rng = np.random.default_rng(seed)
    whole = _large_coded(rng, 2000)
    for rows in (np.arange(5), rng.permutation(len(whole))):  # a few rows (values compared), many (codes)
        vec = whole.take(rows)
        for text in ('x == "abc"', 'x != "abc"', '"13800138000" == x', 'x == ""', 'not (x == "+8613800000009")',
                     'x == "absent" or x != "abc"'):
            expr = parse_expr(text)
            got = Evaluator().compute(expr, ColumnsEnv({"x": vec}, len(vec)))
            want = Evaluator().compute(expr, ColumnsEnv({"x": plain(vec)}, len(vec)))
            assert list(got.values) == list(want.values) and list(got.null) == list(want.null), text
            assert not isinstance(want, Coded)


@pytest.mark.parametrize("seed", range(4))
def test_a_choice_over_coded_text_stays_coded_and_equals_the_object_path(seed: int) -> None:
    # ``number if overseas(number) else null`` (rules/macros.yaml): the rows' texts were made for the choice,
    # and number_type() then hashed them once per rule
    from fraudrules.lang.expr import parse_expr
    from fraudrules.runtime.evaluate import ColumnsEnv, Evaluator

    rng = np.random.default_rng(seed)
    whole, other = _large_coded(rng, 2000), _large_coded(rng, 2000)
    z = Vec(rng.random(2000), rng.random(2000) < 0.1)
    for rows in (np.arange(7), rng.permutation(2000)):
        cols = {"x": whole.take(rows), "y": other.take(rows), "z": z.take(rows)}
        plain_cols = {"x": plain(cols["x"]), "y": plain(cols["y"]), "z": cols["z"]}
        for text, stays_coded in (("x if z > 0.5 else null", True), ("null if z > 0.5 else x", True),
                                  ("x if z > 0.5 else x", True), ("x if z > 0.5 else y", False),
                                  ('number_type(x if z > 0.3 else null) == "mobile"', False),
                                  ("country(null if z > 0.5 else x)", False)):
            expr = parse_expr(text)
            got = Evaluator().compute(expr, ColumnsEnv(cols, len(rows)))
            want = Evaluator().compute(expr, ColumnsEnv(plain_cols, len(rows)))
            assert isinstance(got, Coded) == stays_coded, text
            assert list(got.null) == list(want.null), text
            assert list(got.values) == list(want.values), text  # null rows hold the filler "" too
    # a dictionary without "" (no nulls, no empty text) has no code for a null row: the object path
    full = Coded(np.array([0, 1] * 20, dtype=np.int32), pa.array(["+8613800000001", "+8613800000002"]),
                 np.zeros(40, dtype=bool))
    expr = parse_expr("x if z > 0.5 else null")
    cols = {"x": full, "z": Vec(rng.random(40), np.zeros(40, dtype=bool))}
    got = Evaluator().compute(expr, ColumnsEnv(cols, 40))
    want = Evaluator().compute(expr, ColumnsEnv({**cols, "x": plain(full)}, 40))
    assert not isinstance(got, Coded) and list(got.values) == list(want.values) and got.null.any()


def test_a_pure_functions_answers_are_kept_per_dictionary_entry() -> None:
    from fraudrules.lang.functions import _str_map_many

    asked: list[str] = []

    def many(texts: list[str]) -> list[str | None]:
        asked.extend(texts)
        return [None if t == "abc" else t[-2:] for t in texts]

    rng = np.random.default_rng(7)
    whole = _large_coded(rng, 3000)
    first = whole.take(np.arange(1500))
    got = _str_map_many(first, many, LogicalType.STRING, pure=True)
    once = set(asked)
    assert len(asked) == len(once) == len(set(first.values[~first.null]))  # each entry used asked once
    asked.clear()
    again = _str_map_many(whole, many, LogicalType.STRING, pure=True)  # another rule, the whole column
    assert set(asked).isdisjoint(once) and set(asked) == set(whole.values[~whole.null]) - once
    want = _str_map_many(plain(first), many, LogicalType.STRING)
    assert list(got.values) == list(want.values) and list(got.null) == list(want.null)
    want = _str_map_many(plain(whole), many, LogicalType.STRING)
    assert list(again.values) == list(want.values) and list(again.null) == list(want.null)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=60), st.integers(0, 3))
def test_sorted_distinct_is_np_unique_for_integers(values: list[int], repeat: int) -> None:
    """sorted_distinct (a sort, not numpy's hash table) gives what np.unique gives, duplicates and all."""
    arr = np.array(values * (repeat + 1), dtype=np.int64)
    got = sorted_distinct(arr)
    assert got.dtype == arr.dtype
    assert got.tolist() == np.unique(arr).tolist()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.floats(allow_nan=True), st.just(float("nan")), st.just(0.0), st.just(-0.0)), max_size=40))
def test_sorted_distinct_keeps_one_nan_as_np_unique_does(values: list[float]) -> None:
    arr = np.array(values, dtype=np.float64)
    got, want = sorted_distinct(arr), np.unique(arr)
    assert len(got) == len(want)
    assert np.array_equal(got, want, equal_nan=True)
