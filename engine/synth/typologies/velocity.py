"""velocity (VEL): many small payments in a short time.

A customer makes 10-18 payments of 50-2,999.99 within 10-55 min to 1-4 fresh
payees from the own device.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..cases import Cases
from ..schema import APP
from .registry import register


@register("velocity", "VEL")
def velocity(cx: Cases, n: Mapping[str, int]) -> None:
    rng, E, pop = cx.rng, cx.E, cx.pop
    for _ in range(n["velocity"]):
        case = cx.new_case("velocity")
        c = int(cx.role()[0])
        payees = E.other_bank_account(cx.ui(1, 4))
        k = cx.ui(10, 18)
        span = cx.u(600, 3300)
        for t in cx.spread(cx.case_start(span), k, span):
            cx.pay(t, pop.c_acct[c], pop.c_phone[c], payees[int(rng.integers(0, payees.size))],
                   cx.cents(50, 2999.99), APP, pop.c_device[c], pop.c_ip[c], case, "velocity")
