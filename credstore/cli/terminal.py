"""Reading values from a person or a pipe, and writing one-line messages. Secrets never come from argv."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from credstore.app.entries import MAX_ENV_STRING, check_length
from credstore.errors import UsageError


def warn(message: str) -> None:
    sys.stderr.write(f"credstore: {message}\n")


def stdin_is_terminal() -> bool:
    try:
        return os.isatty(sys.stdin.fileno())
    except (ValueError, OSError):
        return False


def has_terminal() -> bool:
    """Whether a person can be asked (a controlling terminal is reachable)."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True


def decode_input(raw: bytes, what: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"the value for {what} read from stdin is not valid UTF-8; nothing was stored") from None
    # One trailing newline is the pipe's, not the value's (`echo KEY | credstore set NAME`).
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    return text


def read_value(name: str, *, secret: bool, prompt: str | None = None) -> str:
    """Read one value: from the terminal (without echo when secret) or, when stdin is not a terminal, from stdin."""
    if stdin_is_terminal():
        text = prompt or f"{name}: "
        if secret:
            import getpass

            value = getpass.getpass(text)
        else:
            sys.stderr.write(text)
            sys.stderr.flush()
            value = sys.stdin.readline().rstrip("\r\n")
    else:
        value = decode_input(sys.stdin.buffer.read(MAX_ENV_STRING + 2), name)
    check_length(name, value)
    return value


def read_line(name: str, *, secret: bool) -> str:
    """One line for a guided prompt (``credstore add``): hidden when secret and on a terminal."""
    if stdin_is_terminal():
        if secret:
            import getpass

            return getpass.getpass(f"{name} (hidden, Enter to skip): ")
        sys.stderr.write(f"{name} (Enter to skip): ")
        sys.stderr.flush()
    raw = sys.stdin.buffer.readline()
    return decode_input(raw, name)


def ask_passphrase(prompt: str) -> str:
    """Read a passphrase from the terminal without echo (never from argv or the environment)."""
    import getpass

    return getpass.getpass(prompt)


def passphrase_asker() -> Callable[[str], str] | None:
    """How commands that may prompt ask for a passphrase: on the terminal when one is attached, else never."""
    return ask_passphrase if has_terminal() else None


def read_secret(what: str, prompt: str) -> str:
    """One secret (a token, a secret id): hidden from the terminal, or one value from stdin; never from argv."""
    return read_value(what, secret=True, prompt=prompt)
