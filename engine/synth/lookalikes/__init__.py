"""Hard negatives: ordinary behaviour that looks like fraud, one module per kind.

Clean background traffic flatters a rule pack: every alert on it is a true positive by
construction. These generators add the legitimate patterns that real rules trip over (see
issue #10 and docs/backtests.md): merchants and schools that collect from many payers, payroll
runs, families paying from one device, travellers and relatives abroad, a new landlord's large
first payment after a new SIM, and call centres that make many short calls.

Their records are unlabelled (they are not fraud). ``generate`` also writes ``lookalikes.csv``
(``stream, record_id, kind``) so that a backtest can say which ordinary behaviour each false
positive came from, and ``collection_accounts.txt``: the business accounts a bank would have
registered (most, not all, of the collecting and paying businesses), the list that
TF-MULE-001/002 and TF-VEL-001 skip, and ``enterprise_lines.txt``: the registered call-centre
lines (most, not all), which TF-DIALER-001 and TF-SIMBOX-001 skip.

Kinds run in the order of ``_MODULES``, after the fraud typologies, drawing from the same RNG;
with ``lookalike_rate=0`` none runs and the output is byte-identical to a run without them.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module

from .registry import REGISTRY, Lookalike

__all__ = ["REGISTRY", "Lookalike", "LOOKALIKES", "lookalike_counts"]

# Generation order (part of the output, like the typologies' order).
_MODULES = (
    "merchant_fan_in",
    "payroll",
    "family_device",
    "traveller",
    "landlord",
    "call_centre",
)
for _name in _MODULES:
    import_module(f"{__name__}.{_name}")

LOOKALIKES: list[str] = list(REGISTRY)


def lookalike_counts(default: int, asked: Mapping[str, int]) -> dict[str, int]:
    """Instances per kind: ``default`` unless ``asked`` says otherwise."""
    for k in asked:
        if k not in REGISTRY:
            raise ValueError(f"unknown lookalike kind {k!r}; known: {', '.join(REGISTRY)}")
    return {k: int(asked.get(k, default)) for k in REGISTRY}
