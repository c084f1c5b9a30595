"""Phone numbers: E.164 normalisation, country and number type.

Every function works on arrays and calls ``phonenumbers`` once per *distinct*
value, since record files repeat the same numbers many times. A number that
is not a valid E.164 number (short codes like 95588 or 110, spoofed garbage)
is kept as written: it still joins with itself, and its country is null. A valid
non-geographic number (+800, +882, +883, +979, +808, +870, +878, +881) has a null
country too; its ``number_type`` says what it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from . import numbering
from .memo import memo_many
from .vec import distinct_values

if TYPE_CHECKING:  # phonenumbers loads at the first number parsed: lint and --help never parse one (issue #9)
    import phonenumbers


def __getattr__(name: str) -> object:
    """``phones.phonenumbers``, imported on first use (tests patch the module through it)."""
    if name == "phonenumbers":
        import phonenumbers

        return phonenumbers
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@lru_cache(maxsize=1)
def _type_names() -> dict[object, str]:
    from phonenumbers import PhoneNumberType

    return {
        PhoneNumberType.FIXED_LINE: "fixed",
        PhoneNumberType.MOBILE: "mobile",
        PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_or_mobile",
        PhoneNumberType.TOLL_FREE: "toll_free",
        PhoneNumberType.PREMIUM_RATE: "premium_rate",
        PhoneNumberType.SHARED_COST: "shared_cost",
        PhoneNumberType.VOIP: "voip",
        PhoneNumberType.PERSONAL_NUMBER: "personal",
        PhoneNumberType.PAGER: "pager",
        PhoneNumberType.UAN: "uan",
        PhoneNumberType.VOICEMAIL: "voicemail",
        PhoneNumberType.UNKNOWN: "unknown",
    }


DEFAULT_REGION = "CN"  # the region of numbers written without +, where no --region says otherwise

# What a number written by hand may hold: digits, a leading +, and the separators people type.
# phonenumbers would also read letters as keypad digits (1-800-FLOWERS), so "+86138ABCD0001"
# would become a real subscriber's number; such text is kept as written instead.
_DIALABLE = re.compile(r"\+?[0-9 ()./-]+")


def dialable(text: str) -> bool:
    """Whether ``text`` (trimmed) could be a phone number at all: only digits, + and separators."""
    return _DIALABLE.fullmatch(text.strip()) is not None


@lru_cache(maxsize=1)
def _parser() -> Any:
    """phonenumbers, imported and told to keep its compiled patterns: it compiles a metadata pattern at
    each use, and its thousands of patterns overflow the re module's cache of 512, so without its own
    cache most of a number's parse (~170 µs) was compiling patterns again."""
    import phonenumbers

    keep = getattr(phonenumbers, "enable_pattern_cache", None)  # older releases have no such switch
    if keep is not None:
        keep()
    return phonenumbers


@lru_cache(maxsize=1_000_000)
def _parse(text: str, region: str) -> phonenumbers.PhoneNumber | None:
    if not text or len(text) > 40 or not _DIALABLE.fullmatch(text):
        return None
    phonenumbers = _parser()

    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


@lru_cache(maxsize=1_000_000)
def normalise_one(text: str, region: str) -> str:
    """E.164 form of a valid number; otherwise the text as written, trimmed."""
    stripped = text.strip()
    number = _parse(stripped, region)
    if number is None:
        return stripped
    import phonenumbers

    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=1_000_000)
def country_one(text: str) -> str | None:
    number = _parse(text, "ZZ") if text.startswith("+") else None
    if number is None:
        return None
    import phonenumbers

    region = phonenumbers.region_code_for_number(number)
    # a valid non-geographic number (+800 freephone, +882/+883 networks, +979...) has no country:
    # phonenumbers says "001", which is no ISO code; number_type() says what the number is
    return None if region in (None, "001", "ZZ") else region


@lru_cache(maxsize=1_000_000)
def type_one(text: str) -> str | None:
    number = _parse(text, "ZZ") if text.startswith("+") else None
    if number is None:
        return None
    import phonenumbers

    return _type_names().get(phonenumbers.number_type(number), "unknown")


def map_unique(values: np.ndarray, null: np.ndarray, fn) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``fn`` (str -> str | None) once per distinct non-null value.

    Returns (object array, null mask); a None result is null.
    """
    out = np.empty(len(values), dtype=object)
    out[:] = ""
    out_null = null.copy()
    live = ~null
    if live.any():
        uniq, inverse = distinct_values(values[live])
        mapped = [fn(u) for u in uniq]  # one call per distinct value, not per record
        mapped_null = np.array([m is None for m in mapped], dtype=bool)
        mapped_vals = np.array(["" if m is None else m for m in mapped], dtype=object)
        out[live] = mapped_vals[inverse]
        out_null[live] = mapped_null[inverse]
    return out, out_null


# A Chinese mobile number already written as +861[3-9] and nine digits normalises
# to itself whether or not it is valid (no national prefix to strip), so the
# bulk of CN traffic skips the parser. tests/test_records.py checks the claim.
CANONICAL_CN_MOBILE = r"^\+861[3-9][0-9]{9}$"  # Python re: the stream intake's test


# The same test for RE2 (Arrow's kernels), whose "$" is the end of the text only: Python's "$" also
# matches before a final newline, and a number written with one is kept as written either way.
CANONICAL_CN_MOBILE_RE2 = r"^\+861[3-9][0-9]{9}\n?$"


# "+", a country code and digits, nothing else: phonenumbers keeps such text as written whether or
# not it is valid (E.164 of a valid one is "+", the code and the national significant number, leading
# zeros kept), unless it strips a national prefix after the code, and it tries that only where the
# region's national_prefix_for_parsing matches at the start of the rest (re.match). Every error on
# the way (too short, too long, unknown code) keeps the text as written too. "+0..." is left to the
# parser: it retries such text as if dialled with the region's international prefix.
_PLUS_DIGITS_RE2 = numbering.PLUS_DIGITS_RE2


def kept_as_written(strings: object) -> np.ndarray:
    """Which of ``strings`` (a pyarrow string array) ``normalise`` keeps as written without asking the
    parser, whatever the region, found with Arrow's kernels: the canonical CN mobiles
    (``CANONICAL_CN_MOBILE_RE2``) and the "+"-and-digits numbers no national prefix can be stripped
    from (``_PLUS_DIGITS_RE2``), which ``normalise_one`` returns unchanged."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kept = pc.match_substring_regex(strings, CANONICAL_CN_MOBILE_RE2).fill_null(False).to_numpy(
        zero_copy_only=False).astype(bool)
    shape = pc.match_substring_regex(strings, _PLUS_DIGITS_RE2).fill_null(False).to_numpy(
        zero_copy_only=False).astype(bool) & ~kept
    rows = np.flatnonzero(shape)
    if not len(rows):
        return kept
    digits = pc.utf8_slice_codeunits(strings.take(pa.array(rows)), 1)
    for _code, at, _nsn, strippable in numbering.e164_groups(digits):
        kept[rows[at[~strippable]]] = True
    return kept


_CANONICAL_CN_MOBILE = re.compile(CANONICAL_CN_MOBILE)
_PLUS_DIGITS = re.compile(r"\+[1-9][0-9]*")  # _PLUS_DIGITS_RE2 by fullmatch (Python's "$" takes a final newline)


def kept_one(text: str) -> bool:
    """:func:`kept_as_written` of one text, without Arrow (the stream's intake, a few numbers at a time):
    whether ``normalise`` keeps it as written, so that ``normalise_one`` need not parse it. A number
    from abroad written as E.164 costs the parser 40-100 µs the first time it is seen, and a stream
    sees new ones all day. The same steps: the shortest country code the digits start with, then
    that code's national prefix tested at the start of the rest (numbering.national_prefix_re2,
    which phonenumbers applies with Python's re, as here). tests/unit/test_numbering.py compares the
    two on every country code."""
    if _CANONICAL_CN_MOBILE.match(text):
        return True
    if not _PLUS_DIGITS.fullmatch(text):
        return False
    codes = numbering.country_code_texts()
    digits = text[1:]
    for width in (1, 2, 3):
        code = digits[:width]
        if code in codes:
            prefix = _national_prefix(int(code))
            return prefix is None or prefix.match(digits[width:]) is None
    return False  # no country code: the parser decides


@lru_cache(maxsize=300)
def _national_prefix(code: int) -> re.Pattern | None:
    test = numbering.national_prefix_re2(code)
    return None if test is None else re.compile(test)


# Below this many distinct numbers, country_one/type_one (cached) cost less than Arrow's calls.
MANY_MIN = 64

# A stream release asks country() or number_type() of a few hundred numbers, most of them asked in earlier
# releases, and the numbering plan's Arrow calls cost about as much for 64 numbers as for thousands. So the
# answers of calls of up to MEMO_CALL_MAX texts are kept, up to MEMO_MAX per function (then it starts afresh).
# Larger calls (a batch column's distinct values) are neither kept nor looked up: they would hold every
# number of a run for nothing.
MEMO_CALL_MAX = 4096
MEMO_MAX = 200_000
_COUNTRY_MEMO: dict[str, str | None] = {}
_TYPE_MEMO: dict[str, str | None] = {}


def country_many(texts: Sequence[str]) -> list[str | None]:
    """``country_one`` of each of ``texts``; the "+"-and-digits ones answered together from the
    numbering plan (numbering.describe_e164), the rest one by one."""
    return _many(texts, country_one, lambda region, kind: None if region in (None, "001", "ZZ") else region,
                 _COUNTRY_MEMO)


def type_many(texts: Sequence[str]) -> list[str | None]:
    """``type_one`` of each of ``texts``, as ``country_many`` answers them."""
    names = _type_names()
    return _many(texts, type_one, lambda region, kind: None if kind is None else names.get(kind, "unknown"),
                 _TYPE_MEMO)


def _many(texts: Sequence[str], one: Callable[[str], str | None],
          answer: Callable[[str | None, int | None], str | None],
          memo: dict[str, str | None]) -> list[str | None]:
    if len(texts) > MEMO_CALL_MAX:
        return _answered(texts, one, answer)
    return memo_many(texts, memo, lambda misses: _answered(misses, one, answer), MEMO_MAX)


def _answered(texts: Sequence[str], one: Callable[[str], str | None],
              answer: Callable[[str | None, int | None], str | None]) -> list[str | None]:
    if len(texts) < MANY_MIN:
        return [one(t) for t in texts]
    import pyarrow as pa

    regions, kinds, answered = numbering.describe_e164(pa.array(texts, pa.string()))
    return [answer(r, k) if a else one(t) for t, r, k, a in zip(texts, regions.tolist(), kinds.tolist(),
                                                                  answered.tolist())]


def normalised_numbers(texts: Sequence[str], region: str) -> set[str]:
    """``normalise_one`` of each of ``texts`` that could be a number at all (``dialable``), as a set: a
    list's entries as records' numbers read. A national list holds millions of numbers, so those with
    nothing to trim go through ``normalise`` (Arrow and the numbering plan), not one parse each."""
    if len(texts) < MANY_MIN:  # a pack's own short lists: lint compiles them without loading pyarrow
        return {normalise_one(t, region) for t in texts if dialable(t)}
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(list(texts), pa.string())
    simple = pc.match_substring_regex(arr, r"^\+?[0-9]+$").fill_null(False)  # dialable, nothing to trim
    out = {normalise_one(t, region) for t in arr.filter(pc.invert(simple)).to_pylist() if dialable(t)}
    plain = arr.filter(simple).to_numpy(zero_copy_only=False)
    if len(plain):
        values, null = normalise(plain, np.zeros(len(plain), dtype=bool), region)
        out.update(values[~null].tolist())
    return out


def normalise(values: np.ndarray, null: np.ndarray, region: str,
              canonical: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Normalise an array of phone numbers to E.164 where they are valid. ``canonical``: which values
    normalise to themselves (``kept_as_written``), when the caller tested it on an Arrow array."""
    live = ~null
    if canonical is not None:
        canonical = canonical & live
    else:
        import pyarrow as pa

        canonical = np.zeros(len(values), dtype=bool)
        if live.any():
            canonical[live] = kept_as_written(pa.array(values[live], pa.string()))
    # numbers written as digits alone (13812345678, 8613812345678): from the numbering plan, not one by one
    national = np.zeros(len(values), dtype=bool)
    rows = np.flatnonzero(live & ~canonical)
    if len(rows) >= MANY_MIN:
        import pyarrow as pa

        fast, answered = numbering.normalise_national(pa.array(values[rows], pa.string()), region)
        national[rows[answered]] = True
    out, out_null = map_unique(values, null | canonical | national, lambda s: normalise_one(s, region) or None)
    out[canonical] = values[canonical]
    out_null[canonical] = False
    if national.any():
        out[national] = fast[answered]
        out_null[national] = False
    return out, out_null
