"""Format specs of ``explain`` templates (``{amount:,.2f}``), bounded.

A spec is Python's format mini-language, and ``format(x, ".999999999f")`` or
``format(x, ">99999999999")`` would build a string of gigabytes for each alert.
Width and precision are bounded here, when a rule loads, so that rendering an
explanation costs what its text costs.
"""

from __future__ import annotations

import re
from functools import lru_cache

MAX_FORMAT_WIDTH = 200
MAX_FORMAT_PRECISION = 30

# [[fill]align][sign][z][#][0][width][grouping][.precision][type]
_SPEC = re.compile(r"(?:.?[<>=^])?[-+ ]?z?#?0?(?P<width>[0-9]*)[,_]?(?:\.(?P<precision>[0-9]*))?[a-zA-Z%]?", re.S)


def _beyond(digits: str, bound: int) -> bool:
    digits = digits.lstrip("0")
    return len(digits) > len(str(bound)) or (bool(digits) and int(digits) > bound)  # no int() of 5,000 digits


@lru_cache(maxsize=4096)
def format_spec_problem(spec: str) -> str | None:
    """Why ``spec`` is refused (a width or precision beyond the bounds), or None."""
    m = _SPEC.fullmatch(spec)
    if m is None:  # not the mini-language: format() says what is wrong; only bound the numbers in it
        body = spec[1:] if len(spec) > 1 and spec[1] in "<>=^" else spec  # not a digit used as fill
        if any(_beyond(r, MAX_FORMAT_WIDTH) for r in re.findall(r"[0-9]+", body)):
            return f"format spec has a number beyond {MAX_FORMAT_WIDTH}"
        return None
    width, precision = m.group("width"), m.group("precision")
    if width and _beyond(width, MAX_FORMAT_WIDTH):
        return f"format width is beyond {MAX_FORMAT_WIDTH}"
    if precision and _beyond(precision, MAX_FORMAT_PRECISION):
        return f"format precision is beyond {MAX_FORMAT_PRECISION}"
    return None
