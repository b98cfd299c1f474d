"""OpenBao / HashiCorp Vault KV v2 backend.

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

Round trips: ``read()`` costs 2 + 2 x (number of variables) requests: LIST ``vars``, GET ``settings`` and, per
variable, GET its metadata (current version, times) and GET that exact version's data (reading the version named by
the metadata makes the pair consistent even when a writer is busy). They run on a small thread pool.

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
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, TypeVar

from credstore.errors import (
    AuthError,
    BusyError,
    CredstoreError,
    NotFoundError,
    PermissionProblem,
    UnavailableError,
    UsageError,
)
from credstore.store.base import Backend, Entry, Snapshot

T = TypeVar("T")

_LOGIN_HINT = "run `credstore vault login`"
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")
_SEGMENT_RE = re.compile(r"^[A-Za-z0-9_.\-@+=]+$")
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


def _check_path(what: str, value: str) -> str:
    value = value.strip("/")
    parts = value.split("/")
    if not value or any(p in ("", ".", "..") or not _SEGMENT_RE.match(p) for p in parts):
        raise UsageError(f"invalid OpenBao {what}: {value!r}")
    return value


def _display_url(url: str) -> str:
    """The URL without any user:password@ part."""
    return re.sub(r"//[^/@]*@", "//", url.rstrip("/"))


class _CasConflict(Exception):
    """Internal: a check-and-set write lost the race."""


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


class _Session:
    """Maps hvac / requests failures to credstore errors. Holds the token; never shows it."""

    def __init__(self, url: str, token: str, *, timeout: float, ca_cert: str | None, verify: bool) -> None:
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"OpenBao address must start with http:// or https://: {_display_url(url)}")
        self.url = url.rstrip("/")
        self.shown_url = _display_url(url)
        self.__token = token
        self.timeout = float(timeout)
        self.ca_cert = ca_cert
        self.verify: bool | str = ca_cert if ca_cert else verify
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"_Session(url={self.shown_url!r})"

    def client(self) -> Any:
        """An ``hvac.Client`` for this thread (requests sessions are not promised to be thread-safe)."""
        client = getattr(self._local, "client", None)
        if client is None:
            import hvac

            client = hvac.Client(url=self.url, token=self.__token, timeout=self.timeout, verify=self.verify)
            self._local.client = client
        return client

    def _token_rejected(self) -> bool:
        """After a 403: is the token itself invalid or expired (rather than lacking a policy)?

        OpenBao answers a bad token and a missing capability alike with 403 "permission denied" (quirk: the first
        as the bare string, the second wrapped as "1 error occurred: * permission denied"). Ask lookup-self, which
        the default policy allows to every valid token.
        """
        import hvac.exceptions as hx

        try:
            self.client().auth.token.lookup_self()
        except hx.Forbidden as exc:
            return not any("error occurred" in str(e) for e in (exc.errors or []))
        except Exception:  # only refines the message; the caller raises an error either way
            return False
        return False

    @contextmanager
    def errors(self, what: str) -> Iterator[None]:
        """Turn transport and server failures inside the block into credstore errors naming ``what``."""
        import hvac.exceptions as hx
        import requests.exceptions as rx

        try:
            yield
        except CredstoreError:
            raise
        except rx.RequestException as exc:
            # The mapped error is raised "from None", but the original stays reachable as __context__, and a
            # requests exception carries the prepared request, whose headers hold X-Vault-Token: drop it.
            exc.request = None
            exc.response = None
            raise self._transport_error(exc) from None
        except hx.InvalidRequest as exc:
            if any("check-and-set" in str(e) for e in (exc.errors or [])):
                raise _CasConflict() from None
            raise CredstoreError(f"OpenBao refused the request for {what}: {_server_text(exc)}") from None
        except hx.Unauthorized:
            raise AuthError(f"OpenBao token expired or invalid; {_LOGIN_HINT}") from None
        except hx.Forbidden:
            if self._token_rejected():
                raise AuthError(f"OpenBao token expired or invalid; {_LOGIN_HINT}") from None
            raise PermissionProblem(f"OpenBao denied access to {what}: the token's policies do not allow it") from None
        except hx.InvalidPath as exc:
            raise NotFoundError(f"OpenBao has nothing at {what} ({_server_text(exc) or 'not found'})") from None
        except (hx.VaultDown, hx.VaultNotInitialized):
            raise UnavailableError(f"OpenBao at {self.shown_url} is sealed or not initialized") from None
        except hx.RateLimitExceeded:
            raise BusyError(f"OpenBao at {self.shown_url} is rate-limiting requests; try again") from None
        except hx.VaultError as exc:
            raise CredstoreError(f"OpenBao failed on {what}: {_server_text(exc)}") from None

    def _transport_error(self, exc: Exception) -> CredstoreError:
        import requests.exceptions as rx

        if isinstance(exc, rx.SSLError):
            return UnavailableError(
                f"TLS handshake with OpenBao at {self.shown_url} failed: certificate not trusted or invalid; "
                "pass the server's CA with --ca-cert"
            )
        if isinstance(exc, rx.Timeout):
            return UnavailableError(f"OpenBao at {self.shown_url} did not answer within {self.timeout:.1f} s")
        if isinstance(exc, rx.ConnectionError):
            return UnavailableError(f"OpenBao at {self.shown_url} is not answering (connection refused or unreachable)")
        return UnavailableError(f"OpenBao at {self.shown_url}: {type(exc).__name__}")


def _server_text(exc: Exception) -> str:
    errors = getattr(exc, "errors", None) or []
    text = "; ".join(" ".join(str(e).split()) for e in errors)
    return text[:300]


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
        timeout: float = 3.0,
        ca_cert: str | None = None,
        verify: bool = True,
        max_retries: int = 20,
        lock_ttl: float = 10.0,
        lock_wait: float = 30.0,
        workers: int = 8,
        lock: bool = True,
    ) -> None:
        if not token:
            raise AuthError(f"no OpenBao token; {_LOGIN_HINT}")
        self.mount = _check_path("mount", mount)
        self.path = _check_path("path", path)
        self.source = source
        self.max_retries = max_retries
        self.lock_ttl = lock_ttl
        self.lock_wait = lock_wait
        self.workers = max(1, workers)
        self.lock = lock
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._s = _Session(url, token, timeout=timeout, ca_cert=ca_cert, verify=verify)

    def __repr__(self) -> str:
        return (
            f"VaultBackend(url={self._s.shown_url!r}, mount={self.mount!r}, path={self.path!r}, source={self.source!r})"
        )

    @property
    def url(self) -> str:
        return self._s.shown_url

    # -- small KV helpers -------------------------------------------------------------------------------------

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
            settings_future = pool.submit(settings)
            results = list(pool.map(self._read_var, names))
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

    def close(self) -> None:
        """Stop the reader threads (optional; they also end with the process)."""
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def read(self) -> Snapshot:
        return self._read_raw().snapshot

    # -- writing ----------------------------------------------------------------------------------------------

    def modify(self, change: Callable[[Snapshot], T]) -> T:
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
            except _CasConflict:
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
            except _CasConflict:
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
            except _CasConflict:
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
                except _CasConflict:
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
        with suppress(_CasConflict, CredstoreError):
            self._write(f"{self.path}/lock", {"state": "free", "holder": holder}, version)

    # -- maintenance ------------------------------------------------------------------------------------------

    def history(self, name: str) -> list[dict[str, Any]]:
        """Version history of one variable (no values): version, created, deleted, destroyed."""
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

    def purge(self) -> None:
        """Delete the whole profile: every variable with all its versions, the settings and the lock."""
        paths = [f"{self.path}/vars/{n}" for n in self._list_vars()]
        paths += [f"{self.path}/settings", f"{self.path}/lock"]
        for kv_path in paths:
            with self._s.errors(f"{self.mount}/{kv_path}"):
                self._kv().delete_metadata_and_all_versions(kv_path, mount_point=self.mount)


# -- auth helpers -------------------------------------------------------------------------------------------------


def _session(url: str, token: str, timeout: float, ca_cert: str | None, verify: bool) -> _Session:
    return _Session(url, token, timeout=timeout, ca_cert=ca_cert, verify=verify)


def login_approle(
    url: str,
    role_id: str,
    secret_id: str,
    *,
    mount: str = "approle",
    timeout: float = 3.0,
    ca_cert: str | None = None,
    verify: bool = True,
) -> str:
    """Log in with AppRole and return the client token. Neither the secret id nor the token appears in errors."""
    import hvac.exceptions as hx

    s = _session(url, "-", timeout, ca_cert, verify)
    mount = _check_path("auth mount", mount)
    try:
        with s.errors(f"auth/{mount}/login"):
            try:
                resp = s.client().auth.approle.login(role_id, secret_id, use_token=False, mount_point=mount)
            except (hx.InvalidRequest, hx.Forbidden) as exc:
                raise AuthError(f"AppRole login at {s.shown_url} refused: {_server_text(exc)}") from None
    except NotFoundError:
        raise AuthError(f"AppRole login at {s.shown_url}: no AppRole auth mounted at auth/{mount}") from None
    token = ((resp or {}).get("auth") or {}).get("client_token")
    if not token:
        raise AuthError(f"AppRole login at {s.shown_url} returned no token")
    return str(token)


def token_info(
    url: str, token: str, *, timeout: float = 3.0, ca_cert: str | None = None, verify: bool = True
) -> dict[str, Any]:
    """ttl (s, 0 = never expires), renewable, policies, expire_time, display_name, type of a token (not its id)."""
    import hvac.exceptions as hx

    s = _session(url, token, timeout, ca_cert, verify)
    with s.errors("auth/token/lookup-self"):
        try:
            data = s.client().auth.token.lookup_self()["data"]
        except hx.Forbidden:
            raise AuthError(f"OpenBao token expired or invalid; {_LOGIN_HINT}") from None
    return {
        "ttl": int(data.get("ttl") or 0),
        "renewable": bool(data.get("renewable")),
        "policies": list(data.get("policies") or []),
        "expire_time": data.get("expire_time"),
        "display_name": data.get("display_name"),
        "type": data.get("type"),
    }


def renew_token(
    url: str,
    token: str,
    *,
    increment: int | None = None,
    timeout: float = 3.0,
    ca_cert: str | None = None,
    verify: bool = True,
) -> int:
    """Renew the token and return its new ttl in seconds; a token that is not renewable is left alone (its ttl)."""
    info = token_info(url, token, timeout=timeout, ca_cert=ca_cert, verify=verify)
    if not info["renewable"]:
        return int(info["ttl"])
    s = _session(url, token, timeout, ca_cert, verify)
    with s.errors("auth/token/renew-self"):
        resp = s.client().auth.token.renew_self(increment=f"{increment}s" if increment else None)
    return int(((resp or {}).get("auth") or {}).get("lease_duration") or 0)
