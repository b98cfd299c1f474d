"""Each service fixture really works: real Secret Service, real OpenBao, real Unix users, real shells."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures_services import (
    REPO_ROOT,
    SHELLS,
    BaoError,
    OpenBao,
    SecretService,
    UnixUsers,
    UserPython,
    install_package_copy,
    real_shell,
    start_secret_service,
)

pytest_plugins = ["tests.fixtures_services"]


# ---- shells -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SHELLS)
def test_real_shell_runs(name: str) -> None:
    path = real_shell(name)
    assert os.path.isabs(path)
    # Arithmetic in each shell's own syntax, so a stand-in (e.g. sh for fish) would fail.
    script = "echo hello-(math 6 '*' 7)" if name == "fish" else "echo hello-$((6*7))"
    out = subprocess.run([path, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "hello-42"


def test_real_shell_rejects_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown shell"):
        real_shell("tcsh-not-supported")


# ---- Secret Service -----------------------------------------------------------------------------------------


def test_secret_service_keyring_roundtrip(secret_service_env: SecretService) -> None:
    kr = secret_service_env.keyring()
    assert kr.priority > 0  # keyring reports the backend usable
    service = f"credstore-test-{secrets.token_hex(4)}"
    value = secrets.token_urlsafe(32)
    kr.set_password(service, "alice", value)
    assert kr.get_password(service, "alice") == value
    assert kr.get_password(service, "bob") is None
    kr.delete_password(service, "alice")
    assert kr.get_password(service, "alice") is None


def test_secret_service_default_keyring_is_secret_service(secret_service_env: SecretService) -> None:
    import keyring
    from keyring.backends.SecretService import Keyring

    # What keyring would pick on its own with this environment (no config file in the way).
    viable = [type(b) for b in keyring.backend.get_all_keyring()]
    assert Keyring in viable


def test_secret_service_seen_by_subprocess(
    secret_service: SecretService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A separate process (e.g. the credstore CLI) reaches the same service through ``.env``."""
    service = f"credstore-sub-{secrets.token_hex(4)}"
    value = secrets.token_urlsafe(16)
    code = (
        "import os, sys\n"
        "from keyring.backends.SecretService import Keyring\n"
        "k = Keyring()\n"
        "k.set_password(sys.argv[1], 'carol', os.environ['VALUE'])\n"
        "print(k.get_password(sys.argv[1], 'carol') == os.environ['VALUE'])\n"
    )
    env = {**os.environ, **secret_service.env, "VALUE": value, "HOME": str(tmp_path)}

    out = subprocess.run([sys.executable, "-c", code, service], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"
    # And this process, pointed at the same bus, sees what the child stored.
    secret_service.apply(monkeypatch)
    assert secret_service.keyring().get_password(service, "carol") == value
    secret_service.keyring().delete_password(service, "carol")


def test_secret_service_secret_tool_interop(secret_service: SecretService) -> None:
    """libsecret's secret-tool (another real client) reads what python-keyring stored."""
    tool = "/usr/bin/secret-tool"
    if not os.path.exists(tool):
        pytest.skip("secret-tool not installed (Debian package libsecret-tools, optional)")
    value = secrets.token_urlsafe(16)
    service = f"credstore-st-{secrets.token_hex(4)}"
    env = {"PATH": "/usr/bin:/bin", **secret_service.env}
    stored = subprocess.run(
        [tool, "store", "--label=t", "service", service, "username", "dave"],
        input=value,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert stored.returncode == 0, stored.stderr
    looked = subprocess.run(
        [tool, "lookup", "service", service, "username", "dave"], env=env, capture_output=True, text=True, timeout=30
    )
    assert looked.stdout == value


def test_secret_service_is_private(secret_service: SecretService) -> None:
    """Its files live under the fixture's own directories, not the real HOME."""
    keyrings = secret_service.home / ".local" / "share" / "keyrings"
    assert (keyrings / "login.keyring").exists()
    assert secret_service.root.stat().st_mode & 0o077 == 0
    assert secret_service.password not in repr(secret_service)


# ---- OpenBao ------------------------------------------------------------------------------------------------


def test_openbao_health_and_kv2_mount(openbao: OpenBao) -> None:
    assert openbao.process.poll() is None
    assert openbao.url.startswith("http://127.0.0.1:")
    mounts = openbao.request("GET", "sys/mounts")
    mount = mounts["data"]["secret/"]
    assert mount["type"] == "kv"
    assert mount["options"]["version"] == "2"
    assert openbao.root_token not in repr(openbao)


def test_openbao_kv2_write_read(openbao: OpenBao) -> None:
    path = f"credstore-test/{secrets.token_hex(4)}"
    value = secrets.token_urlsafe(24)
    written = openbao.request("POST", f"secret/data/{path}", {"data": {"WANDB_API_KEY": value}})
    assert written["data"]["version"] == 1
    openbao.request("POST", f"secret/data/{path}", {"data": {"WANDB_API_KEY": value + "2"}})
    read = openbao.request("GET", f"secret/data/{path}")
    assert read["data"]["data"] == {"WANDB_API_KEY": value + "2"}
    assert read["data"]["metadata"]["version"] == 2
    old = openbao.request("GET", f"secret/data/{path}?version=1")
    assert old["data"]["data"] == {"WANDB_API_KEY": value}


def test_openbao_rejects_bad_token(openbao: OpenBao) -> None:
    with pytest.raises(BaoError) as info:
        openbao.request("GET", "secret/data/anything", token="s.not-a-real-token")
    assert info.value.status == 403


def test_openbao_token_not_in_argv(openbao: OpenBao) -> None:
    cmdline = Path(f"/proc/{openbao.process.pid}/cmdline").read_bytes()
    assert openbao.root_token.encode() not in cmdline


# ---- Unix users ---------------------------------------------------------------------------------------------


def test_unix_user_runs_id(unix_users: UnixUsers) -> None:
    group = unix_users.group()
    user = unix_users.create(groups=[group])
    out = unix_users.run_as(user, ["id", "-un"], check=True)
    assert out.stdout.strip() == user.name
    groups = unix_users.run_as(user, ["id", "-Gn"], check=True).stdout.split()
    assert group in groups
    assert user.home.is_dir()
    assert user.home.stat().st_uid == user.uid
    env = unix_users.run_as(user, ["sh", "-c", 'printf %s "$HOME:$MYVAR"'], env={"MYVAR": "x y"}, check=True)
    assert env.stdout == f"{user.home}:x y"
    piped = unix_users.run_as(user, ["cat"], input="from-stdin", check=True)
    assert piped.stdout == "from-stdin"


def test_unix_user_cannot_read_roots_0600_file(unix_users: UnixUsers, tmp_path: Path) -> None:
    user = unix_users.create()
    secret_file = Path("/tmp") / f"credstore-root-only-{secrets.token_hex(4)}"
    try:
        secret_file.write_text("root-secret\n")
        secret_file.chmod(0o600)
        out = unix_users.run_as(user, ["cat", str(secret_file)])
        assert out.returncode != 0
        assert "Permission denied" in out.stderr
        assert "root-secret" not in out.stdout
    finally:
        secret_file.unlink()


def test_unix_users_are_removed_after_cleanup() -> None:
    import pwd

    if os.geteuid() != 0:
        pytest.skip("creating Unix users needs root")
    users = UnixUsers()
    user = users.create()
    assert pwd.getpwnam(user.name).pw_uid == user.uid
    users.cleanup()
    with pytest.raises(KeyError):
        pwd.getpwnam(user.name)
    assert not user.home.exists()


def test_per_user_secret_service(unix_users: UnixUsers, tmp_path_factory: pytest.TempPathFactory) -> None:
    """A Secret Service owned by another user: that user's clients use it, root's bus session cannot."""
    user = unix_users.create()
    root = user.home / "secret-service"
    service = start_secret_service(root, user=user)
    try:
        out = unix_users.run_as(
            user,
            ["secret-tool", "store", "--label=x", "service", "s", "username", "u"],
            env=service.env,
            input="v4lue",
        )
        if out.returncode != 0 and "not found" in out.stderr:
            pytest.skip("secret-tool not installed (libsecret-tools)")
        assert out.returncode == 0, out.stderr
        looked = unix_users.run_as(user, ["secret-tool", "lookup", "service", "s", "username", "u"], env=service.env)
        assert looked.stdout == "v4lue"
        assert service.bus_process.poll() is None
    finally:
        service.stop()


def test_user_python_runs_as_other_user(unix_users: UnixUsers, user_python: UserPython) -> None:
    user = unix_users.create()
    out = unix_users.run_as(
        user,
        user_python.argv(
            "-c", "import cryptography, keyring, click, credstore, os; print(os.getuid()); print(credstore.__file__)"
        ),
        env=user_python.env,
    )
    assert out.returncode == 0, out.stderr
    uid, imported = out.stdout.split()
    assert uid == str(user.uid)
    # The copy, not the checkout: the checkout may be in a directory the user cannot enter.
    assert Path(imported).parent == user_python.package
    assert REPO_ROOT not in Path(imported).parents
    assert "PYTHONPATH" not in user_python.env


def test_package_copy_matches_the_checkout(tmp_path: Path) -> None:
    """What other users run is this checkout's code: every module, byte for byte, readable by everyone."""
    copy = install_package_copy(tmp_path)
    source = REPO_ROOT / "credstore"

    def files(root: Path) -> dict[str, bytes]:
        return {
            str(p.relative_to(root)): p.read_bytes()
            for p in root.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        }

    copied = files(copy)
    assert copied == files(source)
    assert "store/base.py" in copied
    for path in [copy, *copy.rglob("*")]:
        needed = 0o005 if path.is_dir() else 0o004  # others may enter directories and read files
        assert path.stat().st_mode & needed == needed, path


# ---- wandb (real client, offline) ---------------------------------------------------------------------------


def test_wandb_offline_reads_identity_from_env(tmp_path: Path) -> None:
    """The real wandb SDK, offline, picks up WANDB_USERNAME / WANDB_ENTITY / WANDB_API_KEY from the environment."""
    try:
        import wandb  # noqa: F401
    except ImportError:
        if os.environ.get("CREDSTORE_REQUIRE_SERVICES") == "1":
            pytest.fail("wandb is not installed (scripts/test.sh installs it)")
        pytest.skip("wandb is not installed: pip install wandb (scripts/test.sh does it)")
    key = "local-" + secrets.token_hex(24)
    (tmp_path / "home").mkdir()
    (tmp_path / "runs").mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path / "home"),
        "WANDB_DIR": str(tmp_path / "runs"),
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_USERNAME": "alice",
        "WANDB_ENTITY": "team-x",
        "WANDB_API_KEY": key,
    }
    code = (
        "import os, wandb\n"
        "r = wandb.init()\n"
        "s = r.settings\n"
        "print(s.username, s.entity, s.api_key == os.environ['WANDB_API_KEY'], s.mode)\n"
        "r.finish()\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["alice", "team-x", "True", "offline"]
    # The offline run keeps no copy of the key on disk.
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path
