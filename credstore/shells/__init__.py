"""Shell and file-format emitters: one module per shell or format (as direnv has one file per shell).

``render`` turns ``(NAME, value)`` pairs into text that the chosen shell evaluates (``eval "$(credstore env)"``,
``credstore env --shell fish | source``, ``credstore env --shell powershell | Invoke-Expression``), or into a
file format: a ``.env`` file (python-dotenv, docker compose), a ``docker run --env-file`` file, JSON. Every value
is carried byte for byte; a format that cannot carry a value raises UnrepresentableValue naming the variable, never
showing the value.

The registry below is the one place that lists them; the hot path and click take their choices from it, and only
the one emitter asked for is imported (``credstore env`` runs in every new shell).

- A shell module has ``render(assignments, unsets) -> str`` and ``HOOK`` (the text ``credstore hook SHELL`` prints,
  or None when the shell has no hook).
- A format module has ``render(assignments) -> str``.

To add a shell: write ``shells/<module>.py``, then add one ``Shell(...)`` line to ``SHELL_REGISTRY``.
"""

from __future__ import annotations

import os

from credstore.errors import UsageError
from credstore.shells._common import check_name, check_value

# On the shell-start hot path: no typing, importlib or re here (a plain class, ``__import__``, a name check by hand).

__all__ = [
    "CONTAINER_PREFIXES",
    "FORMATS",
    "HOOK_SHELLS",
    "SHELLS",
    "check_name",
    "check_value",
    "detect_shell",
    "hook_text",
    "quote",
    "render",
    "render_checked",
    "same_text",
]


class Shell:
    """``name``, its emitter ``module``, the ``basenames`` of ``$SHELL`` that mean it (for the default ``--shell``),
    whether ``credstore hook NAME`` is offered (``has_hook``: the module's HOOK is not None), and its ``syntax``:
    shells of one syntax get the same text from ``render`` (the render cache prepares it once for all of them)."""

    __slots__ = ("basenames", "has_hook", "module", "name", "syntax")

    def __init__(
        self, name: str, module: str, basenames: tuple[str, ...], has_hook: bool = False, syntax: str = ""
    ) -> None:
        self.name, self.module, self.basenames, self.has_hook = name, module, basenames, has_hook
        self.syntax = syntax or name

    def __repr__(self) -> str:
        return f"Shell({self.name!r})"


SHELL_REGISTRY: tuple[Shell, ...] = (
    Shell("bash", "bash", ("bash",), has_hook=True, syntax="posix"),
    Shell("zsh", "zsh", ("zsh",), has_hook=True, syntax="posix"),
    Shell("sh", "sh", ("sh", "dash", "ash", "ksh", "ksh93", "mksh", "pdksh", "busybox"), syntax="posix"),
    Shell("fish", "fish", ("fish",), has_hook=True),
    Shell("powershell", "powershell", ("pwsh", "powershell")),
)
#: ``--format`` name -> module; ``shell`` means the ``--shell`` emitter.
FORMAT_REGISTRY: dict[str, str] = {"dotenv": "dotenv", "docker": "docker", "json": "json_format"}
#: ``env --for RUNTIME``: the prefix that container runtime turns into a variable inside the container.
CONTAINER_PREFIXES: dict[str, str] = {"apptainer": "APPTAINERENV_", "singularity": "SINGULARITYENV_"}

SHELLS: tuple[str, ...] = tuple(shell.name for shell in SHELL_REGISTRY)
HOOK_SHELLS: tuple[str, ...] = tuple(shell.name for shell in SHELL_REGISTRY if shell.has_hook)
FORMATS: tuple[str, ...] = ("shell", *FORMAT_REGISTRY)
_BY_NAME = {shell.name: shell for shell in SHELL_REGISTRY}
_BASENAMES = {base: shell.name for shell in SHELL_REGISTRY for base in shell.basenames}


def _module(name: str):
    full = f"credstore.shells.{name}"
    __import__(full)
    import sys

    return sys.modules[full]


#: Shells whose syntax is not POSIX and that credstore writes none for: guessing ``sh`` for them would hand the
#: person statements their shell cannot run.
_FOREIGN_SHELLS = ("csh", "tcsh", "bsd-csh", "xonsh", "elvish", "nu", "nushell", "rc", "es")


def same_text(shell: str, other: str) -> bool:
    """Whether ``render`` gives ``shell`` and ``other`` the same text: the same syntax (unknown names: if equal)."""
    if shell == other:
        return True
    known = _BY_NAME.get(shell), _BY_NAME.get(other)
    return None not in known and known[0].syntax == known[1].syntax  # type: ignore[union-attr]


def detect_shell(environ) -> str:
    """Map the basename of ``$SHELL`` to one of SHELLS; a missing or unknown one (ksh, ash, busybox...) gives
    ``"sh"``; a shell of another syntax (csh, tcsh, ...) is a UsageError that says to name one."""
    path = (environ.get("SHELL") or "").strip()
    base = os.path.basename(path.rstrip("/")).lstrip("-").lower()
    if base.endswith(".exe"):
        base = base[: -len(".exe")]
    if base.rstrip("0123456789.") in _FOREIGN_SHELLS:  # tcsh6, xonsh3: a versioned name is the same shell
        raise UsageError(
            f"$SHELL is {base}, whose syntax credstore does not write: name a shell with --shell "
            f"({', '.join(SHELLS)}), or run programs with `credstore exec -- CMD`"
        )
    return _BASENAMES.get(base, "sh")


def hook_text(shell: str, command: list[str] | tuple[str, ...], probe: str | None = None) -> str:
    """What ``credstore hook SHELL`` prints: the shell's hook calling ``command`` (credstore's argv, absolute
    paths) when ``probe`` (default: the command's program) exists, and doing nothing once it is gone."""
    if shell not in HOOK_SHELLS:
        raise UsageError(f"no hook for {shell!r}: choose one of {', '.join(HOOK_SHELLS)}")
    module = _module(_BY_NAME[shell].module)
    words = [module.quote(word) for word in command]
    exe = module.quote(probe if probe is not None else command[0])
    text: str = module.HOOK.replace("@CMD@", " ".join(words)).replace("@EXE@", exe)
    text = text.replace("@PROG@", module.quote(command[0]))  # the interpreter the command runs
    text = text.replace("@UID@", str(os.geteuid()))  # fish has no $UID
    return text


def quote(shell: str, value: str) -> str:
    """``value`` as one word of ``shell`` (one of HOOK_SHELLS or sh), in any locale."""
    quoted: str = _module(_BY_NAME[shell].module).quote(value)
    return quoted


def render_checked(assignments: list[tuple[str, str]], unsets: list[str], *, shell: str) -> str:
    """``render`` for names and values already checked when they were stored (``app/render_cache.py``): only the
    unsets, which come from the environment, are checked again."""
    if shell not in _BY_NAME:
        raise UsageError(f"unknown shell {shell!r}: choose one of {', '.join(SHELLS)}")
    names = [check_name(n) for n in unsets]
    text: str = _module(_BY_NAME[shell].module).render(assignments, names)
    return text


def render(
    assignments: list[tuple[str, str]] | tuple[tuple[str, str], ...],
    unsets: list[str] | tuple[str, ...] = (),
    *,
    shell: str = "sh",
    fmt: str = "shell",
) -> str:
    """Return text that sets each NAME to its value exactly and unsets each name in ``unsets``.

    ``fmt="shell"``: statements for ``shell`` (one of SHELLS), one per line, ending in a newline. Unsets come
    first, so a name that is both unset and assigned ends up assigned. Another ``fmt`` (one of FORMATS): that file
    format (``unsets`` ignored); a value the format cannot carry raises UnrepresentableValue. Unknown shell or
    format, or an invalid name, raises UsageError.
    """
    if shell not in _BY_NAME:
        raise UsageError(f"unknown shell {shell!r}: choose one of {', '.join(SHELLS)}")
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if isinstance(unsets, str):
        raise UsageError("unsets must be a sequence of names, not one string")
    pairs: list[tuple[str, str]] = []
    for item in assignments:
        if not isinstance(item, tuple) or len(item) != 2:
            raise UsageError("each assignment must be a (name, value) pair")
        name = check_name(item[0])
        pairs.append((name, check_value(name, item[1])))
    if fmt != "shell":
        text: str = _module(FORMAT_REGISTRY[fmt]).render(pairs)
        return text
    names = [check_name(n) for n in unsets]
    text = _module(_BY_NAME[shell].module).render(pairs, names)
    return text
