"""spoofed_cli (SPF): domestic caller ids arriving on an international trunk.

A fresh +86 number (mobile or Beijing landline) calls 3-8 distinct customers
within 10 min-3 h, direction in, trunk international, 70 % answered
(5-1800 s).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..cases import Cases
from ..entities import OTHER_MOBILE_PREFIXES
from ..schema import HOUR, IN, INTL
from .registry import register


@register("spoofed_cli", "SPF")
def spoofed_cli(cx: Cases, n: Mapping[str, int]) -> None:
    rng, E, pop = cx.rng, cx.E, cx.pop
    for _ in range(n["spoofed_cli"]):
        case = cx.new_case("spoofed_cli")
        mobile = rng.random() < 0.6
        number = int(E.cn_mobile(1, OTHER_MOBILE_PREFIXES)[0] if mobile else E.cn_landline(1, ["10"])[0])
        k = cx.ui(3, 8)
        victims = rng.choice(cx.N, k, replace=False)
        span = cx.u(600, 3 * HOUR)
        for t, v in zip(cx.spread(cx.case_start(span), k, span), victims):
            ans = rng.random() < 0.7
            dur = int(np.clip(round(np.exp(rng.normal(np.log(120.0), 0.8))), 5, 1800))
            cx.call(t, number, pop.c_phone[v], IN, dur, ans, int(v), INTL, case, "spoofed_cli")
