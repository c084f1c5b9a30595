"""Hints for the mistakes analysts make most: SQL habits, units, names that are almost right.

The parser and the checker report *what* is wrong; these functions add *what to
write instead*, in the language's own spelling. Each returns "" when it has
nothing useful to say, so a hint is never a guess dressed up as advice.
"""

from __future__ import annotations

import difflib
import re

# SQL (and C) spellings of operators, and the language's own
_SQL_WORDS = {"AND": "and", "OR": "or", "NOT": "not", "TRUE": "true", "FALSE": "false", "NULL": "null"}
_UNIT_WORDS = {
    "ms": "ms", "msec": "ms", "msecs": "ms", "millis": "ms", "millisecond": "ms", "milliseconds": "ms",
    "s": "s", "sec": "s", "secs": "s", "second": "s", "seconds": "s",
    "m": "m", "min": "m", "mins": "m", "minute": "m", "minutes": "m",
    "h": "h", "hr": "h", "hrs": "h", "hour": "h", "hours": "h",
    "d": "d", "day": "d", "days": "d",
    "w": "w", "wk": "w", "wks": "w", "week": "w", "weeks": "w",
}
_LONG_UNITS = {"y": 365, "yr": 365, "yrs": 365, "year": 365, "years": 365, "mo": 30, "mon": 30, "month": 30,
               "months": 30}
# names other languages use for the functions this one has
FUNCTION_ALIASES = {
    "isnull": "is_null", "ifnull": "coalesce", "nvl": "coalesce", "len": "length", "char_length": "length",
    "lcase": "lower", "ucase": "upper", "regexp_like": "matches", "rlike": "matches", "regexp": "matches",
    "like": "matches", "instr": "contains", "mean": "avg", "average": "avg", "count_distinct": "distinct",
    "nunique": "distinct", "starts_with": "startswith", "ends_with": "endswith", "str": "string",
    "to_number": "number", "float": "number", "int": "number", "round_amount": "is_round",
}

_WORD_BEFORE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*$")
_NUMBER_BEFORE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*$")


def _fmt(number: str, factor: int = 1) -> str:
    value = float(number) * factor
    return str(int(value)) if value.is_integer() else f"{value:g}"


def unexpected_token_hint(text: str, pos: int, token: str) -> tuple[str, int]:
    """What to write instead when the parser stops at ``token`` (at ``pos`` in ``text``), and where the
    mistake is: usually ``pos``, but a capitalised ``NOT`` is only noticed one word later."""
    hint = _token_hint(text, pos, token)
    prev = _WORD_BEFORE.search(text[:pos])
    if hint == _NOT_HINT and prev:
        return hint, prev.start(1)
    return hint, pos


_NOT_HINT = "write 'not' in lower case"


def _token_hint(text: str, pos: int, token: str) -> str:
    before = text[:pos]
    after = text[pos + len(token):]
    word = token if token[:1].isalpha() else ""
    if word.upper() in ("AND", "OR", "NOT") and word != word.lower():
        return f"write '{word.lower()}' in lower case"
    if word.upper() == "IS":
        if re.match(r"\s+NOT\s+NULL\b", after, re.I):
            return "write not is_null(x) for SQL's 'x IS NOT NULL'"
        if re.match(r"\s+NULL\b", after, re.I):
            return "write is_null(x) for SQL's 'x IS NULL'"
        return "write == to compare"
    if word.upper() == "LIKE":
        return "use startswith(x, \"...\"), endswith, contains, or matches(x, \"regex\") for SQL's LIKE"
    if word.upper() == "BETWEEN":
        return "write x >= low and x <= high for SQL's BETWEEN"
    prev = _WORD_BEFORE.search(before)
    if prev and prev.group(1) in ("NOT", "Not"):
        return _NOT_HINT
    number = _NUMBER_BEFORE.search(before)
    if word and number:
        unit = word.lower()
        if unit in _UNIT_WORDS:
            return (f"write the duration as {_fmt(number.group(1))}{_UNIT_WORDS[unit]}, a number and a unit "
                    "letter with no space (units: ms, s, m, h, d, w)")
        if unit in _LONG_UNITS:
            days = _fmt(number.group(1), _LONG_UNITS[unit])
            return f"there is no {unit!r} unit: write {days}d (units: ms, s, m, h, d, w)"
    if token == "=":
        if before.rstrip().endswith("="):
            return "write == to compare"
        return "write == to compare (a single = only names an argument, as in where=...)"
    if token == ">" and before.endswith("<"):
        return "write != for SQL's <>"
    if token == "(" and re.search(r"\bin\s*$", before):
        return "a list is written in brackets: x in [\"a\", \"b\"]"
    return ""


def unexpected_char_hint(text: str, pos: int) -> str:
    """What to write instead of an unexpected character."""
    pair = text[pos:pos + 2]
    if pair == "&&":
        return "write 'and'"
    if pair == "||":
        return "write 'or'"
    if text[pos:pos + 1] == "!" and pair != "!=":
        return "write 'not'"
    if text[pos:pos + 1] == "=" and text[pos - 1:pos] in ("=", "!"):
        return "write == or !="
    return ""


def name_hint(name: str, known: list[str], aliases: dict[str, str] | None = None) -> str:
    """``; did you mean 'x'?`` for a misspelt or foreign name, else ""."""
    lowered = name.lower()
    if aliases and lowered in aliases and aliases[lowered] in known:
        return f"; did you mean {aliases[lowered]!r}?"
    if lowered != name and lowered in known:
        return f"; did you mean {lowered!r}?"
    close = difflib.get_close_matches(name, known, n=1) or difflib.get_close_matches(lowered, known, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def literal_word_hint(name: str) -> str:
    """``TRUE``/``NULL`` written in capitals: the language spells them in lower case."""
    lowered = _SQL_WORDS.get(name.upper())
    if lowered in ("true", "false", "null") and name != lowered:
        return f"; write {lowered} in lower case"
    return ""


def enum_hint(value: str, values: tuple[str, ...] | list[str]) -> str:
    """``; did you mean 'in'? ...`` when ``value`` differs from an allowed value only by case or by
    surrounding spaces. Enum values are matched exactly (docs/rules.md): a hint, not a guess."""
    close = [v for v in values if v.strip().casefold() == value.strip().casefold()]
    if len(close) != 1:
        return ""
    return f"; did you mean {close[0]!r}? enum values match exactly: case and spaces count"
