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
terminals give the same key. A process in the background of its terminal never prompts (``terminal_in_foreground``).
On a terminal, mistakes are forgiven: a wrong passphrase is asked again (``PASSPHRASE_TRIES`` in all; the loop is the
store's, ``LocalStore.derive_data_key``), and an empty, unconfirmed weak or mismatched new one too.

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

from credstore.crypto.protection import KEK_LEN, KekContext, Protection, confirm, tell, tries_of
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

    (``prctl(PR_SET_DUMPABLE, 0)`` and a soft ``RLIMIT_CORE`` of 0: see ``crypto/hardening.py``.)
    """
    from credstore.crypto.hardening import harden

    harden()


def derive_kek(passphrase: str, memory_kib: int, iterations: int, lanes: int, salt: bytes) -> bytes:
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

    check_cost(memory_kib, iterations, lanes)
    kdf = Argon2id(salt=salt, length=KEK_LEN, iterations=iterations, lanes=lanes, memory_cost=memory_kib)
    return kdf.derive(passphrase.encode("utf-8"))


def normalize(passphrase: str) -> str:
    return unicodedata.normalize("NFC", passphrase)


# -- reading passphrases ------------------------------------------------------------------------------------------

#: Wrong passphrases forgiven in a row when a person types them at a terminal (a pipe gets one try).
PASSPHRASE_TRIES = 3
#: Shorter than this is weak (NIST SP 800-63B's floor for chosen secrets).
MIN_LENGTH = 8
#: A few of the most common passwords of public breach lists: guessed first by anyone with a copy of the store.
COMMON = frozenset(
    {
        "password", "password1", "password123", "passw0rd", "123456789", "1234567890", "12345678", "11111111",
        "qwertyuiop", "qwerty123", "iloveyou", "sunshine", "princess", "football", "baseball", "welcome1",
        "letmein1", "admin123", "trustno1", "whatever", "starwars", "dragon123", "monkey123", "abc12345",
        "changeme", "credstore", "passphrase", "secret123", "superman", "computer",
    }
)  # fmt: skip


def weakness(passphrase: str) -> str | None:
    """Why a new passphrase is weak (short, or one of the most common), or None."""
    if len(passphrase) < MIN_LENGTH:
        return f"shorter than {MIN_LENGTH} characters"
    if passphrase.lower() in COMMON:
        return "one of the most common passwords"
    return None


def _stdin_is_terminal() -> bool:
    try:
        return os.isatty(sys.stdin.fileno())
    except (ValueError, OSError):
        return False


def terminal_in_foreground() -> bool:
    """Whether this process may use its terminal: it has a controlling terminal and is in that terminal's foreground
    process group. A background job (``cmd &``, ``nohup cmd &``) that opens /dev/tty to prompt is stopped by the
    kernel (SIGTTOU / SIGTTIN) until someone types ``fg``; such a process must not prompt at all."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


def _getpass(prompt: str) -> str:
    import getpass

    return getpass.getpass(prompt)  # reads /dev/tty without echo; EOFError on Ctrl-D


class PassphraseInput:
    """How a person is asked for passphrases.

    ``stdin_fallback`` (commands about the passphrase: ``unlock``, ``init``, ``passwd``, ``protect``): with stdin a
    terminal, hidden prompts on the terminal; otherwise one passphrase per line from stdin (a trailing newline is not
    part of it), which is how scripts and tests feed it. Without it: always the terminal (``exec``, ``set``, ``get``
    on a terminal, whatever their stdin is). Never from argv or the environment.

    On a terminal a person gets ``tries`` attempts at a wrong passphrase, ``notice`` lines and ``confirm`` questions;
    a pipe gets one try and no questions.
    """

    def __init__(
        self,
        terminal_reader: Callable[[str], str] = _getpass,
        *,
        stdin_fallback: bool = True,
        confirm: Callable[[str], bool] | None = None,
        notice: Callable[[str], None] | None = None,
    ) -> None:
        self._terminal_reader = terminal_reader
        self._stdin_fallback = stdin_fallback
        self._confirm = confirm
        self._notice = notice

    @property
    def terminal(self) -> bool:
        return not self._stdin_fallback or _stdin_is_terminal()

    @property
    def tries(self) -> int:
        return PASSPHRASE_TRIES if self.terminal else 1

    def notice(self, message: str) -> None:
        if self._notice is not None:
            self._notice(message)
        else:
            sys.stderr.write(f"credstore: {message}\n")
            sys.stderr.flush()

    def confirm(self, question: str) -> bool:
        return self._confirm(question) if self.terminal and self._confirm is not None else True

    def __call__(self, prompt: str) -> str:
        if self.terminal:
            if not terminal_in_foreground():
                raise UsageError(
                    "cannot ask for a passphrase from a background job; run it in the foreground (`fg`), or give "
                    "the passphrase on stdin"
                )
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


def ask_new_passphrase(ask: Callable[[str], str], profile: str) -> str:
    """A new passphrase, forgiving on a terminal: an empty one, a weak one the person does not confirm, or a repeat
    that differs is asked again (``tries`` rounds in all), so what the person typed before (a key, fields) is kept.
    From a pipe: one line, no repeat; a weak one is only warned about."""
    from_terminal = _reads_from_terminal(ask)
    rounds = tries_of(ask) if from_terminal else 1
    for round_ in range(1, rounds + 1):
        last = round_ == rounds
        passphrase = ask(f"New passphrase for credstore profile '{profile}': ")
        if passphrase == "":
            if last:
                raise UsageError("empty passphrase refused; nothing was changed")
            tell(ask, "an empty passphrase protects nothing; type one (Ctrl-C gives up)")
            continue
        _check_length(passphrase)
        weak = weakness(passphrase)
        if weak:
            tell(ask, f"warning: this passphrase is {weak}: anyone with a copy of your files can guess it quickly")
            if from_terminal and not confirm(ask, "Use it anyway? [y/N] "):
                if last:
                    raise UsageError("no passphrase chosen; nothing was changed")
                continue
        if not from_terminal:
            return passphrase
        if ask("Repeat the new passphrase: ") == passphrase:
            return passphrase
        if last:
            raise UsageError("the two passphrases differ; nothing was changed")
        tell(ask, f"the two passphrases differ; try again ({rounds - round_} left)")
    raise AssertionError("not reached")


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
                f"`credstore {profile_flag(ctx.profile)}init --protection passphrase`"
            )
        passphrase = ask_new_passphrase(ask, ctx.profile)
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
