"""Turning a resolution into shell text (``env``) or a process environment (``exec``).

Kept free of the CLI framework so the hot path (``credstore env`` in every new shell) stays lean.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from credstore import marker
from credstore.errors import EXIT_CANNOT_EXEC, EXIT_COMMAND_NOT_FOUND, CredstoreError, UsageError
from credstore.resolver.gather import Gathered
from credstore.shells import CONTAINER_PREFIXES


def check_output_options(prefix: str | None, target: str | None) -> str | None:
    """The prefix ``env`` puts before every name (``--prefix`` or ``--for``), checked before anything is read."""
    if prefix is not None and target is not None:
        raise UsageError("--prefix and --for cannot be used together")
    if target is not None:
        if target not in CONTAINER_PREFIXES:
            raise UsageError(f"unknown --for {target!r}: choose one of {', '.join(CONTAINER_PREFIXES)}")
        prefix = CONTAINER_PREFIXES[target]
    if prefix is not None and prefix and not (prefix[0].isalpha() or prefix[0] == "_"):
        raise UsageError("--prefix must start with a letter or '_'")
    return prefix


def render_env(
    gathered: Gathered,
    environ: Mapping[str, str],
    *,
    shell: str,
    fmt: str = "shell",
    prefix: str | None = None,
) -> str:
    """The whole text ``credstore env`` prints. Built completely before anything is written."""
    from credstore import shells

    if fmt == "shell" and prefix is None:
        # Into this very shell: leave what the environment already decides, refresh credstore's own exports.
        plan = gathered.plan(environ)
        return shells.render(plan.assignments, plan.unsets, shell=shell, fmt=fmt)
    # For a container or a file: every resolved value, prefixed, no refresh marker.
    assignments = [(f"{prefix or ''}{r.name}", r.value) for r in gathered.resolved()]
    return shells.render(assignments, (), shell=shell, fmt=fmt)


def child_environment(gathered: Gathered, environ: Mapping[str, str]) -> dict[str, str]:
    plan = gathered.plan(environ)
    child = dict(environ)
    for name in plan.unsets:
        child.pop(name, None)
    for name, value in plan.assignments:
        child[name] = value
    for name in marker.all_variables(child):  # the marker is for shells: a command has no use for it
        del child[name]
    return child


def exec_command(command: Sequence[str], child: Mapping[str, str]) -> None:
    """Replace this process with ``command`` (aws-vault style): signals and exit status are the command's own."""
    sys.stdout.flush()
    sys.stderr.flush()
    from credstore.crypto.hardening import restore_for_exec

    restore_for_exec()  # the command gets the user's core limit back (this process stays non-dumpable until execve)
    try:
        os.execvpe(command[0], list(command), dict(child))  # noqa: S606 - exec without a shell is the point
    except FileNotFoundError:
        raise ExecError(f"{command[0]}: command not found", EXIT_COMMAND_NOT_FOUND) from None
    except PermissionError:
        raise ExecError(f"{command[0]}: permission denied", EXIT_CANNOT_EXEC) from None
    except OSError as exc:
        raise ExecError(f"{command[0]}: {exc.strerror}", EXIT_CANNOT_EXEC) from None


class ExecError(CredstoreError):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = code
