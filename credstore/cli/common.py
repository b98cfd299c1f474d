"""What the command modules share: the global ``--profile`` option, the application context, and option help.

Command modules import this module, ``terminal`` and the application layer, never each other.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import click

from credstore.app.context import Context
from credstore.cli import terminal

SET_HELP = "Explicit NAME=VALUE (highest precedence; avoid for secrets: argv is visible to other users)."
SERVICE_HELP = "Use this team service account's key (counts as an explicit argument; attribution stays yours)."


def profile_option(ctx: click.Context) -> str | None:
    return (ctx.find_root().obj or {}).get("profile")


def raw_arguments(ctx: click.Context) -> list[str]:
    """The command's arguments as typed (click drops a leading ``--``, which ``exec`` needs to see)."""
    return list((ctx.find_root().obj or {}).get("arguments", []))


def context(
    ctx: click.Context, *, interactive: bool | None = None, ask_passphrase: Callable[[str], str] | None = None
) -> Context:
    """The application context of this command. Passphrases are asked on the terminal when one is attached
    (``interactive`` None), never (False), or with ``ask_passphrase`` (commands about the passphrase, which may also
    read it from stdin)."""
    attached = terminal.has_terminal()  # and in the foreground: a background job is never asked anything
    if ask_passphrase is None and interactive is not False:
        ask_passphrase = terminal.terminal_asker() if attached else None
    return Context(
        profile_option(ctx),
        environ=dict(os.environ),
        ask_passphrase=ask_passphrase,
        warn=terminal.warn,
        info=terminal.info,
        terminal=attached,
    )


def passphrase_context(ctx: click.Context) -> Context:
    """For commands that are about the passphrase (init, unlock, passwd, protect): it may come from stdin."""
    return context(ctx, ask_passphrase=terminal.passphrase_input())
