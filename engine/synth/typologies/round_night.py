"""round_night (RNT): round amounts paid in the middle of the night.

A customer makes 2-4 payments of a multiple of 1,000 (1,000-30,000) to 1-2
fresh payees between 00:00 and 05:00 local time of one night.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..cases import Cases
from ..schema import APP, DAY, HOUR, WEB
from .registry import register


@register("round_night", "RNT")
def round_night(cx: Cases, n: Mapping[str, int]) -> None:
    rng, E, pop = cx.rng, cx.E, cx.pop
    for _ in range(n["round_night"]):
        case = cx.new_case("round_night")
        c = int(cx.role()[0])
        payees = E.other_bank_account(cx.ui(1, 2))
        k = cx.ui(2, 4)
        midnight = cx.t0 + int(rng.integers(0, cx.days)) * DAY
        for t in cx.spread(midnight, k, 5 * HOUR):
            cx.pay(t, pop.c_acct[c], pop.c_phone[c], payees[int(rng.integers(0, payees.size))],
                   cx.ui(1, 30) * 100_000, APP if rng.random() < 0.7 else WEB, pop.c_device[c], pop.c_ip[c],
                   case, "round_night")
