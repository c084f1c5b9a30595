"""pass_through (PTH): money relayed through a chain of mule accounts.

A fresh payer pays X (5,000-44,999.99) to a fresh mule; each of 1-3 mules in
a chain pays 90-99.5 % of what it received to the next account 5-110 min
later; the last one pays a fresh exit account.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..cases import Cases
from ..schema import APP, HOUR, MIN, WEB
from .registry import register


@register("pass_through", "PTH")
def pass_through(cx: Cases, n: Mapping[str, int]) -> None:
    rng, E = cx.rng, cx.E
    for _ in range(n["pass_through"]):
        case = cx.new_case("pass_through")
        hops = cx.ui(1, 3)
        src = cx.fresh_person(False)
        mules = [cx.fresh_person(True) for _ in range(hops)]
        exit_acct = int(E.other_bank_account(1)[0])
        t = cx.case_start(hops * 2 * HOUR + HOUR)
        cents = cx.cents(5000, 44999.99)
        cx.pay(t, src[0], src[1], mules[0][0], cents, APP, src[2], src[3], case, "pass_through")
        for h, m in enumerate(mules):
            t += cx.ui(5 * MIN, 110 * MIN)
            cents = int(cents * cx.u(0.901, 0.995))
            if cents % 100_000 == 0:
                cents -= 1
            to = mules[h + 1][0] if h + 1 < hops else exit_acct
            cx.pay(t, m[0], m[1], to, cents, APP if rng.random() < 0.7 else WEB, m[2], m[3], case, "pass_through")
