"""OpenBao / HashiCorp Vault KV v2 backend: :class:`VaultBackend` (HTTP and error mapping in ``session.py``).

Layout of one profile at KV path ``<path>`` on mount ``<mount>`` (e.g. ``secret`` / ``credstore/users/alice/default``):

``<path>/vars/<NAME>``
    One KV v2 secret per variable, so every variable has its own version history: a rotation or a ``set`` is a new
    version, a rollback writes an older value back as a newer version. KV data values are all strings::

        {"value": "...", "secret": "true" | "false", "first_version": "3",
         "rotations": "1700000000.5,1700100000.25",            # optional, Entry.rotations
         "previous": "...", "previous_expires": "1700200000"}   # optional, Entry.previous / previous_expires

    A deleted variable is a *tombstone* version ``{"deleted": "true"}`` written with check-and-set, after which the
    older versions are destroyed (best effort; needs ``update`` on ``<mount>/destroy/<path>/*``). Tombstones keep
    deletion race-free: ``delete_metadata_and_all_versions`` has no check-and-set and could erase a concurrent write.
    ``first_version`` is the version at which the current life of the variable began (after a tombstone a variable
    starts again); it gives ``Entry.created``.
``<path>/settings``
    The profile's non-secret settings (``Snapshot.settings``), one string value per key. Its existence is what
    ``exists()`` checks first.
``<path>/lock``
    A lease that serialises writers (``{"state": "held" | "free", "holder": "host:pid:nonce"}``), see ``modify``.

Entry fields: ``created`` = creation time of version ``first_version`` (server clock), ``updated`` = creation time of
the current version (server clock), ``rotations`` / ``previous`` / ``previous_expires`` = stored in the version's data,
so what ``change`` wrote is exactly what ``read`` returns, in one atomic check-and-set write. ``previous`` is kept in
the data (not taken from version n-1) because a plain ``set`` after a rotation keeps the rotation's ``previous``;
the KV history still holds every older value (up to the mount's ``max_versions``) until ``previous`` is cleared,
when the older versions are destroyed.

Round trips: ``read()`` costs 4 + 2 x (number of variables) requests: GET ``lock`` before and after (a read that a
locked ``modify`` overlapped is done again, so no read sees half of a multi-variable change), LIST ``vars``, GET
``settings`` and, per variable, GET its metadata (current version, times) and GET that exact version's data (reading
the version named by the metadata makes the pair consistent even when a writer is busy). They run on a small thread
pool.

``modify(change)``: take the profile's write lease, read, apply ``change`` to a copy, write every changed variable
with ``cas=<version read>`` (0 for new ones), release the lease. KV v2 has no multi-key transaction: the lease is
what keeps a multi-variable change from interleaving with another writer; check-and-set on every write is the
safety net (a writer that ignored or outlived the lease is detected, never silently overwritten). On a
check-and-set conflict before anything was written the change is re-read and re-applied (up to ``max_retries``
times, small random backoff); after a partial write the written variables are put back (again with check-and-set)
and the change retried; if even that fails, ``BusyError`` says so. ``lock=False`` skips the lease (check-and-set
and undo only): always safe for single-variable changes, but under contention it re-runs ``change`` about three
times per success (8 writers on one key), where the lease runs it once.

Policy a user needs for a profile they own (read/write)::

    path "secret/data/credstore/users/alice/*"     { capabilities = ["create", "read", "update"] }
    path "secret/metadata/credstore/users/alice/*" { capabilities = ["read", "list"] }
    path "secret/destroy/credstore/users/alice/*"  { capabilities = ["update"] }    # purge old values (optional)

and for a read-only team profile: ``read`` on ``secret/data/credstore/services/ml-team/*`` and ``read`` + ``list`` on
``secret/metadata/credstore/services/ml-team/*``.

Time: ``read``, ``exists`` and ``history`` each run under one wall-clock deadline (``deadline``, 5 s by default)
over all their requests, ``modify`` under ``deadline + lock_wait``; past it, ``UnavailableError`` (see
``session.py``: a server that trickles its replies cannot stretch it).

``hvac`` (which imports ``requests``, ~100-200 ms) is imported lazily, on the first request.
"""

from __future__ import annotations

import calendar
import os
import random
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, TypeVar

from credstore.errors import AuthError, BusyError, CredstoreError, NotFoundError, UsageError
from credstore.store.base import Backend, Entry, Snapshot
from credstore.store.vault.session import (
    DEFAULT_DEADLINE,
    DEFAULT_TIMEOUT,
    LOGIN_HINT,
    CasConflict,
    Connection,
    Session,
    bind,
    check_path,
    check_proxy,
    deadline_scope,
    parse_seconds,
)

T = TypeVar("T")

#: How many times ``read`` waits for a writer's lease to be released, or retries after a write it overlapped.
_READ_TRIES = 20

_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")
_RFC3339_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)


def parse_rfc3339(text: str) -> float:
    """Parse an RFC 3339 time as OpenBao writes it (nanoseconds, ``Z``) into a Unix timestamp; 0.0 if empty."""
    if not text:
        return 0.0
    m = _RFC3339_RE.match(text.strip())
    if m is None:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    year, month, day, hour, minute, sec = (int(m.group(i)) for i in range(1, 7))
    frac = float("0." + m.group(7)) if m.group(7) else 0.0
    ts = calendar.timegm((year, month, day, hour, minute, sec, 0, 0, 0)) + frac
    if m.group(9):
        offset = int(m.group(10)) * 3600 + int(m.group(11)) * 60
        ts -= offset if m.group(9) == "+" else -offset
    return float(ts)


@dataclass
class _VarState:
    """What ``read`` saw of one variable: enough to write it back with check-and-set."""

    version: int  # current version (0: never written); a tombstone's version when deleted
    first_version: int
    data: dict[str, str] | None  # None when absent / tombstone


@dataclass
class _Raw:
    snapshot: Snapshot
    vars: dict[str, _VarState]
    settings_version: int
    settings_exists: bool


def _encode_entry(entry: Entry, first_version: int) -> dict[str, str]:
    data = {
        "value": entry.value,
        "secret": "true" if entry.secret else "false",
        "first_version": str(first_version),
    }
    if entry.rotations:
        data["rotations"] = ",".join(repr(float(t)) for t in entry.rotations)
    if entry.previous is not None:
        data["previous"] = entry.previous
        if entry.previous_expires is not None:
            data["previous_expires"] = repr(float(entry.previous_expires))
    return data


def _same_content(a: Entry, b: Entry) -> bool:
    """Whether writing ``b`` over ``a`` would change anything stored (times are the server's, not ours)."""
    return (a.value, a.secret, a.rotations, a.previous, a.previous_expires) == (
        b.value,
        b.secret,
        b.rotations,
        b.previous,
        b.previous_expires,
    )


class VaultBackend(Backend):
    """One credstore profile kept in an OpenBao / Vault KV v2 mount. See the module docstring for the layout."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        mount: str = "secret",
        path: str,
        source: str,
        timeout: float = DEFAULT_TIMEOUT,
        deadline: float = DEFAULT_DEADLINE,
        ca_cert: str | None = None,
        verify: bool = True,
        proxy: str | None = None,
        max_retries: int = 20,
        lock_ttl: float = 10.0,
        lock_wait: float = 30.0,
        workers: int = 8,
        lock: bool = True,
    ) -> None:
        if not token:
            raise AuthError(f"no OpenBao token; {LOGIN_HINT}")
        self.mount = check_path("mount", mount)
        self.path = check_path("path", path)
        self.source = source
        self.max_retries = max_retries
        self.lock_ttl = lock_ttl
        self.lock_wait = lock_wait
        self.workers = max(1, workers)
        self.lock = lock
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._s = Session(
            Connection(
                url,
                timeout=float(timeout),
                deadline=parse_seconds(deadline, "the OpenBao deadline"),
                ca_cert=ca_cert,
                verify=verify,
                proxy=check_proxy(proxy) if proxy else None,
            ),
            token,
        )

    def __repr__(self) -> str:
        return (
            f"VaultBackend(url={self._s.shown_url!r}, mount={self.mount!r}, path={self.path!r}, source={self.source!r})"
        )

    @property
    def url(self) -> str:
        """The server's address as shown to people (without any user:password@ part)."""
        return self._s.shown_url

    @property
    def connection(self) -> Connection:
        """Where and how this backend reaches the server (no token): for token calls and status output."""
        return self._s.connection

    @property
    def deadline(self) -> float:
        """Seconds a whole read may take; a change may take ``lock_wait`` more (waiting for other writers)."""
        return self._s.connection.deadline

    # -- small KV helpers -------------------------------------------------------------------------------------

    def _where_server(self) -> str:
        return f"OpenBao at {self._s.shown_url}"

    def _where(self, sub: str = "") -> str:
        tail = f"/{sub}" if sub else ""
        return f"{self.mount}/{self.path}{tail}"

    def _kv(self) -> Any:
        return self._s.client().secrets.kv.v2

    def _read_metadata(self, kv_path: str) -> dict[str, Any] | None:
        import hvac.exceptions as hx

        with self._s.errors(f"{self.mount}/{kv_path}"):
            try:
                return dict(self._kv().read_secret_metadata(kv_path, mount_point=self.mount)["data"])
            except hx.InvalidPath:
                return None

    def _read_version(self, kv_path: str, version: int | None) -> tuple[int, dict[str, str] | None, str]:
        """(version, data or None if deleted/destroyed, created_time) of one version; (0, None, "") if absent."""
        import hvac.exceptions as hx

        with self._s.errors(f"{self.mount}/{kv_path}"):
            try:
                resp = self._kv().read_secret_version(
                    kv_path, version=version, mount_point=self.mount, raise_on_deleted_version=False
                )
            except hx.InvalidPath as exc:
                # Quirk: a destroyed (or deleted) version is a 404 whose body still carries its metadata.
                resp = getattr(exc, "json", None) or {}
                if not isinstance(resp, dict) or not (resp.get("data") or {}).get("metadata"):
                    return 0, None, ""
        data = resp.get("data") or {}
        meta = data.get("metadata") or {}
        values = data.get("data")
        if meta.get("deletion_time") or meta.get("destroyed"):
            values = None
        return int(meta.get("version") or 0), values, str(meta.get("created_time") or "")

    def _write(self, kv_path: str, data: dict[str, str], cas: int) -> int:
        with self._s.errors(f"{self.mount}/{kv_path}"):
            resp = self._kv().create_or_update_secret(kv_path, secret=data, cas=cas, mount_point=self.mount)
        return int(resp["data"]["version"])

    def _destroy(self, kv_path: str, versions: list[int]) -> None:
        """Best effort: destroy older versions so old values do not linger in the history."""
        if not versions:
            return
        try:
            with self._s.errors(f"{self.mount}/{kv_path}"):
                self._kv().destroy_secret_versions(kv_path, versions=versions, mount_point=self.mount)
        except CredstoreError:
            pass

    def _list_vars(self) -> list[str]:
        import hvac.exceptions as hx

        with self._s.errors(self._where("vars")):
            try:
                resp = self._kv().list_secrets(f"{self.path}/vars", mount_point=self.mount)
            except hx.InvalidPath:
                return []
        keys = (resp.get("data") or {}).get("keys") or []
        return sorted(k for k in keys if not k.endswith("/") and _NAME_RE.match(k))

    # -- reading ----------------------------------------------------------------------------------------------

    def exists(self) -> bool:
        with deadline_scope(self.deadline, self._where_server()):
            if self._read_metadata(f"{self.path}/settings") is not None:
                return True
            return bool(self._list_vars())

    def _read_var(self, name: str) -> tuple[str, _VarState, Entry | None]:
        kv_path = f"{self.path}/vars/{name}"
        meta = self._read_metadata(kv_path)
        if meta is None or not int(meta.get("current_version") or 0):
            return name, _VarState(version=0, first_version=1, data=None), None
        current = int(meta["current_version"])
        versions: dict[str, Any] = meta.get("versions") or {}
        info = versions.get(str(current)) or {}
        if info.get("deletion_time") or info.get("destroyed"):
            # Deleted outside credstore (kv delete): absent; the next write goes on top with cas=current.
            return name, _VarState(version=current, first_version=current + 1, data=None), None
        version, data, created_time = self._read_version(kv_path, current)
        if data is None or data.get("deleted") == "true" or "value" not in data:
            return name, _VarState(version=current, first_version=current + 1, data=None), None
        try:
            first = int(data.get("first_version") or 1)
        except ValueError:
            first = 1
        first_info = versions.get(str(first))
        if first_info is not None:
            created = parse_rfc3339(str(first_info.get("created_time") or ""))
        else:  # pruned by max_versions: the oldest surviving version of this life
            alive = [int(v) for v in versions if int(v) >= first] or [current]
            created = parse_rfc3339(str((versions.get(str(min(alive))) or {}).get("created_time") or created_time))
        rotations = tuple(float(t) for t in (data.get("rotations") or "").split(",") if t)
        prev_exp = data.get("previous_expires")
        entry = Entry(
            name=name,
            value=str(data["value"]),
            secret=data.get("secret", "true") != "false",
            created=created,
            updated=parse_rfc3339(created_time),
            rotations=rotations,
            previous=data.get("previous"),
            previous_expires=float(prev_exp) if prev_exp else None,
        )
        return name, _VarState(version=version, first_version=first, data=dict(data)), entry

    def _read_raw(self) -> _Raw:
        names = self._list_vars()

        def settings() -> tuple[int, dict[str, str] | None]:
            version, data, _ = self._read_version(f"{self.path}/settings", None)
            return version, data

        if self.workers > 1 and len(names) > 1:
            pool = self._executor()
            # bind: the pool's threads make their requests under this operation's deadline.
            settings_future = pool.submit(bind(settings))
            results = list(pool.map(bind(self._read_var), names))
            settings_version, settings_data = settings_future.result()
        else:
            settings_version, settings_data = settings()
            results = [self._read_var(n) for n in names]
        entries: dict[str, Entry] = {}
        states: dict[str, _VarState] = {}
        for name, state, entry in results:
            states[name] = state
            if entry is not None:
                entries[name] = entry
        snapshot = Snapshot(
            entries=entries,
            settings={str(k): str(v) for k, v in (settings_data or {}).items()},
            generation=settings_version + sum(s.version for s in states.values()),
        )
        return _Raw(snapshot, states, settings_version, settings_version > 0)

    def _executor(self) -> ThreadPoolExecutor:
        """One pool per backend, kept: its threads keep their HTTP connections (thread-local clients) alive."""
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="credstore-vault")
            return self._pool

    def read(self) -> Snapshot:
        with deadline_scope(self.deadline, self._where_server()):
            return self._read_consistent().snapshot

    def _read_consistent(self) -> _Raw:
        """A read no writer's ``modify`` interleaved with (KV v2 has no multi-key read): the writers' lease is read
        before and after, like a seqlock. Each ``modify`` takes and releases it (two new versions), so an unchanged,
        free lease means no locked write happened in between. While it is held the read waits a little and tries
        again; a lease that stays held (a crashed writer, until ``lock_ttl``) or keeps moving gets a best-effort
        read after ``_READ_TRIES``, bounded by the deadline either way."""
        if not self.lock:
            return self._read_raw()
        kv_path = f"{self.path}/lock"
        raw = None
        for attempt in range(_READ_TRIES):
            before, data, _ = self._read_version(kv_path, None)
            if data is not None and data.get("state") == "held" and attempt < _READ_TRIES - 1:
                time.sleep(random.uniform(0.005, min(0.1, 0.005 * 2 ** min(attempt, 5))))
                continue
            raw = self._read_raw()
            after, _, _ = self._read_version(kv_path, None)
            if after == before:
                return raw
        return raw if raw is not None else self._read_raw()

    # -- writing ----------------------------------------------------------------------------------------------

    def modify(self, change: Callable[[Snapshot], T]) -> T:
        # Waiting for other writers (the lease, or check-and-set retries) is bounded by lock_wait; the server work
        # by the deadline: together one wall-clock bound for the whole change.
        with deadline_scope(self.deadline + self.lock_wait, self._where_server()):
            if not self.lock:  # check-and-set and undo only (fine for single-variable changes; see module docstring)
                return self._modify_locked(change)
            lease = self._acquire_lock()
            try:
                return self._modify_locked(change)
            finally:
                self._release_lock(lease)

    def _modify_locked(self, change: Callable[[Snapshot], T]) -> T:
        for attempt in range(self.max_retries + 1):
            raw = self._read_raw()
            work = Snapshot(
                entries=dict(raw.snapshot.entries),
                settings=dict(raw.snapshot.settings),
                generation=raw.snapshot.generation,
            )
            result = change(work)
            try:
                self._commit(raw, work)
                return result
            except CasConflict:
                if attempt < self.max_retries:
                    time.sleep(random.uniform(0.005, min(0.25, 0.01 * 2**attempt)))
        raise BusyError(
            f"gave up writing {self.source} after {self.max_retries + 1} attempts: other writers kept changing it "
            "(OpenBao check-and-set conflicts); try again"
        )

    def _commit(self, raw: _Raw, work: Snapshot) -> None:
        old = raw.snapshot.entries
        for name in work.entries:
            if not _NAME_RE.match(name):
                raise UsageError(f"invalid variable name for OpenBao: {name!r}")
        plan: list[tuple[str, dict[str, str], int, dict[str, str] | None]] = []  # (kv path, new data, cas, undo)
        purge: list[tuple[str, list[int]]] = []
        for name in sorted(set(old) | set(work.entries)):
            before, after = old.get(name), work.entries.get(name)
            state = raw.vars.get(name) or _VarState(version=0, first_version=1, data=None)
            kv_path = f"{self.path}/vars/{name}"
            if after is None and before is not None:
                plan.append((kv_path, {"deleted": "true"}, state.version, state.data))
                purge.append((kv_path, list(range(state.first_version, state.version + 1))))
            elif after is not None and (before is None or not _same_content(before, after)):
                if after.name != name:
                    after = after._replace(name=name)
                first = state.first_version if before is not None else state.version + 1
                plan.append((kv_path, _encode_entry(after, first), state.version, state.data))
                if before is not None and before.previous is not None and after.previous is None:
                    purge.append((kv_path, list(range(state.first_version, state.version + 1))))
        new_settings = {str(k): str(v) for k, v in work.settings.items()}
        if new_settings != raw.snapshot.settings or not raw.settings_exists:
            undo = dict(raw.snapshot.settings) if raw.settings_exists else None
            plan.append((f"{self.path}/settings", new_settings, raw.settings_version, undo))

        done: list[tuple[str, int, dict[str, str] | None]] = []
        for kv_path, data, cas, undo in plan:
            try:
                version = self._write(kv_path, data, cas)
            except CasConflict:
                self._undo(done)
                raise
            done.append((kv_path, version, undo))
        for kv_path, versions in purge:
            self._destroy(kv_path, versions)

    def _undo(self, done: list[tuple[str, int, dict[str, str] | None]]) -> None:
        """Put back what a half-applied change wrote, with check-and-set; BusyError if someone built on it."""
        for kv_path, version, undo in reversed(done):
            try:
                self._write(kv_path, undo if undo is not None else {"deleted": "true"}, version)
            except CasConflict:
                raise BusyError(
                    f"a concurrent writer changed {self.source} while a multi-variable change was being written; "
                    f"part of it was kept ({kv_path.rsplit('/', 1)[-1]}). Check with `credstore list` and retry"
                ) from None

    # -- the write lease --------------------------------------------------------------------------------------

    def _acquire_lock(self) -> tuple[int, str]:
        """Take ``<path>/lock`` with check-and-set. A lease not released within ``lock_ttl`` (as timed by us,
        so no clock skew matters) is taken over; check-and-set on every data write still guards the data."""
        kv_path = f"{self.path}/lock"
        holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        start = time.monotonic()
        seen_version, seen_since = -1, start
        attempt = 0
        while True:
            version, data, _ = self._read_version(kv_path, None)
            if version != seen_version:
                seen_version, seen_since = version, time.monotonic()
            held = data is not None and data.get("state") == "held"
            if not held or time.monotonic() - seen_since > self.lock_ttl:
                try:
                    return self._write(kv_path, {"state": "held", "holder": holder}, version), holder
                except CasConflict:
                    pass
            if time.monotonic() - start > self.lock_wait:
                who = (data or {}).get("holder", "another writer")
                raise BusyError(
                    f"timed out after {self.lock_wait:g} s waiting for the write lock of {self.source} (held by {who})"
                )
            attempt += 1
            time.sleep(random.uniform(0.005, min(0.2, 0.005 * 2 ** min(attempt, 6))))

    def _release_lock(self, lease: tuple[int, str]) -> None:
        version, holder = lease
        # Taken over after lock_ttl, or the server went away: the lease expires by itself.
        with suppress(CasConflict, CredstoreError):
            self._write(f"{self.path}/lock", {"state": "free", "holder": holder}, version)

    # -- maintenance ------------------------------------------------------------------------------------------

    def history(self, name: str) -> list[dict[str, Any]]:
        """Version history of one variable (no values): version, created, deleted, destroyed."""
        with deadline_scope(self.deadline, self._where_server()):
            meta = self._read_metadata(f"{self.path}/vars/{name}")
        if meta is None:
            raise NotFoundError(f"no variable {name} in {self.source}")
        out = []
        for v, info in sorted((meta.get("versions") or {}).items(), key=lambda kv: int(kv[0])):
            out.append(
                {
                    "version": int(v),
                    "created": parse_rfc3339(str(info.get("created_time") or "")),
                    "deleted": bool(info.get("deletion_time")),
                    "destroyed": bool(info.get("destroyed")),
                }
            )
        return out
