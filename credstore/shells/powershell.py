"""PowerShell (pwsh and Windows PowerShell).

Use: ``credstore env --shell powershell | Invoke-Expression``. PowerShell hands a native command's output to the
pipeline line by line and Invoke-Expression runs each line as a script of its own, so every statement here is
one line, whatever the values hold. (``| Out-String | Invoke-Expression`` and dot-sourcing a saved file work
too.)

The output is printable ASCII only. Windows PowerShell decodes native output in the console's code page (OEM 437,
850, 932, ...), not UTF-8, and a UTF-8 byte read as cp1252 can become a quote character (0x91-0x92 are U+2018 and
U+2019 there); in ASCII nothing depends on the code page or the locale.

So a value of printable ASCII characters goes in a verbatim string, ``'...'``, in which only the quote is special
(written twice). Any other value is built with ``-join (...)`` from verbatim strings for its printable ASCII runs
and ``[char]0xHHHH`` for each UTF-16 code unit of every other character (newline, CR, tab, control characters,
anything outside ASCII; a character outside the BMP is two ``[char]`` items, a surrogate pair, which ``-join``
puts back together). Example: ``$env:A = -join ('caf', [char]0x00E9, [char]0x000A, 'it''s')``.

PowerShell's tokenizer also treats U+2018, U+2019, U+201A and U+201B as single quotes; the output never holds them
literally (they are ``[char]`` items), so they cannot end a string early.

Limit: PowerShell before 7.5 (and Windows PowerShell 5.1) cannot hold an empty environment variable; there
``$env:NAME = ''`` removes NAME. From 7.5 on it sets it to the empty string.
"""

from __future__ import annotations

import re

HOOK: str | None = None
SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"  # what PowerShell's tokenizer takes as a single quote
_NOT_PRINTABLE_ASCII = re.compile(r"[^ -~]+")


def _verbatim(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _chars(text: str) -> list[str]:
    """``[char]0xHHHH`` for each UTF-16 code unit of ``text``."""
    raw = text.encode("utf-16-be")
    return [f"[char]0x{raw[i]:02X}{raw[i + 1]:02X}" for i in range(0, len(raw), 2)]


def quote(value: str) -> str:
    """A one-line, printable ASCII PowerShell expression whose value is ``value``."""
    if _NOT_PRINTABLE_ASCII.search(value) is None:
        return _verbatim(value)
    items: list[str] = []
    pos = 0
    for match in _NOT_PRINTABLE_ASCII.finditer(value):
        if match.start() > pos:
            items.append(_verbatim(value[pos : match.start()]))
        items += _chars(match.group())
        pos = match.end()
    if pos < len(value):
        items.append(_verbatim(value[pos:]))
    return "-join (" + ", ".join(items) + ")"


def render(assignments: list[tuple[str, str]], unsets: list[str]) -> str:
    lines = [f"Remove-Item Env:{name} -ErrorAction SilentlyContinue" for name in unsets]
    lines += [f"$env:{name} = {quote(value)}" for name, value in assignments]
    return "".join(line + "\n" for line in lines)
