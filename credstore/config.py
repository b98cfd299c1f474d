"""Where things live and which profile is meant: read from the environment, never from argv for secrets."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from credstore.store.base import Backend
from credstore.store.local import LocalStore, check_profile_name

DEFAULT_PROFILE = "default"


def store_home(environ: Mapping[str, str] = os.environ) -> Path:
    """``CREDSTORE_HOME``, else ``platformdirs.user_data_dir("credstore")``."""
    override = environ.get("CREDSTORE_HOME")
    if override:
        return Path(override).expanduser().absolute()
    import platformdirs

    return Path(platformdirs.user_data_dir("credstore", appauthor=False))


def state_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where credstore remembers things about stores outside them (highest generation seen)."""
    override = environ.get("CREDSTORE_STATE_DIR")
    if override:
        return Path(override).expanduser().absolute()
    if environ.get("CREDSTORE_HOME"):
        return Path(environ["CREDSTORE_HOME"]).expanduser().absolute() / "state"
    import platformdirs

    return Path(platformdirs.user_state_dir("credstore", appauthor=False))


def profile_name(explicit: str | None = None, environ: Mapping[str, str] = os.environ) -> str:
    """``--profile``, else ``CREDSTORE_PROFILE``, else ``default``.

    Seam: choosing a person's profile automatically on a shared account (e.g. from the SSH key they logged in
    with) belongs here.
    """
    return check_profile_name(explicit or environ.get("CREDSTORE_PROFILE") or DEFAULT_PROFILE)


def open_profile(
    profile: str | None = None,
    *,
    environ: Mapping[str, str] = os.environ,
    interactive: bool = False,
    ask_passphrase: Callable[[str], str] | None = None,
) -> LocalStore:
    return LocalStore(
        store_home(environ),
        profile_name(profile, environ),
        state_dir=state_dir(environ),
        interactive=interactive,
        ask_passphrase=ask_passphrase,
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
    settings = local.read().settings
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
