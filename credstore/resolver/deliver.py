"""Turning a resolution into shell text (``env``) or a process environment (``exec``).

Kept free of the CLI framework so the hot path (``credstore env`` in every new shell) stays lean.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from credstore.errors import EXIT_CANNOT_EXEC, EXIT_COMMAND_NOT_FOUND, CredstoreError, UsageError
from credstore.resolver.exported import MARKER
from credstore.resolver.gather import gather
from credstore.resolver.layers import ENVIRONMENT
from credstore.store.base import Backend

PREFIXES = {"apptainer": "APPTAINERENV_", "singularity": "SINGULARITYENV_"}


def render_env(
    backend: Backend,
    tokens: Sequence[str],
    explicit: Mapping[str, str],
    environ: Mapping[str, str],
    *,
    shell: str | None = None,
    fmt: str = "shell",
    prefix: str | None = None,
    target: str | None = None,
) -> str:
    """The whole text ``credstore env`` prints. Built completely before anything is written."""
    from credstore import shells

    if prefix is not None and target is not None:
        raise UsageError("--prefix and --for cannot be used together")
    if target is not None:
        prefix = PREFIXES[target]
    if prefix is not None and prefix and not (prefix[0].isalpha() or prefix[0] == "_"):
        raise UsageError("--prefix must start with a letter or '_'")
    shell = shell or shells.detect_shell(environ)
    gathered = gather(backend, tokens, explicit, environ)
    if fmt == "shell" and prefix is None:
        # Into this very shell: leave what the environment already decides, refresh credstore's own exports.
        plan = gathered.plan(environ)
        return shells.render(plan.assignments, plan.unsets, shell=shell, fmt=fmt)
    # For a container or a file: every resolved value, prefixed, no refresh marker.
    from credstore.resolver.layers import resolve

    assignments = [(f"{prefix or ''}{r.name}", r.value) for r in resolve(gathered.layers, gathered.names)]
    return shells.render(assignments, (), shell=shell, fmt=fmt)


def child_environment(
    backend: Backend, tokens: Sequence[str], explicit: Mapping[str, str], environ: Mapping[str, str]
) -> dict[str, str]:
    plan = gather(backend, tokens, explicit, environ).plan(environ)
    child = dict(environ)
    for name in plan.unsets:
        child.pop(name, None)
    for name, value in plan.assignments:
        child[name] = value
    child.pop(MARKER, None)
    return child


def exec_command(
    backend: Backend,
    tokens: Sequence[str],
    explicit: Mapping[str, str],
    environ: Mapping[str, str],
    command: Sequence[str],
) -> None:
    """Replace this process with ``command`` (aws-vault style): signals and exit status are the command's own."""
    child = child_environment(backend, tokens, explicit, environ)
    sys.stdout.flush()
    sys.stderr.flush()
    from credstore.crypto.hardening import restore_for_exec

    restore_for_exec()  # the command gets the user's core limit back (this process stays non-dumpable until execve)
    try:
        os.execvpe(command[0], list(command), child)  # noqa: S606 - exec without a shell is the point
    except FileNotFoundError:
        raise _ExecError(f"{command[0]}: command not found", EXIT_COMMAND_NOT_FOUND) from None
    except PermissionError:
        raise _ExecError(f"{command[0]}: permission denied", EXIT_CANNOT_EXEC) from None
    except OSError as exc:
        raise _ExecError(f"{command[0]}: {exc.strerror}", EXIT_CANNOT_EXEC) from None


class _ExecError(CredstoreError):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = code


__all__ = ["ENVIRONMENT", "child_environment", "exec_command", "render_env"]
