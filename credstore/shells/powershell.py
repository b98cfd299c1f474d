"""PowerShell (pwsh and Windows PowerShell).

Values go in a verbatim (single-quoted) string. PowerShell's tokenizer treats four characters besides ``'``
as single quotes too: U+2018, U+2019, U+201A and U+201B. Inside the string any of them ends it unless it is
directly followed by another one, in which case the pair stands for the second character. Doubling every such
character therefore keeps it literal. Nothing else (``$``, backtick, newline) is special in a verbatim string.

Limit: PowerShell before 7.5 (and Windows PowerShell 5.1) cannot hold an empty environment variable; there
``$env:NAME = ''`` removes NAME. From 7.5 on it sets it to the empty string.
"""

from __future__ import annotations

from collections.abc import Sequence

HOOK: str | None = None
SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"
_DOUBLE = str.maketrans({q: q + q for q in SINGLE_QUOTES})


def quote(value: str) -> str:
    """Verbatim-quote ``value`` for PowerShell."""
    return "'" + value.translate(_DOUBLE) + "'"


def render(assignments: Sequence[tuple[str, str]], unsets: Sequence[str]) -> str:
    lines = [f"Remove-Item Env:{name} -ErrorAction SilentlyContinue" for name in unsets]
    lines += [f"$env:{name} = {quote(value)}" for name, value in assignments]
    return "".join(line + "\n" for line in lines)
