"""The ``passphrase`` protection level: the KEK is Argon2id over a passphrase a person types.

Parameters (RFC 9106, second recommended option): m = 64 MiB, t = 3, p = 4, a 16-byte random salt, 32-byte output.
They are kept in the store header (so they are bound as associated data) in one canonical form::

    params = algorithm:u8 (1 = Argon2id v1.3)  memory_kib:u32  iterations:u32  lanes:u32  salt(16)

On read, parameters above the cap (m > 1 GiB, t > 10, p > 16) are refused as unsupported *before* the KDF runs, so a
tampered header cannot exhaust memory or time; parameters under OWASP's floor (m < 19 MiB, t < 2, p < 1) were never
written by credstore and are refused as corrupt.

``CREDSTORE_TEST_WEAK_KDF=1`` (for test suites only) makes *new* stores use exactly the OWASP floor (m = 19 MiB,
t = 2, p = 1) instead of the default; it never goes below the floor and has no effect on reading.

Passphrases are read from the terminal without echo (twice when a new one is chosen) or, when stdin is not a
terminal and the command allows it (``unlock``, ``init``, ``passwd``, ``protect``), one per line from stdin. Never
from argv or an environment variable. A passphrase is NFC-normalized, so the same characters typed on different
terminals give the same key.

Failed attempts: ``AttemptCounter`` keeps the number of wrong passphrases in a row per store in the state directory
(``<state>/attempts/<store id hex>``, no secret in it); from the 5th failure on, every further attempt first waits
1, 2, 4 ... up to 30 seconds. A correct passphrase resets it. It slows guessing through credstore only: anyone with a
copy of the store file attacks the KDF directly, which is why the KDF is expensive.
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path

from credstore.crypto.protection import KEK_LEN, KekContext, Protection
from credstore.errors import AuthError, CorruptStoreError, LockedError, UnsupportedFormatError, UsageError, profile_flag

ALGORITHM_ARGON2ID = 1
SALT_LEN = 16
_PARAMS = struct.Struct(">BIII")
PARAMS_LEN = _PARAMS.size + SALT_LEN

# (memory KiB, iterations, lanes)
DEFAULT_COST = (64 * 1024, 3, 4)
FLOOR = (19 * 1024, 2, 1)  # OWASP's minimum for Argon2id
CAP = (1024 * 1024, 10, 16)  # refused on read above this, before any work
WEAK_KDF_ENV = "CREDSTORE_TEST_WEAK_KDF"

MAX_PASSPHRASE_BYTES = 4096
FAILURES_BEFORE_DELAY = 5
MAX_DELAY = 30.0


def cost_for_new_store(environ: dict[str, str] | None = None) -> tuple[int, int, int]:
    env = os.environ if environ is None else environ
    return FLOOR if env.get(WEAK_KDF_ENV) == "1" else DEFAULT_COST


def encode_params(memory_kib: int, iterations: int, lanes: int, salt: bytes) -> bytes:
    check_cost(memory_kib, iterations, lanes)
    if len(salt) != SALT_LEN:
        raise ValueError("salt must be 16 bytes")
    return _PARAMS.pack(ALGORITHM_ARGON2ID, memory_kib, iterations, lanes) + salt


def decode_params(params: bytes) -> tuple[int, int, int, bytes]:
    """Header parameters -> (memory KiB, iterations, lanes, salt); refuses anything out of bounds before any work."""
    if len(params) < 1:
        raise CorruptStoreError("store header is malformed (passphrase parameters)")
    if params[0] != ALGORITHM_ARGON2ID:
        raise UnsupportedFormatError(f"store uses passphrase KDF #{params[0]}, which this credstore does not know")
    if len(params) != PARAMS_LEN:
        raise CorruptStoreError("store header is malformed (passphrase parameters)")
    _alg, memory_kib, iterations, lanes = _PARAMS.unpack_from(params)
    salt = params[_PARAMS.size :]
    check_cost(memory_kib, iterations, lanes)
    return memory_kib, iterations, lanes, salt


def check_cost(memory_kib: int, iterations: int, lanes: int) -> None:
    if memory_kib > CAP[0] or iterations > CAP[1] or lanes > CAP[2]:
        raise UnsupportedFormatError(
            f"store asks for Argon2id m={memory_kib} KiB t={iterations} p={lanes}, above what credstore accepts "
            f"(m <= {CAP[0]} KiB, t <= {CAP[1]}, p <= {CAP[2]}); refusing to run it"
        )
    if memory_kib < FLOOR[0] or iterations < FLOOR[1] or lanes < FLOOR[2] or memory_kib < 8 * lanes:
        raise CorruptStoreError(
            f"store header has Argon2id parameters below the minimum (m={memory_kib} KiB t={iterations} p={lanes})"
        )


def harden_process() -> None:
    """No core dumps and no same-uid ptrace/proc access while this process holds a passphrase or a key.

    (``RLIMIT_CORE`` 0 and ``prctl(PR_SET_DUMPABLE, 0)``; Python cannot wipe memory, so keep it out of dumps.)
    """
    import contextlib
    import resource

    with contextlib.suppress(OSError, ValueError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4


def derive_kek(passphrase: str, memory_kib: int, iterations: int, lanes: int, salt: bytes) -> bytes:
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

    check_cost(memory_kib, iterations, lanes)
    kdf = Argon2id(salt=salt, length=KEK_LEN, iterations=iterations, lanes=lanes, memory_cost=memory_kib)
    return kdf.derive(passphrase.encode("utf-8"))


def normalize(passphrase: str) -> str:
    return unicodedata.normalize("NFC", passphrase)


# -- reading passphrases ------------------------------------------------------------------------------------------


def _stdin_is_terminal() -> bool:
    try:
        return os.isatty(sys.stdin.fileno())
    except (ValueError, OSError):
        return False


def _getpass(prompt: str) -> str:
    import getpass

    return getpass.getpass(prompt)  # reads /dev/tty without echo


class PassphraseInput:
    """Reads passphrases for commands that are about the passphrase (``unlock``, ``init``, ``passwd``, ``protect``).

    With stdin a terminal: hidden prompts on the terminal. Otherwise: one passphrase per line from stdin (a trailing
    newline is not part of it), which is how scripts and tests feed it. Never from argv or the environment.
    """

    def __init__(self, terminal_reader: Callable[[str], str] = _getpass) -> None:
        self._terminal_reader = terminal_reader

    @property
    def terminal(self) -> bool:
        return _stdin_is_terminal()

    def __call__(self, prompt: str) -> str:
        if self.terminal:
            return self._terminal_reader(prompt)
        raw = sys.stdin.buffer.readline(MAX_PASSPHRASE_BYTES + 2)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError("the passphrase read from stdin is not valid UTF-8; nothing was changed") from None
        if text.endswith("\r\n"):
            text = text[:-2]
        elif text.endswith("\n"):
            text = text[:-1]
        return text


def _reads_from_terminal(ask: Callable[[str], str]) -> bool:
    """A plain callback (``getpass``) is a terminal prompt; a ``PassphraseInput`` says where it reads."""
    return bool(getattr(ask, "terminal", True))


def _locked_message(ctx: KekContext) -> str:
    option = profile_flag(ctx.profile)
    return f"profile '{ctx.profile}' is locked; run `credstore {option}unlock`"


def _check_length(passphrase: str) -> None:
    if len(passphrase.encode("utf-8")) > MAX_PASSPHRASE_BYTES:
        raise UsageError(f"passphrase is longer than {MAX_PASSPHRASE_BYTES} bytes")


class PassphraseProtection(Protection):
    kind = "passphrase"
    description = "Argon2id over a passphrase only you know (protects against anyone who can copy your files)"
    counts_attempts = True
    needs_unlock = True
    strength = 3
    needs_person = True

    def create(self, ctx: KekContext) -> tuple[bytes, bytes]:
        ask = ctx.ask_passphrase
        harden_process()
        if not ctx.interactive or ask is None:
            raise UsageError(
                "a passphrase is needed: run this in a terminal, or give it on stdin to "
                "`credstore init --protection passphrase`"
            )
        passphrase = ask(f"New passphrase for credstore profile '{ctx.profile}': ")
        if passphrase == "":
            raise UsageError("empty passphrase refused; nothing was changed")
        _check_length(passphrase)
        if _reads_from_terminal(ask):
            again = ask("Repeat the new passphrase: ")
            if again != passphrase:
                raise UsageError("the two passphrases differ; nothing was changed")
        memory_kib, iterations, lanes = cost_for_new_store()
        salt = os.urandom(SALT_LEN)
        kek = derive_kek(normalize(passphrase), memory_kib, iterations, lanes, salt)
        return kek, encode_params(memory_kib, iterations, lanes, salt)

    def derive(self, params: bytes, ctx: KekContext) -> bytes:
        memory_kib, iterations, lanes, salt = decode_params(params)  # bounds checked before any prompt or work
        ask = ctx.ask_passphrase
        if not ctx.interactive or ask is None:
            raise LockedError(_locked_message(ctx))
        harden_process()
        passphrase = ask(f"Passphrase for credstore profile '{ctx.profile}': ")
        if passphrase == "":
            raise AuthError("empty passphrase; the store was not unlocked")
        _check_length(passphrase)
        return derive_kek(normalize(passphrase), memory_kib, iterations, lanes, salt)


class AttemptCounter:
    """Wrong passphrases in a row for one store, kept in a small file (no secret); see the module docstring."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def for_store(cls, state_dir: Path, store_id: bytes) -> AttemptCounter:
        return cls(state_dir / "attempts" / store_id.hex())

    def failures(self) -> int:
        try:
            return max(0, int(self.path.read_text().strip() or "0"))
        except (OSError, ValueError):
            return 0

    def delay(self) -> float:
        excess = self.failures() - FAILURES_BEFORE_DELAY
        return 0.0 if excess < 0 else min(MAX_DELAY, float(2 ** min(excess, 8)))

    def wait(self) -> None:
        seconds = self.delay()
        if seconds > 0:
            sys.stderr.write(
                f"credstore: {self.failures()} wrong passphrases in a row; waiting {seconds:g} s before trying\n"
            )
            sys.stderr.flush()
            time.sleep(seconds)

    def failed(self) -> None:
        from credstore import fsutil

        try:
            fsutil.ensure_private_dir(self.path.parent)
            fsutil.atomic_replace(self.path, str(self.failures() + 1).encode())
        except Exception:  # noqa: S110 - the counter is a brake, not a lock; never hide the AuthError behind it
            pass

    def succeeded(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()
