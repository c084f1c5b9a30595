"""wangiri (WAN): one-ring calls from premium-rate numbers, some of them called back.

One fresh number with prefix +88213, +88216, +8819, +2327, +22507, +6777 or
+2474 calls 20-40 distinct customers within 2-9 minutes; every call
direction in, answered false, duration 0, trunk international.

``wangiri_callback`` is a number of wangiri cases (at least 3) that also get
a callback, labelled wangiri_callback and sharing the case id: one of those
customers calls the number back 5 min-1 h 56 min after being rung (direction
out, answered, duration 61-1200 s, trunk international).  Callback cases use
only +88213, +88216, +2327.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..cases import Cases
from ..schema import HOUR, IN, INTL, OUT
from .registry import register

WANGIRI_PREFIXES = ["+88213", "+88216", "+8819", "+2327", "+22507", "+6777", "+2474"]
WANGIRI_CALLBACK_PREFIXES = ["+88213", "+88216", "+2327"]


def _counts(default: int, asked: Mapping[str, int]) -> dict[str, int]:
    # a third of the cases get a callback by default, at least 3; each callback needs its own wangiri case
    callbacks = max(3, asked.get("wangiri_callback", max(3, default // 3)))
    return {"wangiri": max(asked.get("wangiri", default), callbacks), "wangiri_callback": callbacks}


@register("wangiri", "WAN", extra_labels=("wangiri_callback",), counts=_counts)
def wangiri(cx: Cases, n: Mapping[str, int]) -> None:
    rng, E, pop = cx.rng, cx.E, cx.pop
    for k in range(n["wangiri"]):
        case = cx.new_case("wangiri")
        cb = k < n["wangiri_callback"]
        prefixes = WANGIRI_CALLBACK_PREFIXES if cb else WANGIRI_PREFIXES
        number = int(E.foreign(prefixes[int(rng.integers(0, len(prefixes)))], 1)[0])
        nv = cx.ui(20, 40)
        victims = rng.choice(cx.N, nv, replace=False)
        t0 = cx.case_start(3 * HOUR)
        times = cx.spread(t0, nv, cx.u(120, 540))
        for v, t in zip(victims, times):
            cx.call(t, number, pop.c_phone[v], IN, 0, False, v, INTL, case, "wangiri")
        if cb:
            # the victim that calls back gets an exclusive role (its own later calls are touched)
            i = int(rng.integers(0, nv))
            v = int(victims[i])
            cx.role_used.append(v)
            cx.call(times[i] + cx.ui(300, 7000), pop.c_phone[v], number, OUT, cx.ui(61, 1200), True, v, INTL, case,
                    "wangiri_callback")
