"""Pytest fixtures around real OpenSSH programs: ``ssh-agent``, ``ssh-add`` and ``ssh-keygen``.

- ``ssh_agent`` (function): a real ``ssh-agent -D -a SOCK`` in a temporary directory, stopped after the test.
  Yields an :class:`AgentProcess`: ``.env`` (``SSH_AUTH_SOCK``), ``.add(key, *options)`` runs ``ssh-add``,
  ``.log()`` is the agent's stderr. It is started with a scripted ``SSH_ASKPASS`` (``SSH_ASKPASS_REQUIRE=force``,
  ``DISPLAY`` set) so that keys added with ``ssh-add -c`` ask the script: ``.set_confirmation(True / False)``
  decides the answer, ``.confirmations()`` counts the prompts.
- ``ssh_keys`` (session): an :class:`SSHKeys` factory; ``ssh_keys.make("ed25519")``, ``make("rsa", 3072)``,
  ``make("ecdsa")``... runs ``ssh-keygen`` once per (type, bits, name) and returns an :class:`SSHKey`.

- ``start_sshd(user, directory)``: a real unprivileged ``sshd`` on 127.0.0.1, run *as* ``user`` (a Unix user from
  ``unix_users``), with its own host key, ``UsePAM no``, ``AllowAgentForwarding yes``, ``ExposeAuthInfo yes``,
  public-key login only, into that one account. Returns an :class:`SSHServer` (``.ssh(agent, *command)`` runs
  ``ssh -A`` into it with an agent's keys; ``.stop()``).

Import them into a test module (``from tests.ssh_fixtures import ssh_agent, ssh_keys``) or list
``tests.ssh_fixtures`` in conftest's ``pytest_plugins``. Missing programs skip (or fail under
``CREDSTORE_REQUIRE_SERVICES=1``) through :func:`tests.fixtures_services.require_binary`.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fixtures_services import require_binary

AGENT_START_TIMEOUT = 10.0


@dataclass(frozen=True)
class SSHKey:
    private: Path
    public: Path
    key_type: str

    @property
    def blob(self) -> bytes:
        return base64.b64decode(self.public.read_text().split()[1])

    @property
    def fingerprint(self) -> str:
        """As ``ssh-keygen -l`` prints it (second field)."""
        out = subprocess.run(
            [require_binary("ssh-keygen"), "-l", "-E", "sha256", "-f", str(self.public)],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.split()[1]


class SSHKeys:
    """Makes keys with the real ssh-keygen (no passphrase), each once per session."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._made: dict[str, SSHKey] = {}

    def make(self, kind: str, bits: int | None = None, name: str = "") -> SSHKey:
        label = f"{kind}{bits or ''}{'-' + name if name else ''}"
        if label not in self._made:
            private = self.directory / f"id_{label}"
            argv = [require_binary("ssh-keygen"), "-q", "-t", kind, "-N", "", "-C", f"test {label}", "-f", str(private)]
            if bits:
                argv[2:2] = ["-b", str(bits)]
            subprocess.run(argv, check=True, capture_output=True, timeout=120)
            public = private.with_name(private.name + ".pub")
            self._made[label] = SSHKey(private, public, public.read_text().split()[0])
        return self._made[label]


_ASKPASS_SCRIPT = """#!/bin/sh
# Scripted ssh-askpass for ssh-agent's `ssh-add -c` confirmations: log the prompt, answer from a file.
printf '%s\\n' "$1" | tr '\\n' ' ' >> "{log}"
echo >> "{log}"
[ "$(cat "{decision}")" = allow ] && exit 0
exit 1
"""


@dataclass
class AgentProcess:
    directory: Path
    socket: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def askpass_log(self) -> Path:
        return self.directory / "askpass.log"

    def add(self, key: SSHKey | Path, *options: str) -> subprocess.CompletedProcess[str]:
        """``ssh-add [options] KEY`` (an SSHKey or a private key file) into this agent; raises with ssh-add's
        stderr on failure."""
        private = key.private if isinstance(key, SSHKey) else key
        result = subprocess.run(
            [require_binary("ssh-add"), *options, str(private)],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            raise AssertionError(f"ssh-add {' '.join(options)} failed: {result.stderr.strip()}")
        return result

    def remove_all(self) -> None:
        subprocess.run(
            [require_binary("ssh-add"), "-D"], env={**os.environ, **self.env}, capture_output=True, check=True
        )

    def set_confirmation(self, allow: bool) -> None:
        (self.directory / "askpass.decision").write_text("allow\n" if allow else "deny\n")

    def confirmations(self) -> int:
        if not self.askpass_log.exists():
            return 0
        return len(self.askpass_log.read_text().splitlines())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def start_ssh_agent(directory: Path) -> AgentProcess:
    """A real ssh-agent in the foreground on ``directory/agent.sock`` with a scripted askpass."""
    agent_bin = require_binary("ssh-agent")
    require_binary("ssh-add")
    directory.mkdir(parents=True, exist_ok=True)
    sock = directory / "agent.sock"
    askpass = directory / "askpass"
    askpass.write_text(_ASKPASS_SCRIPT.format(log=directory / "askpass.log", decision=directory / "askpass.decision"))
    askpass.chmod(0o700)
    (directory / "askpass.decision").write_text("deny\n")
    log_path = directory / "agent.log"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(directory),
        "SSH_ASKPASS": str(askpass),
        "SSH_ASKPASS_REQUIRE": "force",
        "DISPLAY": ":0",  # read_passphrase() only runs an askpass when DISPLAY is set
    }
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [agent_bin, "-D", "-a", str(sock)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    agent = AgentProcess(directory, sock, process, log_path, env={"SSH_AUTH_SOCK": str(sock)})
    # Ready when it accepts a connection: the socket file appears at bind(), a moment before listen().
    deadline = time.monotonic() + AGENT_START_TIMEOUT
    while not _accepts(sock):
        if process.poll() is not None or time.monotonic() > deadline:
            agent.stop()
            raise RuntimeError(f"ssh-agent did not start: {agent.log()[-2000:]}")
        time.sleep(0.02)
    return agent


def _accepts(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


@pytest.fixture
def ssh_agent() -> Iterator[AgentProcess]:
    # A short directory name: a unix socket path must fit in 108 bytes, and tmp_path can be long.
    directory = Path(tempfile.mkdtemp(prefix="cs-agent-"))
    agent = start_ssh_agent(directory)
    try:
        yield agent
    finally:
        agent.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def ssh_keys(tmp_path_factory: pytest.TempPathFactory) -> SSHKeys:
    require_binary("ssh-keygen")
    return SSHKeys(tmp_path_factory.mktemp("ssh-keys"))


SSHD_START_TIMEOUT = 20.0

_SSHD_CONFIG = """\
ListenAddress 127.0.0.1
Port {port}
HostKey {host_key}
PidFile {directory}/sshd.pid
AuthorizedKeysFile {authorized_keys}
UsePAM no
AllowAgentForwarding yes
ExposeAuthInfo yes
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes yes
PermitUserEnvironment no
LogLevel VERBOSE
"""


@dataclass
class SSHServer:
    """An unprivileged sshd serving one Unix account on 127.0.0.1:``port``."""

    user: str
    port: int
    directory: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def ssh(
        self, agent: AgentProcess, remote: str, *, input: str = "", timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """``ssh -A`` into the account with ``agent``'s keys (forwarded), running the shell command ``remote``."""
        argv = [
            require_binary("ssh"),
            "-A",
            "-F",
            "/dev/null",
            "-p",
            str(self.port),
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            f"IdentityAgent={agent.socket}",
            f"{self.user}@127.0.0.1",
            remote,
        ]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(agent.directory), **agent.env}
        return subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, env=env)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_sshd(user: str, home: Path, authorized: list[SSHKey]) -> SSHServer:
    """A real sshd run as ``user`` (whose home is ``home``), accepting ``authorized`` keys for that account only."""
    import pwd

    from tests.fixtures_services import free_port

    sshd = require_binary("sshd")
    keygen = require_binary("ssh-keygen")
    pw = pwd.getpwnam(user)
    directory = home / ".sshd-test"
    directory.mkdir(mode=0o700, exist_ok=True)
    host_key = directory / "host_ed25519"
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True, capture_output=True)
    authorized_keys = directory / "authorized_keys"
    authorized_keys.write_text("".join(key.public.read_text() for key in authorized))
    port = free_port()
    config = directory / "sshd_config"
    config.write_text(
        _SSHD_CONFIG.format(port=port, host_key=host_key, directory=directory, authorized_keys=authorized_keys)
    )
    log_path = directory / "sshd.log"
    for path in (directory, host_key, host_key.with_suffix(".pub"), authorized_keys, config):
        os.chown(path, pw.pw_uid, pw.pw_gid)
    log_path.touch()
    os.chown(log_path, pw.pw_uid, pw.pw_gid)
    # -D: stay in the foreground (this fixture owns the process); -E: log to a file the test can show.
    process = subprocess.Popen(
        [require_binary("runuser"), "-u", user, "--", sshd, "-D", "-f", str(config), "-E", str(log_path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    server = SSHServer(user, port, directory, process, log_path)
    deadline = time.monotonic() + SSHD_START_TIMEOUT
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.settimeout(1)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            err = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RuntimeError(f"sshd did not start: {err[-1500:]} {server.log()[-1500:]}")
        time.sleep(0.05)
    return server
