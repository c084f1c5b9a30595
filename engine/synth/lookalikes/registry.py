"""The lookalike registry: each module registers its generator with :func:`register`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..cases import Cases

Run = Callable[[Cases, int], None]


@dataclass(frozen=True)
class Lookalike:
    """An ordinary behaviour that looks like fraud: its name, the rules it is meant to test, its generator."""

    name: str
    resembles: tuple[str, ...]  # rule ids whose pattern it shares
    run: Run


REGISTRY: dict[str, Lookalike] = {}


def register(name: str, resembles: tuple[str, ...]) -> Callable[[Run], Run]:
    """Decorator: register ``fn(cases, n)`` as the generator of ``n`` instances of lookalike ``name``."""

    def deco(fn: Run) -> Run:
        if name in REGISTRY:
            raise ValueError(f"lookalike {name!r} registered twice")
        REGISTRY[name] = Lookalike(name, resembles, fn)
        return fn

    return deco
