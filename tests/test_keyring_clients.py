"""Real clients of credstore's keyring backend on a box without D-Bus: the ``keyring`` command, pip against a
password-protected ``pypiserver`` on 127.0.0.1 (``--keyring-provider import`` and ``subprocess``), twine uploading
to it, and a locked store that makes them fall through without a prompt.

Every client runs as a separate process with this checkout registered as it would be installed
(tests/integration_support.py): keyring finds the backend through its entry point, nothing is configured.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import subprocess
import sys
import termios
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures_services import _stop_process, free_port
from tests.integration_support import BACKEND_CLASS, Registered, register_checkout
from tests.test_protection import in_session

# ASCII: HTTP basic auth has no agreed charset (requests sends latin-1, passlib compares UTF-8).
USER, PASSWORD = "alice", "index password with spaces/=:@!"
DEMO, VERSION = "credstore-kr-demo", "1.0"


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Registered:
    return register_checkout(tmp_path_factory.mktemp("registered"))


@dataclass
class Client:
    """Runs programs as a person on a headless box whose credstore is this checkout."""

    registered: Registered
    home: Path

    @property
    def env(self) -> dict[str, str]:
        # PIP_CONFIG_FILE=/dev/null: no machine-wide pip configuration (extra indexes, find-links) in the way.
        return self.registered.env(self.home, PIP_CONFIG_FILE=os.devnull, PYTHONIOENCODING="utf-8")

    def run(
        self, *argv: str, input: str | None = None, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(argv),
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            timeout=timeout,
            cwd=self.home,
        )

    def credstore(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.run("credstore", *args, input=input)

    def keyring(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.run(sys.executable, "-m", "keyring", *args, input=input)


@pytest.fixture
def client(registered: Registered, tmp_path: Path) -> Client:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    return Client(registered, home)


@pytest.fixture
def keyfile_client(client: Client) -> Client:
    made = client.credstore("init", "--protection", "keyfile")
    assert made.returncode == 0, made.stderr
    return client


def plaintext_under(root: Path, needle: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


# -- the keyring command ---------------------------------------------------------------------------------------------


def test_keyring_command_uses_credstore_on_a_box_without_dbus(keyfile_client: Client) -> None:
    c = keyfile_client
    assert "DBUS_SESSION_BUS_ADDRESS" not in c.env
    chosen = c.run(sys.executable, "-c", "import keyring; print(keyring.get_keyring())")
    assert chosen.stdout.startswith(BACKEND_CLASS + " (priority: 3.5)"), chosen
    assert BACKEND_CLASS in c.keyring("--list-backends").stdout

    assert c.keyring("set", "https://idx.example/simple/", USER, input=PASSWORD + "\n").returncode == 0
    got = c.keyring("get", "https://idx.example/simple/", USER)
    assert (got.returncode, got.stdout, got.stderr) == (0, PASSWORD + "\n", "")
    creds = c.keyring("--mode", "creds", "--output", "json", "get", "https://idx.example/simple/")
    assert creds.returncode == 0 and json.loads(creds.stdout) == {"username": USER, "password": PASSWORD}
    listed = c.credstore("keyring", "list")
    assert "https://idx.example/simple/" in listed.stdout and USER in listed.stdout and PASSWORD not in listed.stdout
    assert plaintext_under(c.home, PASSWORD) == []

    assert c.keyring("del", "https://idx.example/simple/", USER).returncode == 0
    missing = c.keyring("get", "https://idx.example/simple/", USER)
    assert (missing.returncode, missing.stdout) == (1, "")
    again = c.keyring("del", "https://idx.example/simple/", USER)
    assert again.returncode == 1 and "PasswordDeleteError" in again.stderr


def test_keyring_command_on_an_unlocked_passphrase_store(client: Client) -> None:
    """Every protection level: a passphrase store unlocked once for the login session."""
    script = """
printf '%s\\n' 'pass phrase' | credstore init --protection passphrase || exit 10
credstore lock || exit 11
printf '%s\\n' 'pass phrase' | credstore unlock || exit 12
printf '%s\\n' "$PW" | python3 -m keyring set svc alice || exit 13
python3 -m keyring get svc alice
"""
    from tests.conftest import CLI

    # python3: the interpreter running the tests (it has keyring), after this checkout's scripts.
    path = f"{client.registered.bin}:{Path(sys.executable).parent}:{client.env['PATH']}"
    env = {**client.env, "CREDSTORE_TEST_WEAK_KDF": "1", "PW": PASSWORD, "PATH": path}
    result = in_session(CLI(client.home), script, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == PASSWORD + "\n"
    assert plaintext_under(client.home, PASSWORD) == []


# -- a password-protected package index ------------------------------------------------------------------------------


def demo_wheel(directory: Path) -> Path:
    """A minimal pure-Python wheel, written by hand (no build backend needed)."""
    dist = f"{DEMO.replace('-', '_')}-{VERSION}"
    files = {
        "credstore_kr_demo/__init__.py": b"VALUE = 1\n",
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {DEMO}\nVersion: {VERSION}\n".encode(),
        f"{dist}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = ""
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record += f"{name},sha256={digest},{len(data)}\n"
    record += f"{dist}.dist-info/RECORD,,\n"
    path = directory / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr(f"{dist}.dist-info/RECORD", record)
    return path


@dataclass
class Index:
    url: str  # http://127.0.0.1:PORT
    packages: Path

    @property
    def simple(self) -> str:
        return f"{self.url}/simple/"

    @property
    def netloc(self) -> str:
        return self.url.removeprefix("http://")


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    """pypiserver on 127.0.0.1 that wants a password for every list, download and upload (htpasswd)."""
    pytest.importorskip("pypiserver", reason="pypiserver not installed (the test extra has it)")
    htpasswd = pytest.importorskip("passlib.apache", reason="passlib not installed (the test extra has it)")
    root = tmp_path_factory.mktemp("pypiserver")
    packages = root / "packages"
    packages.mkdir()
    passwords = htpasswd.HtpasswdFile(str(root / "htpasswd"), new=True)
    passwords.set_password(USER, PASSWORD)
    passwords.save()
    port = free_port()
    log = open(root / "server.log", "wb")  # noqa: SIM115 - closed after the server stops
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "pypiserver", "run", "-i", "127.0.0.1", "-p", str(port),
            "-a", "update,download,list", "-P", str(root / "htpasswd"), "--disable-fallback", str(packages),
        ],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/simple/", timeout=2)  # noqa: S310 - loopback
                raise AssertionError("pypiserver served /simple/ without a password")
            except urllib.error.HTTPError as exc:
                if exc.code == 401:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pypiserver did not start: {(root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield Index(url, packages)
    finally:
        _stop_process(proc)
        log.close()


@pytest.fixture(scope="module")
def uploaded(index: Index, registered: Registered, tmp_path_factory: pytest.TempPathFactory) -> Index:
    """twine uploads the demo wheel with the username and password from credstore (nothing on its command line)."""
    pytest.importorskip("twine", reason="twine not installed (the test extra has it)")
    home = tmp_path_factory.mktemp("uploader") / "home"
    home.mkdir(mode=0o700)
    c = Client(registered, home)
    assert c.credstore("init", "--protection", "keyfile").returncode == 0
    repository = f"{index.url}/"
    stored = c.credstore("keyring", "set", repository, USER, input=PASSWORD)
    assert stored.returncode == 0, stored.stderr
    wheel = demo_wheel(home)
    upload = c.run(
        sys.executable, "-m", "twine", "upload", "--non-interactive", "--disable-progress-bar",
        "--repository-url", repository, str(wheel),
    )  # fmt: skip
    assert upload.returncode == 0, upload.stdout + upload.stderr
    assert (index.packages / wheel.name).read_bytes() == wheel.read_bytes()
    return index


def test_twine_uploaded_with_credentials_from_credstore(uploaded: Index) -> None:
    assert [p.name for p in uploaded.packages.iterdir()] == [f"credstore_kr_demo-{VERSION}-py3-none-any.whl"]


def pip_download(c: Client, index: Index, provider: str, *extra: str, env=None) -> subprocess.CompletedProcess[str]:
    out = c.home / "downloads"
    return c.run(
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir", "--disable-pip-version-check",
        "--no-input", "--keyring-provider", provider, "--index-url", index.simple, "-d", str(out), *extra,
        f"{DEMO}=={VERSION}", env=env,
    )  # fmt: skip


@pytest.mark.parametrize("service", ["index_url", "netloc"])
def test_pip_downloads_with_the_password_from_credstore(uploaded: Index, keyfile_client: Client, service) -> None:
    """Only the index URL on pip's command line (no username in it): pip asks keyring for the index URL (with its
    trailing /), then for host:port; either form answers."""
    c = keyfile_client
    denied = pip_download(c, uploaded, "import")
    # Without the password the index answers 401, which pip reports as no such package.
    assert denied.returncode != 0 and "No matching distribution" in denied.stderr
    key = uploaded.simple if service == "index_url" else uploaded.netloc
    assert c.credstore("keyring", "set", key, USER, input=PASSWORD).returncode == 0
    result = pip_download(c, uploaded, "import")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (c.home / "downloads" / f"credstore_kr_demo-{VERSION}-py3-none-any.whl").exists()
    assert plaintext_under(c.home, PASSWORD) == []


def test_pip_subprocess_provider_uses_the_keyring_command(uploaded: Index, keyfile_client: Client) -> None:
    """keyring and credstore installed outside pip's environment (pipx): pip runs the `keyring` command."""
    c = keyfile_client
    tools = c.home / "tools"
    tools.mkdir()
    (tools / "keyring").write_text(f'#!/bin/sh\nexec {sys.executable} -m keyring "$@"\n')
    (tools / "keyring").chmod(0o755)
    assert c.credstore("keyring", "set", uploaded.simple, USER, input=PASSWORD).returncode == 0
    result = pip_download(c, uploaded, "subprocess", env={"PATH": f"{tools}:{c.env['PATH']}"})
    assert result.returncode == 0, result.stdout + result.stderr


# -- a locked store: fall through, never a prompt ---------------------------------------------------------------------


def on_a_terminal(argv: list[str], env: dict[str, str], timeout: float) -> tuple[subprocess.CompletedProcess, bytes]:
    """Run ``argv`` with a pseudo-terminal as its controlling terminal and stdin (where getpass would prompt and
    wait); stdout and stderr are captured apart. Returns the result and what was written to the terminal."""
    master, slave = os.openpty()
    try:
        result = subprocess.run(
            argv,
            stdin=slave,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )
    finally:
        os.close(slave)
    os.set_blocking(master, False)
    try:
        written = os.read(master, 65536)
    except OSError:
        written = b""
    os.close(master)
    return result, written


def test_the_terminal_harness_would_catch_a_prompt(client: Client) -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        on_a_terminal([sys.executable, "-c", "import getpass; getpass.getpass('Password: ')"], client.env, timeout=3)


def test_locked_store_pip_and_keyring_fall_through_without_prompting(uploaded: Index, client: Client) -> None:
    from tests.conftest import CLI

    made = in_session(
        CLI(client.home),
        "printf '%s\\n' 'pass phrase' | credstore init --protection passphrase && "
        f"printf '%s' '{PASSWORD}' | credstore keyring set {uploaded.simple} {USER} && credstore lock",
        env={**client.env, "CREDSTORE_TEST_WEAK_KDF": "1"},
    )
    assert made.returncode == 0, made.stderr

    keyring_get, tty = on_a_terminal(
        [sys.executable, "-m", "keyring", "--mode", "creds", "get", uploaded.simple], client.env, timeout=60
    )
    assert (keyring_get.returncode, keyring_get.stdout, tty) == (1, "", b"")
    assert keyring_get.stderr.count("\n") == 1 and "is locked" in keyring_get.stderr, keyring_get.stderr

    pip, tty = on_a_terminal(
        [
            sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir", "--disable-pip-version-check",
            "--no-input", "--keyring-provider", "import", "--index-url", uploaded.simple,
            "-d", str(client.home / "downloads"), f"{DEMO}=={VERSION}",
        ],
        client.env,
        timeout=120,
    )  # fmt: skip
    assert pip.returncode != 0 and tty == b""
    assert "credstore: keyring: profile 'default' is locked" in pip.stderr
    assert "No matching distribution" in pip.stderr

    refused = client.keyring("set", "svc", USER, input=PASSWORD)
    assert refused.returncode == 1 and "KeyringLocked" in refused.stderr and PASSWORD not in refused.stderr


# -- credstore keyring enable / set -----------------------------------------------------------------------------------


def test_enable_chooses_credstore_over_a_secret_service_and_never_overwrites(client: Client, secret_service) -> None:
    """Where a Secret Service answers (an installed gnome-keyring), keyring chains it first; `enable` writes the
    keyringrc.cfg that makes credstore's backend the one keyring uses."""
    env = {**client.env, **secret_service.env}
    which = [sys.executable, "-c", "import keyring; print(type(keyring.get_keyring()).__name__)"]
    before = client.run(*which, env=env)
    assert before.stdout.strip() == "ChainerBackend", before
    enabled = client.credstore("keyring", "enable")
    assert enabled.returncode == 0, enabled.stderr
    config = client.home / ".config" / "python_keyring" / "keyringrc.cfg"
    assert config.read_text() == f"[backend]\ndefault-keyring={BACKEND_CLASS}\n"
    assert str(config) in client.keyring("diagnose").stdout
    after = client.run(*which, env=env)
    assert after.stdout.strip() == "CredstoreKeyring", after
    again = client.credstore("keyring", "enable")
    assert again.returncode == 0 and "already chooses" in again.stderr

    config.write_text("[backend]\ndefault-keyring=keyring.backends.SecretService.Keyring\n")
    refused = client.credstore("keyring", "enable")
    assert (
        refused.returncode == 1 and "not overwritten" in refused.stderr and "PYTHON_KEYRING_BACKEND" in refused.stderr
    )
    assert config.read_text() == "[backend]\ndefault-keyring=keyring.backends.SecretService.Keyring\n"


def test_keyring_set_reads_stdin_never_argv(keyfile_client: Client) -> None:
    c = keyfile_client
    on_argv = c.credstore("keyring", "set", "svc", "alice", PASSWORD)
    assert on_argv.returncode == 2 and PASSWORD not in on_argv.stderr
    empty = c.credstore("keyring", "set", "svc", "alice", input="")
    assert empty.returncode == 2 and "empty" in empty.stderr
    assert c.credstore("keyring", "set", "svc", "alice", input=PASSWORD + "\n").returncode == 0
    assert c.credstore("keyring", "get", "svc", "alice").stdout == PASSWORD + "\n"  # one trailing newline is the pipe's
    assert c.credstore("keyring", "get", "svc").stdout == PASSWORD + "\n"
    missing = c.credstore("keyring", "get", "svc", "bob")
    assert missing.returncode == 3 and missing.stdout == ""
