"""merchant_fan_in: a school, clinic or small shop collecting from many payers in a day.

Looks like mule fan-in (TF-MULE-001). A business account at another bank receives 6-25
payments of 500-3,000 from as many distinct customers between 08 and 20 h, spread over
2-10 h (term fees, a group order, a clinic's appointments). 70 % of these businesses are
registered with the bank (``collection_accounts.txt``); the rest are the unregistered small
merchants that make fan-in rules noisy in production.
"""

from __future__ import annotations

from ..cases import Cases
from ..schema import APP, HOUR, WEB
from .registry import register


@register("merchant_fan_in", resembles=("TF-MULE-001",))
def merchant_fan_in(cx: Cases, n: int) -> None:
    rng, E, pop = cx.rng, cx.E, cx.pop
    for _ in range(n):
        merchant = int(E.other_bank_account(1)[0])
        if rng.random() < 0.7:
            cx.registered_businesses.append(merchant)
        k = min(cx.ui(6, 25), cx.N)
        span = cx.u(2 * HOUR, 10 * HOUR)
        payers = rng.choice(cx.N, k, replace=False)
        for t, c in zip(cx.spread(cx.local_start(8, 10, span), k, span), payers):
            cx.pay(t, pop.c_acct[c], pop.c_phone[c], merchant, cx.cents(500, 3000), APP if rng.random() < 0.8 else WEB,
                   pop.c_device[c], pop.c_ip[c], -1, "merchant_fan_in")
