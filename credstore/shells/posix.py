"""POSIX shell family: bash, zsh, sh (dash, ash, ksh, busybox sh).

Each value is put in single quotes, inside which no character is special in any POSIX shell; a ``'`` in the
value ends the quote, is written as ``\\'`` and a new quote is opened (``'`` -> ``'\\''``). This form is also
safe in zsh with default options or with RC_QUOTES set (it never puts two quotes side by side inside a quoted
string), and against bash's interactive history expansion (``!`` is not expanded inside single quotes).

One exception for bash. When the text is pasted or typed into an interactive bash (rather than run through
``eval "$(...)"``), two things rewrite it: history expansion works line by line, and a continuation line of a
multi-line quoted string that starts with ``^`` is taken as a quick substitution (``^old^new``); and readline
takes control characters (Ctrl-A, Tab, DEL, ...) as editing keys. So for bash a value holding any control
character (U+0000-U+001F, U+007F; newline and CR included) is written as ANSI-C ``$'...'`` instead, with those
characters, ``\\``, ``'`` and ``!`` as three-digit octal or backslash escapes: the statement is then one line
of printable characters with no ``!`` in it. bash has had ``$'...'`` since 2.0.
"""

from __future__ import annotations

from collections.abc import Sequence


def quote(value: str) -> str:
    """Single-quote ``value`` for any POSIX shell."""
    return "'" + value.replace("'", "'\\''") + "'"


_CONTROL = [*range(0x20), 0x7F]
_ANSI_C = str.maketrans({"\\": "\\\\", "'": "\\047", "!": "\\041", **{chr(c): f"\\{c:03o}" for c in _CONTROL}})
_NEEDS_ANSI_C = frozenset(chr(c) for c in _CONTROL)


def quote_bash(value: str) -> str:
    """Quote ``value`` for bash: single quotes, or ``$'...'`` when it holds a control character (see module doc)."""
    if _NEEDS_ANSI_C.isdisjoint(value):
        return quote(value)
    return "$'" + value.translate(_ANSI_C) + "'"


def render(assignments: Sequence[tuple[str, str]], unsets: Sequence[str], *, bash: bool = False) -> str:
    q = quote_bash if bash else quote
    lines = [f"unset -v {name}" for name in unsets]
    lines += [f"export {name}={q(value)}" for name, value in assignments]
    return "".join(line + "\n" for line in lines)
