"""mule_fan_out (MFO): a mule account paying out to many payees.

A fresh account at our bank pays 8-14 distinct fresh payees 1,000-9,999.99
each within 22 h, at least 7 min apart (so < 10 in any hour).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..cases import Cases
from ..schema import APP, HOUR, MIN, WEB
from .registry import register


@register("mule_fan_out", "MFO")
def mule_fan_out(cx: Cases, n: Mapping[str, int]) -> None:
    rng, E = cx.rng, cx.E
    for _ in range(n["mule_fan_out"]):
        case = cx.new_case("mule_fan_out")
        mule, phone, dev, ip = cx.fresh_person(True)
        k = cx.ui(8, 14)
        gaps = rng.integers(7 * MIN, int(22 * HOUR / k), k - 1)
        t0 = cx.case_start(int(gaps.sum()) + 60)
        times = t0 + np.concatenate([[0], np.cumsum(gaps)])
        for t in times:
            payee = int(E.other_bank_account(1)[0])
            cx.pay(t, mule, phone, payee, cx.cents(1000, 9999.99), APP if rng.random() < 0.7 else WEB, dev, ip,
                   case, "mule_fan_out")
