"""payroll: a small firm paying its staff in one run.

Looks like mule fan-out (TF-MULE-002) and velocity (TF-VEL-001). A firm's account at our bank
pays 6-15 employees (our customers) 3,000-15,000 each within 5-40 minutes, on a weekday
morning, by web banking from one device. 70 % of the firms are registered payroll accounts
(``collection_accounts.txt``).
"""

from __future__ import annotations

from ..cases import Cases
from ..schema import MIN, WEB
from .registry import register


@register("payroll", resembles=("TF-MULE-002", "TF-VEL-001"))
def payroll(cx: Cases, n: int) -> None:
    rng, pop = cx.rng, cx.pop
    for _ in range(n):
        firm, phone, dev, ip = cx.fresh_person(True)
        if rng.random() < 0.7:
            cx.registered_businesses.append(firm)
        k = min(cx.ui(6, 15), cx.N)
        span = cx.u(5 * MIN, 40 * MIN)
        staff = rng.choice(cx.N, k, replace=False)
        for t, c in zip(cx.spread(cx.local_start(9, 11, span), k, span), staff):
            cx.pay(t, firm, phone, pop.c_acct[c], cx.cents(3000, 15000), WEB, dev, ip, -1, "payroll")
