"""``.env`` format (``--format dotenv``) that python-dotenv and docker compose both read back exactly.

Readers: python-dotenv's ``load_dotenv()`` / ``dotenv_values()`` with their default interpolation on, and docker
compose's ``env_file:`` / ``.env`` (the parser of compose-go, ``dotenv/parser.go`` and ``template/``). Their rules
differ, so each value is written in the one form both read the same way:

1. ``NAME="..."`` with ``\\\\``, ``\\"``, ``\\n`` and ``\\r`` as the only escapes: both decode exactly these four
   the same way, and the line stays one line. Used unless the value holds a ``$`` that compose expands (``$$``,
   ``$NAME``, ``${...}``: a ``$`` followed by ``$``, ``{``, ``_``, a letter) — python-dotenv has no escape for
   ``$``, compose needs one — or ends with a backslash: python-dotenv's pattern for ``"..."`` then takes the
   closing quote as escaped and runs on to the next ``"`` in the file.
2. ``NAME='...'`` with ``'`` written ``\\'``, for a value with such a ``$``: compose expands nothing in single
   quotes. Only if the value has no carriage return (python-dotenv reads the file in text mode, where CR becomes
   LF) and no backslash that the two read differently in single quotes (python-dotenv turns ``\\\\`` into one
   backslash, compose keeps both, and neither can end the value with one): every backslash must be followed by a
   character other than ``\\`` and ``'``.
3. ``NAME=value`` unquoted, for a value that ends with a backslash and has no such ``$``: only if it is one line,
   does not start with a quote, has no space at either end (both strip it) and no ``#`` after a space (a comment).

Refused with UnrepresentableValue (naming the variable, never showing the value): a value holding ``${...}`` in
python-dotenv's sense (it expands it in every form, quoted or not, and has no escape), and a value that fits none
of the forms above. ``--format json`` and ``shell`` carry every value, ``--format docker`` every one-line value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from credstore.errors import UnrepresentableValue

# python-dotenv's variables.py: what it expands in every value (there is no escape).
_DOTENV_EXPANDS = re.compile(r"\$\{[^}:]*(?::-[^}]*)?\}")
# compose-go's template: $$, $NAME and ${...}. Its names match [_a-z] case-insensitively, and Go's case folding
# adds U+017F (long s) and U+212A (Kelvin sign); U+0130 and U+0131 (dotted and dotless i) are counted too, to be safe.
_COMPOSE_EXPANDS = re.compile("\\$[$_{A-Za-z\u017f\u212a\u0130\u0131]")
# Backslashes that python-dotenv and compose read differently inside single quotes.
_SINGLE_QUOTE_BACKSLASH = re.compile(r"\\(?:[\\']|\Z)")
_DOUBLE_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r"})
_ALTERNATIVES = "use --format docker, json or shell, or `credstore exec`"


def _is_space(ch: str) -> bool:
    """Whitespace to python-dotenv (``str.isspace``, its ``\\s``) or to compose (Go's ``unicode.IsSpace``)."""
    return ch.isspace() or ch in "\x85\xa0"


def _unquoted_ok(value: str) -> bool:
    if not value or "\n" in value or "\r" in value or value[0] in "'\"":
        return False
    if _is_space(value[0]) or _is_space(value[-1]):
        return False
    return not any(value[i] == "#" and _is_space(value[i - 1]) for i in range(1, len(value)))


def quote(name: str, value: str) -> str:
    """The right-hand side of ``NAME=`` for ``value``; raises UnrepresentableValue naming ``name`` only."""
    if _DOTENV_EXPANDS.search(value):
        raise UnrepresentableValue(
            f"value of {name} contains '${{...}}', which python-dotenv always expands; {_ALTERNATIVES}"
        )
    if _COMPOSE_EXPANDS.search(value) is None:
        if not value.endswith("\\"):
            return '"' + value.translate(_DOUBLE_ESCAPES) + '"'
        if _unquoted_ok(value):
            return value
        raise UnrepresentableValue(
            f"value of {name} ends with a backslash and has a line break, spaces at its ends, a leading quote or "
            f"' #', which together no .env reader reads back exactly; {_ALTERNATIVES}"
        )
    if "\r" in value:
        raise UnrepresentableValue(
            f"value of {name} has both a '$' that docker compose expands and a carriage return; {_ALTERNATIVES}"
        )
    if _SINGLE_QUOTE_BACKSLASH.search(value):
        raise UnrepresentableValue(
            f"value of {name} has both a '$' that docker compose expands and a backslash before a backslash, a "
            f"quote or the end, which python-dotenv and docker compose read differently; {_ALTERNATIVES}"
        )
    return "'" + value.replace("'", "\\'") + "'"


def render(assignments: Sequence[tuple[str, str]]) -> str:
    return "".join(f"{name}={quote(name, value)}\n" for name, value in assignments)
