"""Helpers shared by the command modules."""

from __future__ import annotations

import os
import time

import click

from credstore import catalog, config
from credstore.cli import terminal
from credstore.cli.actions import ask_passphrase
from credstore.store.base import Backend
from credstore.store.local import LocalStore


def profile_option(ctx: click.Context) -> str | None:
    return (ctx.find_root().obj or {}).get("profile")


def open_store(ctx: click.Context, *, interactive: bool | None = None) -> Backend:
    """Where the current profile's entries live: its local store, or the OpenBao path it is connected to.

    ``interactive`` (default: a terminal is attached) allows passphrase prompts.
    """
    if interactive is None:
        interactive = terminal.has_terminal()
    return config.open_backend(profile_option(ctx), interactive=interactive, ask_passphrase=ask_passphrase)


def open_local(ctx: click.Context, *, interactive: bool | None = None) -> LocalStore:
    """The current profile's local encrypted store itself (for init, protection, rollback and vault settings)."""
    if interactive is None:
        interactive = terminal.has_terminal()
    return config.open_profile(profile_option(ctx), interactive=interactive, ask_passphrase=ask_passphrase)


def accept_value(name: str, value: str) -> None:
    """Check a value about to be stored: refuse what no environment can carry (NUL, empty, over 128 KiB); warn when
    it does not look like what ``name`` usually holds (the value itself is never shown)."""
    catalog.check_value(name, value)
    terminal.check_length(name, value)
    warning = catalog.format_warning(name, value)
    if warning:
        terminal.warn(warning)


def age(seconds_since_epoch: float, now: float | None = None) -> str:
    delta = max(0.0, (now or time.time()) - seconds_since_epoch)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if delta >= size:
            return f"{int(delta // size)}{unit}"
    return f"{int(delta)}s"


def environ() -> dict[str, str]:
    return dict(os.environ)
