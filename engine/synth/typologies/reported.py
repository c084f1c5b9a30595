"""reported (REP): activity of accounts and numbers that were reported as fraudulent.

Half the cases (rounded up): a fresh reported mule account (our bank) receives
2-4 payments of 200-9,999.99 from distinct customers; the other half: a fresh
reported domestic number (+86 170/171/165/167) calls 2-5 distinct customers
(direction in, trunk domestic, 60 % answered with 20-500 s).
reported_accounts.txt and reported_numbers.txt list the reported values plus
as many decoys that occur nowhere; every record with a reported value is
labelled.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..cases import Cases
from ..entities import VIRTUAL_PREFIXES
from ..schema import APP, DAY, DOM, HOUR, IN
from .registry import register


@register("reported", "REP")
def reported(cx: Cases, n: Mapping[str, int]) -> None:
    rng, E, pop = cx.rng, cx.E, cx.pop
    total = n["reported"]
    n_acc = (total + 1) // 2
    for k in range(total):
        case = cx.new_case("reported")
        span = cx.u(HOUR, min(3 * DAY, cx.W - 60))
        if k < n_acc:
            acct = int(E.our_account(1)[0])
            cx.reported_accounts.append(acct)
            m = cx.ui(2, 4)
            for t, c in zip(cx.spread(cx.case_start(span), m, span), cx.role(m)):
                cx.pay(t, pop.c_acct[c], pop.c_phone[c], acct, cx.cents(200, 9999.99), APP,
                       pop.c_device[c], pop.c_ip[c], case, "reported")
        else:
            number = int(E.cn_mobile(1, VIRTUAL_PREFIXES)[0])
            cx.reported_numbers.append(number)
            m = cx.ui(2, 5)
            for t, v in zip(cx.spread(cx.case_start(span), m, span), rng.choice(cx.N, m, replace=False)):
                ans = rng.random() < 0.6
                cx.call(t, number, pop.c_phone[v], IN, cx.ui(20, 500), ans, int(v), DOM, case, "reported")
    # decoys: reported values that occur nowhere in the data
    cx.reported_accounts += [int(x) for x in E.our_account(n_acc)]
    cx.reported_numbers += [int(x) for x in E.cn_mobile(max(1, total - n_acc), VIRTUAL_PREFIXES)]
