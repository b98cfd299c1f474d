"""The audit log: one JSON object per line, appended, never rewritten.

Where:

- the person's own events (init, set, rm, rotate, rollback, import, unlock, lock, failed unlock, every read
  through ``env``, ``exec`` and ``get``, and the reads and changes of keyring items through the ``keyring``
  backend, the git credential helper and ``credstore keyring``: ``keyring-get``, ``keyring-set``, ``keyring-rm``)
  go to ``$CREDSTORE_HOME/audit.log`` (mode 0600, owned by the person);
- changes to a service account (add, set, rotate, rollback, rm) go to ``<shared dir>/audit.log``, owned by the
  admin who makes them (mode 0600: only the admin, or root, reads it). Members cannot append to it, by design: a
  log every member can write is a log every member can forge. A member's *reads* of a service value are recorded
  in that member's own log, with the source ``service:NAME``.

What a line holds: time (UTC, ISO 8601, and epoch seconds), event, Unix user and uid, pid, terminal, profile and/or
service, variable *names*, their sources, and for ``exec`` the command's ``argv[0]`` only (later arguments may be
secrets a person typed on the command line; they are not copied into the log). Never a value, never a fingerprint
of one: ``record`` takes no value argument at all.

Cost on the hot path (``credstore env`` in every shell): one ``open(O_APPEND)``, one ``fstat``, one ``write``, one
``close``. A line is written with a single ``write(2)`` on an ``O_APPEND`` descriptor, so concurrent writers never
interleave inside a line. Failing to write never fails the command: a warning goes to stderr once per process.

The log is a record for its owner, not tamper-proof evidence: the owner (and root) can edit it. For evidence that
survives a compromised account, forward to syslog / auditd (a seam: ``record`` is the one place to add it).
"""

from __future__ import annotations

import errno
import json
import os
import stat
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from credstore import config

EVENTS = (
    "init",
    "protect",
    "protect-add",
    "protect-remove",
    "protect-rotate-slot",
    "passwd",
    "rekey",
    "accept-store",
    "set",
    "rm",
    "rotate",
    "rollback",
    "import",
    "unlock",
    "lock",
    "failed-unlock",
    "env",
    "exec",
    "get",
    "service-add",
    "service-set",
    "service-rm",
    "service-rekey",
    "service-allow",
    "service-accept",
    "use-service",
    "keyring-get",
    "keyring-set",
    "keyring-rm",
)

_warned = False


def personal_log(environ: Mapping[str, str] = os.environ) -> Path:
    return config.audit_log(environ)


def shared_log(environ: Mapping[str, str] = os.environ) -> Path:
    return config.shared_audit_log(environ)


def _user() -> tuple[str, int]:
    uid = os.geteuid()
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name, uid
    except (KeyError, ImportError):
        return str(uid), uid


def _tty() -> str | None:
    for fd in (0, 2, 1):
        try:
            return os.ttyname(fd)
        except OSError:
            continue
    return None


def make_line(
    event: str,
    *,
    names: Iterable[str] = (),
    sources: Mapping[str, str] | None = None,
    profile: str | None = None,
    service: str | None = None,
    command: str | None = None,
    via: str | None = None,
    outcome: str | None = None,
    key: str | None = None,
    slot: int | None = None,
    level: str | None = None,
    now: float | None = None,
) -> bytes:
    """One JSON line. Only names, sources and identifiers: there is deliberately no parameter for a value."""
    if event not in EVENTS:
        raise ValueError(f"unknown audit event {event!r}")
    when = time.time() if now is None else now
    user, uid = _user()
    record: dict[str, object] = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when)),
        "ts": round(when, 3),
        "event": event,
        "user": user,
        "uid": uid,
        "pid": os.getpid(),
        "tty": _tty(),
    }
    if profile is not None:
        record["profile"] = profile
    if service is not None:
        record["service"] = service
    names = list(names)
    if names:
        record["names"] = names
    if sources:
        record["sources"] = dict(sources)
    if command is not None:
        record["command"] = command
    if via is not None:
        record["via"] = via
    if outcome is not None:
        record["outcome"] = outcome
    # The SSH key (public key fingerprint, never a signature) that chose the profile or opened a key slot.
    if key is not None:
        record["key"] = key
    if slot is not None:
        record["slot"] = slot
    if level is not None:
        record["level"] = level
    return json.dumps(record, separators=(",", ":"), ensure_ascii=True).encode() + b"\n"


def append(path: Path, line: bytes) -> bool:
    """Append one line with one write(2). Returns False (after warning once) if it could not be written."""
    try:
        try:
            fd = _open_log(path)
        except FileNotFoundError:
            from credstore import fsutil

            fsutil.ensure_private_dir(path.parent)
            fd = _open_log(path)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
                _warn_once(f"not writing the audit log {path}: it is not a regular file of yours, private to you")
                return False
            written = os.write(fd, line)
        finally:
            os.close(fd)
        if written != len(line):
            _warn_once(f"the audit log {path} got a short write (disk full?)")
            return False
        return True
    except Exception as exc:  # the audit log must never fail the command
        reason = os.strerror(exc.errno) if isinstance(exc, OSError) and exc.errno else type(exc).__name__
        if isinstance(exc, OSError) and exc.errno == errno.ELOOP:
            reason = "it is a symlink"
        _warn_once(f"cannot write the audit log {path}: {reason}")
        return False


def _open_log(path: Path) -> int:
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
    old = os.umask(0o077)
    try:
        return os.open(path, flags, 0o600)
    finally:
        os.umask(old)


def _warn_once(message: str) -> None:
    global _warned
    if _warned:
        return
    _warned = True
    try:
        sys.stderr.write(f"credstore: warning: {message}\n")
        sys.stderr.flush()
    except Exception:  # noqa: S110 - stderr may be closed; still never fail the command
        pass


def record(event: str, *, path: Path | None = None, environ: Mapping[str, str] = os.environ, **fields: object) -> bool:
    """Append an event to ``path`` (default: the person's log). Never raises."""
    try:
        line = make_line(event, **fields)  # type: ignore[arg-type]
        return append(path if path is not None else personal_log(environ), line)
    except Exception as exc:
        _warn_once(f"cannot write the audit log: {type(exc).__name__}")
        return False


def read_lines(path: Path) -> Iterator[dict[str, object]]:
    """Parsed events of a log, oldest first; lines that are not JSON objects are skipped."""
    try:
        with open(path, "rb") as handle:
            for raw in handle:
                try:
                    item = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(item, dict):
                    yield item
    except FileNotFoundError:
        return


def format_event(item: Mapping[str, object]) -> str:
    parts = [str(item.get("time", "?")), str(item.get("user", "?")), str(item.get("event", "?"))]
    for key in ("profile", "service"):
        if item.get(key):
            parts.append(f"{key}={item[key]}")
    names = item.get("names")
    if isinstance(names, Sequence) and not isinstance(names, str) and names:
        parts.append(",".join(str(n) for n in names))
    for key in ("key", "slot", "level", "command", "via", "outcome", "pid", "tty"):
        if item.get(key) is not None:
            parts.append(f"{key}={item[key]}")
    return " ".join(parts)
