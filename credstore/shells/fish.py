"""fish shell.

Inside fish single quotes only ``\\\\`` and ``\\'`` are escapes; every other character, newlines included, is
literal. So a value is written as ``'...'`` with ``\\`` -> ``\\\\`` and ``'`` -> ``\\'``. ``set -gx`` sets a
global exported variable (it shadows, but does not touch, a universal variable of the same name); ``set -e``
erases it again. fish's option parser stops at the first non-option, so a value starting with ``-`` is safe.
"""

from __future__ import annotations

from collections.abc import Sequence


def quote(value: str) -> str:
    """Single-quote ``value`` for fish."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def render(assignments: Sequence[tuple[str, str]], unsets: Sequence[str]) -> str:
    lines = [f"set -e {name}" for name in unsets]
    lines += [f"set -gx {name} {quote(value)}" for name, value in assignments]
    return "".join(line + "\n" for line in lines)
