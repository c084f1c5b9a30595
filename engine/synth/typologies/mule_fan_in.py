"""mule_fan_in (MFI): a mule account collecting from many payers.

A fresh account at our bank receives 8-15 payments of 500-9,999.99 from as
many distinct fresh payer accounts (other banks) within 2-22 h.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..cases import Cases
from ..schema import APP, HOUR, WEB
from .registry import register


@register("mule_fan_in", "MFI")
def mule_fan_in(cx: Cases, n: Mapping[str, int]) -> None:
    rng = cx.rng
    for _ in range(n["mule_fan_in"]):
        case = cx.new_case("mule_fan_in")
        mule, _, _, _ = cx.fresh_person(True)
        k = cx.ui(8, 15)
        span = cx.u(2 * HOUR, 22 * HOUR)
        for t in cx.spread(cx.case_start(span), k, span):
            acct, phone, dev, ip = cx.fresh_person(False)
            cx.pay(t, acct, phone, mule, cx.cents(500, 9999.99), APP if rng.random() < 0.7 else WEB, dev, ip,
                   case, "mule_fan_in")
