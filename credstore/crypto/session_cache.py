"""Unlock once per login: the data key (never the passphrase) cached for this login session.

The key is kept with ``crypto/session_secret.py`` under the name ``<store id hex>``: one half is a possessor-only
``user`` key ``credstore:<store id hex>`` with a timeout in the session keyring of this login
(``crypto/kernel_keyring.py``), never in the user keyring ``@u`` that every login of the account shares; the other
half is a 0600 file in this uid's private runtime directory. A process of another uid that inherited the session
keyring (``su`` without ``-``, ``runuser -u``, ``sudo -u``) reads only a useless half and cannot make the next read
return another key; another login of the same uid reads only the file half. A session keyring that other
processes of the uid could link (``keyctl session NAME``) is refused.

``SessionDekCache`` is the ``DekCache`` that ``config.open_profile`` gives stores. Reading never fails a command:
where keyctl is blocked or no session keyring exists it just finds nothing (and a passphrase store then asks, or
reports that it is locked). Writing from ``get``/``put`` happens only where a session keyring of this login already
exists; ``unlock`` first makes one (``prepare``) when the shell has none.
"""

from __future__ import annotations

import contextlib
import os

from credstore.errors import UsageError

DEFAULT_TTL = 8 * 3600
MAX_TTL = 30 * 86400


def secret_name(store_id: bytes) -> str:
    """The ``session_secret`` name of a store's data key (its keyring half is ``credstore:<store id hex>``)."""
    return store_id.hex()


def key_name(store_id: bytes) -> str:
    """The kernel keyring description of a store's cached data key half."""
    return f"credstore:{secret_name(store_id)}"


def parse_ttl(text: str) -> int:
    """An unlock timeout: a duration (``durations.parse_duration``), more than 0 and at most 30 days."""
    from credstore.durations import parse_duration

    seconds = int(parse_duration(text, option="--ttl"))
    if seconds <= 0:
        raise UsageError(f"--ttl {text!r} must be longer than 0 seconds")
    if seconds > MAX_TTL:
        raise UsageError(f"--ttl {text!r} is longer than the maximum of 30d")
    return seconds


def state() -> tuple[str, str]:
    """(``session`` | ``user-session`` | ``unavailable``, one-line reason).

    ``unavailable`` also where the session keyring is exposed to other processes (``keyctl session NAME``) or no
    private runtime directory exists: the reason says which.
    """
    from credstore.crypto import kernel_keyring, session_secret

    ok, reason = kernel_keyring.available()
    if not ok:
        return "unavailable", reason
    kind = kernel_keyring.session_keyring_state()
    if kind == "session":
        exposed = kernel_keyring.session_keyring_exposure()
        if exposed:
            return "unavailable", exposed
    try:
        session_secret.runtime_directory()
    except session_secret.SessionSecretUnavailable as exc:
        return "unavailable", str(exc)
    return kind, reason


def session_keyring_shared_with_other_uid() -> str | None:
    """Why this process's session keyring is (probably) shared with another uid, in one line; None if not seen.

    Two cases: the session keyring belongs to another uid (this process came through ``su``/``sudo``/``runuser``
    without ``pam_keyinit``), or processes of another non-root uid descend from this terminal session (the process
    session of the caller) and so most likely inherited its session keyring. The kernel shows no process's session
    keyring to others, so the second case is a best guess from ``/proc``: it misses such processes started from
    another terminal of the same login, and a process that joined a keyring of its own is still counted.
    """
    from credstore.crypto import kernel_keyring

    euid = os.geteuid()
    owner = kernel_keyring.session_keyring_owner()
    if owner is not None and owner != euid:
        return (
            f"this session keyring belongs to {_user_name(owner)}: it came with a switch of user (su/sudo/runuser "
            f"without pam_keyinit), so {_user_name(owner)}'s processes possess it too"
        )
    others = _other_uids_in_this_terminal_session(euid)
    if not others:
        return None
    names = ", ".join(_user_name(uid) for uid in sorted(others))
    return (
        f"processes of {names} run from this terminal session (su/sudo/runuser without pam_keyinit) and most "
        "likely share its session keyring: they can remove the unlock, but not read or change it"
    )


def _user_name(uid: int) -> str:
    try:
        import pwd

        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def _proc_stat(pid: str) -> tuple[int, int] | None:
    """(parent pid, process session id) from /proc/PID/stat."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces and parentheses
    try:
        return int(fields[1]), int(fields[3])  # state ppid pgrp session
    except (IndexError, ValueError):
        return None


def _other_uids_in_this_terminal_session(euid: int) -> set[int]:
    try:
        our_session = os.getsid(0)
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return set()
    info: dict[int, tuple[int, int]] = {}
    owners: dict[int, int] = {}
    for pid in pids:
        stat_ = _proc_stat(pid)
        if stat_ is None:
            continue
        try:
            owners[int(pid)] = os.stat(f"/proc/{pid}").st_uid  # root for non-dumpable processes: skipped below
        except OSError:
            continue
        info[int(pid)] = stat_
    found = set()
    for pid, uid in owners.items():
        if uid in (0, euid):
            continue
        seen = 0
        current = pid
        while current > 1 and current in info and seen < 256:
            ppid, sid = info[current]
            if sid == our_session:
                found.add(uid)
                break
            current = ppid
            seen += 1
    return found


class CacheUnavailable(Exception):
    """The unlock cannot be cached here (message says why)."""


class SessionDekCache:
    """``DekCache`` on ``session_secret``: half in the kernel session keyring, half in a private runtime file."""

    def __init__(self, ttl_seconds: int = DEFAULT_TTL) -> None:
        self.ttl_seconds = ttl_seconds

    def __repr__(self) -> str:
        return f"SessionDekCache(ttl_seconds={self.ttl_seconds})"

    def get(self, store_id: bytes) -> bytes | None:
        from credstore.crypto import session_secret

        try:
            dek = session_secret.get(secret_name(store_id))
        except (OSError, ValueError):
            return None
        return dek if dek is not None and len(dek) == 32 else None

    def put(self, store_id: bytes, dek: bytes) -> None:
        """Cache quietly where this login already has a session keyring; otherwise do nothing."""
        with contextlib.suppress(CacheUnavailable):
            self.store(store_id, dek, self.ttl_seconds)

    @staticmethod
    def prepare() -> str | None:
        """Make sure this login (the parent shell) has a session keyring of its own.

        Returns a note for the person when one had to be created, None when there already was one. Raises
        ``CacheUnavailable`` when keyctl is blocked, the session keyring is exposed to other processes, no private
        runtime directory exists, or the keyring cannot be handed to the shell.
        """
        from credstore.crypto import kernel_keyring

        kind, reason = state()
        if kind == "unavailable":
            raise CacheUnavailable(reason)
        if kind == "session":
            return None
        try:
            kernel_keyring.ensure_session_keyring()
        except kernel_keyring.KeyringUnavailable as exc:
            hint = ""
            if "parent" in str(exc):
                hint = (
                    " (a multi-threaded shell such as fish refuses a new session keyring; start your login shell "
                    "with one: `keyctl session - fish`, or ask for pam_keyinit in the PAM session stack)"
                )
            raise CacheUnavailable(f"{exc}{hint}") from None
        return (
            "this shell had no session keyring of its own (no PAM session keyring); credstore gave it a new one, "
            "seen by this shell and the programs it starts, not by other logins"
        )

    @staticmethod
    def store(store_id: bytes, dek: bytes, ttl_seconds: int) -> None:
        from credstore.crypto import session_secret

        try:
            session_secret.put(secret_name(store_id), dek, ttl_seconds)
        except session_secret.SessionSecretUnavailable as exc:
            raise CacheUnavailable(str(exc)) from None

    @staticmethod
    def remove(store_id: bytes) -> bool:
        from credstore.crypto import session_secret

        return session_secret.remove(secret_name(store_id))
