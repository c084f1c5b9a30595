"""call_centre: a courier dispatch line or clinic reminding many people with short calls.

Looks like an auto-dialer (TF-DIALER-001) and a SIM box (TF-SIMBOX-001). One SIM on our network,
in one cell (the office), calls 30-60 distinct customers within an hour. 45 % of the calls go
unanswered; answered ones last 5-40 s. Customers call back on 0-3 of them (a real office gets
call-backs, a SIM box does not), 1-30 min after the run. 70 % of the lines are registered
enterprise lines (``enterprise_lines.txt``); the rest are unregistered.
"""

from __future__ import annotations

from ..cases import Cases
from ..entities import OTHER_MOBILE_PREFIXES
from ..schema import DOM, IN, MIN, OUT
from .registry import register


@register("call_centre", resembles=("TF-DIALER-001", "TF-SIMBOX-001"))
def call_centre(cx: Cases, n: int) -> None:
    rng, E, pop = cx.rng, cx.E, cx.pop
    for _ in range(n):
        line = int(E.cn_mobile(1, OTHER_MOBILE_PREFIXES)[0])
        if rng.random() < 0.7:
            cx.registered_lines.append(line)
        attrs = (int(E.new_imsi(1)[0]), int(E.new_imei(1)[0]), int(pop.cells[rng.integers(0, pop.cells.size)]))
        k = min(cx.ui(30, 60), cx.N)
        span = cx.u(40 * MIN, 60 * MIN - 1)
        called = rng.choice(cx.N, k, replace=False)
        times = cx.spread(cx.local_start(9, 16, span + 7200), k, span)
        for t, c in zip(times, called):
            ans = rng.random() >= 0.45
            cx.call(t, line, pop.c_phone[c], OUT, cx.ui(5, 40), ans, attrs, DOM, -1, "call_centre")
        for c in called[:cx.ui(0, 3)]:
            cx.call(int(times[-1]) + cx.ui(MIN, 30 * MIN), pop.c_phone[c], line, IN, cx.ui(20, 120), True, attrs,
                    DOM, -1, "call_centre")
