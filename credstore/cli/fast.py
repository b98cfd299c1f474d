"""The hot path: ``credstore env``, ``exec``, ``get``, ``list`` and ``explain`` without the CLI framework.

``eval "$(credstore env)"`` runs in every new shell, so these commands are parsed here by hand and never import
click (or the OS keyring library); ``get``, ``list`` and ``explain`` are answered here only from the render cache
(``app/render_cache.py``). Anything this parser does not recognise (``--help``, an unknown option, a bad
choice) returns None and the full click CLI handles it, with its complete error messages.
"""

from __future__ import annotations

import sys

from credstore.errors import EXIT_CANNOT_EXEC, EXIT_COMMAND_NOT_FOUND, CredstoreError
from credstore.shells import CONTAINER_PREFIXES, FORMATS, HOOK_SHELLS, SHELLS

_ENV_VALUE_OPTIONS = {
    "--shell": "shell",
    "--format": "fmt",
    "--prefix": "prefix",
    "--for": "target",
    "--service": "service",
}
_CHOICES = {"shell": SHELLS, "fmt": FORMATS, "target": tuple(CONTAINER_PREFIXES)}


def _split_option(arg: str, rest: list[str]) -> tuple[str, str] | None:
    """``--opt=value`` or ``--opt value`` (consuming from ``rest``); None when the value is missing."""
    if "=" in arg:
        name, _, value = arg.partition("=")
        return name, value
    if not rest:
        return None
    return arg, rest.pop(0)


def _parse_global(args: list[str]) -> tuple[str | None, list[str]] | None:
    profile = None
    rest = list(args)
    while rest and rest[0].startswith("-"):
        arg = rest.pop(0)
        if arg in ("--profile", "-p") or arg.startswith("--profile="):
            split = _split_option(arg, rest)
            if split is None:
                return None
            profile = split[1]
        elif arg in ("-q", "--quiet"):
            continue  # env and exec print no informational lines
        else:
            return None
    return profile, rest


def parse_env(args: list[str]) -> dict | None:
    options: dict = {
        "shell": None,
        "fmt": "shell",
        "prefix": None,
        "target": None,
        "service": None,
        "sets": [],
        "tokens": [],
        "hook": False,
    }
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg == "--":
            options["tokens"].extend(rest)
            break
        if arg == "--hook":  # what the shell hook runs: see shells/posix_hook.py (not in click's help)
            options["hook"] = True
            continue
        if not arg.startswith("-"):
            options["tokens"].append(arg)
            continue
        split = _split_option(arg, rest)
        if split is None:
            return None
        name, value = split
        if name == "--set":
            options["sets"].append(value)
        elif name in _ENV_VALUE_OPTIONS:
            key = _ENV_VALUE_OPTIONS[name]
            if key in _CHOICES and value not in _CHOICES[key]:
                return None
            options[key] = value
        else:
            return None
    return options


def parse_exec(args: list[str]) -> dict | None:
    """Mirrors click's parsing with interspersed arguments off: options first, then selection ``--`` command."""
    sets: list[str] = []
    service = None
    rest = list(args)
    while rest and rest[0].startswith("-") and rest[0] != "--":
        arg = rest.pop(0)
        split = _split_option(arg, rest)
        if split is None or split[0] not in ("--set", "--service"):
            return None
        if split[0] == "--set":
            sets.append(split[1])
        else:
            service = split[1]
    separated = "--" in rest
    if rest and rest[0] == "--":
        selection, command = [], rest[1:]
    elif "--" in rest:
        cut = rest.index("--")
        selection, command = rest[:cut], rest[cut + 1 :]
    else:
        selection, command = [], rest
    if not command:
        return None
    return {"sets": sets, "service": service, "tokens": selection, "command": command, "separated": separated}


def run(args: list[str]) -> int | None:
    """Run ``env``, ``exec``, ``get``, ``hook SHELL``, ``list`` or ``explain`` if ``args`` are simple enough; None
    means: let the full CLI handle them."""
    parsed = _parse_global(args)
    if parsed is None or not parsed[1] or parsed[1][0] not in ("env", "exec", "get", "hook", "list", "explain"):
        return None
    profile, rest = parsed
    command, rest = rest[0], rest[1:]
    if command in ("list", "explain"):
        return _cached_view(command, profile, rest)
    if command == "get" and len(rest) == 1 and not rest[0].startswith("-"):
        import os

        from credstore.app import render_cache

        value = render_cache.cached_get(profile, rest[0], os.environ)
        if value is None:
            return None  # click's `get`: the full read, its messages
        write(value + "\n")
        return 0
    if command == "hook":
        if len(rest) != 1 or rest[0] not in HOOK_SHELLS:
            return None  # install / uninstall / --help: click
        from credstore.shells import hook_text

        write(hook_text(rest[0], *hook_command()))
        return 0
    options = parse_env(rest) if command == "env" else parse_exec(rest)
    if options is None:
        return None
    if command == "env":
        import os

        from credstore.app import render_cache

        cached = render_cache.cached_env_text(profile, options, os.environ, bytes_ok=_writes_utf8())
        if cached is not None:
            write(cached)
            return 0
        if options["hook"]:
            return _env_for_hook(profile, options)
        return run_env_full(profile, options)
    import os

    from credstore.app import render_cache

    child = render_cache.cached_exec_environment(profile, options, os.environ)
    if child is not None:
        _exec(options["command"], child)
    from credstore.app import delivery
    from credstore.app.context import Context
    from credstore.resolver.gather import parse_assignments

    explicit = parse_assignments(options["sets"])
    from credstore.cli.terminal import passphrase_asker

    ctx = Context(profile, ask_passphrase=passphrase_asker())
    delivery.check_exec_command(ctx, options["command"], options["separated"])
    delivery.run_exec(ctx, options["tokens"], explicit, options["command"], service=options["service"])
    return 0  # not reached: run_exec replaces the process or raises


def _cached_view(command: str, profile: str | None, rest: list[str]) -> int | None:
    """A plain ``list`` / ``explain`` (``--json`` allowed) answered from the render cache, else None (click)."""
    if rest not in ([], ["--json"]):
        return None
    import os

    from credstore.app import render_cache
    from credstore.cli import tables

    if command == "list":
        rows = render_cache.cached_list_rows(profile, os.environ)
    else:
        rows = render_cache.cached_explain_rows(profile, os.environ)
    if rows is None:
        return None
    if rest:
        write(tables.json_text(rows))
    else:
        write(tables.list_table(rows) if command == "list" else tables.explain_lines(rows))
    return 0


class ExecFailed(CredstoreError):
    """``exec``: the command could not be started (its exit code: 127 not found, 126 not runnable)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = code


def _exec(command: list[str], child: dict[str, str]) -> None:
    """``resolver/deliver.exec_command`` without its imports: replace this process with ``command``."""
    import os

    from credstore.crypto.hardening import restore_for_exec

    sys.stdout.flush()
    sys.stderr.flush()
    restore_for_exec()  # the command gets the user's core limit back
    try:
        os.execvpe(command[0], command, child)  # noqa: S606 - exec without a shell is the point
    except FileNotFoundError:
        raise ExecFailed(f"{command[0]}: command not found", EXIT_COMMAND_NOT_FOUND) from None
    except PermissionError:
        raise ExecFailed(f"{command[0]}: permission denied", EXIT_CANNOT_EXEC) from None
    except OSError as exc:
        raise ExecFailed(f"{command[0]}: {exc.strerror}", EXIT_CANNOT_EXEC) from None


def _env_for_hook(profile: str | None, options: dict) -> int:
    """``env --hook``: as ``env``; when locked, also say on stdout whether this process group owns the terminal,
    so the hook prompts only in the foreground (a background job reading the terminal would be stopped)."""
    from credstore.errors import LockedError

    try:
        return run_env_full(profile, options, hook=True)
    except LockedError:
        if _in_foreground():
            write("# credstore: foreground")
        raise


def _in_foreground() -> bool:
    import os

    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


def run_env_full(profile: str | None, options: dict, *, hook: bool = False) -> int:
    from credstore.app import delivery
    from credstore.app.context import Context
    from credstore.resolver.gather import parse_assignments

    text = delivery.env_text(
        Context(profile),
        options["tokens"],
        parse_assignments(options["sets"]),
        service=options["service"],
        shell=options["shell"],
        fmt=options["fmt"],
        prefix=options["prefix"],
        target=options["target"],
        hook=hook,
    )
    write(text)
    return 0


#: What the hook runs: the interpreter with this line, which is what ``bin/credstore`` does, so the hook works the
#: same under an install whose command is an entry-point wrapper (those import ``re`` first, a few milliseconds).
HOOK_CODE = "import sys;from credstore.__main__ import main;sys.exit(main())"


def hook_command() -> tuple[list[str], str]:
    """(argv, file) for the hook: credstore run by absolute paths (never looked up on PATH, never a pyenv shim),
    and the file whose presence says that this very install is still there: the package this interpreter imports
    (not the command on PATH, which another install may have put back since: the hook would then run a missing
    interpreter)."""
    import os

    import credstore

    return [os.path.abspath(sys.executable), "-c", HOOK_CODE], os.path.abspath(credstore.__file__)


def write(text) -> None:
    """Print ``text``: a ``str``, or bytes already in the stream's UTF-8 (``_writes_utf8``), written as they are."""
    if isinstance(text, str):
        sys.stdout.write(text)
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(text)
    sys.stdout.flush()


def _writes_utf8() -> bool:
    """Whether standard output encodes as UTF-8 with the error handler the prepared bytes were made with."""
    stream = sys.stdout
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "").replace("_", "")
    return (
        encoding == "utf8"
        and getattr(stream, "errors", "") in ("strict", "surrogateescape")
        and hasattr(stream, "buffer")
    )
