"""device_sharing (DEV): one device operating many accounts.

One fresh device id (and IP) is used by 5-8 distinct fresh payer accounts at
our bank, 1-2 payments each (200-9,999.99) to fresh payees, all within
1-20 h.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..cases import Cases
from ..schema import APP, HOUR
from .registry import register


@register("device_sharing", "DEV")
def device_sharing(cx: Cases, n: Mapping[str, int]) -> None:
    rng, E = cx.rng, cx.E
    for _ in range(n["device_sharing"]):
        case = cx.new_case("device_sharing")
        dev, ip = int(E.new_device(1)[0]), int(E.new_ip(1)[0])
        payers = [cx.fresh_person(True) for _ in range(cx.ui(5, 8))]
        plist = [p for p in payers for _ in range(cx.ui(1, 2))]
        span = cx.u(HOUR, 20 * HOUR)
        order = rng.permutation(len(plist))
        for t, i in zip(cx.spread(cx.case_start(span), len(plist), span), order):
            p = plist[i]
            cx.pay(t, p[0], p[1], int(E.other_bank_account(1)[0]), cx.cents(200, 9999.99), APP, dev, ip, case,
                   "device_sharing")
