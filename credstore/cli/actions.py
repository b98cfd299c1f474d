"""What ``env`` and ``exec`` do, free of the CLI framework: shared by the hot path (``cli/fast.py``) and the click
commands (``cli/delivery.py``), so both record the same audit lines and fail the same way."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence

from credstore import config
from credstore.errors import AuthError
from credstore.resolver.gather import Gathered, Selection, parse_assignments


def selection(
    profile: str | None,
    service: str | None,
    event: str | None,
    environ: Mapping[str, str],
    *,
    interactive: bool,
    command: str | None = None,
) -> Selection:
    """The profile plus ``--service``; reads through env/exec are written to the audit log (names only)."""
    store = config.open_backend(profile, environ=environ, interactive=interactive, ask_passphrase=ask_passphrase)

    def record_read(gathered: Gathered) -> None:
        from credstore import audit
        from credstore.resolver.layers import ENVIRONMENT

        delivered = {r.name: r.source for r in gathered.resolved() if r.source != ENVIRONMENT}
        audit.record(
            event or "env",
            environ=environ,
            names=sorted(delivered),
            sources=delivered,
            profile=getattr(store, "profile", None),
            service=gathered.service,
            command=command,
        )

    return Selection(store, service=service, on_gathered=record_read if event else None)


def ask_passphrase(prompt: str) -> str:
    """Read a passphrase from the terminal without echo (never from argv or the environment)."""
    import getpass

    return getpass.getpass(prompt)


def _failed_unlock(chosen: Selection, environ: Mapping[str, str]) -> None:
    from credstore import audit

    audit.record("failed-unlock", environ=environ, profile=getattr(chosen.profile, "profile", None))


def env_text(
    profile: str | None,
    tokens: Sequence[str],
    assignments: Sequence[str],
    environ: Mapping[str, str],
    *,
    service: str | None = None,
    shell: str | None = None,
    fmt: str = "shell",
    prefix: str | None = None,
    target: str | None = None,
) -> str:
    """The whole text ``credstore env`` prints; never prompts (a locked store is an error, exit 4)."""
    from credstore.resolver.deliver import render_env

    chosen = selection(profile, service, "env", environ, interactive=False)
    try:
        return render_env(
            chosen, tokens, parse_assignments(assignments), environ, shell=shell, fmt=fmt, prefix=prefix, target=target
        )
    except AuthError:
        _failed_unlock(chosen, environ)
        raise


def run_exec(
    profile: str | None,
    tokens: Sequence[str],
    assignments: Sequence[str],
    environ: Mapping[str, str],
    command: Sequence[str],
    *,
    service: str | None = None,
) -> None:
    """Replace this process with ``command``; may prompt for a passphrase when a terminal is attached."""
    from credstore.cli.terminal import has_terminal
    from credstore.resolver.deliver import exec_command

    # The audit line names the command by argv[0] only: later arguments may hold what a person typed, secrets too.
    chosen = selection(profile, service, "exec", environ, interactive=has_terminal(), command=command[0])
    try:
        exec_command(chosen, tokens, parse_assignments(assignments), environ, command)
    except AuthError:
        _failed_unlock(chosen, environ)
        raise


def write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()
