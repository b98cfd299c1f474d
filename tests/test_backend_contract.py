"""The backend contract (tests/backend_contract.py) run against every backend credstore has, for real: the local
encrypted store at the key-file and passphrase levels, a team service account store, and OpenBao's KV v2."""

from __future__ import annotations

import functools
import grp
import os
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest

from credstore.store.base import Backend
from credstore.store.local import LocalStore
from credstore.store.shared import ServiceStore, SharedRoot
from tests.backend_contract import BackendContract, BackendFactory
from tests.fixtures_services import OpenBao

PASSPHRASE = "contract suite passphrase 4711"

# -- how each backend is opened and created: the only lines that know the constructors ----------------------------


def ask_passphrase(prompt: str) -> str:
    """The store's passphrase callback (module level, so a writer process can receive it)."""
    return PASSPHRASE


def open_local_store(home: Path, profile: str, level: str) -> LocalStore:
    passphrase = level == "passphrase"
    return LocalStore(
        home,
        profile,
        state_dir=home / "state",
        interactive=passphrase,
        ask_passphrase=ask_passphrase if passphrase else None,
        lock_timeout=120.0,
    )


def create_local_store(home: Path, profile: str, level: str) -> LocalStore:
    store = open_local_store(home, profile, level)
    store.create(level)
    assert store.protection_kind() == level
    return store


def open_service_store(shared: Path, name: str, state_dir: Path) -> ServiceStore:
    return ServiceStore(SharedRoot(shared, explicit=True), name, state_dir=state_dir, lock_timeout=120.0)


def create_service_store(shared: Path, name: str, state_dir: Path, group: str) -> ServiceStore:
    store = open_service_store(shared, name, state_dir)
    store.create(group)
    return store


def open_vault(url: str, token: str, path: str) -> Backend:
    from credstore.store.vault import VaultBackend

    return VaultBackend(url, token, path=path, source=f"vault:secret/{path}", lock_wait=120.0)


def create_vault(url: str, token: str, path: str) -> Backend:
    backend = open_vault(url, token, path)
    backend.modify(lambda snapshot: None)  # a KV v2 profile exists once its settings were written
    return backend


# -- the factories ------------------------------------------------------------------------------------------------


class LocalFactory(BackendFactory):
    def __init__(self, base: Path, level: str) -> None:
        self.base, self.level, self.count = base, level, 0

    def _home(self) -> Path:
        self.count += 1
        home = self.base / f"home-{self.count}"
        home.mkdir(mode=0o700)
        return home

    def make_backend(self) -> Backend:
        return create_local_store(self._home(), "default", self.level)

    def make_missing_backend(self) -> Backend:
        return open_local_store(self._home(), "default", self.level)

    def reopen(self, backend: Backend) -> Callable[[], Backend]:
        assert isinstance(backend, LocalStore)
        return functools.partial(open_local_store, backend.home, backend.profile, self.level)


class ServiceFactory(BackendFactory):
    def __init__(self, base: Path) -> None:
        self.shared = base / "shared"
        self.state_dir = base / "state"
        self.group = grp.getgrgid(os.getegid()).gr_name
        self.count = 0

    def _name(self) -> str:
        self.count += 1
        return f"team-{self.count}"

    def make_backend(self) -> Backend:
        return create_service_store(self.shared, self._name(), self.state_dir, self.group)

    def make_missing_backend(self) -> Backend:
        create_service_store(self.shared, "other-team", self.state_dir, self.group)  # the shared dir exists
        return open_service_store(self.shared, self._name(), self.state_dir)

    def reopen(self, backend: Backend) -> Callable[[], Backend]:
        assert isinstance(backend, ServiceStore)
        return functools.partial(open_service_store, self.shared, backend.name, self.state_dir)


class VaultFactory(BackendFactory):
    def __init__(self, server: OpenBao) -> None:
        self.server = server

    def _path(self) -> str:
        return f"credstore/contract/p-{secrets.token_hex(6)}"  # a fresh path per store

    def make_backend(self) -> Backend:
        return create_vault(self.server.url, self.server.root_token, self._path())

    def make_missing_backend(self) -> Backend:
        return open_vault(self.server.url, self.server.root_token, self._path())

    def reopen(self, backend: Backend) -> Callable[[], Backend]:
        return functools.partial(open_vault, self.server.url, self.server.root_token, backend.path)  # type: ignore[attr-defined]


# -- the contract, once per backend ---------------------------------------------------------------------------------


class TestLocalStoreKeyfile(BackendContract):
    @pytest.fixture
    def backend_factory(self, tmp_path: Path) -> BackendFactory:
        return LocalFactory(tmp_path, "keyfile")


class TestLocalStorePassphrase(BackendContract):
    @pytest.fixture
    def backend_factory(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> BackendFactory:
        monkeypatch.setenv("CREDSTORE_TEST_WEAK_KDF", "1")  # cheap Argon2 for new stores; the header keeps it
        return LocalFactory(tmp_path, "passphrase")


class TestServiceStore(BackendContract):
    is_service = True

    @pytest.fixture
    def backend_factory(self, tmp_path: Path) -> BackendFactory:
        # We are the admin (we own the shared directory) and the service's group is our own primary group.
        return ServiceFactory(tmp_path)


class TestOpenBao(BackendContract):
    read_before_create = "empty"
    keeps_entry_times = False  # created / updated are the server's version times

    @pytest.fixture
    def backend_factory(self, openbao: OpenBao) -> BackendFactory:
        pytest.importorskip("hvac", reason="hvac not installed (pip install hvac)")
        return VaultFactory(openbao)
