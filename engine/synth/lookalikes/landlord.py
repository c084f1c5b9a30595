"""landlord: moving house, with a new SIM and a large first payment to a new landlord.

Looks like SIM swap then transfer (TF-SWAP-001). A customer replaces their SIM (a swap event
on their number; 40 % of instances) and 2-20 h later pays a deposit and first rent of
8,000-30,000 to a landlord's account never paid before. Without the swap it is the plain
"large first payment to a new payee" that is-new rules see.
"""

from __future__ import annotations

from ..cases import Cases
from ..schema import APP, HOUR, SWAP, WEB
from .registry import register


@register("landlord", resembles=("TF-SWAP-001",))
def landlord(cx: Cases, n: int) -> None:
    rng, E, pop = cx.rng, cx.E, cx.pop
    for _ in range(n):
        c = int(rng.integers(0, cx.N))
        gap = cx.u(2 * HOUR, 20 * HOUR)
        t = cx.local_start(9, 19, gap)
        if rng.random() < 0.4:
            imsi = int(E.new_imsi(1)[0])
            cx.sim(t, pop.c_phone[c], SWAP, imsi, pop.c_imei[c], pop.c_iddoc[c], -1, "landlord")
        landlord_acct = int(E.other_bank_account(1)[0])
        cx.pay(t + int(gap), pop.c_acct[c], pop.c_phone[c], landlord_acct, cx.cents(8000, 30000),
               APP if rng.random() < 0.7 else WEB, pop.c_device[c], pop.c_ip[c], -1, "landlord")
