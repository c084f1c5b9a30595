"""dormant (DOR): a long-silent account that suddenly pays out a large amount.

A fresh account at our bank makes one payment of 100-3,000 61-400 days
before the payout, then nothing, then pays out 20,000-150,000 to a fresh
payee from a fresh device.  Both payments are labelled.  Dormancy can only be
seen with the old payment, i.e. as "previous payment by this payer_account
>= 60 days earlier"; an account's first payment in the file is *not* a sign.
The old payments are the only payments before the window.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..cases import Cases
from ..schema import APP, DAY, HOUR, WEB
from .registry import register


@register("dormant", "DOR")
def dormant(cx: Cases, n: Mapping[str, int]) -> None:
    E = cx.E
    for _ in range(n["dormant"]):
        case = cx.new_case("dormant")
        acct, phone, dev, ip = cx.fresh_person(True)
        t_out = cx.case_start(HOUR)
        t_old = t_out - cx.ui(61 * DAY, 400 * DAY)
        cx.pay(t_old, acct, phone, int(E.other_bank_account(1)[0]), cx.cents(100, 3000), APP, dev, ip, case,
               "dormant")
        cx.pay(t_out, acct, phone, int(E.other_bank_account(1)[0]), cx.cents(20000, 150000), WEB,
               int(E.new_device(1)[0]), int(E.new_ip(1)[0]), case, "dormant")
