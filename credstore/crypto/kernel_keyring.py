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

Implementation: raw ``add_key``/``keyctl`` system calls through ``_ctypes`` (``libc.py``; no libkeyutils, no
``keyctl`` binary, not the 1.5 ms ``ctypes`` package); importing this module costs ``_ctypes`` (0.4 ms), ``os``,
``errno`` and ``sys``. Where a seccomp
profile (Docker's default) or the kernel refuses the calls, ``available()`` says so and the operations raise
``KeyringUnavailable``.

A session keyring that other processes may *link*, *search*, *write* or re-permission without possessing it (a
named keyring made with ``keyctl session NAME`` grants the owner's other processes ``link``; pam_keyinit's and
credstore's own anonymous session keyrings grant only ``view`` and ``read`` of the list) would let another login of
the same uid link it into its own session and so possess every key in it: ``store`` and ``load`` refuse it
(``SessionKeyringExposed``).

Python cannot wipe memory; this module zeroes its own C buffers after use but the returned ``bytes`` live on
until garbage collected.
"""

from __future__ import annotations

import errno
import os
import sys

from credstore.crypto import libc

__all__ = [
    "KeyringUnavailable",
    "NoSessionKeyring",
    "SessionKeyringExposed",
    "available",
    "ensure_session_keyring",
    "invalidate",
    "load",
    "load_entry",
    "remove",
    "session_keyring_exposure",
    "session_keyring_id",
    "session_keyring_owner",
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
KEY_USR_VIEW = 0x00010000
KEY_USR_READ = 0x00020000
KEY_USR_WRITE = 0x00040000
KEY_USR_SEARCH = 0x00080000
KEY_USR_LINK = 0x00100000
KEY_USR_SETATTR = 0x00200000
#: Session keyring permissions that let a process which does not possess the keyring take possession of it (link it
#: into its own keyring, or join it by name, which needs search), change what is in it (write) or grant itself either
#: (setattr), for the owner's other processes (user bits), the group's or anyone's.
_SESSION_EXPOSING_BITS = 0x3C
SESSION_EXPOSING_MASK = _SESSION_EXPOSING_BITS << 16 | _SESSION_EXPOSING_BITS << 8 | _SESSION_EXPOSING_BITS

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


class SessionKeyringExposed(KeyringUnavailable):
    """The session keyring lets processes that do not possess it link, search or change it (message says how)."""


# --- raw system calls ----------------------------------------------------------------------------------------------


class _Sys:
    """The two system calls, resolved on first use."""

    def __init__(self) -> None:
        uname = os.uname()
        if uname.sysname != "Linux":
            raise KeyringUnavailable(f"the kernel keyring exists only on Linux (this is {uname.sysname})")
        table = _SYSCALLS_64 if sys.maxsize > 2**32 else _SYSCALLS_32
        numbers = table.get(uname.machine)
        if numbers is None:
            raise KeyringUnavailable(f"kernel keyring system call numbers unknown for architecture {uname.machine}")
        self.nr_add_key, self.nr_keyctl = numbers
        problem = libc.missing("syscall")
        if problem:
            raise KeyringUnavailable(f"cannot reach libc syscall(): {problem}")

    @staticmethod
    def call(nr: int, *args: object) -> int:
        return libc.syscall(nr, *args)


_sys: _Sys | None = None


def _get_sys() -> _Sys:
    global _sys
    if _sys is None:
        _sys = _Sys()
    return _sys


def _keyctl(op: int, a2: object = 0, a3: object = 0, a4: object = 0, a5: object = 0) -> int:
    """keyctl(op, ...): integers go as C long, bytes / C buffers / None as pointers."""
    s = _sys or _get_sys()
    return libc.syscall(s.nr_keyctl, op, a2, a3, a4, a5)


def _add_key(type_: bytes, description: bytes, payload: bytes, keyring: int) -> int:
    s = _get_sys()
    buf = libc.buffer(payload)
    try:
        # type and description are NUL-terminated strings: bytes objects carry a NUL after their end
        return libc.syscall(s.nr_add_key, type_, description, buf, len(payload), keyring)
    finally:
        libc.wipe(buf)


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
        buf = libc.buffer(size)
        try:
            n = _keyctl(op, key_id, buf, size)
            if n <= size:
                return buf.raw[:n]
            size = n
        finally:
            libc.wipe(buf)


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
    return set(memoryview(raw[: count * 4]).cast("i"))  # key serials, native int32 (no `struct` import)


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


def _session_id(*, allow_exposed: bool = False) -> int:
    """The real session keyring's serial.

    NoSessionKeyring if it is only the user-session keyring or belongs to another uid; SessionKeyringExposed if its
    permissions let non-possessors link, search, write or re-permission it (unless ``allow_exposed``: removing a key
    must still work there).
    """
    try:
        session = _keyring_id(KEY_SPEC_SESSION_KEYRING)
        user_session = _keyring_id(KEY_SPEC_USER_SESSION_KEYRING)
    except OSError as exc:
        raise _unavailable(exc, "looking up the session keyring") from None
    no_session = NoSessionKeyring(
        "no session keyring for this login (only the shared user-session keyring, or one inherited from "
        "another user); call ensure_session_keyring() first"
    )
    if session == user_session:
        raise no_session
    try:
        _type, uid, _gid, perm, desc = _describe(session)
    except (OSError, ValueError):
        raise no_session from None
    if uid != os.geteuid():
        raise no_session
    if not allow_exposed and perm & SESSION_EXPOSING_MASK:
        raise SessionKeyringExposed(_exposure_reason(desc, perm))
    return session


def _exposure_reason(desc: str, perm: int) -> str:
    who = "other processes of your uid" if perm & (_SESSION_EXPOSING_BITS << 16) else "other users"
    return (
        f"this login's session keyring '{desc}' (permissions {perm:08x}) lets {who} link or search it, so another "
        "login could take it over and read what is cached there (a named keyring, as `keyctl session NAME` makes); "
        "start the shell in an anonymous one instead: `keyctl session - $SHELL`"
    )


def session_keyring_id(*, allow_exposed: bool = False) -> int:
    """Serial of this login's own session keyring, checked as ``store`` checks it (raises the same errors)."""
    return _session_id(allow_exposed=allow_exposed)


def session_keyring_owner() -> int | None:
    """The uid owning this process's session keyring (None where it cannot be described)."""
    try:
        return _describe(_keyring_id(KEY_SPEC_SESSION_KEYRING))[1]
    except (KeyringUnavailable, OSError, ValueError):
        return None


def session_keyring_exposure() -> str | None:
    """Why this login's session keyring is unsafe for a cache (one line), or None when it is fine or not ours."""
    try:
        _session_id()
    except SessionKeyringExposed as exc:
        return str(exc)
    except KeyringUnavailable:
        return None
    return None


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

    Returns None (never a shared key) when only the user-session keyring exists or the session keyring is exposed
    to non-possessors (``SessionKeyringExposed``). Raises KeyringUnavailable when keyctl is blocked.
    """
    entry = load_entry(name)
    return None if entry is None else entry[2]


def load_entry(name: str) -> tuple[int, int, bytes] | None:
    """Like ``load``, with the serials: (session keyring, key, data) or None.

    The key's serial lets a caller ``invalidate`` exactly the key it read, not a newer one of the same name.
    """
    desc = _check_name(name)
    try:
        session = _session_id()
    except (NoSessionKeyring, SessionKeyringExposed):
        return None
    key_id = _find_direct(session, desc)
    if key_id is None:
        return None
    try:
        type_, uid, _gid, perm, key_desc = _describe(key_id)
        if type_ != "user" or uid != os.geteuid() or perm & KEY_NON_POSSESSOR_MASK or key_desc != name:
            return None  # not one this module wrote
        return session, key_id, _read_buffer(KEYCTL_READ, key_id, 128)
    except OSError as exc:
        if exc.errno in _ABSENT or exc.errno == errno.EACCES:
            return None
        raise _unavailable(exc, "reading the key") from None


def invalidate(key_id: int) -> bool:
    """Invalidate one key by serial (one ``load_entry`` returned). False if it is gone or no longer ours to touch."""
    try:
        _keyctl(KEYCTL_INVALIDATE, key_id)
    except (KeyringUnavailable, OSError):
        return False
    return True


def remove(name: str) -> bool:
    """Invalidate the key cached under name in the session keyring. True if a key was removed."""
    desc = _check_name(name)
    try:
        session = _session_id(allow_exposed=True)
    except NoSessionKeyring:
        return False
    key_id = _find_direct(session, desc)
    if key_id is None:
        return False
    return _discard(key_id, session)
