"""traveller: family abroad, and customers who talk to them.

Two ordinary patterns that international-call rules trip over:

* a relative roaming abroad with a Chinese (+86) mobile calls 2-4 family members (our
  customers) 3-8 times over 1-6 h. Roaming calls arrive on the international trunk with a
  domestic caller id, the signature of spoofed-CLI scams (TF-SPOOF-001/002);
* half of the time, a customer then has a long call (15-60 min) from a relative's foreign
  number (+1, +44, +61, +65, +81 mobiles) and within the hour pays 10,000-40,000 to a payee never seen
  before (tuition or a deposit abroad), the shape of TF-APP-001.
"""

from __future__ import annotations

import numpy as np

from ..cases import Cases
from ..entities import OTHER_MOBILE_PREFIXES
from ..schema import APP, HOUR, IN, INTL, MIN
from .registry import register

_RELATIVES_ABROAD = ["+1", "+447", "+614", "+659", "+8190"]  # mobile ranges of FOREIGN_DIGITS


@register("traveller", resembles=("TF-SPOOF-001", "TF-SPOOF-002", "TF-APP-001"))
def traveller(cx: Cases, n: int) -> None:
    rng, E, pop = cx.rng, cx.E, cx.pop
    for _ in range(n):
        roamer = int(E.cn_mobile(1, OTHER_MOBILE_PREFIXES)[0])
        family = rng.choice(cx.N, min(cx.ui(2, 4), cx.N), replace=False)
        k = cx.ui(3, 8)
        span = cx.u(HOUR, 6 * HOUR)
        for t in cx.spread(cx.local_start(8, 20, span), k, span):
            c = int(family[rng.integers(0, family.size)])
            ans = rng.random() < 0.85
            dur = int(np.clip(round(np.exp(rng.normal(np.log(240.0), 0.8))), 10, 3600))
            cx.call(t, roamer, pop.c_phone[c], IN, dur, ans, c, INTL, -1, "traveller")
        if rng.random() < 0.5:
            c = int(family[0])
            foreign = int(E.foreign(_RELATIVES_ABROAD[int(rng.integers(0, len(_RELATIVES_ABROAD)))], 1)[0])
            t0 = cx.local_start(8, 21, 2 * HOUR)
            dur = cx.ui(15 * MIN, 60 * MIN)
            cx.call(t0, foreign, pop.c_phone[c], IN, dur, True, c, INTL, -1, "traveller")
            payee = int(E.other_bank_account(1)[0])
            cx.pay(t0 + dur + cx.ui(2 * MIN, 50 * MIN), pop.c_acct[c], pop.c_phone[c], payee, cx.cents(10000, 40000),
                   APP, pop.c_device[c], pop.c_ip[c], -1, "traveller")
