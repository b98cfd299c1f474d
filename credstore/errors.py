"""Error classes and the exit codes they map to.

Every failure a user can cause ends in one of these: the CLI prints ``credstore: <message>`` on one line and exits
with ``exit_code``. Messages never contain a secret value. The table is documented in README.md ("Exit codes") and
``credstore --help``; ``tests/test_exit_codes.py`` checks that each code is produced by some case.
"""

from __future__ import annotations

# Documented exit codes. Keep README.md's table in step with this mapping.
EXIT_OK = 0
EXIT_FAILURE = 1  # generic failure; also "findings" for doctor / check
EXIT_USAGE = 2  # bad input: invalid name, secret on argv, malformed option
EXIT_NOT_FOUND = 3  # no store, profile, entry or service
EXIT_LOCKED = 4  # the store is locked and this command never prompts (env)
EXIT_AUTH = 5  # wrong passphrase / key, or the remote engine refused the credentials
EXIT_CORRUPT = 6  # store tampered with, truncated or otherwise unreadable
EXIT_UNSUPPORTED = 7  # store written by an unknown format version or algorithm
EXIT_PERMISSION = 8  # unsafe permissions or access denied
EXIT_BUSY = 9  # timed out waiting for the store's write lock
EXIT_IO = 10  # the file system refused a write (disk full, read-only, ...)
EXIT_ROLLBACK = 11  # the store's generation went backwards (an older copy was restored)
EXIT_UNAVAILABLE = 12  # a remote backend did not answer in time
EXIT_CANNOT_EXEC = 126  # exec: the command was found but could not be run
EXIT_COMMAND_NOT_FOUND = 127  # exec: the command was not found
EXIT_INTERRUPTED = 130  # Ctrl-C, or Ctrl-D at a prompt (128 + SIGINT, as shells report it)

EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success",
    EXIT_FAILURE: "failure, or findings reported by doctor / check",
    EXIT_USAGE: "bad input or usage (invalid name, secret on the command line, malformed option)",
    EXIT_NOT_FOUND: "store, profile, entry or service not found",
    EXIT_LOCKED: "store is locked; run `credstore unlock`",
    EXIT_AUTH: "wrong passphrase or key, or credentials refused",
    EXIT_CORRUPT: "store is corrupt or has been tampered with",
    EXIT_UNSUPPORTED: "store format version or algorithm not supported",
    EXIT_PERMISSION: "unsafe permissions or access denied",
    EXIT_BUSY: "timed out waiting for the store lock",
    EXIT_IO: "the file system refused a write (disk full, read-only)",
    EXIT_ROLLBACK: "store rolled back to an older generation",
    EXIT_UNAVAILABLE: "remote backend unavailable",
    EXIT_CANNOT_EXEC: "exec: command could not be run",
    EXIT_COMMAND_NOT_FOUND: "exec: command not found",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C, or Ctrl-D at a prompt)",
}


def profile_flag(profile: str) -> str:
    """``--profile NAME `` for a hint that names a command, so the hint keeps the profile that was given; empty for
    the default profile."""
    return "" if profile == "default" else f"--profile {profile} "


class CredstoreError(Exception):
    """Base class: a failure with a one-line, secret-free message and an exit code."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(CredstoreError):
    exit_code = EXIT_USAGE


class NotFoundError(CredstoreError):
    exit_code = EXIT_NOT_FOUND


class LockedError(CredstoreError):
    exit_code = EXIT_LOCKED


class AuthError(CredstoreError):
    exit_code = EXIT_AUTH


class CorruptStoreError(CredstoreError):
    exit_code = EXIT_CORRUPT


class UnsupportedFormatError(CredstoreError):
    exit_code = EXIT_UNSUPPORTED


class PermissionProblem(CredstoreError):
    exit_code = EXIT_PERMISSION


class BusyError(CredstoreError):
    exit_code = EXIT_BUSY


class StoreIOError(CredstoreError):
    exit_code = EXIT_IO


class RollbackError(CredstoreError):
    exit_code = EXIT_ROLLBACK


class UnavailableError(CredstoreError):
    exit_code = EXIT_UNAVAILABLE


class UnrepresentableValue(UsageError):
    """A value that an output format cannot carry (e.g. a newline in a Docker env file)."""
