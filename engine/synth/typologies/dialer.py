"""dialer (DIA): an autodialler ringing many customers with very short calls.

A fresh domestic number (+86 165/167/170/171) makes 40-59 calls within
45-58 min, roughly evenly spaced, to 30-59 distinct customers (direction in),
every duration < 15 s (35 % answered with 1-14 s, the rest 0), trunk
domestic.  At most ~14 calls in any 10 minutes.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..cases import Cases
from ..entities import VIRTUAL_PREFIXES
from ..schema import DOM, HOUR, IN
from .registry import register


@register("dialer", "DIA")
def dialer(cx: Cases, n: Mapping[str, int]) -> None:
    rng, E, pop = cx.rng, cx.E, cx.pop
    for _ in range(n["dialer"]):
        case = cx.new_case("dialer")
        number = int(E.cn_mobile(1, VIRTUAL_PREFIXES)[0])
        k = cx.ui(40, 59)
        nd = cx.ui(30, k)
        victims = rng.choice(cx.N, nd, replace=False)
        seq = np.concatenate([victims, victims[rng.integers(0, nd, k - nd)]])
        rng.shuffle(seq)
        span = cx.u(2700, 3480)
        t0 = cx.case_start(HOUR) + 20
        times = np.sort(t0 + np.linspace(0, span, k).astype(np.int64) + rng.integers(-20, 21, k))
        for t, v in zip(times, seq):
            ans = rng.random() < 0.35
            cx.call(t, number, pop.c_phone[v], IN, cx.ui(1, 14), ans, int(v), DOM, case, "dialer")
