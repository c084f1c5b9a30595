"""Numbering-plan tests over arrays: the region, validity and type of E.164 numbers, from
phonenumbers' own metadata, run with Arrow's RE2 kernels.

phonenumbers answers one number at a time, at 50-140 µs a number, and a carrier's day holds millions
of distinct numbers: ``country(caller)`` over one day of 300k distinct numbers took 13 s that way.
Here each pattern of a country code's metadata runs once over all of that code's numbers.
libphonenumber writes its patterns for RE2 (its C++ build matches with it), so Arrow takes them as
they are. The steps are phonenumbers' own (``region_code_for_number``, ``is_valid_number``,
``_number_type_helper``), in its order; tests/unit/test_numbering.py compares the answers with
phonenumbers number by number. Text this module cannot answer exactly ("+" and digits whose national
prefix phonenumbers might strip, text with separators) is left to the caller's per-number path.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

# "+", a country code and digits, nothing else (phonenumbers reads a leading 0 after "+" otherwise)
PLUS_DIGITS_RE2 = r"^\+[1-9][0-9]*$"
MAX_TEXT = 40  # phones._parse reads no longer text
MIN_NSN, MAX_NSN = 2, 17  # phonenumbers' _MIN_LENGTH_FOR_NSN, _MAX_LENGTH_FOR_NSN

# the number types _number_type_helper tests before fixed line and mobile, in its order
_SPECIAL_DESCS = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan",
                  "voicemail")


@lru_cache(maxsize=1)
def country_code_texts() -> frozenset[str]:
    """The country calling codes phonenumbers knows, as text ("1", "44", "886")."""
    from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

    return frozenset(str(c) for c in COUNTRY_CODE_TO_REGION_CODE)


@lru_cache(maxsize=1)
def _country_codes() -> Any:
    import pyarrow as pa

    return pa.array(sorted(country_code_texts()), pa.string())


def _bools(arr: Any) -> np.ndarray:
    return arr.fill_null(False).to_numpy(zero_copy_only=False).astype(bool)


def code_lengths(digits: pa.Array) -> np.ndarray:
    """Length (1-3) of the country code that starts each of ``digits`` (text of digits, no "+"), 0 for
    none: the shortest of the first 1, 2 and 3 digits that is a code (phonenumbers' _extract_country_code)."""
    import pyarrow.compute as pc

    out = np.zeros(len(digits), dtype=np.int8)
    for width in (3, 2, 1):
        out[_bools(pc.is_in(pc.utf8_slice_codeunits(digits, 0, width), value_set=_country_codes()))] = width
    return out


def _full(pattern: str) -> str:
    return f"^(?:{pattern})$"


def _desc_hits(nsn: pa.Array, lengths: np.ndarray, rows: np.ndarray, desc: Any) -> np.ndarray:
    """Which of ``rows`` match ``desc`` (phonenumbers' _is_number_matching_desc): a possible length,
    if the desc lists any, and the whole national number matching its pattern."""
    import pyarrow as pa
    import pyarrow.compute as pc

    hit = np.zeros(len(rows), dtype=bool)
    if desc is None or not desc.national_number_pattern or not len(rows):
        return hit
    sized = np.isin(lengths[rows], list(desc.possible_length)) if desc.possible_length else ~hit
    at = np.flatnonzero(sized)
    if len(at):
        hit[at] = _bools(pc.match_substring_regex(nsn.take(pa.array(rows[at])), _full(desc.national_number_pattern)))
    return hit


def number_types(nsn: pa.Array, lengths: np.ndarray, rows: np.ndarray, metadata: Any) -> np.ndarray:
    """phonenumbers' _number_type_helper for ``rows`` of ``nsn`` (national significant numbers) under
    ``metadata``: PhoneNumberType values, UNKNOWN where the general pattern does not match."""
    from phonenumbers import PhoneNumberType as T

    out = np.full(len(rows), T.UNKNOWN, dtype=np.int8)
    left = np.flatnonzero(_desc_hits(nsn, lengths, rows, metadata.general_desc))
    for name in _SPECIAL_DESCS:
        hit = _desc_hits(nsn, lengths, rows[left], getattr(metadata, name))
        out[left[hit]] = getattr(T, name.upper())
        left = left[~hit]
    fixed = _desc_hits(nsn, lengths, rows[left], metadata.fixed_line)
    if metadata.same_mobile_and_fixed_line_pattern:
        out[left[fixed]] = T.FIXED_LINE_OR_MOBILE
        return out
    mobile = _desc_hits(nsn, lengths, rows[left], metadata.mobile)
    out[left[fixed & mobile]] = T.FIXED_LINE_OR_MOBILE
    out[left[fixed & ~mobile]] = T.FIXED_LINE
    out[left[~fixed & mobile]] = T.MOBILE
    return out


def _regions(code: int, nsn: pa.Array, lengths: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """phonenumbers' region_code_for_number for ``rows``, all of country code ``code``: the index into
    the code's regions of its one region, or of the first whose leading digits (or, without them, whose
    patterns) fit; -1 if none."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from phonenumbers import PhoneMetadata
    from phonenumbers import PhoneNumberType as T
    from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

    regions = COUNTRY_CODE_TO_REGION_CODE[code]
    if len(regions) == 1:
        return np.zeros(len(rows), dtype=np.int16)
    out = np.full(len(rows), -1, dtype=np.int16)
    left = np.arange(len(rows))
    for i, region in enumerate(regions):
        metadata = PhoneMetadata.metadata_for_region(region.upper(), None)
        if metadata is None or not len(left):
            continue
        if metadata.leading_digits is not None:  # re.match: at the start, a prefix
            hit = _bools(pc.match_substring_regex(nsn.take(pa.array(rows[left])), f"^(?:{metadata.leading_digits})"))
        else:
            hit = number_types(nsn, lengths, rows[left], metadata) != T.UNKNOWN
        out[left[hit]] = i
        left = left[~hit]
    return out


def describe(code: int, nsn: pa.Array, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The region and type of the valid numbers among ``rows`` of ``nsn``, all of country code ``code``,
    as phonenumbers gives them (``region_code_for_number``, ``number_type``); None for both where the
    number is not valid (``is_valid_number``)."""
    import pyarrow.compute as pc
    from phonenumbers import PhoneMetadata
    from phonenumbers import PhoneNumberType as T
    from phonenumbers.phonenumberutil import (
        COUNTRY_CODE_TO_REGION_CODE,
        REGION_CODE_FOR_NON_GEO_ENTITY,
        country_code_for_valid_region,
    )

    lengths = pc.utf8_length(nsn).to_numpy(zero_copy_only=False)
    region_of = _regions(code, nsn, lengths, rows)
    region_out = np.full(len(rows), None, dtype=object)
    type_out = np.full(len(rows), None, dtype=object)
    for i in np.unique(region_of[region_of >= 0]).tolist():
        region = COUNTRY_CODE_TO_REGION_CODE[code][i]
        metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, region.upper())
        if metadata is None or (region != REGION_CODE_FOR_NON_GEO_ENTITY
                                and code != country_code_for_valid_region(region)):
            continue
        at = np.flatnonzero(region_of == i)
        types = number_types(nsn, lengths, rows[at], metadata)
        valid = types != T.UNKNOWN
        region_out[at[valid]] = region
        type_out[at[valid]] = types[valid]
    return region_out, type_out


def describe_e164(texts: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Region and PhoneNumberType of each of ``texts`` that phonenumbers would read as "+", a country
    code and a national number with nothing stripped (``answered``); None for both where such a number
    is not valid. Rows not ``answered`` need phonenumbers itself."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(texts)
    region_out = np.full(n, None, dtype=object)
    type_out = np.full(n, None, dtype=object)
    shaped = _bools(pc.match_substring_regex(texts, PLUS_DIGITS_RE2))
    shaped &= _bools(pc.less_equal(pc.binary_length(texts), MAX_TEXT))
    rows = np.flatnonzero(shaped)
    answered = shaped.copy()  # an unknown code, a number too short or too long: not valid, answered
    if not len(rows):
        return region_out, type_out, answered
    digits = pc.utf8_slice_codeunits(texts.take(pa.array(rows)), 1)
    n_digits = pc.utf8_length(digits).to_numpy(zero_copy_only=False)
    for code, at, nsn, strippable in e164_groups(digits):
        answered[rows[at[strippable]]] = False  # phonenumbers may strip a prefix there
        nsn_len = n_digits[at] - len(str(code))
        sized = np.flatnonzero(~strippable & (nsn_len >= MIN_NSN) & (nsn_len <= MAX_NSN))  # else: not valid
        if not len(sized):
            continue
        regions, types = describe(code, nsn, sized)
        region_out[rows[at[sized]]] = regions
        type_out[rows[at[sized]]] = types
    return region_out, type_out, answered


def e164_groups(digits: pa.Array) -> Iterator[tuple[int, np.ndarray, pa.Array, np.ndarray]]:
    """``digits`` (E.164 text without its "+") split by country code, one code at a time: the code,
    the positions in ``digits`` of its numbers, their national numbers, and which of those start with
    the code's national prefix, which phonenumbers.parse would strip. Text with no known code is left out."""
    import pyarrow as pa
    import pyarrow.compute as pc

    widths = code_lengths(digits)
    for width in (1, 2, 3):
        mine = np.flatnonzero(widths == width)
        if not len(mine):
            continue
        sub = digits.take(pa.array(mine))
        # the numbers grouped by code (a few codes, first seen first), each group in ascending position:
        # codes as Arrow's dictionary codes, one stable sort, not a text comparison per code and number
        enc = pc.dictionary_encode(pc.utf8_slice_codeunits(sub, 0, width))
        idx = enc.indices.to_numpy(zero_copy_only=False)
        order = np.argsort(idx, kind="stable")
        bounds = np.cumsum(np.bincount(idx, minlength=len(enc.dictionary)))
        national = pc.utf8_slice_codeunits(sub, width)
        for k, code in enumerate(enc.dictionary.to_pylist()):  # a few country codes, not one call per number
            at = order[(bounds[k - 1] if k else 0):bounds[k]]
            nsn = national.take(pa.array(at))
            test = national_prefix_re2(int(code))
            strippable = (np.zeros(len(at), dtype=bool) if test is None
                          else _bools(pc.match_substring_regex(nsn, test)))
            yield int(code), mine[at], nsn, strippable


@lru_cache(maxsize=300)
def national_prefix_re2(code: int) -> str | None:
    """RE2 test for "the national number after country code ``code`` starts with its national prefix",
    as phonenumbers.parse looks for it; None where the code's region has no national prefix."""
    from phonenumbers import PhoneMetadata, region_code_for_country_code

    return _prefix_re2(PhoneMetadata.metadata_for_region_or_calling_code(code, region_code_for_country_code(code)))


@lru_cache(maxsize=300)
def _region_prefix_re2(region: str) -> str | None:
    from phonenumbers import PhoneMetadata

    return _prefix_re2(PhoneMetadata.metadata_for_region(region, None))


def _prefix_re2(metadata: Any) -> str | None:
    prefix = None if metadata is None else metadata.national_prefix_for_parsing
    return f"^(?:{prefix})" if prefix else None


# Digits only, no leading 0: how operators and banks write a national number, or one with the country
# code but no "+" (13812345678, 8613812345678).
NATIONAL_DIGITS_RE2 = r"^[1-9][0-9]*$"


def normalise_national(texts: pa.Array, region: str) -> tuple[np.ndarray, np.ndarray]:
    """E.164 of each of ``texts`` written as digits alone, as phonenumbers.parse(text, ``region``) and
    is_valid_number give it: "+", the region's code and the national number where valid, else the text as
    written. Returns (the normalised text, ``answered``); rows not answered need phonenumbers itself:
    other text, an international or national prefix phonenumbers might strip, an unsupported region.

    phonenumbers' parse of such text, step by step: no "+", so it strips the region's international
    prefix if one starts the text (left to phonenumbers here); else, if the text starts with the
    region's country code and the rest fits the region's general pattern where the text does not (or
    the text is too long), the rest is the national number; a national prefix is stripped if one starts
    it (left to phonenumbers); a national number of 2 to 17 digits is then valid or not by the patterns
    (``describe``)."""
    import phonenumbers
    import pyarrow as pa
    import pyarrow.compute as pc
    from phonenumbers import PhoneMetadata
    from phonenumbers.phonenumberutil import ValidationResult, _test_number_length

    n = len(texts)
    out = np.full(n, None, dtype=object)
    answered = np.zeros(n, dtype=bool)
    metadata = PhoneMetadata.metadata_for_region(region, None)
    if metadata is None or region not in phonenumbers.SUPPORTED_REGIONS or not n:
        return out, answered
    code = metadata.country_code
    code_text = str(code)
    rows = np.flatnonzero(_bools(pc.match_substring_regex(texts, NATIONAL_DIGITS_RE2))
                          & _bools(pc.less_equal(pc.binary_length(texts), MAX_TEXT)))
    if metadata.international_prefix:
        idd = f"^(?:{metadata.international_prefix})"
        rows = rows[~_bools(pc.match_substring_regex(texts.take(pa.array(rows)), idd))]
    if not len(rows):
        return out, answered
    text = texts.take(pa.array(rows))
    length = pc.utf8_length(text).to_numpy(zero_copy_only=False)
    rest = pc.utf8_slice_codeunits(text, len(code_text))
    with_code = _bools(pc.starts_with(text, code_text))
    # a national prefix at the start of the text, or of what follows the code: phonenumbers may strip
    # it (with the region's metadata, or the code's main region's, whichever step reads)
    keep = np.ones(len(rows), dtype=bool)
    for test in dict.fromkeys([_region_prefix_re2(region), national_prefix_re2(code)]):
        if test:
            keep &= ~_bools(pc.match_substring_regex(text, test))
            keep &= ~(with_code & _bools(pc.match_substring_regex(rest, test)))
    nsn_start = np.zeros(len(rows), dtype=np.int64)
    general = metadata.general_desc.national_number_pattern
    if not general:  # (none in phonenumbers' data) the code's test below reads it: left to phonenumbers
        keep &= ~with_code
    elif with_code.any():
        fits_rest = _bools(pc.match_substring_regex(rest, _full(general)))
        fits_text = _bools(pc.match_substring_regex(text, _full(general)))
        too_long = np.array([_test_number_length("0" * width, metadata) == ValidationResult.TOO_LONG
                             for width in range(int(length.max()) + 1)])[length]
        nsn_start[with_code & ((~fits_text & fits_rest) | too_long)] = len(code_text)
    nsn = pc.if_else(pa.array(nsn_start > 0), rest, text)
    nsn_len = length - nsn_start
    sized = keep & (nsn_len >= MIN_NSN) & (nsn_len <= MAX_NSN)
    valid = np.zeros(len(rows), dtype=bool)
    at = np.flatnonzero(sized)
    if len(at):
        regions, _ = describe(code, nsn, at)
        valid[at] = regions != None  # noqa: E711 (element-wise)
    e164 = pc.binary_join_element_wise(pa.scalar("+" + code_text), nsn, "")
    out[rows] = pc.if_else(pa.array(valid), e164, text).to_numpy(zero_copy_only=False)
    answered[rows] = keep
    return out, answered
