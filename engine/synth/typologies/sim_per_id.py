"""sim_per_id (SID): many SIMs activated on one identity document.

One fresh id_document gets 5-8 activations of fresh msisdns within
min(25 days, window) (at least 20 % of that); no other records.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..cases import Cases
from ..entities import CUSTOMER_PREFIXES
from ..schema import ACT, DAY
from .registry import register


@register("sim_per_id", "SID")
def sim_per_id(cx: Cases, n: Mapping[str, int]) -> None:
    E = cx.E
    for _ in range(n["sim_per_id"]):
        case = cx.new_case("sim_per_id")
        doc = int(E.new_iddoc(1)[0])
        k = cx.ui(5, 8)
        maxspan = min(25 * DAY, cx.W - 60)
        span = cx.u(0.2 * maxspan, maxspan)
        imei = int(E.new_imei(1)[0])
        for i, t in enumerate(cx.spread(cx.case_start(span), k, span)):
            if i % 2 == 0 and i:  # a new handset for every second SIM
                imei = int(E.new_imei(1)[0])
            cx.sim(t, int(E.cn_mobile(1, CUSTOMER_PREFIXES)[0]), ACT, int(E.new_imsi(1)[0]), imei, doc, case,
                   "sim_per_id")
