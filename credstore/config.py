"""Where things live and which profile is meant: read from the environment, never from argv for secrets."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from credstore.errors import CredstoreError, UsageError
from credstore.store.base import Backend, Snapshot
from credstore.store.local import LocalStore, check_profile_name

DEFAULT_PROFILE = "default"
T = TypeVar("T")


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


def profile_name(explicit: str | None = None, environ: Mapping[str, str] = os.environ) -> str:
    """``--profile`` (``explicit``), else ``CREDSTORE_PROFILE``, else ``default``.

    Only ``None`` means "not given": an explicitly empty profile (``--profile ""``, ``profile=""``) is a usage error,
    never a silent fall back to another profile. An empty ``CREDSTORE_PROFILE`` counts as unset, since
    ``CREDSTORE_PROFILE=`` (or ``export CREDSTORE_PROFILE=``) is how a shell clears a variable for one command.

    Seam: choosing a person's profile automatically on a shared account (e.g. from the SSH key they logged in
    with) belongs here.
    """
    if explicit is None:
        return check_profile_name(environ.get("CREDSTORE_PROFILE") or DEFAULT_PROFILE)
    if explicit == "":
        raise UsageError("--profile is empty: name a profile, or leave the option out for $CREDSTORE_PROFILE / default")
    return check_profile_name(explicit)


def open_profile(
    profile: str | None = None,
    *,
    environ: Mapping[str, str] = os.environ,
    interactive: bool = False,
    ask_passphrase: Callable[[str], str] | None = None,
    use_session_cache: bool = True,
) -> LocalStore:
    """The profile's store. Unless ``use_session_cache`` is false, an unlocked data key is looked up in (and a new
    store's key put into) this login's kernel session keyring (passphrase and keyring levels only)."""
    dek_cache = None
    if use_session_cache:
        from credstore.crypto.session_cache import SessionDekCache

        dek_cache = SessionDekCache()
    return LocalStore(
        store_home(environ),
        profile_name(profile, environ),
        state_dir=state_dir(environ),
        interactive=interactive,
        ask_passphrase=ask_passphrase,
        dek_cache=dek_cache,
        lock_timeout=float(environ.get("CREDSTORE_LOCK_TIMEOUT", "10")),
    )


def open_backend(
    profile: str | None = None,
    *,
    environ: Mapping[str, str] = os.environ,
    interactive: bool = False,
    ask_passphrase: Callable[[str], str] | None = None,
) -> Backend:
    """The backend that holds the profile's entries: the local store itself, or, for a profile connected with
    ``credstore init --backend vault``, its OpenBao / Vault KV v2 path (configured by the local store's settings).

    Every command that reads or changes entries opens them through here. The remote module (and ``hvac``) is only
    imported for a vault profile.
    """
    local = open_profile(profile, environ=environ, interactive=interactive, ask_passphrase=ask_passphrase)
    if not local.exists():
        return local
    try:
        settings = local.read().settings
    except CredstoreError as exc:  # locked, wrong passphrase, ...: fail where the command reads, not here
        return _Unreadable(local, exc)
    if settings.get("backend") != "vault":
        return local
    from credstore.store.vault_profile import VaultProfile

    return VaultProfile(local, settings, environ=environ)


def open_service(name: str, profile: Backend | None = None, environ: Mapping[str, str] = os.environ) -> Backend:
    """Service account NAME as the person's profile reaches it: beside a remote profile on the same engine (access
    by the engine's policies), else the shared directory of this machine (access by Unix group)."""
    opener = getattr(profile, "open_service", None)
    if opener is not None:
        return opener(name)  # type: ignore[no-any-return]
    from credstore.store.shared import open_service as open_shared_service

    return open_shared_service(name, environ)


class _Unreadable(Backend):
    """A profile whose local store could not be opened: the error is raised where the command reads or writes it
    (so its callers handle it as they would a failed read), without asking for a passphrase twice."""

    def __init__(self, local: LocalStore, error: CredstoreError) -> None:
        self._local = local
        self._error = error
        self.source = local.source

    def __getattr__(self, name: str) -> object:
        return getattr(self._local, name)

    def exists(self) -> bool:
        return True

    def read(self) -> Snapshot:
        raise self._error

    def modify(self, change: Callable[[Snapshot], T]) -> T:
        raise self._error
