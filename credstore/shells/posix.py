"""POSIX shell family: bash, zsh, sh (dash, ash, ksh, busybox sh).

Each value is put in single quotes, inside which no character is special in any POSIX shell; a ``'`` in the
value ends the quote, is written as ``\\'`` and a new quote is opened (``'`` -> ``'\\''``). Newlines and every
other character stay literal. This form is also safe in zsh with default options or with RC_QUOTES set (it never
puts two quotes side by side inside a quoted string), and against bash's history expansion on a single line
(``!`` is not expanded inside single quotes).

Safe in every locale. The only byte that ends the quote is ``'`` (0x27), and no multibyte charset of glibc's
locales (UTF-8, GBK, GB18030, Big5, Big5-HKSCS, Shift_JIS, EUC-*, Johab) uses 0x27 inside a character, so a
shell that reads the bytes in another locale than the one credstore wrote them in still finds the same end of
every quote. That is why the output has no escapes: an emitter that writes a backslash (bash's ``$'...'``,
``"..."``) depends on the reader's locale, because in GBK, Big5 and Shift_JIS the second byte of a character may
be 0x5C (``\\``): a value byte joins the backslash of the next escape, the quote then ends elsewhere and a later
value runs as a command (issue 13, finding 9; tests/test_shells_locale.py).

Trade-off: the output is for ``eval "$(credstore env)"`` (and ``. file``), which is exact for every value. Text
pasted or typed into an interactive bash is rewritten before it is parsed: a value with a control character
(readline takes Ctrl-A, Tab, CR, DEL, ... as editing keys) or with a line that starts with ``^`` (history
expansion reads a continuation line as ``^old^new``) does not survive a paste. Use ``eval``, ``credstore
exec`` or ``--format json`` for such values.
"""

from __future__ import annotations


def quote(value: str) -> str:
    """Single-quote ``value`` for any POSIX shell, in any locale."""
    return "'" + value.replace("'", "'\\''") + "'"


def render(assignments: list[tuple[str, str]], unsets: list[str]) -> str:
    """``unset -v`` lines, then ``export NAME='value'`` lines: the same text for every POSIX shell."""
    # ``quote`` inlined: one call less per variable is a millisecond at 10,000 of them
    lines = [f"unset -v {name}\n" for name in unsets]
    lines += [f"export {name}='{value.replace(_QUOTE, _ESCAPED)}'\n" for name, value in assignments]
    return "".join(lines)


_QUOTE, _ESCAPED = "'", "'\\''"
