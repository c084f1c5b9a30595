"""app_scam (APP): a long scam call from abroad, then the victim pays the scammers.

An inbound answered call of 600-2400 s from a fresh number in +855, +95, +63
or +856 (trunk international) to a customer; 2-15 min after the call ends (so
< 1 h after it starts) 1-2 payments by that customer (payer_phone = callee) of
10,000-44,999.99 to fresh payees, the customer's own device; every payment
< 1 h after the call start.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..cases import Cases
from ..schema import APP, HOUR, IN, INTL
from .registry import register

APP_SCAM_PREFIXES = ["+855", "+95", "+63", "+856"]
_SUBPREFIX = {"+855": "+85512", "+95": "+959", "+63": "+639", "+856": "+85620"}  # mobile ranges


@register("app_scam", "APP")
def app_scam(cx: Cases, n: Mapping[str, int]) -> None:
    rng, E, pop = cx.rng, cx.E, cx.pop
    for _ in range(n["app_scam"]):
        case = cx.new_case("app_scam")
        c = int(cx.role()[0])
        cc = APP_SCAM_PREFIXES[int(rng.integers(0, len(APP_SCAM_PREFIXES)))]
        number = int(E.foreign(_SUBPREFIX[cc], 1)[0])
        t0 = cx.case_start(2 * HOUR)
        dur = cx.ui(600, 2400)
        cx.call(t0, number, pop.c_phone[c], IN, dur, True, c, INTL, case, "app_scam")
        t = t0 + dur + cx.ui(120, 900)
        for _ in range(cx.ui(1, 2)):
            payee = int(E.other_bank_account(1)[0])
            cx.pay(min(t, t0 + HOUR - 10), pop.c_acct[c], pop.c_phone[c], payee, cx.cents(10000, 44999.99),
                   APP, pop.c_device[c], pop.c_ip[c], case, "app_scam")
            t += cx.ui(60, 600)
