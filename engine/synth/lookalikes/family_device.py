"""family_device: a household paying from one shared tablet or phone.

Looks like device sharing (TF-DEV-001). 4-6 family members (our customers) each pay 1-2 bills
or transfers of 50-800 from the same device and home IP within one evening (18-23 h).
"""

from __future__ import annotations

from ..cases import Cases
from ..schema import APP, HOUR
from .registry import register


@register("family_device", resembles=("TF-DEV-001",))
def family_device(cx: Cases, n: int) -> None:
    rng, E, pop = cx.rng, cx.E, cx.pop
    for _ in range(n):
        members = rng.choice(cx.N, min(cx.ui(4, 6), cx.N), replace=False)
        dev, ip = pop.c_device[members[0]], pop.c_ip[members[0]]
        plist = [int(c) for c in members for _ in range(cx.ui(1, 2))]
        span = cx.u(HOUR, 4 * HOUR)
        order = rng.permutation(len(plist))
        for t, i in zip(cx.spread(cx.local_start(18, 19, span), len(plist), span), order):
            c = plist[i]
            cx.pay(t, pop.c_acct[c], pop.c_phone[c], int(E.other_bank_account(1)[0]), cx.cents(50, 800), APP, dev, ip,
                   -1, "family_device")
