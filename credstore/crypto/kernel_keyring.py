"""Cache an unlocked data key (DEK) in the Linux kernel session keyring.

A person unlocks a store once per login; later ``credstore env`` calls read the DEK back from the kernel in
microseconds instead of running the KDF again. See "Unlock once per login" in the security design.

What this module promises:

* The DEK is stored as a ``user`` key in the **session** keyring (``@s``) of the login, never in the user keyring
  (``@u``): every login of a Unix account possesses ``@u``, so a key there would unlock for all of them. Two login
  sessions of one account each have their own session keyring and do not share an unlock.
* The key's permission mask grants view/read/write/search/link to its *possessors* only (processes that reach it
  through their session keyring) and nothing to the owning user, group or others, so another process of the same uid
  that does not share the session cannot read it, even knowing its serial number. Setattr is withheld, so the
  timeout and the permissions cannot be changed afterwards.
* Every key gets a timeout (``KEYCTL_SET_TIMEOUT``); ``remove`` invalidates it; logout revokes the session keyring
  (pam_keyinit).
* The key is built in this process's private process keyring (timeout and permissions set there) and only then linked
  into the session keyring, which atomically displaces an older key of the same name: no reader ever sees a key
  without its timeout or with wider permissions, and a replace never leaves a gap.

The pitfall: where no PAM session keyring exists (containers, cron, ``ssh`` without pam_keyinit, ``setsid`` ...)
the process's session keyring is the *user-session* keyring ``_uid_ses.<uid>``, shared by every such process of the
uid. ``add_key`` to ``@s`` from a child then silently creates a private anonymous keyring that dies with the child.
``session_keyring_state`` detects this, ``store`` refuses it (``NoSessionKeyring``), and ``ensure_session_keyring``
fixes it by joining a fresh anonymous session keyring and handing it to the parent process (the shell) with
``KEYCTL_SESSION_TO_PARENT``.

Implementation: raw ``add_key``/``keyctl`` system calls through ``ctypes`` (no libkeyutils, no ``keyctl`` binary),
loaded lazily; importing this module costs only ``ctypes``, ``os``, ``errno`` and ``struct``. Where a seccomp
profile (Docker's default) or the kernel refuses the calls, ``available()`` says so and the operations raise
``KeyringUnavailable``.

Python cannot wipe memory; this module zeroes its own ctypes buffers after use but the returned ``bytes`` live on
until garbage collected.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

__all__ = [
    "KeyringUnavailable",
    "NoSessionKeyring",
    "available",
    "ensure_session_keyring",
    "load",
    "remove",
    "session_keyring_state",
    "store",
]

# --- kernel ABI ----------------------------------------------------------------------------------------------------

# (add_key, keyctl) system call numbers. Verified against the kernel UAPI headers: x86_64 asm/unistd_64.h (248, 250),
# i386 asm/unistd_32.h (286, 288), asm-generic/unistd.h (217, 219) used by aarch64, riscv64 and loongarch64.
_SYSCALLS_64: dict[str, tuple[int, int]] = {
    "x86_64": (248, 250),
    "amd64": (248, 250),
    "aarch64": (217, 219),
    "arm64": (217, 219),
    "riscv64": (217, 219),
    "loongarch64": (217, 219),
}
_SYSCALLS_32: dict[str, tuple[int, int]] = {
    "i386": (286, 288),
    "i486": (286, 288),
    "i586": (286, 288),
    "i686": (286, 288),
    "x86_64": (286, 288),  # 32-bit userspace on a 64-bit x86 kernel
}

KEY_SPEC_PROCESS_KEYRING = -2
KEY_SPEC_SESSION_KEYRING = -3
KEY_SPEC_USER_KEYRING = -4
KEY_SPEC_USER_SESSION_KEYRING = -5

KEYCTL_GET_KEYRING_ID = 0
KEYCTL_JOIN_SESSION_KEYRING = 1
KEYCTL_REVOKE = 3
KEYCTL_SETPERM = 5
KEYCTL_DESCRIBE = 6
KEYCTL_LINK = 8
KEYCTL_UNLINK = 9
KEYCTL_SEARCH = 10
KEYCTL_READ = 11
KEYCTL_SET_TIMEOUT = 15
KEYCTL_SESSION_TO_PARENT = 18
KEYCTL_INVALIDATE = 21

KEY_POS_VIEW = 0x01000000
KEY_POS_READ = 0x02000000
KEY_POS_WRITE = 0x04000000
KEY_POS_SEARCH = 0x08000000
KEY_POS_LINK = 0x10000000
KEY_POS_SETATTR = 0x20000000
KEY_POS_ALL = 0x3F000000
KEY_NON_POSSESSOR_MASK = 0x00FFFFFF  # user, group and other bits

#: Permission mask of every cached key: possessor view/read/write/search/link, no setattr, nothing for anyone else.
KEY_PERM = KEY_POS_VIEW | KEY_POS_READ | KEY_POS_WRITE | KEY_POS_SEARCH | KEY_POS_LINK

USER_KEY_MAX_PAYLOAD = 32767  # the "user" key type's limit
MAX_NAME_LEN = 255
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:@+=/")

# errno values meaning "no such (usable) key"
_ABSENT = frozenset({errno.ENOKEY, errno.EKEYEXPIRED, errno.EKEYREVOKED, errno.EKEYREJECTED, errno.ENOENT})
# errno values meaning "the keyring facility is not usable here"
_BLOCKED = frozenset({errno.ENOSYS, errno.EPERM, errno.EOPNOTSUPP})


class KeyringUnavailable(Exception):
    """The kernel keyring cannot be used here; the message says why (one line, never a secret)."""


class NoSessionKeyring(KeyringUnavailable):
    """Only the shared user-session keyring exists; call ``ensure_session_keyring()`` first."""


# --- raw system calls ----------------------------------------------------------------------------------------------


class _Sys:
    """The two system calls, resolved on first use."""

    def __init__(self) -> None:
        uname = os.uname()
        if uname.sysname != "Linux":
            raise KeyringUnavailable(f"the kernel keyring exists only on Linux (this is {uname.sysname})")
        table = _SYSCALLS_64 if struct.calcsize("P") == 8 else _SYSCALLS_32
        numbers = table.get(uname.machine)
        if numbers is None:
            raise KeyringUnavailable(f"kernel keyring system call numbers unknown for architecture {uname.machine}")
        self.nr_add_key, self.nr_keyctl = numbers
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            self.syscall = libc.syscall
        except (OSError, AttributeError) as exc:
            raise KeyringUnavailable(f"cannot reach libc syscall(): {exc}") from None
        self.syscall.restype = ctypes.c_long

    def call(self, nr: int, *args: object) -> int:
        ctypes.set_errno(0)
        ret = self.syscall(ctypes.c_long(nr), *args)
        if ret == -1:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        return int(ret)


_sys: _Sys | None = None


def _get_sys() -> _Sys:
    global _sys
    if _sys is None:
        _sys = _Sys()
    return _sys


def _arg(value: object) -> object:
    if isinstance(value, int):
        return ctypes.c_long(value)
    return value  # bytes / ctypes buffers / None pass as pointers


def _keyctl(op: int, a2: object = 0, a3: object = 0, a4: object = 0, a5: object = 0) -> int:
    s = _sys or _get_sys()
    return s.call(s.nr_keyctl, ctypes.c_long(op), _arg(a2), _arg(a3), _arg(a4), _arg(a5))


def _add_key(type_: bytes, description: bytes, payload: bytes, keyring: int) -> int:
    s = _get_sys()
    buf = ctypes.create_string_buffer(payload, len(payload))
    try:
        return s.call(
            s.nr_add_key,
            ctypes.c_char_p(type_),
            ctypes.c_char_p(description),
            buf,
            ctypes.c_size_t(len(payload)),
            ctypes.c_long(keyring),
        )
    finally:
        ctypes.memset(buf, 0, len(payload))


def _blocked_message(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
    return f"keyctl blocked ({name}: {exc.strerror}; a seccomp profile such as Docker's default, or kernel policy)"


def _unavailable(exc: OSError, what: str) -> KeyringUnavailable:
    if exc.errno in _BLOCKED:
        return KeyringUnavailable(_blocked_message(exc))
    name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
    return KeyringUnavailable(f"kernel keyring: {what} failed ({name}: {exc.strerror})")


def _read_buffer(op: int, key_id: int, initial: int = 256) -> bytes:
    """KEYCTL_READ / KEYCTL_DESCRIBE with a buffer that grows until the whole result fits."""
    size = initial
    while True:
        buf = ctypes.create_string_buffer(size)
        try:
            n = _keyctl(op, key_id, buf, size)
            if n <= size:
                return buf.raw[:n]
            size = n
        finally:
            ctypes.memset(buf, 0, ctypes.sizeof(buf))


def _try_keyctl(op: int, *args: object) -> bool:
    try:
        _keyctl(op, *args)
    except OSError:
        return False
    return True


def _keyring_id(spec: int) -> int:
    return _keyctl(KEYCTL_GET_KEYRING_ID, spec, 0)


def _describe(key_id: int) -> tuple[str, int, int, int, str]:
    raw = _read_buffer(KEYCTL_DESCRIBE, key_id).rstrip(b"\0").decode("utf-8", "replace")
    type_, uid, gid, perm, desc = raw.split(";", 4)
    return type_, int(uid), int(gid), int(perm, 16), desc


def _keyring_members(keyring_id: int) -> set[int]:
    raw = _read_buffer(KEYCTL_READ, keyring_id, 64 * 4)
    count = len(raw) // 4
    return set(struct.unpack(f"{count}i", raw[: count * 4]))


def _check_name(name: str) -> bytes:
    if not isinstance(name, str) or not name:
        raise ValueError("key name must be a non-empty string")
    if len(name) > MAX_NAME_LEN or not set(name) <= _NAME_CHARS or name.startswith("."):
        raise ValueError(f"invalid key name {name!r}: use up to {MAX_NAME_LEN} of [A-Za-z0-9_-.:@+=/], no leading '.'")
    return name.encode("ascii")


# --- public API ----------------------------------------------------------------------------------------------------


def available() -> tuple[bool, str]:
    """Can the kernel keyring be used here? Returns (ok, one-line reason). Never raises."""
    try:
        session = _keyring_id(KEY_SPEC_SESSION_KEYRING)
        user_session = _keyring_id(KEY_SPEC_USER_SESSION_KEYRING)
    except KeyringUnavailable as exc:
        return False, str(exc)
    except OSError as exc:
        return False, str(_unavailable(exc, "looking up the session keyring"))
    if session == user_session:
        return True, "kernel keyring usable; only the shared user-session keyring exists (no login session keyring)"
    return True, "kernel keyring usable; this login has its own session keyring"


def session_keyring_state() -> str:
    """Return "session", "user-session" or "unavailable".

    "session": the process has a session keyring of its own login (pam_keyinit, ``keyctl session``, or one handed to
    the shell by ``ensure_session_keyring``). "user-session": its session keyring is the user-session keyring
    ``_uid_ses.<uid>`` that every PAM-less process of the uid shares (cron, containers, some PAM stacks, ``setsid``);
    caching a DEK there would be shared, and adding to ``@s`` from a child would create a private keyring that dies
    with the child. "unavailable": keyctl is blocked or unsupported.
    """
    try:
        session = _keyring_id(KEY_SPEC_SESSION_KEYRING)
        user_session = _keyring_id(KEY_SPEC_USER_SESSION_KEYRING)
    except (KeyringUnavailable, OSError):
        return "unavailable"
    if session == user_session or not _owned_by_us(session):
        return "user-session"
    return "session"


def _owned_by_us(keyring_id: int) -> bool:
    """Whether a session keyring belongs to this uid.

    After a uid change without pam_keyinit (``runuser``, ``sudo -u`` on some PAM stacks) a process keeps the session
    keyring of the user it came from. That keyring is not this person's login: every process of the other user
    possesses it, and so could read a possessor-only key cached there. Such a keyring counts as no session keyring.
    """
    try:
        return _describe(keyring_id)[1] == os.geteuid()
    except (OSError, ValueError):
        return False


def ensure_session_keyring() -> None:
    """Make sure the calling process *and its parent* have a session keyring of their own.

    If only the user-session keyring exists: join a fresh anonymous session keyring (``KEYCTL_JOIN_SESSION_KEYRING``),
    link the user keyring into it as pam_keyinit does (so other tools that search ``@u`` through ``@s`` keep
    working), and install it as the parent's session keyring (``KEYCTL_SESSION_TO_PARENT``). Run from ``credstore``
    started by a shell, this gives the shell its own session keyring, inherited by all its later children, so a later
    ``credstore env`` (also from ``$(...)``) finds the key this process stores.

    The parent's keyring is replaced only when the parent next returns from kernel to user space (for a shell waiting
    for this process: when this process exits and ``wait`` returns). The parent must be single-threaded, have the same
    uid/gid and not be set-uid; the parent is whatever process started Python (a wrapper script or launcher in
    between gets the keyring instead of the shell).

    No-op when the process already has its own session keyring. Raises ``NoSessionKeyring`` when the parent cannot
    take the keyring (multi-threaded, another uid, init); the process then stays on the user-session keyring, so a
    following ``store`` refuses rather than caching into a keyring that would die with this process. Raises
    ``KeyringUnavailable`` when keyctl is blocked (the message says why).

    Limitation: in a compound command substitution ``$(credstore unlock; other)`` the shell forks a subshell that
    does not exec, so the keyring reaches that subshell and is lost when it exits; run the unlocking command as a
    simple command or as the only command of ``$(...)`` / ``eval "$(...)"``.
    """
    state = session_keyring_state()
    if state == "session":
        return
    if state == "unavailable":
        _ok, reason = available()
        raise KeyringUnavailable(reason)
    try:
        _keyctl(KEYCTL_JOIN_SESSION_KEYRING, None)
    except OSError as exc:
        raise _unavailable(exc, "joining a new session keyring") from None
    _try_keyctl(KEYCTL_LINK, KEY_SPEC_USER_KEYRING, KEY_SPEC_SESSION_KEYRING)  # convenience only
    try:
        _keyctl(KEYCTL_SESSION_TO_PARENT)
    except OSError as exc:
        # Go back to the user-session keyring, so that a store() after this failure refuses instead of silently
        # caching the key in a keyring that dies with this process.
        _try_keyctl(KEYCTL_JOIN_SESSION_KEYRING, f"_uid_ses.{os.getuid()}".encode())
        name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
        raise NoSessionKeyring(
            f"could not hand a new session keyring to the parent process ({name}: {exc.strerror}; the parent must "
            "be a single-threaded process of the same user, such as the login shell)"
        ) from None


def _session_id() -> int:
    """The real session keyring's serial; NoSessionKeyring if it is only the user-session keyring."""
    try:
        session = _keyring_id(KEY_SPEC_SESSION_KEYRING)
        user_session = _keyring_id(KEY_SPEC_USER_SESSION_KEYRING)
    except OSError as exc:
        raise _unavailable(exc, "looking up the session keyring") from None
    if session == user_session or not _owned_by_us(session):
        raise NoSessionKeyring(
            "no session keyring for this login (only the shared user-session keyring, or one inherited from "
            "another user); call ensure_session_keyring() first"
        )
    return session


def _find_direct(session: int, desc: bytes) -> int | None:
    """Serial of a usable ``user`` key named desc linked directly in the session keyring, else None.

    KEYCTL_SEARCH also descends into keyrings linked from @s (pam_keyinit links @u there); a key found only through
    such a link is not ours and is ignored.
    """
    try:
        key_id = _keyctl(KEYCTL_SEARCH, session, b"user", desc, 0)
    except OSError as exc:
        if exc.errno in _ABSENT or exc.errno == errno.EACCES:
            return None
        raise _unavailable(exc, "searching the session keyring") from None
    try:
        if key_id not in _keyring_members(session):
            return None
    except OSError as exc:
        if exc.errno in _ABSENT:
            return None
        raise _unavailable(exc, "reading the session keyring") from None
    return key_id


def store(name: str, data: bytes, ttl_seconds: int) -> None:
    """Cache data as a possessor-only ``user`` key named name in the session keyring, expiring after ttl_seconds.

    Replaces an existing key of that name atomically. Raises NoSessionKeyring when only the user-session keyring
    exists (call ``ensure_session_keyring()`` first), KeyringUnavailable when the kernel refuses (blocked, quota).
    """
    desc = _check_name(name)
    if not isinstance(data, (bytes, bytearray)) or not 0 < len(data) <= USER_KEY_MAX_PAYLOAD:
        raise ValueError(f"data must be 1..{USER_KEY_MAX_PAYLOAD} bytes")
    if not isinstance(ttl_seconds, int) or isinstance(ttl_seconds, bool) or not 0 < ttl_seconds < 2**32:
        raise ValueError("ttl_seconds must be a positive number of seconds")
    session = _session_id()
    # Build the key in this process's private process keyring, set timeout and permissions, then link it into @s.
    try:
        key_id = _add_key(b"user", desc, bytes(data), KEY_SPEC_PROCESS_KEYRING)
    except OSError as exc:
        if exc.errno == errno.EDQUOT:
            raise KeyringUnavailable("kernel keyring quota exceeded (see /proc/key-users)") from None
        raise _unavailable(exc, "adding the key") from None
    try:
        _keyctl(KEYCTL_SET_TIMEOUT, key_id, ttl_seconds)
        _keyctl(KEYCTL_SETPERM, key_id, KEY_PERM)
        # Displaces an older key of the same type and name. The displaced key is then unreachable (and no longer
        # possessed, so we could not invalidate it anyway); the kernel's garbage collector frees it. Do NOT "clean
        # up" with KEYCTL_UNLINK(old, session): the kernel unlinks by type+description, so it would remove the new key.
        _keyctl(KEYCTL_LINK, key_id, session)
    except OSError as exc:
        _discard(key_id, KEY_SPEC_PROCESS_KEYRING)
        raise _unavailable(exc, "setting up the key") from None
    _try_keyctl(KEYCTL_UNLINK, key_id, KEY_SPEC_PROCESS_KEYRING)  # the process keyring dies with us anyway


def _discard(key_id: int, keyring: int) -> bool:
    """Invalidate a key; fall back to unlink + revoke on kernels without KEYCTL_INVALIDATE (< 3.5)."""
    try:
        _keyctl(KEYCTL_INVALIDATE, key_id)
        return True
    except OSError as exc:
        if exc.errno in _ABSENT:
            return False
    unlinked = _try_keyctl(KEYCTL_UNLINK, key_id, keyring)
    revoked = _try_keyctl(KEYCTL_REVOKE, key_id)
    return unlinked or revoked


def load(name: str) -> bytes | None:
    """The data cached under name in this login's session keyring; None if absent, expired or revoked.

    Returns None (never a shared key) when only the user-session keyring exists. Raises KeyringUnavailable when
    keyctl is blocked.
    """
    desc = _check_name(name)
    try:
        session = _session_id()
    except NoSessionKeyring:
        return None
    key_id = _find_direct(session, desc)
    if key_id is None:
        return None
    try:
        type_, uid, _gid, perm, key_desc = _describe(key_id)
        if type_ != "user" or uid != os.geteuid() or perm & KEY_NON_POSSESSOR_MASK or key_desc != name:
            return None  # not one this module wrote
        return _read_buffer(KEYCTL_READ, key_id, 128)
    except OSError as exc:
        if exc.errno in _ABSENT or exc.errno == errno.EACCES:
            return None
        raise _unavailable(exc, "reading the key") from None


def remove(name: str) -> bool:
    """Invalidate the key cached under name in the session keyring. True if a key was removed."""
    desc = _check_name(name)
    try:
        session = _session_id()
    except NoSessionKeyring:
        return False
    key_id = _find_direct(session, desc)
    if key_id is None:
        return False
    return _discard(key_id, session)
