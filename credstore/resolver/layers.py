"""Precedence: which layer's value wins for each variable.

Highest first:

1. ``argument``      explicit values (``--set NAME=VALUE``, keyword arguments of the Python API)
2. ``environment``   the process environment, except values that credstore itself exported earlier and that
                     nobody has changed since (see ``exported.py``): those are refreshed from the store
3. ``service:NAME``  a team service account chosen as the profile's default (one chosen on the command line counts
                     as an explicit argument and sits in layer 1)
4. ``profile:NAME``  the person's own keystore profile

This mirrors W&B's rule that ``wandb.init()`` arguments beat ``WANDB_*`` variables, which beat stored settings.
"""

# No `from __future__ import annotations` here: typing.NamedTuple would compile string annotations (see store/base).

from collections.abc import Iterable, Mapping
from typing import NamedTuple

ARGUMENT = "argument"
ENVIRONMENT = "environment"
MASK = "********"


class Value(NamedTuple):
    value: str
    secret: bool

    def __repr__(self) -> str:
        return f"Value(secret={self.secret})"


class Layer(NamedTuple):
    source: str
    values: Mapping[str, Value]


class Resolved(NamedTuple):
    """The winning value of one variable, where it came from, and which sources it shadowed."""

    name: str
    value: str
    secret: bool
    source: str
    shadowed: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"Resolved(name={self.name!r}, source={self.source!r}, value={self.display_value!r})"

    @property
    def display_value(self) -> str:
        """The value as it may be shown to a person: masked entirely when secret (no prefix, no suffix)."""
        return MASK if self.secret else self.value

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "source": self.source,
            "shadowed": list(self.shadowed),
            "value": self.display_value,
            "secret": self.secret,
        }


def resolve(layers: Iterable[Layer], names: Iterable[str] | None = None) -> list[Resolved]:
    """Resolve ``names`` (or, when None, every name any non-environment layer holds) through ``layers``.

    ``layers`` must come highest precedence first. Names found in no layer are left out.
    """
    layers = list(layers)
    if names is None:
        wanted: list[str] = []
        for layer in layers:
            if layer.source != ENVIRONMENT:
                wanted.extend(layer.values)
        names = sorted(set(wanted))
    out: list[Resolved] = []
    pairs = [(layer.source, layer.values) for layer in layers]
    for name in names:
        holders = [(source, values) for source, values in pairs if name in values]
        if not holders:
            continue
        winner = holders[0][1][name]
        shadowed = tuple(source for source, _ in holders[1:]) if len(holders) > 1 else ()
        out.append(Resolved(name, winner.value, winner.secret, holders[0][0], shadowed))
    return out
