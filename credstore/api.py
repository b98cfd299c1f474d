"""The Python API, for notebooks and training scripts.

    import credstore
    creds = credstore.resolve("wandb", WANDB_PROJECT="sweep-7")   # {name: Resolved}
    with credstore.environ("wandb", "hf"):
        wandb.init()                                              # sees WANDB_API_KEY etc.

Same precedence as the CLI: keyword arguments > the process environment > the stored profile.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from credstore import config
from credstore.catalog import check_name, check_value
from credstore.resolver.gather import gather
from credstore.resolver.layers import ENVIRONMENT, Resolved
from credstore.resolver.layers import resolve as resolve_layers


def _explicit(values: dict[str, str]) -> dict[str, str]:
    for name, value in values.items():
        check_name(name)
        check_value(name, value)
    return values


def resolve(*names_or_services: str, profile: str | None = None, **explicit: str) -> dict[str, Resolved]:
    """Resolve variables (all stored ones when none are named) to ``{name: Resolved}``.

    Each ``Resolved`` has ``value``, ``secret``, ``source`` (argument / environment / profile:NAME ...) and
    ``shadowed``. Never prompts: a locked store raises ``credstore.errors.LockedError``.
    """
    store = config.open_profile(profile)
    gathered = gather(store, names_or_services, _explicit(explicit), dict(os.environ))
    return {item.name: item for item in resolve_layers(gathered.layers, gathered.names)}


@contextmanager
def environ(*names_or_services: str, profile: str | None = None, **explicit: str) -> Iterator[dict[str, Resolved]]:
    """Put the resolved variables into ``os.environ`` for the block; restore the previous values afterwards."""
    resolved = resolve(*names_or_services, profile=profile, **explicit)
    saved = {name: os.environ.get(name) for name in resolved}
    try:
        for name, item in resolved.items():
            if item.source != ENVIRONMENT:
                os.environ[name] = item.value
        yield resolved
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
