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

A read (``env``, ``exec``, ``get``) lists each name it delivered once, grouped by source
(``"sources": {"profile:default": ["A", "B"], "service:team": ["C"]}``), so a line is never larger than the names it
read plus a fixed part. Older lines (``"names"`` plus ``"sources": {name: source}``) are still read.

Bounded: when a log reaches ``MAX_BYTES`` (``CREDSTORE_AUDIT_MAX_BYTES``, default 1 MiB) it is renamed to
``audit.log.1`` (``.1`` to ``.2`` and so on, ``KEEP`` old files; the oldest is dropped) under a lock, and a new log
is started. ``credstore audit`` reads the old files too.

Cost on the hot path (``credstore env`` in every shell): one ``open(O_APPEND)``, one ``fstat``, one ``write``, one
``close``; the line is formatted without ``json`` for plain names. A line is written with a single ``write(2)`` on an
``O_APPEND`` descriptor, so concurrent writers never interleave inside a line. Failing to write never fails the
command: a warning goes to stderr once per process.

The log is a record for its owner, not tamper-proof evidence: the owner (and root) can edit it. For evidence that
survives a compromised account, forward to syslog / auditd (a seam: ``record`` is the one place to add it).
"""

from __future__ import annotations

import os
import stat
import sys
import time

# No json, pathlib, config or collections here at import: `credstore env` writes a line in every new shell.

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
#: Size at which a log is rotated, and how many rotated files are kept.
MAX_BYTES = 1024 * 1024
KEEP = 3
#: Events that read values: their names are grouped by source.
_READS = ("env", "exec", "get")


def personal_log(environ=os.environ):
    from credstore import config

    return config.audit_log(environ)


def shared_log(environ=os.environ):
    from credstore import config

    return config.shared_audit_log(environ)


def max_bytes(environ=os.environ) -> int:
    try:
        return max(4096, int(environ.get("CREDSTORE_AUDIT_MAX_BYTES", "") or MAX_BYTES))
    except ValueError:
        return MAX_BYTES


def _json(value: object) -> str:
    """JSON text of a line's field: plain names and identifiers without the json module, anything else with it."""
    if isinstance(value, str):
        if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
            return f'"{value}"'
        import json

        return json.dumps(value, ensure_ascii=True)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(item, str) for item in value):
            joined = "".join(value)  # one check over all of them: thousands of plain names stay cheap
            if joined.isascii() and joined.isprintable() and '"' not in joined and "\\" not in joined:
                return '["' + '","'.join(value) + '"]'
        return "[" + ",".join(_json(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_json(str(k))}:{_json(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value).__name__)


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
    names=(),
    sources=None,
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
    return (
        line_head(event, now)
        + line_tail(
            event,
            names=names,
            sources=sources,
            profile=profile,
            service=service,
            command=command,
            via=via,
            outcome=outcome,
            key=key,
            slot=slot,
            level=level,
        )
    ).encode()


def line_head(event: str, now: float | None = None) -> str:
    """The start of a line: what is known only when it is written (time, user, pid, terminal)."""
    if event not in EVENTS:
        raise ValueError(f"unknown audit event {event!r}")
    when = time.time() if now is None else now
    user, uid = _user()
    head: dict[str, object] = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when)),
        "ts": round(when, 3),
        "event": event,
        "user": user,
        "uid": uid,
        "pid": os.getpid(),
        "tty": _tty(),
    }
    return "{" + ",".join(f'"{k}":{_json(v)}' for k, v in head.items())


def line_tail(
    event: str,
    *,
    names=(),
    sources=None,
    profile: str | None = None,
    service: str | None = None,
    command: str | None = None,
    via: str | None = None,
    outcome: str | None = None,
    key: str | None = None,
    slot: int | None = None,
    level: str | None = None,
) -> str:
    """The rest of a line, after ``line_head``: the same for every read of the same names (the render cache keeps
    it, so a read of thousands of names formats nothing)."""
    record: dict[str, object] = {}
    if profile is not None:
        record["profile"] = profile
    if service is not None:
        record["service"] = service
    names = list(names)
    if event in _READS and sources and set(names) <= set(sources):
        origins = set(sources.values())
        if len(origins) == 1:  # the usual case, without a dictionary operation per name
            grouped: dict[str, list[str]] = {origins.pop(): names}
        else:
            grouped = {}
            for name in names:
                grouped.setdefault(sources[name], []).append(name)
        record["sources"] = grouped  # each name once, under the source it came from
    else:
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
    return "".join(f',"{k}":{_json(v)}' for k, v in record.items()) + "}\n"


def names_of(item) -> list[str]:
    """The names a line mentions, in either form (grouped by source, or the older ``names`` list)."""
    names = item.get("names")
    if isinstance(names, list):
        return [str(n) for n in names]
    sources = item.get("sources")
    if isinstance(sources, dict) and all(isinstance(v, list) for v in sources.values()):
        return sorted(str(n) for group in sources.values() for n in group)
    return []


def append(path, line: bytes, limit: int = MAX_BYTES) -> bool:
    """Append one line with one write(2). Returns False (after warning once) if it could not be written."""
    try:
        try:
            fd = _open_log(path)
        except FileNotFoundError:
            from pathlib import Path

            from credstore import fsutil

            fsutil.ensure_private_dir(Path(path).parent)
            fd = _open_log(path)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
                _warn_once(f"not writing the audit log {path}: it is not a regular file of yours, private to you")
                return False
            if st.st_size and st.st_size + len(line) > limit and _rotate(str(path), fd, st):
                os.close(fd)
                fd = _open_log(path)
            written = os.write(fd, line)
        finally:
            os.close(fd)
        if written != len(line):
            _warn_once(f"the audit log {path} got a short write (disk full?)")
            return False
        return True
    except Exception as exc:  # the audit log must never fail the command
        reason = os.strerror(exc.errno) if isinstance(exc, OSError) and exc.errno else type(exc).__name__
        if isinstance(exc, OSError) and exc.errno == 40:  # ELOOP
            reason = "it is a symlink"
        _warn_once(f"cannot write the audit log {path}: {reason}")
        return False


def _rotate(path: str, fd: int, st: os.stat_result) -> bool:
    """Shift ``path`` to ``path.1`` (and older ones up, dropping the last) under a lock on the log; True if this
    process rotated it or another one already had (either way: reopen). Concurrent writers rotate once."""
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:
        return False
    try:
        try:
            current = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            return True
        if (current.st_dev, current.st_ino) != (st.st_dev, st.st_ino):
            return True  # another writer rotated it meanwhile
        for n in range(KEEP - 1, 0, -1):
            try:  # noqa: SIM105 - no contextlib on the hot path (it is only imported here)
                os.rename(f"{path}.{n}", f"{path}.{n + 1}")
            except FileNotFoundError:
                pass
        os.rename(path, f"{path}.1")
        return True
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _open_log(path) -> int:
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


def record(event: str, *, path=None, environ=os.environ, **fields: object) -> bool:
    """Append an event to ``path`` (default: the person's log). Never raises."""
    try:
        line = make_line(event, **fields)  # type: ignore[arg-type]
        return append(path if path is not None else personal_log(environ), line, max_bytes(environ))
    except Exception as exc:
        _warn_once(f"cannot write the audit log: {type(exc).__name__}")
        return False


def record_prepared(event: str, tail, *, path, environ=os.environ) -> bool:
    """``record`` for a line whose ``line_tail`` was made earlier (by the render cache), given as UTF-8 bytes.
    Never raises."""
    try:
        line = b"".join((line_head(event).encode("utf-8", "surrogateescape"), tail))
        return append(path, line, max_bytes(environ))
    except Exception as exc:
        _warn_once(f"cannot write the audit log: {type(exc).__name__}")
        return False


def read_lines(path):
    """Parsed events of a log and its rotated files, oldest first; lines that are not JSON objects are skipped."""
    import json

    for name in [*(f"{path}.{n}" for n in range(KEEP, 0, -1)), str(path)]:
        try:
            with open(name, "rb") as handle:
                for raw in handle:
                    try:
                        item = json.loads(raw)
                    except ValueError:
                        continue
                    if isinstance(item, dict):
                        yield item
        except FileNotFoundError:
            continue


def format_event(item) -> str:
    parts = [str(item.get("time", "?")), str(item.get("user", "?")), str(item.get("event", "?"))]
    for key in ("profile", "service"):
        if item.get(key):
            parts.append(f"{key}={item[key]}")
    names = names_of(item)
    if names:
        parts.append(",".join(names))
    for key in ("key", "slot", "level", "command", "via", "outcome", "pid", "tty"):
        if item.get(key) is not None:
            parts.append(f"{key}={item[key]}")
    return " ".join(parts)
