"""credstore's ``keyring`` backend (credstore/integrations/keyring_backend.py) and the items behind it.

- keyring's own shipped test suite (``keyring.testing.backend.BackendBasicTests``), unchanged, against a local store
  and against an OpenBao profile;
- what the issue asks beyond it: priority and name, a cheap import that never fails, lookups without a username,
  "" kept apart from no username, nothing in ``env`` / ``list`` / plaintext, audit lines with names only, a store
  that cannot answer;
- credstore's own ``keyring`` protection level never takes credstore's backend for an OS keyring (on a headless box
  it is the only backend keyring finds; behind a real Secret Service it is in keyring's chainer).

Processes that must find the backend the way every keyring client does (the ``keyring.backends`` entry point) run
with this checkout registered (tests/integration_support.py) and no D-Bus session: a headless box.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from keyring.errors import KeyringLocked, PasswordDeleteError, PasswordSetError
from keyring.testing.backend import BackendBasicTests

from credstore.integrations.keyring_backend import CredstoreKeyring
from tests.conftest import CLI
from tests.fixtures_services import OpenBao, SecretService, require_binary
from tests.integration_support import BACKEND_CLASS, Registered, register_checkout

PASSWORD = "pypi-AgEIcHlwaS5vcmc-not-a-real-token-0123456789"


def new_cli(root: Path, name: str = "home") -> CLI:
    home = root / name
    home.mkdir(mode=0o700)
    return CLI(home)


def point_process_at(mp: pytest.MonkeyPatch, cli: CLI) -> None:
    """The backend reads os.environ at each call, as in a tool that imported keyring."""
    mp.setenv("HOME", cli.env["HOME"])
    mp.setenv("CREDSTORE_HOME", cli.env["CREDSTORE_HOME"])
    for name in ("CREDSTORE_PROFILE", "KEYRING_PROPERTY_PROFILE"):
        mp.delenv(name, raising=False)


@pytest.fixture(scope="class")
def keyfile_store(tmp_path_factory: pytest.TempPathFactory):
    cli = new_cli(tmp_path_factory.mktemp("keyring-suite"))
    cli("init", "--protection", "keyfile", check=True)
    with pytest.MonkeyPatch.context() as mp:
        point_process_at(mp, cli)
        yield cli


@pytest.fixture(scope="class")
def openbao_store(openbao: OpenBao, tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("hvac", reason="hvac not installed (pip install 'credstore[vault]')")
    cli = new_cli(tmp_path_factory.mktemp("keyring-suite-bao"))
    user = f"u{secrets.token_hex(4)}"
    result = cli(
        "init", "--backend", "vault", "--url", openbao.url, "--user", user, "--protection", "keyfile",
        input=openbao.root_token,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    cli.bao_settings = f"secret/data/credstore/users/{user}/default/settings"  # type: ignore[attr-defined]
    with pytest.MonkeyPatch.context() as mp:
        point_process_at(mp, cli)
        yield cli


# -- keyring's own suite ---------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("keyfile_store")
class TestKeyringSuiteOnLocalStore(BackendBasicTests):
    def init_keyring(self) -> CredstoreKeyring:
        return CredstoreKeyring()


@pytest.mark.usefixtures("openbao_store")
class TestKeyringSuiteOnOpenBao(BackendBasicTests):
    def init_keyring(self) -> CredstoreKeyring:
        return CredstoreKeyring()


def test_openbao_items_live_in_the_remote_settings_and_nowhere_on_disk(openbao: OpenBao, openbao_store: CLI) -> None:
    backend = CredstoreKeyring()
    backend.set_password("https://idx.example/simple/", "alice", PASSWORD)
    settings = openbao.request("GET", openbao_store.bao_settings)["data"]["data"]  # type: ignore[attr-defined]
    key = "keyring:" + json.dumps(["https://idx.example/simple/", "alice"])
    assert json.loads(settings[key])["password"] == PASSWORD
    for path in openbao_store.home.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path
    backend.delete_password("https://idx.example/simple/", "alice")
    assert key not in openbao.request("GET", openbao_store.bao_settings)["data"]["data"]  # type: ignore[attr-defined]


# -- the backend's contract beyond the suite -------------------------------------------------------------------------


def test_priority_and_name() -> None:
    assert CredstoreKeyring.priority == 3.5  # a constant: read on the class, nothing opened
    assert CredstoreKeyring.viable
    # Below SecretService (5), libsecret (4.8), KWallet (>= 3.9); above keyrings.alt / keyrings.cryptfile (<= 3).
    assert 3 < CredstoreKeyring.priority < 3.9
    name = CredstoreKeyring().name
    assert name.isascii() and name.isprintable()
    # poetry refuses backends whose name says chainer, fail, null or plaintext
    assert not any(word in name.lower() for word in ("chainer", "fail", "null", "plaintext"))


def test_importing_the_backend_imports_nothing_heavy_and_never_fails(tmp_path: Path) -> None:
    """keyring imports every plug-in on every use: the module must not pull in credstore's store, crypto or click,
    and constructing the backend must not fail even where credstore cannot work at all."""
    broken = tmp_path / "not-a-directory"
    broken.write_text("x")
    code = (
        "import sys, keyring.backend\n"
        "import credstore.integrations.keyring_backend as m\n"
        "backend = m.CredstoreKeyring()\n"
        "print(sorted(n for n in sys.modules if n.startswith('credstore')))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    env.update({"CREDSTORE_HOME": str(broken), "KEYRING_PROPERTY_PROFILE": "../not a profile"})
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    module = BACKEND_CLASS.rpartition(".")[0]
    assert result.stdout.split("\n")[0] == str(["credstore", "credstore.integrations", module])
    assert result.stderr == ""


def test_a_store_that_cannot_answer_gives_none_and_one_line(tmp_path: Path, monkeypatch, capfd) -> None:
    cli = new_cli(tmp_path)
    cli("init", "--protection", "keyfile", check=True)
    store = cli.store_dir / "profiles" / "default.store"
    store.write_bytes(store.read_bytes()[:-20] + bytes(20))  # tampered: the payload no longer authenticates
    point_process_at(monkeypatch, cli)
    backend = CredstoreKeyring()
    assert backend.get_password("svc", "alice") is None
    assert backend.get_credential("svc", None) is None
    out, err = capfd.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("credstore: keyring: "), err
    with pytest.raises(PasswordSetError):
        backend.set_password("svc", "alice", PASSWORD)
    with pytest.raises(PasswordDeleteError):
        backend.delete_password("svc", "alice")
    assert "Traceback" not in capfd.readouterr().err


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CLI:
    cli = new_cli(tmp_path)
    cli("init", "--protection", "keyfile", check=True)
    point_process_at(monkeypatch, cli)
    return cli


def test_lookup_without_username_is_deterministic_and_with_one_exact(store: CLI) -> None:
    backend = CredstoreKeyring()
    service = "https://pypi.example.org/simple/"
    backend.set_password(service, "bob", "pw-bob")
    backend.set_password(service, "alice", "pw-alice")
    # pip, twine and poetry ask with no username: the item stored most recently answers, every time.
    for _ in range(3):
        cred = backend.get_credential(service, None)
        assert (cred.username, cred.password) == ("alice", "pw-alice")
    backend.set_password(service, "bob", "pw-bob-2")
    cred = backend.get_credential(service, None)
    assert (cred.username, cred.password) == ("bob", "pw-bob-2")
    # With a username, only that exact pair (case-sensitive).
    assert backend.get_credential(service, "alice").password == "pw-alice"
    assert backend.get_credential(service, "Alice") is None
    assert backend.get_credential(service.rstrip("/"), None) is None  # no aliasing: the exact service only
    assert backend.get_password(service, "carol") is None


def test_empty_username_is_distinct_from_none_and_odd_characters_round_trip(store: CLI) -> None:
    backend = CredstoreKeyring()
    with pytest.deprecated_call():
        backend.set_password("svc", "", "pw-empty")
    # No username at all: what `credstore keyring set SERVICE` (and git without a username) stores.
    result = store("keyring", "set", "svc", input="pw-none")
    assert result.returncode == 0, result.stderr
    assert backend.get_password("svc", "") == "pw-empty"
    assert store("keyring", "get", "svc", "", check=True).stdout == "pw-empty\n"
    rows = json.loads(store("keyring", "list", "--json", check=True).stdout)
    assert [(r["service"], r["username"]) for r in rows] == [("svc", None), ("svc", "")]  # listed in this order
    odd_service, odd_user = "sérvice /a=b\n\tc ☃", "ü s=e\nr/"
    backend.set_password(odd_service, odd_user, "pä ss\nword")
    assert backend.get_password(odd_service, odd_user) == "pä ss\nword"
    assert backend.get_password(odd_service.upper(), odd_user) is None
    store("keyring", "rm", "svc", check=True)
    assert backend.get_password("svc", "") == "pw-empty"


def test_items_are_not_environment_variables_and_not_on_disk(store: CLI) -> None:
    backend = CredstoreKeyring()
    backend.set_password("WANDB_API_KEY", "WANDB_API_KEY", PASSWORD)
    assert store("list", "--json", check=True).stdout.strip() == "[]"
    env = store("env", "--shell", "bash", check=True)
    assert PASSWORD not in env.stdout and "WANDB_API_KEY" not in env.stdout
    for path in store.home.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path


def test_reads_and_changes_are_audited_by_name_only(store: CLI) -> None:
    backend = CredstoreKeyring()
    backend.set_password("https://upload.pypi.org/legacy/", "__token__", PASSWORD)
    assert backend.get_password("https://upload.pypi.org/legacy/", "__token__") == PASSWORD
    backend.delete_password("https://upload.pypi.org/legacy/", "__token__")
    log = (store.store_dir / "audit.log").read_text()
    assert PASSWORD not in log
    events = [json.loads(line) for line in log.splitlines()]
    mine = [(e["event"], e["names"], e.get("via")) for e in events if e["event"].startswith("keyring-")]
    label = ["__token__@https://upload.pypi.org/legacy/"]
    assert mine == [(event, label, "keyring") for event in ("keyring-set", "keyring-get", "keyring-rm")]


def test_profile_is_chosen_like_credstore_chooses_it(store: CLI, monkeypatch) -> None:
    store("--profile", "work", "init", "--protection", "keyfile", check=True)
    CredstoreKeyring().set_password("svc", "u", "in-default")
    monkeypatch.setenv("CREDSTORE_PROFILE", "work")
    assert CredstoreKeyring().get_password("svc", "u") is None
    CredstoreKeyring().set_password("svc", "u", "in-work")
    monkeypatch.delenv("CREDSTORE_PROFILE")
    monkeypatch.setenv("KEYRING_PROPERTY_PROFILE", "work")
    assert CredstoreKeyring().get_password("svc", "u") == "in-work"
    assert CredstoreKeyring().with_properties(profile="default").get_password("svc", "u") == "in-default"


def test_delete_of_a_missing_pair(store: CLI) -> None:
    with pytest.raises(PasswordDeleteError):
        CredstoreKeyring().delete_password("svc", "nobody")
    result = store("keyring", "rm", "svc", "nobody")
    assert result.returncode == 3 and "no keyring item" in result.stderr


def test_locked_store_answers_none_and_refuses_writes(tmp_path: Path, monkeypatch, capfd) -> None:
    """A passphrase store nobody unlocked: never a prompt, None for reads, KeyringLocked for writes."""
    from tests.test_protection import in_session

    cli = new_cli(tmp_path)
    made = in_session(
        cli,
        "printf '%s\\n' 'pw pw pw' | credstore init --protection passphrase && credstore lock",
        env={"CREDSTORE_TEST_WEAK_KDF": "1"},
    )
    assert made.returncode == 0, made.stderr
    point_process_at(monkeypatch, cli)
    backend = CredstoreKeyring()
    assert backend.get_password("svc", "alice") is None
    assert backend.get_password("svc2", "alice") is None
    out, err = capfd.readouterr()
    assert out == "" and err.count("\n") == 1 and "locked" in err  # one line per process, not one per lookup
    with pytest.raises(KeyringLocked):
        backend.set_password("svc", "alice", PASSWORD)
    with pytest.raises(KeyringLocked):
        backend.delete_password("svc", "alice")


# -- credstore's own `keyring` protection level ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Registered:
    return register_checkout(tmp_path_factory.mktemp("registered"))


def run_registered(registered: Registered, home: Path, argv: list[str], **kw) -> subprocess.CompletedProcess[str]:
    env = registered.env(home, **kw.pop("env", {}))
    if "input" not in kw:
        kw["stdin"] = subprocess.DEVNULL
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, **kw)


STATUS = "from credstore.crypto import oskeyring; ok, why = oskeyring.status(); print(ok); print(why)"


def test_headless_box_credstores_backend_is_not_an_os_keyring(registered: Registered, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    chosen = run_registered(registered, home, [sys.executable, "-c", "import keyring; print(keyring.get_keyring())"])
    assert chosen.returncode == 0 and chosen.stdout.startswith(BACKEND_CLASS), chosen
    status = run_registered(registered, home, [sys.executable, "-c", STATUS])
    assert status.stdout.splitlines()[0] == "False", status
    assert "credstore" in status.stdout
    # A new store must not put its key inside credstore: no silent `keyring` level, an explicit one is refused.
    default = run_registered(registered, home, ["credstore", "init"])
    assert default.returncode == 2 and "no OS keyring" in default.stderr, default.stderr
    explicit = run_registered(registered, home, ["credstore", "init", "--protection", "keyring"])
    assert explicit.returncode == 12 and "cannot use the OS keyring" in explicit.stderr, explicit.stderr
    assert not (home / ".local" / "share" / "credstore" / "profiles" / "default.store").exists()


def test_behind_a_real_secret_service_no_recursion(
    registered: Registered, secret_service: SecretService, tmp_path: Path
) -> None:
    """On a desktop keyring chains SecretService (5) and credstore (3.5). credstore's keyring-level key goes to the
    Secret Service only; a missing key is a clean error, not a lookup through credstore's own backend."""
    from credstore.crypto import envelope

    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    dbus = secret_service.env
    chain = run_registered(
        registered,
        home,
        [sys.executable, "-c", "import keyring; print([type(b).__module__ for b in keyring.get_keyring().backends])"],
        env=dbus,
    )
    assert chain.stdout.strip() == str(["keyring.backends.SecretService", BACKEND_CLASS.rpartition(".")[0]]), chain
    status = run_registered(registered, home, [sys.executable, "-c", STATUS], env=dbus)
    assert status.stdout.splitlines()[0] == "True" and "SecretService" in status.stdout, status
    init = run_registered(registered, home, ["credstore", "init", "--protection", "keyring"], env=dbus)
    assert init.returncode == 0, init.stderr

    # keyring pointed at credstore's backend (PYTHON_KEYRING_BACKEND): the store's own key still comes from the
    # Secret Service, so a keyring-level store works as that backend.
    pinned = {**dbus, "PYTHON_KEYRING_BACKEND": BACKEND_CLASS}
    keyring_cli = [sys.executable, "-m", "keyring"]
    stored = run_registered(registered, home, [*keyring_cli, "set", "svc", "alice"], env=pinned, input=PASSWORD)
    assert stored.returncode == 0, stored.stderr
    got = run_registered(registered, home, ["credstore", "keyring", "get", "svc", "alice"], env=dbus)
    assert got.stdout == PASSWORD + "\n", got.stderr

    # Remove this store's key from the Secret Service (only ours: the session's keyring is shared).
    store = home / ".local" / "share" / "credstore" / "profiles" / "default.store"
    account = envelope.parse(store.read_bytes())[0].kek_params.decode()
    secret_tool = require_binary("secret-tool")
    cleared = subprocess.run(
        [secret_tool, "clear", "service", "credstore", "username", account],
        env={**registered.env(home), **dbus},
        capture_output=True,
        timeout=30,
    )
    assert cleared.returncode == 0, cleared.stderr
    for env in (dbus, pinned):
        lookup = run_registered(registered, home, [*keyring_cli, "get", "svc", "alice"], env=env)
        assert lookup.returncode == 1 and lookup.stdout == "", lookup
        assert "RecursionError" not in lookup.stderr and "Traceback" not in lookup.stderr
        assert lookup.stderr.count("\n") == 1 and "no key for this store" in lookup.stderr, lookup.stderr
