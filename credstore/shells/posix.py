"""POSIX shell family: bash, zsh, sh (dash, ash, ksh, busybox sh).

Each value is put in single quotes, inside which no character is special in any POSIX shell; a ``'`` in the
value ends the quote, is written as ``\\'`` and a new quote is opened (``'`` -> ``'\\''``). This form is also
safe in zsh with default options or with RC_QUOTES set (it never puts two quotes side by side inside a quoted
string), and against bash's interactive history expansion (``!`` is not expanded inside single quotes).
"""

from __future__ import annotations

from collections.abc import Sequence


def quote(value: str) -> str:
    """Single-quote ``value`` for any POSIX shell."""
    return "'" + value.replace("'", "'\\''") + "'"


def render(assignments: Sequence[tuple[str, str]], unsets: Sequence[str]) -> str:
    lines = [f"unset -v {name}" for name in unsets]
    lines += [f"export {name}={quote(value)}" for name, value in assignments]
    return "".join(line + "\n" for line in lines)
