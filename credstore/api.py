"""The Python API, for notebooks and training scripts.

    import credstore
    creds = credstore.resolve("wandb", WANDB_PROJECT="sweep-7")   # {name: Resolved}
    with credstore.environ("wandb", "hf"):
        wandb.init()                                              # sees WANDB_API_KEY etc.

Same precedence, same backends (local store, OpenBao profiles, service accounts) and the same audit lines as the
CLI: keyword arguments > the process environment > a service account > the stored profile. It never prompts: a
locked store raises ``credstore.errors.LockedError``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from credstore.app import delivery
from credstore.app.context import Context
from credstore.catalog import check_name, check_value
from credstore.resolver.layers import ENVIRONMENT, Resolved


def _explicit(values: dict[str, str]) -> dict[str, str]:
    for name, value in values.items():
        check_name(name)
        check_value(name, value)
    return values


def resolve(
    *names_or_services: str, profile: str | None = None, service: str | None = None, **explicit: str
) -> dict[str, Resolved]:
    """Resolve variables (all stored ones when none are named) to ``{name: Resolved}``.

    Each ``Resolved`` has ``value``, ``secret``, ``source`` (argument / environment / profile:NAME / service:NAME /
    vault:...) and ``shadowed``. ``service``: use this team service account (like ``--service``). The read is
    recorded in the audit log (names only, ``via=api``).
    """
    ctx = Context(profile, environ=dict(os.environ), via="api")
    return delivery.resolve(ctx, names_or_services, _explicit(explicit), service=service)


@contextmanager
def environ(
    *names_or_services: str, profile: str | None = None, service: str | None = None, **explicit: str
) -> Iterator[dict[str, Resolved]]:
    """Put the resolved variables into ``os.environ`` for the block; restore the previous values afterwards."""
    resolved = resolve(*names_or_services, profile=profile, service=service, **explicit)
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
