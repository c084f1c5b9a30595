"""cashout (CSH): an account emptied through a mule to a cash-out agent.

A customer's account (a fresh account of ours once customers are used up by
exclusive roles) transfers its whole balance (amount = balance_before,
balance_after = 0) to a fresh mule account (channel web, fresh device);
5-55 min later the mule pays 97-100 % of it to a fresh cash-out agent account
(atm or app).  The emptied account makes no further payments.  Both amounts
are set when balances are simulated (:mod:`..assemble`): role 1 marks the
transfer, role 2 the payout with its factor.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..cases import Cases
from ..schema import APP, ATM, HOUR, MIN, WEB
from .registry import register


@register("cashout", "CSH")
def cashout(cx: Cases, n: Mapping[str, int]) -> None:
    rng, E, pop = cx.rng, cx.E, cx.pop
    for _ in range(n["cashout"]):
        case = cx.new_case("cashout")
        t = cx.case_start(2 * HOUR)
        if cx.role_ptr < cx.N:  # a customer with no other case payment (they could overdraw it)
            c = int(cx.role()[0])
            cx.cashout_times.append((c, t))
            v_acct, v_phone = int(pop.c_acct[c]), int(pop.c_phone[c])
        else:  # customers used up: an account of ours with no other activity
            v_acct, v_phone, _, _ = cx.fresh_person(True)
        mule, mphone, mdev, mip = cx.fresh_person(True)
        agent = int(E.other_bank_account(1)[0])
        cx.pay(t, v_acct, v_phone, mule, 0, WEB, int(E.new_device(1)[0]), int(E.new_ip(1)[0]), case, "cashout",
               role=1)
        cx.pay(t + cx.ui(5 * MIN, 55 * MIN), mule, mphone, agent, 0, ATM if rng.random() < 0.5 else APP, mdev,
               mip, case, "cashout", role=2, factor=cx.u(0.97, 1.0))
