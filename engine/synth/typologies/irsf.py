"""irsf (IRS): international revenue share fraud, long calls to premium-rate ranges.

A customer makes 5-7 out calls, answered, trunk international, each
1200-2400 s, 1-10 min apart (all starts within 6 h) to 1-3 fresh numbers
with prefix +88213, +88216, +2327 or +6913.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..cases import Cases
from ..schema import HOUR, INTL, OUT
from .registry import register

IRSF_PREFIXES = ["+88213", "+88216", "+2327", "+6913"]


@register("irsf", "IRS")
def irsf(cx: Cases, n: Mapping[str, int]) -> None:
    rng, E, pop = cx.rng, cx.E, cx.pop
    for _ in range(n["irsf"]):
        case = cx.new_case("irsf")
        c = int(cx.role()[0])
        nums = [int(E.foreign(IRSF_PREFIXES[int(rng.integers(0, 4))], 1)[0]) for _ in range(cx.ui(1, 3))]
        k = cx.ui(5, 7)
        t = cx.case_start(6 * HOUR)
        for _ in range(k):
            dur = cx.ui(1200, 2400)
            cx.call(t, pop.c_phone[c], nums[int(rng.integers(0, len(nums)))], OUT, dur, True, c, INTL, case, "irsf")
            t += dur + cx.ui(60, 600)
