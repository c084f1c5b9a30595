"""country() and number_type() over many numbers at once (columns/numbering.py) against phonenumbers
itself, one number at a time (phones.country_one / type_one, which call phonenumbers' own parse,
is_valid_number, region_code_for_number and number_type): the bulk path must give the same answer for
every number, valid or not, of every country code."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudrules.columns import numbering, phones


def _codes() -> list[str]:
    from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

    return sorted(str(c) for c in COUNTRY_CODE_TO_REGION_CODE)


def _examples() -> list[str]:
    """phonenumbers' example number of every region (and non-geographic code) and type, as E.164, and
    each with one digit changed: valid numbers of every kind, and numbers just beside them."""
    import phonenumbers

    out = []
    regions = [(r, None) for r in sorted(phonenumbers.SUPPORTED_REGIONS)]
    regions += [(None, c) for c in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS)]
    for region, code in regions:
        for kind in range(12):
            number = (phonenumbers.example_number_for_type(region, kind) if region
                      else phonenumbers.example_number_for_non_geo_entity(code))
            if number is None:
                continue
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            out.append(e164)
            for at in range(3, len(e164), 3):
                out.append(e164[:at] + str((int(e164[at]) + 1) % 10) + e164[at + 1:])
            out += [e164 + "0", e164[:-1]]  # one digit too many, one too few
    return sorted(set(out))


def _by_one(texts: list[str]) -> tuple[list, list]:
    return [phones.country_one(t) for t in texts], [phones.type_one(t) for t in texts]


def test_every_example_number_gets_phonenumbers_answer():
    """Thousands of valid numbers of every region and type, and their near misses: the same country and
    type as phonenumbers gives; and most of them are answered by the numbering plan, not one by one."""
    texts = _examples()
    assert len(texts) > 5000
    countries, kinds = _by_one(texts)
    assert phones.country_many(texts) == countries
    assert phones.type_many(texts) == kinds
    _, _, answered = numbering.describe_e164(pa.array(texts, pa.string()))
    assert answered.mean() > 0.8
    assert {"CN", "US", "CA", "GB", "JE", "IT", "VA"} <= set(countries)  # shared codes (+1, +44, +39) resolved
    assert {"mobile", "fixed", "fixed_or_mobile", "toll_free", "premium_rate", "voip"} <= set(kinds)


_NATIONAL = st.text("0123456789", max_size=18) | st.sampled_from(
    ["0", "00", "1", "8", "06", "179", "11", "12", "3", "7"]).flatmap(
    lambda head: st.text("0123456789", max_size=14).map(lambda tail: head + tail))
_NUMBER = st.one_of(
    st.builds(lambda code, rest: "+" + code + rest, st.sampled_from(_codes()), _NATIONAL),
    st.builds(lambda code, rest: "+" + code + rest, st.text("0123456789", min_size=1, max_size=3), _NATIONAL),
    st.sampled_from(_examples()),
    st.sampled_from(["+", "+1", "+86", "+8613", "+" + "1" * 41, "+86 138 0013 8000", "8613800138000",
                     "13800138000", "", "+０86", "+8613800138000\n", "110", "+800 1234 5678"]),
    st.text(max_size=12),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_NUMBER, min_size=phones.MANY_MIN, max_size=200))
def test_many_numbers_get_phonenumbers_answer(texts):
    """Any text, valid or not, "+"-and-digits or not: country_many and type_many equal country_one and
    type_one text by text."""
    countries, kinds = _by_one(texts)
    assert phones.country_many(texts) == countries
    assert phones.type_many(texts) == kinds


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_NUMBER, min_size=1, max_size=200))
def test_kept_one_is_kept_as_written_one_text_at_a_time(texts):
    """The stream intake's test (phones.kept_one, Python's re) gives the columns' answer
    (kept_as_written, Arrow's RE2) for every text, and a text it keeps is one the parser keeps as written."""
    got = [phones.kept_one(t) for t in texts]
    assert got == phones.kept_as_written(pa.array(texts, pa.string())).tolist()
    for t, kept in zip(texts, got):
        if kept and not t.endswith("\n"):  # a final newline: kept as written by both, trimmed by the parser
            assert phones.normalise_one(t, "CN") == t


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(_NUMBER, min_size=1, max_size=150), min_size=2, max_size=4), st.integers(5, 60))
def test_answers_kept_between_calls_are_phonenumbers_answers(calls, memo_max):
    """Calls that share numbers, as a stream's releases do, the memo from one call to the next (and full, so
    that it starts afresh): each call's answers equal country_one's and type_one's, repeats included."""
    from unittest.mock import patch

    with patch.object(phones, "MEMO_MAX", memo_max), patch.object(phones, "_COUNTRY_MEMO", {}), \
            patch.object(phones, "_TYPE_MEMO", {}):
        for i, texts in enumerate(calls):
            texts = texts + calls[i - 1][: len(texts) // 2] + texts[:3]  # numbers asked before, and repeats
            countries, kinds = _by_one(texts)
            assert phones.country_many(texts) == countries
            assert phones.type_many(texts) == kinds
            assert len(phones._COUNTRY_MEMO) <= memo_max and len(phones._TYPE_MEMO) <= memo_max


def test_numbers_asked_before_are_not_asked_of_the_numbering_plan_again(monkeypatch):
    """A call of up to MEMO_CALL_MAX numbers keeps its answers: the next call with the same numbers does not
    reach numbering.describe_e164, and gets the same answers. A larger call (a batch column's distinct values)
    keeps nothing."""
    monkeypatch.setattr(phones, "_TYPE_MEMO", {})
    texts = _examples()[:300]
    first = phones.type_many(texts)
    assert len(phones._TYPE_MEMO) == len(texts)

    def asked(_texts):
        raise AssertionError("asked the numbering plan again")

    monkeypatch.setattr(numbering, "describe_e164", asked)
    assert phones.type_many(list(reversed(texts))) == list(reversed(first))
    monkeypatch.undo()
    monkeypatch.setattr(phones, "_TYPE_MEMO", {})
    many = _examples()[: phones.MEMO_CALL_MAX + 1]
    assert len(many) > phones.MEMO_CALL_MAX
    assert phones.type_many(many) == _by_one(many)[1]
    assert phones._TYPE_MEMO == {}


def test_kept_one_leaves_a_strippable_national_prefix_to_the_parser():
    # +86 0...: CN's national prefix after the code; +44 7...: no prefix to strip; +1 1...: NANPA's "1"
    assert [phones.kept_one(t) for t in ["+8601012345678", "+861012345678", "+447911123456", "+12015550123",
                                          "+112015550123", "+8613800138000", "+0123", "+86 138"]] == [
        False, True, True, True, False, True, False, False]


def test_the_parser_keeps_its_compiled_patterns(monkeypatch):
    """phonenumbers compiles a metadata pattern at each use; past the re module's 512 cached patterns
    (numbers from many regions) it compiled them again, ~70% of a parse. Once phones has parsed a
    number, a number of a region seen before compiles nothing."""
    import re

    assert phones.normalise_one("+447911123456", "CN") == "+447911123456"  # parsed: "+44" and "0" are apart
    assert phones.normalise_one("+44 7911 123457", "CN") == "+447911123457"
    compiled = []
    real = re.compile
    monkeypatch.setattr(re, "compile", lambda *a, **k: compiled.append(a) or real(*a, **k))
    assert phones.type_one("+447911123458") == "mobile"
    assert compiled == []


def test_a_number_is_parsed_once_for_its_country_and_its_type(monkeypatch):
    """country() and number_type() of one number (phones._parse, memoised) ask the parser once."""
    import phonenumbers

    parsed = []
    real = phonenumbers.parse
    monkeypatch.setattr(phonenumbers, "parse", lambda *a, **k: parsed.append(a[0]) or real(*a, **k))
    assert (phones.country_one("+33612345698"), phones.type_one("+33612345698")) == ("FR", "mobile")
    assert parsed == ["+33612345698"]


def test_a_number_whose_national_prefix_could_be_stripped_is_left_to_phonenumbers():
    """+86 0... (CN's national prefix after the code): phonenumbers may strip it, so the numbering plan
    does not answer it, and the answer is still phonenumbers'."""
    texts = ["+8601012345678", "+861012345678"] * phones.MANY_MIN
    _, _, answered = numbering.describe_e164(pa.array(texts, pa.string()))
    assert answered.tolist()[:2] == [False, True]
    assert phones.country_many(texts) == [phones.country_one(t) for t in texts]


@pytest.mark.parametrize("function", ["country", "number_type"])
def test_the_rule_functions_over_a_column_equal_the_one_record_path(function):
    """The batch bodies of country() and number_type() (a column, nulls, repeats) give what the
    stream's one-record path (runtime.scalar) gives for each value."""
    from fraudrules.columns.vec import Vec
    from fraudrules.lang.functions import FUNCTIONS

    texts = _examples()[:400] + ["", "not a number", "+86 138 0013 8000"]
    values = np.array(texts * 2 + [""], dtype=object)
    null = np.zeros(len(values), dtype=bool)
    null[-1] = True
    out = FUNCTIONS[function].apply([Vec(values, null)], None)
    one = phones.country_one if function == "country" else phones.type_one
    want = [None if n else one(v) for v, n in zip(values, null)]
    assert [None if n else v for v, n in zip(out.values.tolist(), out.null.tolist())] == want


_REGIONS = ["CN", "US", "CA", "GB", "JE", "DE", "IT", "IN", "RU", "KZ", "BR", "FR", "JP", "HK"]


def _digits_for(region: str) -> st.SearchStrategy[str]:
    """Digits as a national number may be written in ``region``: bare, after the country code, after a
    national or international prefix, too short, too long, and the region's example numbers."""
    import phonenumbers

    code = str(phonenumbers.country_code_for_region(region))
    examples = [phonenumbers.national_significant_number(n) for n in
                (phonenumbers.example_number_for_type(region, k) for k in range(12)) if n is not None]
    head = st.sampled_from(["", code, code + "0", "0", "00", "1", "8", "9", "11", "179"])
    return st.one_of(
        st.builds(lambda h, t: (h + t)[:24], head, st.text("0123456789", min_size=1, max_size=18)),
        st.sampled_from(examples).flatmap(lambda e: st.sampled_from([e, code + e, "0" + e, e[:-1], e + "5"])),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_REGIONS).flatmap(
    lambda r: st.tuples(st.just(r), st.lists(_digits_for(r), min_size=phones.MANY_MIN, max_size=150))))
def test_national_numbers_normalise_as_phonenumbers_parses_them(case):
    """Numbers written as digits alone, normalised over an array (numbering.normalise_national inside
    phones.normalise), equal normalise_one (phonenumbers.parse and is_valid_number) number by number."""
    region, texts = case
    values = np.array(texts, dtype=object)
    out, null = phones.normalise(values, np.zeros(len(values), dtype=bool), region)
    assert out.tolist() == [phones.normalise_one(t, region) for t in texts]
    assert not null.any()


def test_chinese_national_numbers_skip_the_parser():
    """The usual shapes of a Chinese operator's records (138..., 86138...) are answered from the numbering
    plan; what phonenumbers might read otherwise (a leading 0, 00 and a code) is not."""
    texts = ["13812345678", "8613812345678", "15912345678", "01012345678", "008613812345678", "1381234567",
             "1", "139" + "1" * 20]
    out, answered = numbering.normalise_national(pa.array(texts, pa.string()), "CN")
    assert answered.tolist() == [True, True, True, False, False, True, True, True]
    assert out.tolist()[:3] == ["+8613812345678", "+8613812345678", "+8615912345678"]
    assert out.tolist()[5:] == ["1381234567", "1", "139" + "1" * 20]  # not valid: kept as written
    assert [phones.normalise_one(t, "CN") for t in texts[:3] + texts[5:]] == out.tolist()[:3] + out.tolist()[5:]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_NUMBER | _digits_for("CN") | st.sampled_from([" 13812345678", "13812345678 ", "(010) 1234 5678",
                                                                "+86-138-1234-5678", "ACC001", "#1", "95588"]),
                max_size=120))
def test_a_lists_numbers_normalise_as_one_by_one(texts):
    """A list's entries as records' numbers read them (phones.normalised_numbers: Arrow and the numbering
    plan for the plain ones) equal normalise_one of each dialable entry."""
    assert phones.normalised_numbers(texts, "CN") == {phones.normalise_one(t, "CN") for t in texts
                                                      if phones.dialable(t)}
