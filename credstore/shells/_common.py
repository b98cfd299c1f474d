"""Checks shared by every emitter."""

from __future__ import annotations

from credstore.errors import UnrepresentableValue, UsageError


def is_name(name: str) -> bool:
    """``[A-Za-z_][A-Za-z0-9_]*`` without a regex (``env`` checks every name it prints, in every new shell)."""
    return bool(name) and name.isascii() and name.replace("_", "a").isalnum() and not name[0].isdigit()


def check_name(name: object) -> str:
    """Return ``name`` if it is a valid variable name, else raise UsageError.

    The message may show the name (names are not secret) but nothing else.
    """
    if not isinstance(name, str) or not is_name(name):
        shown = name if isinstance(name, str) and len(name) <= 64 and name.isprintable() else "<invalid>"
        raise UsageError(f"invalid variable name {shown!r}: use letters, digits and '_', not starting with a digit")
    return name


def check_value(name: str, value: object) -> str:
    """Return ``value`` if it is a str without NUL, else raise UsageError naming only the variable."""
    if not isinstance(value, str):
        raise UsageError(f"value of {name} is not text")
    if "\0" in value:
        # No environment variable can hold a NUL byte; say so without showing the value.
        raise UnrepresentableValue(f"value of {name} contains a NUL character, which no environment variable can hold")
    return value
