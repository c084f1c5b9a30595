"""new_sim_burst (NSB): a new SIM that starts calling at once.

Activation of a fresh msisdn (fresh IMSI, IMEI, id_document); 10 min-2 h
later it starts 30-50 out calls spread over 6-20 h (all within 23 h of the
activation) to fresh domestic numbers, 75 % answered (15-900 s), trunk
domestic.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..cases import Cases
from ..entities import CUSTOMER_PREFIXES, OTHER_MOBILE_PREFIXES
from ..schema import ACT, DOM, HOUR, OUT
from .registry import register


@register("new_sim_burst", "NSB")
def new_sim_burst(cx: Cases, n: Mapping[str, int]) -> None:
    rng, E, all_cells = cx.rng, cx.E, cx.pop.cells
    for _ in range(n["new_sim_burst"]):
        case = cx.new_case("new_sim_burst")
        msisdn = int(E.cn_mobile(1, CUSTOMER_PREFIXES)[0])
        imsi, imei, doc = int(E.new_imsi(1)[0]), int(E.new_imei(1)[0]), int(E.new_iddoc(1)[0])
        cells = all_cells[rng.integers(0, all_cells.size, 3)]
        t_act = cx.case_start(23 * HOUR)
        cx.sim(t_act, msisdn, ACT, imsi, imei, doc, case, "new_sim_burst")
        k = cx.ui(30, 50)
        begin = t_act + cx.ui(600, 7200)
        span = cx.u(6 * HOUR, min(20 * HOUR, t_act + 23 * HOUR - begin))
        callees = E.cn_mobile(k, OTHER_MOBILE_PREFIXES)
        for t, cl in zip(cx.spread(begin, k, span), callees):
            ans = rng.random() < 0.75
            dur = int(np.clip(round(np.exp(rng.normal(np.log(70.0), 0.8))), 15, 900))
            cx.call(t, msisdn, cl, OUT, dur, ans, (imsi, imei, int(cells[int(rng.integers(0, 3))])), DOM, case,
                    "new_sim_burst")
