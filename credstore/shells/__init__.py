"""Shell and file-format emitters (one module per shell family, as direnv does).

``render`` turns ``(NAME, value)`` pairs into text that the chosen shell evaluates (``eval "$(credstore env)"``,
``credstore env --shell fish | source``, ``credstore env --shell powershell | Invoke-Expression``), or into a
``.env`` file (python-dotenv, docker compose), a ``docker run --env-file`` file or a JSON object. Every value is
carried byte for byte; a format that cannot carry a value raises UnrepresentableValue naming the variable, never
showing the value.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping, Sequence

from credstore.errors import UsageError
from credstore.shells._common import check_name, check_value

__all__ = ["FORMATS", "SHELLS", "detect_shell", "render"]

SHELLS: tuple[str, ...] = ("bash", "zsh", "sh", "fish", "powershell")
FORMATS: tuple[str, ...] = ("shell", "dotenv", "docker", "json")

# Output -> (emitter module, keyword arguments of its render). Only the one emitter asked for is imported: `credstore
# env` runs in every new shell.
_EMITTERS: dict[str, tuple[str, dict[str, bool]]] = {
    "bash": ("posix", {}),
    "zsh": ("posix", {}),
    "sh": ("posix", {}),
    "fish": ("fish", {}),
    "powershell": ("powershell", {}),
    "dotenv": ("dotenv", {}),
    "docker": ("docker", {}),
    "json": ("json_format", {}),
}


def _emit(output: str, *args: object) -> str:
    module, options = _EMITTERS[output]
    return importlib.import_module(f"credstore.shells.{module}").render(*args, **options)  # type: ignore[no-any-return]


_BASENAMES = {
    "bash": "bash",
    "zsh": "zsh",
    "fish": "fish",
    "sh": "sh",
    "dash": "sh",
    "ash": "sh",
    "ksh": "sh",
    "ksh93": "sh",
    "mksh": "sh",
    "pdksh": "sh",
    "busybox": "sh",
    "pwsh": "powershell",
    "powershell": "powershell",
}


def detect_shell(environ: Mapping[str, str]) -> str:
    """Map the basename of ``$SHELL`` to one of SHELLS; anything unknown or missing gives ``"sh"``."""
    path = environ.get("SHELL") or ""
    base = os.path.basename(path.rstrip("/")).lstrip("-").lower()
    if base.endswith(".exe"):
        base = base[: -len(".exe")]
    return _BASENAMES.get(base, "sh")


def render(
    assignments: Sequence[tuple[str, str]],
    unsets: Sequence[str] = (),
    *,
    shell: str = "sh",
    fmt: str = "shell",
) -> str:
    """Return text that sets each NAME to its value exactly and unsets each name in ``unsets``.

    ``fmt="shell"``: statements for ``shell`` (one of SHELLS), one per line, ending in a newline. Unsets come
    first, so a name that is both unset and assigned ends up assigned. ``fmt="dotenv"``: a ``.env`` file that
    python-dotenv and docker compose read back exactly (``unsets`` ignored; a value they cannot both carry raises
    UnrepresentableValue). ``fmt="docker"``: ``docker run --env-file`` lines (``unsets`` ignored); a value with a
    newline, CR or NUL raises UnrepresentableValue. ``fmt="json"``: a JSON object and a newline (``unsets``
    ignored). Unknown shell or format, or an invalid name, raises UsageError.
    """
    if shell not in SHELLS:
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
        return _emit(fmt, pairs)
    names = [check_name(n) for n in unsets]
    return _emit(shell, pairs, names)
