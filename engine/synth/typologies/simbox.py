"""simbox (SBX): a SIM box terminating bypassed international traffic as local calls.

A fresh msisdn on our network with a fresh IMSI and fresh IMEI makes 60-120
out calls within 30-55 min, to >= 50 distinct fresh domestic numbers (>= 80 %
of calls distinct), all from one cell_id, trunk domestic, 92 % answered,
duration lognormal median 45 s in [15, 300] s.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..cases import Cases
from ..entities import CUSTOMER_PREFIXES, OTHER_MOBILE_PREFIXES
from ..schema import DOM, HOUR, OUT
from .registry import register


@register("simbox", "SBX")
def simbox(cx: Cases, n: Mapping[str, int]) -> None:
    rng, E, cells = cx.rng, cx.E, cx.pop.cells
    for _ in range(n["simbox"]):
        case = cx.new_case("simbox")
        msisdn = int(E.cn_mobile(1, CUSTOMER_PREFIXES)[0])
        attrs = (int(E.new_imsi(1)[0]), int(E.new_imei(1)[0]), int(cells[rng.integers(0, cells.size)]))
        k = cx.ui(60, 120)
        nd = max(50, int(k * cx.u(0.8, 1.0)))
        nd = min(nd, k)
        callees = E.cn_mobile(nd, OTHER_MOBILE_PREFIXES)
        seq = np.concatenate([callees, callees[rng.integers(0, nd, k - nd)]])
        rng.shuffle(seq)
        t0 = cx.case_start(HOUR)
        times = cx.spread(t0, k, cx.u(1800, 3300))
        for t, c in zip(times, seq):
            ans = rng.random() < 0.92
            dur = int(np.clip(round(np.exp(rng.normal(np.log(45.0), 0.6))), 15, 300))
            cx.call(t, msisdn, c, OUT, dur, ans, attrs, DOM, case, "simbox")
