"""A credstore profile whose entries live in OpenBao / Vault KV v2 (``store/vault.py``), configured locally.

Where its facts live:

- the plain profile file (``config``), routing facts, not secret::

    backend              "vault"
    vault.url            https://bao.example.org:8200
    vault.mount          secret                      (KV v2 mount)
    vault.prefix         credstore                   (path prefix)
    vault.user           alice                       (personal path: <prefix>/users/<user>/<profile>)
    vault.path           credstore/users/alice/default
    vault.ca_cert        /etc/ssl/private-ca.pem     (optional; TLS verification is always on)
    vault.timeout        3                           (seconds per socket operation)
    vault.deadline       5                           (seconds for a whole read; env must never hang a login)
    vault.proxy          http://proxy.example:3128   (optional; environment proxies are never used)
    vault.cache_max_age  seconds (0: no cache)
    vault.render_cache   seconds a cached render of ``env`` stays fresh (``app/render_cache.py``; 0: never cached;
                         ``CREDSTORE_VAULT_CACHE_SECONDS`` overrides; default ``DEFAULT_RENDER_CACHE``)

- the profile's LOCAL encrypted store (``store/local.py``, at its own protection level), secrets only::

    vault.token          the token (never exported by env, never listed, never on argv or in plaintext)
    vault.token_source   "token" | "approle"
    vault.token_expires  Unix time the token expires (0: never), vault.token_ttl, vault.token_renewable
    vault.cache          last-known-good copy of the remote profile (JSON), with the time it was confirmed

Entries, with the settings that matter to resolution (``fingerprint_key``), are the remote ones. Service accounts
live at ``<prefix>/services/<NAME>``, same mount. ``BAO_TOKEN`` / ``VAULT_TOKEN`` in the environment win over the
stored token (the engines' own convention; weaker: any process of the session, and anything it starts, sees it).

A ``VaultProfile`` wraps a ``VaultBackend`` (made when first needed, with the token read from the local store) and
adds the token's renewal and the cache. Only imported for profiles whose profile file says ``backend=vault``, so the
local hot path never pays for it or for ``hvac``.
"""

from __future__ import annotations

import getpass
import importlib.util
import json
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from credstore import durations
from credstore.errors import AuthError, CredstoreError, UnavailableError, UsageError
from credstore.store.base import Backend, Snapshot
from credstore.store.local import LocalStore
from credstore.store.payload import snapshot_from_data, snapshot_to_data
from credstore.store.vault import (
    DEFAULT_DEADLINE,
    VaultBackend,
    check_path,
    deadline_scope,
    display_url,
    parse_seconds,
)

T = TypeVar("T")

BACKEND = "backend"
URL = "vault.url"
MOUNT = "vault.mount"
PREFIX = "vault.prefix"
USER = "vault.user"
PATH = "vault.path"
CA_CERT = "vault.ca_cert"
TIMEOUT = "vault.timeout"
DEADLINE = "vault.deadline"
DEADLINE_ENV = "CREDSTORE_VAULT_DEADLINE"
PROXY = "vault.proxy"
TOKEN = "vault.token"  # noqa: S105 - a settings key, not a token
TOKEN_SOURCE = "vault.token_source"  # noqa: S105
TOKEN_EXPIRES = "vault.token_expires"  # noqa: S105
TOKEN_TTL = "vault.token_ttl"  # noqa: S105
TOKEN_RENEWABLE = "vault.token_renewable"  # noqa: S105
CACHE_MAX_AGE = "vault.cache_max_age"
CACHE = "vault.cache"
RENDER_CACHE = "vault.render_cache"
RENDER_CACHE_ENV = "CREDSTORE_VAULT_CACHE_SECONDS"
#: How long a render read from the server may answer ``env`` without asking it again (SECURITY.md "The render
#: cache"): a change made elsewhere (another machine, an admin) reaches this login's ``env`` within this bound.
DEFAULT_RENDER_CACHE = 60
MAX_RENDER_CACHE = 3600

DEFAULT_TIMEOUT = 3.0
DEFAULT_MOUNT = "secret"
DEFAULT_PREFIX = "credstore"
ENV_TOKENS = ("BAO_TOKEN", "VAULT_TOKEN")
_USER_RE = re.compile(r"^[A-Za-z0-9_.\-@+=]+$")


def parse_cache_age(text: str) -> float:
    """A cache maximum age: a duration (``durations.parse_duration``), or ``0`` / ``off`` / ``none`` for no cache."""
    from credstore.durations import parse_duration

    if text.strip().lower() in ("0", "off", "none", "no", "never"):
        return 0.0
    return parse_duration(text, option="--cache-max-age")


def render_cache_seconds(facts: Mapping[str, str], environ: Mapping[str, str]) -> int:
    """The freshness bound of this profile's cached render: ``$CREDSTORE_VAULT_CACHE_SECONDS`` (when set and not
    empty), else the profile's ``vault.render_cache``, else ``DEFAULT_RENDER_CACHE``. 0 means never cached."""
    text = environ.get(RENDER_CACHE_ENV, "").strip()
    where = RENDER_CACHE_ENV
    if not text:
        text, where = facts.get(RENDER_CACHE, "").strip(), f"the {RENDER_CACHE} setting"
    if not text:
        return DEFAULT_RENDER_CACHE
    return check_render_cache(text, where)


def check_render_cache(text: str, where: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_RENDER_CACHE:
        raise UsageError(
            f"{where} must be a whole number of seconds from 0 (never cache) to {MAX_RENDER_CACHE}, not {text[:40]!r}"
        )
    return int(text)


def require_hvac() -> None:
    if importlib.util.find_spec("hvac") is None:
        raise UsageError(
            "this profile keeps its entries in OpenBao / Vault, which needs hvac: pip install 'credstore[vault]'"
        )


def unix_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def check_user(user: str) -> str:
    if not _USER_RE.match(user) or user in (".", ".."):
        raise UsageError(f"invalid user name for the OpenBao path: {user!r}")
    return user


def personal_path(prefix: str, user: str, profile: str) -> str:
    return check_path("path", f"{check_path('path prefix', prefix)}/users/{check_user(user)}/{profile}")


def service_path(prefix: str, name: str) -> str:
    return check_path("path", f"{check_path('path prefix', prefix)}/services/{name}")


def env_token(environ: Mapping[str, str]) -> tuple[str, str] | None:
    """(variable name, token) from BAO_TOKEN / VAULT_TOKEN, if set."""
    for var in ENV_TOKENS:
        if environ.get(var):
            return var, environ[var]
    return None


def _snapshot_to_json(snapshot: Snapshot) -> dict[str, Any]:
    return {**snapshot_to_data(snapshot), "generation": snapshot.generation}


def _snapshot_from_json(data: Mapping[str, Any]) -> Snapshot:
    return snapshot_from_data(data, int(data.get("generation", 0)))


def _cache_content(snapshot: Snapshot) -> str:
    """What decides whether the cache must be rewritten (the times too: ``list`` shows ages from them)."""
    return json.dumps(snapshot_to_data(snapshot), sort_keys=True, separators=(",", ":"))


class VaultProfile(Backend):
    """The remote profile, plus the local store that holds its token and last-known-good cache."""

    def __init__(
        self,
        local: LocalStore,
        facts: Mapping[str, str],
        *,
        environ: Mapping[str, str] = os.environ,
        path: str | None = None,
        source: str | None = None,
        name: str | None = None,
        use_cache: bool = True,
        warn: Callable[[str], None] | None = None,
        secrets: dict[str, str] | None = None,
    ) -> None:
        require_hvac()
        self.local = local
        self.profile = local.profile
        self.facts = dict(facts)
        self.environ = environ
        self.use_cache = use_cache
        #: The service account's name when this is one (``service_account``), else None.
        self.name = name
        self._warn = warn or (lambda msg: sys.stderr.write(f"credstore: {msg}\n"))
        from_env = env_token(environ)
        self.token_var = from_env[0] if from_env else None
        self._env_token = from_env[1] if from_env else None
        self.url = self.facts.get(URL, "")
        if not self.url:
            raise UsageError(f"profile '{local.profile}' has no OpenBao address; run `credstore init --backend vault`")
        self.timeout = parse_seconds(
            environ.get("CREDSTORE_VAULT_TIMEOUT") or self.facts.get(TIMEOUT) or DEFAULT_TIMEOUT,
            "CREDSTORE_VAULT_TIMEOUT" if environ.get("CREDSTORE_VAULT_TIMEOUT") else f"the {TIMEOUT} setting",
        )
        self.deadline = parse_seconds(
            environ.get(DEADLINE_ENV) or self.facts.get(DEADLINE) or DEFAULT_DEADLINE,
            DEADLINE_ENV if environ.get(DEADLINE_ENV) else f"the {DEADLINE} setting",
        )
        self.proxy = self.facts.get(PROXY) or None
        self.ca_cert = self.facts.get(CA_CERT) or None
        self.mount = self.facts.get(MOUNT, DEFAULT_MOUNT)
        self.path = path or self.facts.get(PATH, "")
        if not self.path:
            raise UsageError(f"profile '{local.profile}' has no OpenBao path; run `credstore init --backend vault`")
        self.source = source or f"vault:{self.mount}/{self.path}"
        self._secrets: dict[str, str] | None = secrets
        self._remote: VaultBackend | None = None

    def __repr__(self) -> str:
        return f"VaultProfile(profile={self.profile!r}, url={display_url(self.url)!r}, source={self.source!r})"

    # -- the local half: token and cache ---------------------------------------------------------------------------

    @property
    def secrets(self) -> dict[str, str]:
        """The local store's settings (token, cache): decrypted once, when first needed."""
        if self._secrets is None:
            self._secrets = dict(self.local.read().settings)
        return self._secrets

    @property
    def token(self) -> str:
        token = self._env_token if self._env_token else self.secrets.get(TOKEN, "")
        if not token:
            raise AuthError(
                f"no OpenBao token for profile '{self.profile}'; run `credstore vault login` "
                "(or set BAO_TOKEN / VAULT_TOKEN)"
            )
        return token

    def update_local(self, values: Mapping[str, str | None]) -> None:
        """Set (or, for None, remove) secret settings of the local store (token, cache), and remember them here."""
        self.local.modify(lambda snapshot: apply_settings(snapshot.settings, values))
        apply_settings(self.secrets, values)

    # -- the remote half -------------------------------------------------------------------------------------------

    @property
    def remote(self) -> VaultBackend:
        if self._remote is None:
            self._remote = VaultBackend(
                self.url,
                self.token,
                mount=self.mount,
                path=self.path,
                source=self.source,
                timeout=self.timeout,
                deadline=self.deadline,
                ca_cert=self.ca_cert,
                proxy=self.proxy,
            )
        return self._remote

    def exists(self) -> bool:
        """Configured locally is enough: the remote settings are written with the first change."""
        return True

    def auth_context(self, exc: AuthError) -> AuthError:
        if self.token_var:
            return AuthError(f"{exc} (the token came from ${self.token_var}; unset it to use the stored one)")
        return exc

    @property
    def cache_max_age(self) -> float:
        try:
            return float(self.facts.get(CACHE_MAX_AGE) or 0)
        except ValueError:
            return 0.0

    def read(self) -> Snapshot:
        try:
            with deadline_scope(self.deadline, f"OpenBao at {display_url(self.url)}"):  # a renewal shares it
                snapshot = self.remote.read()
                self.maybe_renew()
        except AuthError as exc:
            raise self.auth_context(exc) from None
        except UnavailableError as exc:
            cached = self._cached(exc)
            if cached is None:
                raise
            self.read_from_fallback = True
            return cached
        if self.use_cache and self.cache_max_age > 0:
            self._update_cache(snapshot)
        return snapshot

    def modify(self, change: Callable[[Snapshot], T]) -> T:
        def with_fingerprint_key(snapshot: Snapshot) -> T:
            if not snapshot.settings.get("fingerprint_key"):
                snapshot.settings["fingerprint_key"] = os.urandom(32).hex()
            return change(snapshot)

        try:
            return self.remote.modify(with_fingerprint_key)
        except AuthError as exc:
            raise self.auth_context(exc) from None
        finally:
            if self.after_write is not None:  # also after a failure: the server may have taken part of it
                self.after_write()

    def history(self, name: str) -> list[dict[str, Any]]:
        return self.remote.history(name)

    def service_account(self, name: str) -> VaultProfile:
        """Team service account NAME at ``<prefix>/services/<NAME>``, reached with this profile's connection and
        token."""
        path = service_path(self.facts.get(PREFIX, DEFAULT_PREFIX), name)
        service = VaultProfile(
            self.local,
            self.facts,
            environ=self.environ,
            path=path,
            source=f"vault:{self.mount}/{path}",
            name=name,
            use_cache=False,
            warn=self._warn,
            secrets=self._secrets,
        )
        service.after_write = self.after_write
        return service

    # -- last-known-good cache --------------------------------------------------------------------------------

    def _cached(self, exc: UnavailableError) -> Snapshot | None:
        if not self.use_cache or self.cache_max_age <= 0:
            return None
        raw = self.secrets.get(CACHE)
        if not raw:
            raise UnavailableError(f"{exc}; no cached copy yet") from None
        try:
            data = json.loads(raw)
            if data.get("path") != self.path:
                return None
            confirmed = float(data["time"])
            snapshot = _snapshot_from_json(data["snapshot"])
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        age = time.time() - confirmed
        if age > self.cache_max_age:
            raise UnavailableError(
                f"{exc}; the cached copy is {durations.format_duration(age)} old, older than the allowed "
                f"{durations.format_duration(self.cache_max_age)}"
            ) from None
        self._warn(f"{exc}; using the cached copy from {durations.format_duration(age)} ago")
        return snapshot

    def _update_cache(self, snapshot: Snapshot) -> None:
        """Keep the copy in the local encrypted store; rewrite it only when it changed or is getting old."""
        now = time.time()
        content = _cache_content(snapshot)
        try:
            old = json.loads(self.secrets.get(CACHE) or "{}")
            fresh_enough = now - float(old.get("time", 0)) < min(self.cache_max_age / 4, 3600)
            if old.get("path") == self.path and old.get("content") == content and fresh_enough:
                return
        except (ValueError, TypeError, AttributeError):
            pass
        record = json.dumps(
            {"path": self.path, "time": now, "content": content, "snapshot": _snapshot_to_json(snapshot)},
            separators=(",", ":"),
        )
        try:
            self.update_local({CACHE: record})
        except (CredstoreError, OSError):  # best effort: a full disk must not break env
            return

    def cache_info(self) -> dict[str, Any]:
        raw = self.secrets.get(CACHE)
        info: dict[str, Any] = {"enabled": self.cache_max_age > 0, "max_age": self.cache_max_age, "age": None}
        info["entries"] = 0
        if raw:
            try:
                data = json.loads(raw)
                info.update(age=time.time() - float(data["time"]), entries=len(data["snapshot"]["entries"]))
            except (ValueError, KeyError, TypeError):
                pass
        return info

    # -- token ------------------------------------------------------------------------------------------------

    def maybe_renew(self, *, force: bool = False) -> int | None:
        """Renew a stored renewable token when a third or less of its ttl is left (or ``force``); new ttl or None.

        Never fails the caller's command: a renewal that does not work leaves the token as it was.
        """
        if self.token_var or self.secrets.get(TOKEN_RENEWABLE) != "true":
            return None
        try:
            expires = float(self.secrets.get(TOKEN_EXPIRES) or 0)
            ttl = float(self.secrets.get(TOKEN_TTL) or 0)
        except ValueError:
            return None
        if expires <= 0:
            return None
        left = expires - time.time()
        if not force and left > ttl / 3:
            return None
        from credstore.store.vault import renew_token

        try:
            new_ttl = renew_token(self.url, self.secrets[TOKEN], **self.remote.connection.options())
            self.update_local(token_settings(None, {"ttl": new_ttl, "renewable": True}))
        except (CredstoreError, OSError):
            return None
        return new_ttl


def apply_settings(settings: dict[str, str], values: Mapping[str, str | None]) -> None:
    """Set each of ``values`` in ``settings``; None removes the key."""
    for key, value in values.items():
        if value is None:
            settings.pop(key, None)
        else:
            settings[key] = value


def token_settings(token: str | None, info: Mapping[str, Any], source: str | None = None) -> dict[str, str | None]:
    """Local settings describing a token (``token`` None: keep the stored token itself)."""
    ttl = int(info.get("ttl") or 0)
    out: dict[str, str | None] = {
        TOKEN_TTL: str(ttl),
        TOKEN_EXPIRES: repr(time.time() + ttl) if ttl else "0",
        TOKEN_RENEWABLE: "true" if info.get("renewable") else "false",
    }
    if token is not None:
        out[TOKEN] = token
    if source is not None:
        out[TOKEN_SOURCE] = source
    return out


def describe(facts: Mapping[str, str]) -> str:
    """One line naming where a vault profile lives (no token)."""
    url = display_url(facts.get(URL, "?"))
    return f"{url} {facts.get(MOUNT, DEFAULT_MOUNT)}/{facts.get(PATH, '?')}"
