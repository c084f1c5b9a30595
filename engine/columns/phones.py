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
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

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


# What a number written by hand may hold: digits, a leading +, and the separators people type.
# phonenumbers would also read letters as keypad digits (1-800-FLOWERS), so "+86138ABCD0001"
# would become a real subscriber's number; such text is kept as written instead.
_DIALABLE = re.compile(r"\+?[0-9 ()./-]+")


def dialable(text: str) -> bool:
    """Whether ``text`` (trimmed) could be a phone number at all: only digits, + and separators."""
    return _DIALABLE.fullmatch(text.strip()) is not None


@lru_cache(maxsize=1_000_000)
def _parse(text: str, region: str) -> phonenumbers.PhoneNumber | None:
    if not text or len(text) > 40 or not _DIALABLE.fullmatch(text):
        return None
    import phonenumbers

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
_CANONICAL_CN_MOBILE = r"^\+861[3-9][0-9]{9}$"


# The same test for RE2 (Arrow's kernels), whose "$" is the end of the text only: Python's "$" also
# matches before a final newline, and a number written with one is kept as written either way.
CANONICAL_CN_MOBILE_RE2 = r"^\+861[3-9][0-9]{9}\n?$"


def normalise(values: np.ndarray, null: np.ndarray, region: str,
              canonical: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Normalise an array of phone numbers to E.164 where they are valid. ``canonical``: which values
    are canonical CN mobiles (``CANONICAL_CN_MOBILE_RE2``), when the caller tested it vectorised."""
    import pandas as pd

    live = ~null
    if canonical is not None:
        canonical = canonical & live
    else:
        canonical = np.zeros(len(values), dtype=bool)
        if live.any():
            canonical[live] = pd.Series(values[live], dtype=object).str.match(_CANONICAL_CN_MOBILE).fillna(
                False).to_numpy(dtype=bool)
    out, out_null = map_unique(values, null | canonical, lambda s: normalise_one(s, region) or None)
    out[canonical] = values[canonical]
    out_null[canonical] = False
    return out, out_null


def country(values: np.ndarray, null: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return map_unique(values, null, country_one)


def number_type(values: np.ndarray, null: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return map_unique(values, null, type_one)
