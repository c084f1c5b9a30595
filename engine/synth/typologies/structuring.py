"""structuring (STR): several large payments each kept just under 50,000.

A customer makes 3-5 payments of 45,000.01-49,999.99 to 1-2 fresh payees,
30 min-5 h apart (within 20 h).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..cases import Cases
from ..schema import APP, COUNTER, HOUR, MIN
from .registry import register


@register("structuring", "STR")
def structuring(cx: Cases, n: Mapping[str, int]) -> None:
    rng, E, pop = cx.rng, cx.E, cx.pop
    for _ in range(n["structuring"]):
        case = cx.new_case("structuring")
        c = int(cx.role()[0])
        payees = E.other_bank_account(cx.ui(1, 2))
        k = cx.ui(3, 5)
        gaps = rng.integers(30 * MIN, 5 * HOUR, k - 1)
        t0 = cx.case_start(int(gaps.sum()) + 60)
        for t in t0 + np.concatenate([[0], np.cumsum(gaps)]):
            ch = COUNTER if rng.random() < 0.5 else APP
            cx.pay(t, pop.c_acct[c], pop.c_phone[c], payees[int(rng.integers(0, payees.size))],
                   cx.cents(45000.01, 49999.99), ch, pop.c_device[c], pop.c_ip[c], case, "structuring")
