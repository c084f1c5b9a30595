"""high_risk_jurisdiction (HRJ): payments to accounts in FATF high-risk countries.

A customer makes 2-4 payments of 1,000-30,000 within 6 h to fresh accounts in
KP, IR or MM.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..cases import Cases
from ..schema import COUNTER, HOUR, WEB
from .registry import register

HIGH_RISK_COUNTRIES = ["KP", "IR", "MM"]


@register("high_risk_jurisdiction", "HRJ")
def high_risk_jurisdiction(cx: Cases, n: Mapping[str, int]) -> None:
    rng, E, pop = cx.rng, cx.E, cx.pop
    for _ in range(n["high_risk_jurisdiction"]):
        case = cx.new_case("high_risk_jurisdiction")
        c = int(cx.role()[0])
        k = cx.ui(2, 4)
        payees = E.foreign_account(k, HIGH_RISK_COUNTRIES)
        span = cx.u(0, 6 * HOUR)
        for t, p in zip(cx.spread(cx.case_start(span), k, span), payees):
            cx.pay(t, pop.c_acct[c], pop.c_phone[c], p, cx.cents(1000, 30000),
                   WEB if rng.random() < 0.6 else COUNTER, pop.c_device[c], pop.c_ip[c], case,
                   "high_risk_jurisdiction")
