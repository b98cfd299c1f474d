"""Where things live, which profile is meant, and which backend holds it.

This is the only module that opens backends: the person's profile (``open_backend``), its local encrypted store
(``open_local``) and service accounts (``open_service``). Everything above it is handed backends already open.

Routing without decrypting: the non-secret facts about a profile (which backend; for OpenBao the URL, mount, path,
CA file, timeouts, cache age) live in a plain 0600 *profile file* beside the store, ``profiles/<name>.profile``, so
choosing the backend reads that file and nothing else. The encrypted store keeps an authenticated copy of the same
text (setting ``profile``): a profile file changed outside credstore is refused when the store is read, so nobody
who can only write files can send the OpenBao token elsewhere. A store made before profile files existed has none:
it is routed by its encrypted settings once, and migrated (file written, copy recorded) on that first open
(docs/FORMAT.md, "Profile file").
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from credstore import fsutil
from credstore.errors import CorruptStoreError, NotFoundError, PermissionProblem, StoreIOError, UsageError
from credstore.errors import profile_flag as errors_profile_flag
from credstore.store.base import Backend
from credstore.store.local import BINDING_SETTING, LocalStore
from credstore.store.payload import check_store_name

DEFAULT_PROFILE = "default"
BACKEND = "backend"
LOCAL = "local"
VAULT = "vault"
#: Settings of stores made before profile files existed that are routing facts (moved into the profile file).
_LEGACY_ROUTING_PREFIX = "vault."
_LEGACY_SECRET_SETTINGS = frozenset(
    {
        "vault.token",
        "vault.token_source",
        "vault.token_expires",
        "vault.token_ttl",
        "vault.token_renewable",
        "vault.cache",
    }
)


# -- paths -----------------------------------------------------------------------------------------------------------


def store_home(environ: Mapping[str, str] = os.environ) -> Path:
    """``CREDSTORE_HOME``, else ``platformdirs.user_data_dir("credstore")``."""
    override = environ.get("CREDSTORE_HOME")
    if override:
        return Path(override).expanduser().absolute()
    if sys.platform == "linux":
        # What platformdirs.user_data_dir returns on Linux, without its import on the hot path (tested equal).
        base = environ.get("XDG_DATA_HOME", "").strip() or os.path.expanduser("~/.local/share")
        return Path(base) / "credstore"
    import platformdirs

    return Path(platformdirs.user_data_dir("credstore", appauthor=False))


def state_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where credstore remembers things about stores outside them (highest generation seen)."""
    override = environ.get("CREDSTORE_STATE_DIR")
    if override:
        return Path(override).expanduser().absolute()
    if environ.get("CREDSTORE_HOME"):
        return Path(environ["CREDSTORE_HOME"]).expanduser().absolute() / "state"
    if sys.platform == "linux":
        base = environ.get("XDG_STATE_HOME", "").strip() or os.path.expanduser("~/.local/state")
        return Path(base) / "credstore"
    import platformdirs

    return Path(platformdirs.user_state_dir("credstore", appauthor=False))


def shared_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """The shared directory of this machine's service accounts: ``CREDSTORE_SHARED_DIR``, else /etc/credstore."""
    from credstore.store.shared import DEFAULT_SHARED_DIR

    override = environ.get("CREDSTORE_SHARED_DIR")
    return Path(override).expanduser().absolute() if override else Path(DEFAULT_SHARED_DIR)


def audit_log(environ: Mapping[str, str] = os.environ) -> Path:
    return store_home(environ) / "audit.log"


def shared_audit_log(environ: Mapping[str, str] = os.environ) -> Path:
    return shared_dir(environ) / "audit.log"


def lock_timeout(environ: Mapping[str, str] = os.environ) -> float:
    return float(environ.get("CREDSTORE_LOCK_TIMEOUT", "10"))


def profile_name(explicit: str | None = None, environ: Mapping[str, str] = os.environ) -> str:
    """``--profile`` (``explicit``), else ``CREDSTORE_PROFILE``, else ``default``.

    Only ``None`` means "not given": an explicitly empty profile (``--profile ""``, ``profile=""``) is a usage error,
    never a silent fall back to another profile. An empty ``CREDSTORE_PROFILE`` counts as unset, since
    ``CREDSTORE_PROFILE=`` (or ``export CREDSTORE_PROFILE=``) is how a shell clears a variable for one command.

    Seam: choosing a person's profile automatically on a shared account (e.g. from the SSH key they logged in
    with) belongs here.
    """
    if explicit is None:
        return check_store_name(environ.get("CREDSTORE_PROFILE") or DEFAULT_PROFILE)
    if explicit == "":
        raise UsageError("--profile is empty: name a profile, or leave the option out for $CREDSTORE_PROFILE / default")
    return check_store_name(explicit)


def profile_flag(profile: str) -> str:
    """``--profile NAME `` for hints that name a command, empty for the default profile."""
    return errors_profile_flag(profile)


# -- the profile file ------------------------------------------------------------------------------------------------


def profile_file(profile: str, environ: Mapping[str, str] = os.environ) -> Path:
    return store_home(environ) / "profiles" / f"{profile}.profile"


def encode_facts(facts: Mapping[str, str]) -> str:
    """The one text form of a profile's routing facts (the profile file, and its copy inside the store)."""
    return json.dumps(dict(sorted(facts.items())), sort_keys=True, separators=(",", ":"), ensure_ascii=True) + "\n"


def decode_facts(text: str, where: object) -> dict[str, str]:
    try:
        data: Any = json.loads(text)
        if not isinstance(data, dict) or data.get(BACKEND) not in (LOCAL, VAULT):
            raise ValueError
        facts = {str(k): str(v) for k, v in data.items()}
    except ValueError:
        raise CorruptStoreError(
            f"{where} is not a credstore profile file; remove it to rebuild it from the store"
        ) from None
    return facts


def _read_profile_file(path: Path) -> str | None:
    try:
        data = fsutil.read_private(path)
    except NotFoundError:
        return None
    except StoreIOError:
        if not path.parent.is_dir():  # no profiles directory (e.g. the home is a file): the store says the rest
            return None
        raise
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise CorruptStoreError(
            f"{path} is not a credstore profile file; remove it to rebuild it from the store"
        ) from None


def _write_profile_file(path: Path, text: str) -> None:
    fsutil.ensure_private_dir(path.parent)
    fsutil.atomic_replace(path, text.encode("ascii"))


def routing(profile: str | None = None, environ: Mapping[str, str] = os.environ) -> dict[str, str] | None:
    """The profile's routing facts from its plain profile file, or None when it has none (no profile, or a store
    made before profile files: then only its encrypted settings say)."""
    name = profile_name(profile, environ)
    path = profile_file(name, environ)
    text = _read_profile_file(path)
    return None if text is None else decode_facts(text, path)


# -- opening ---------------------------------------------------------------------------------------------------------


def open_local(
    profile: str | None = None,
    *,
    environ: Mapping[str, str] = os.environ,
    interactive: bool = False,
    ask_passphrase: Callable[[str], str] | None = None,
    use_session_cache: bool = True,
) -> LocalStore:
    """The profile's local encrypted store (for a vault profile: the one holding its token and cache). Unless
    ``use_session_cache`` is false, an unlocked data key is looked up in (and a new store's key put into) this
    login's kernel session keyring, for levels whose ``caches_data_key`` says so."""
    dek_cache = None
    if use_session_cache:
        from credstore.crypto.session_cache import SessionDekCache

        dek_cache = SessionDekCache()
    name = profile_name(profile, environ)
    path = profile_file(name, environ)
    return LocalStore(
        store_home(environ),
        name,
        state_dir=state_dir(environ),
        interactive=interactive,
        ask_passphrase=ask_passphrase,
        dek_cache=dek_cache,
        lock_timeout=lock_timeout(environ),
        binding=_read_profile_file(path),
        unbound=_legacy_binding,
    )


def open_backend(
    profile: str | None = None,
    *,
    environ: Mapping[str, str] = os.environ,
    interactive: bool = False,
    ask_passphrase: Callable[[str], str] | None = None,
) -> Backend:
    """The backend that holds the profile's entries: the local store itself, or, for a profile connected with
    ``credstore init --backend vault``, its OpenBao / Vault KV v2 path. Chosen from the plain profile file: nothing
    is decrypted here (except once, to migrate a store made before profile files). The remote module (and ``hvac``)
    is imported for a vault profile only."""
    local = open_local(profile, environ=environ, interactive=interactive, ask_passphrase=ask_passphrase)
    if local.binding is None:
        if not local.exists():
            return local
        facts = _migrate(local, environ)
    else:
        facts = decode_facts(local.binding, profile_file(local.profile, environ))
    return _backend_for(local, facts, environ)


def _backend_for(local: LocalStore, facts: Mapping[str, str], environ: Mapping[str, str]) -> Backend:
    if facts.get(BACKEND) != VAULT:
        return local
    from credstore.store.vault_profile import VaultProfile

    return VaultProfile(local, facts, environ=environ)


def legacy_facts(settings: Mapping[str, str]) -> dict[str, str]:
    """The routing facts of a store written before profile files, from its encrypted settings."""
    if settings.get(BINDING_SETTING):
        return decode_facts(settings[BINDING_SETTING], "the profile copy inside the store")
    if settings.get(BACKEND) != VAULT:
        return {BACKEND: LOCAL}
    facts = {k: v for k, v in settings.items() if k.startswith(_LEGACY_ROUTING_PREFIX)}
    facts = {k: v for k, v in facts.items() if k not in _LEGACY_SECRET_SETTINGS}
    facts[BACKEND] = VAULT
    return facts


def _legacy_binding(settings: dict[str, str]) -> str:
    return encode_facts(legacy_facts(settings))


def _migrate(local: LocalStore, environ: Mapping[str, str]) -> dict[str, str]:
    """Route a store that has no profile file by its encrypted settings and write the file (best effort: a
    read-only home is routed the same way next time). The store itself records its copy at its next write."""
    facts = legacy_facts(local.read().settings)
    text = encode_facts(facts)
    local.binding = text
    with contextlib.suppress(StoreIOError, PermissionProblem):
        _write_profile_file(profile_file(local.profile, environ), text)
    return facts


def create_local(
    local: LocalStore, kind: str, facts: Mapping[str, str] | None = None, environ: Mapping[str, str] = os.environ
) -> None:
    """Create the profile's encrypted store at level ``kind`` with its profile file (default: the local backend)."""
    text = encode_facts(facts or {BACKEND: LOCAL})
    local.binding = text
    local.create(kind)
    _write_profile_file(profile_file(local.profile, environ), text)


def set_routing(local: LocalStore, facts: Mapping[str, str], environ: Mapping[str, str] = os.environ) -> None:
    """Replace the profile's routing facts: the copy inside the store first, then the plain file."""
    text = encode_facts(facts)
    local.rebind(text)
    _write_profile_file(profile_file(local.profile, environ), text)


def open_service(
    name: str,
    *,
    profile: str | None = None,
    opened: Backend | None = None,
    environ: Mapping[str, str] = os.environ,
    interactive: bool = False,
    ask_passphrase: Callable[[str], str] | None = None,
) -> Backend:
    """Service account NAME as the person's profile reaches it: beside a remote profile on the same engine (access
    by the engine's policies, with the profile's token), else the shared directory of this machine (access by Unix
    group). ``opened``: the profile's backend when the caller has it open already. A local profile's store is never
    opened (nor its passphrase asked) to reach a shared service account."""
    from credstore.store.shared import check_service_name

    check_service_name(name)
    if opened is None:
        facts = routing(profile, environ)
        if facts is None:
            # No profile file: no profile (shared service), or a store made before profile files (ask the store).
            local = open_local(profile, environ=environ)
            if local.exists():
                opened = open_backend(profile, environ=environ, interactive=interactive, ask_passphrase=ask_passphrase)
        elif facts.get(BACKEND) == VAULT:
            opened = open_backend(profile, environ=environ, interactive=interactive, ask_passphrase=ask_passphrase)
    beside = opened.service_account(name) if opened is not None else None
    if beside is not None:
        return beside
    return open_shared_service(name, environ)


def open_shared_service(name: str, environ: Mapping[str, str] = os.environ):  # -> ServiceStore
    """Service account NAME in this machine's shared directory (access by Unix group)."""
    from credstore.store.shared import ServiceStore

    return ServiceStore(shared_root(environ), name, state_dir=state_dir(environ), lock_timeout=lock_timeout(environ))


def shared_root(environ: Mapping[str, str] = os.environ):  # -> SharedRoot
    from credstore.store.shared import SharedRoot

    return SharedRoot(shared_dir(environ), explicit=bool(environ.get("CREDSTORE_SHARED_DIR")))
