"""sim_swap_transfer (SST): a SIM swap followed by transfers from the victim's account.

Swap sim_event for a customer's msisdn (fresh IMSI and IMEI, the customer's
id_document); then 1-2 payments by that customer (payer_phone = msisdn) from
a fresh device and IP, the first 20 min-12 h after the swap, all within 24 h.
Variant by case number mod 3: (0) fresh payee and 20,000-44,999.99; (1) fresh
payee and 3,000-19,999.99; (2) one of the customer's regular payees and
20,000-44,999.99.  The customer makes no background payment in the 24 h after
the swap.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..cases import Cases
from ..schema import APP, DAY, HOUR, MIN, SWAP, WEB
from .registry import register


@register("sim_swap_transfer", "SST")
def sim_swap_transfer(cx: Cases, n: Mapping[str, int]) -> None:
    rng, E, pop = cx.rng, cx.E, cx.pop
    for k in range(n["sim_swap_transfer"]):
        case = cx.new_case("sim_swap_transfer")
        c = int(cx.role()[0])
        imsi, imei = int(E.new_imsi(1)[0]), int(E.new_imei(1)[0])
        t_swap = cx.case_start(DAY)
        cx.sim(t_swap, pop.c_phone[c], SWAP, imsi, imei, pop.c_iddoc[c], case, "sim_swap_transfer")
        cx.swap_times.append((c, t_swap, imsi))
        dev, ip = int(E.new_device(1)[0]), int(E.new_ip(1)[0])
        variant = k % 3
        t = t_swap + cx.ui(20 * MIN, 12 * HOUR)
        for _ in range(cx.ui(1, 2)):
            if variant == 2:
                payee = int(pop.c_payees[c, int(rng.integers(0, pop.c_npayees[c]))])
            else:
                payee = int(E.other_bank_account(1)[0])
            amt = cx.cents(3000, 19999.99) if variant == 1 else cx.cents(20000, 44999.99)
            cx.pay(min(t, t_swap + DAY - 60), pop.c_acct[c], pop.c_phone[c], payee, amt,
                   APP if rng.random() < 0.7 else WEB, dev, ip, case, "sim_swap_transfer")
            t += cx.ui(5 * MIN, 6 * HOUR)
