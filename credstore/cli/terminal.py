"""Reading values from a person or a pipe, and writing one-line messages. Secrets never come from argv.

Two kinds of lines go to stderr: ``warn`` (errors, warnings, did-you-mean: always shown) and ``info`` (what was
done: `stored X`, `unlocked ...`; silenced by ``-q/--quiet``). A process with no controlling terminal, or in the
background of its terminal, is never asked anything (``has_terminal``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from credstore.app.entries import MAX_ENV_STRING, check_length
from credstore.errors import UsageError

#: Set by ``credstore -q``: informational lines are not shown.
quiet = False


def warn(message: str) -> None:
    sys.stderr.write(f"credstore: {message}\n")


def info(message: str) -> None:
    """A line saying what was done (silenced by ``-q/--quiet``)."""
    if not quiet:
        sys.stderr.write(f"credstore: {message}\n")


def stdin_is_terminal() -> bool:
    try:
        return os.isatty(sys.stdin.fileno())
    except (ValueError, OSError):
        return False


def has_terminal() -> bool:
    """Whether a person can be asked: a controlling terminal exists and this process is in its foreground process
    group (a background job that opened /dev/tty would be stopped by the kernel until `fg`)."""
    from credstore.crypto.passphrase import terminal_in_foreground

    return terminal_in_foreground()


def _terminal_line(prompt: str) -> str:
    """One line typed at the terminal after ``prompt`` (stdin is the terminal); Ctrl-D is EOFError (exit 130)."""
    sys.stderr.write(prompt)
    sys.stderr.flush()
    line = sys.stdin.readline()
    if not line:
        sys.stderr.write("\n")
        raise EOFError
    return line.rstrip("\r\n")


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
            value = _terminal_line(text)
    else:
        value = decode_input(sys.stdin.buffer.read(MAX_ENV_STRING + 2), name)
    check_length(name, value)
    return value


def read_line(name: str, *, secret: bool, prompt: str | None = None) -> str:
    """One line for a guided prompt (``credstore add``): hidden when secret and on a terminal; from stdin else."""
    text = prompt or (f"{name} (hidden, Enter to skip): " if secret else f"{name} (Enter to skip): ")
    if stdin_is_terminal():
        if secret:
            import getpass

            return getpass.getpass(text)
        return _terminal_line(text)
    raw = sys.stdin.buffer.readline()
    return decode_input(raw, name)


def confirm(question: str) -> bool:
    """A yes/no question on the terminal (/dev/tty, whatever stdin is); only y or yes is yes; Ctrl-D is EOFError."""
    fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        os.write(fd, question.encode())
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = os.read(fd, 1)
            if not chunk:  # Ctrl-D on an empty line
                os.write(fd, b"\n")
                raise EOFError
            answer += chunk
    finally:
        os.close(fd)
    return answer.decode(errors="replace").strip().lower() in ("y", "yes")


def terminal_asker() -> Callable[[str], str]:
    """Asks on the terminal (hidden), whatever stdin is; three tries at a wrong passphrase."""
    from credstore.crypto.passphrase import PassphraseInput

    return PassphraseInput(stdin_fallback=False, confirm=confirm, notice=warn)


def passphrase_input() -> Callable[[str], str]:
    """For commands about the passphrase: the terminal when stdin is one, else one line per passphrase on stdin."""
    from credstore.crypto.passphrase import PassphraseInput

    return PassphraseInput(confirm=confirm, notice=warn)


def passphrase_asker() -> Callable[[str], str] | None:
    """How commands that may prompt ask for a passphrase: on the terminal when one is attached and this process is
    in its foreground, else never (a locked store is then exit 4 at once)."""
    return terminal_asker() if has_terminal() else None


def read_secret(what: str, prompt: str) -> str:
    """One secret (a token, a secret id): hidden from the terminal, or one value from stdin; never from argv."""
    return read_value(what, secret=True, prompt=prompt)
