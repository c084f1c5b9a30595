"""Run the fraudrules CLI and report the most partial chains one key held at one step of a sequence.

    python bench/chain_probe.py score DATA --rule TF-CYCLE-001 --jobs 1 -q --out OUT  # --rules PACK: another pack

Sequences of three or more steps join every chain; the batch executor counts the partial chains
ending at each step per key and stops past ``MAX_CHAINS`` (engine/runtime/latest.py). This replaces
that cap with a probe that never trips and records the largest count it was compared with, printed
last on stderr. Use ``--jobs 1``: the probe lives in this process.
"""

from __future__ import annotations

import atexit
import sys

import fraudrules.executors.batch as batch


class _Probe:
    """Compared as ``per_key.max() > MAX_CHAINS``: numpy defers to ``__lt__``, which keeps the largest."""

    __array_ufunc__ = None
    top = 0

    def __lt__(self, other: object) -> bool:
        _Probe.top = max(_Probe.top, int(other))  # type: ignore[call-overload]
        return False

    def __format__(self, spec: str) -> str:
        return "probe"


def _report() -> None:
    print(f"max partial chains per key: {_Probe.top}", file=sys.stderr)


def main() -> None:
    batch.MAX_CHAINS = _Probe()  # type: ignore[assignment]
    atexit.register(_report)
    from fraudrules.cli import main as cli

    sys.argv = ["fraudrules", *sys.argv[1:]]
    cli()


if __name__ == "__main__":
    main()
