"""The typology registry: each typology module registers its generator here with :func:`register`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..cases import Cases

Run = Callable[[Cases, Mapping[str, int]], None]
Counts = Callable[[int, Mapping[str, int]], dict[str, int]]


@dataclass(frozen=True)
class Typology:
    """A case typology: its case-id code, the labels its records get and how to inject its cases.

    ``run(cases, n)`` injects ``n[label]`` cases; ``counts(default, asked)`` turns the default count and
    the counts asked for (only this typology's labels) into ``n``.
    """

    name: str
    code: str
    labels: tuple[str, ...]
    run: Run
    counts: Counts


# In registration order, which is generation order (see typologies/__init__.py).
REGISTRY: dict[str, Typology] = {}


def _own_count(name: str) -> Counts:
    return lambda default, asked: {name: asked.get(name, default)}


def register(name: str, code: str, *, extra_labels: tuple[str, ...] = (),
             counts: Counts | None = None) -> Callable[[Run], Run]:
    """Decorator: register the function as the generator of typology ``name``.

    ``extra_labels`` are further label values its records get (they share its cases); ``counts``
    replaces the default "``asked`` or ``default``" when those need their own numbers.
    """

    def deco(fn: Run) -> Run:
        taken = {label for t in REGISTRY.values() for label in t.labels}
        labels = (name, *extra_labels)
        if name in REGISTRY or taken.intersection(labels):
            raise ValueError(f"typology {name!r} registered twice (labels {labels})")
        REGISTRY[name] = Typology(name, code, labels, fn, counts or _own_count(name))
        return fn

    return deco
