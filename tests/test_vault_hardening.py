"""The OpenBao client under a slow server, an HTTP proxy and a planted CA bundle. Real parts only.

A real OpenBao dev server, a real trickling TCP relay and a real listening HTTP proxy on 127.0.0.1 (both written
below, a few dozen lines each), the real `credstore` command. Waits are bounded (subprocess timeouts); nothing
asserts a duration.

- A server that answers one byte every 0.5 s never trips a per-read timeout: one wall-clock deadline per backend
  read (default 5 s, ``vault.deadline`` / ``CREDSTORE_VAULT_DEADLINE``) ends it with exit 12, then the cache.
- ``http_proxy`` and friends are ignored (the token must not go through a proxy the environment names); only
  ``credstore vault config --proxy`` / ``init --proxy`` sets one, and a proxy's failure or 502 is exit 12.
- ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` do not change which CAs are trusted: only ``--ca-cert`` does.
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import CLI
from tests.fixtures_services import OpenBao

hvac = pytest.importorskip("hvac", reason="hvac not installed (pip install 'credstore[vault]')")

WANDB = "a1b2c3d4e5f6a7b8c9d0" * 2
DEFAULT_DEADLINE = 5.0
GRACE = 10.0  # bounded wait on top of the deadline; generous for a loaded 2-core machine


# -- real network parts on 127.0.0.1 ------------------------------------------------------------------------------


class _Server:
    """Accept loop on a free 127.0.0.1 port; each connection handled on its own daemon thread."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.stopped = threading.Event()
        self.connections = 0
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._sockets.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _keep(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.append(sock)
        return sock

    def _serve(self, client: socket.socket) -> None:
        raise NotImplementedError

    def _pipe(self, src: socket.socket, dst: socket.socket, delay: float | None = None) -> None:
        """Copy src to dst until EOF; with ``delay``, one byte per ``delay`` seconds."""
        try:
            while not self.stopped.is_set():
                data = src.recv(65536)
                if not data:
                    break
                if delay is None:
                    dst.sendall(data)
                    continue
                for i in range(len(data)):
                    if self.stopped.wait(delay):
                        return
                    dst.sendall(data[i : i + 1])
        except OSError:
            pass
        finally:
            with suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def stop(self) -> None:
        self.stopped.set()
        self.listener.close()
        with self._lock:
            for sock in self._sockets:
                with suppress(OSError):
                    sock.close()


class TricklingRelay(_Server):
    """TCP relay to OpenBao. Requests pass unchanged; replies pass unchanged until ``trickle`` is set, then one byte
    every 0.5 s: a server that always answers, too slowly for a reply ever to finish in time."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.trickle = threading.Event()
        super().__init__()

    def _serve(self, client: socket.socket) -> None:
        upstream = self._keep(socket.create_connection(("127.0.0.1", self.upstream_port)))
        threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
        try:
            while not self.stopped.is_set():
                data = upstream.recv(65536)
                if not data:
                    break
                if not self.trickle.is_set():
                    client.sendall(data)
                    continue
                for i in range(len(data)):
                    if self.stopped.wait(0.5):
                        return
                    client.sendall(data[i : i + 1])
        except OSError:
            pass
        finally:
            with suppress(OSError):
                client.shutdown(socket.SHUT_WR)


class ListeningProxy(_Server):
    """A tiny HTTP proxy counting its connections. CONNECT is tunnelled; an absolute-form request is forwarded as
    origin-form with ``Connection: close`` (one request per connection). With ``status``, every request gets that
    HTTP status instead (a proxy whose upstream is down)."""

    def __init__(self, status: int | None = None) -> None:
        self.status = status
        self.saw_token = False
        super().__init__()

    def _serve(self, client: socket.socket) -> None:
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = client.recv(65536)
            if not data:
                client.close()
                return
            buf += data
        head, rest = buf.split(b"\r\n\r\n", 1)
        request_line, *headers = head.split(b"\r\n")
        method, target, _ = request_line.split(b" ", 2)
        if any(h.lower().startswith(b"x-vault-token:") for h in headers):
            self.saw_token = True
        if self.status is not None:
            client.sendall(b"HTTP/1.1 %d Proxy Says No\r\nContent-Length: 0\r\nConnection: close\r\n\r\n" % self.status)
            client.close()
            return
        if method == b"CONNECT":
            host, port = target.decode().rsplit(":", 1)
            upstream = self._keep(socket.create_connection((host, int(port))))
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            upstream.sendall(rest)
        else:
            url = urlsplit(target.decode())
            upstream = self._keep(socket.create_connection((url.hostname or "", url.port or 80)))
            path = (url.path or "/") + (f"?{url.query}" if url.query else "")
            kept = [
                h for h in headers if h.split(b":", 1)[0].strip().lower() not in (b"connection", b"proxy-connection")
            ]
            upstream.sendall(b"\r\n".join([b"%s %s HTTP/1.1" % (method, path.encode()), *kept, b"Connection: close"]))
            upstream.sendall(b"\r\n\r\n" + rest)
        threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
        self._pipe(upstream, client)


@pytest.fixture
def relay(openbao: OpenBao) -> Iterator[TricklingRelay]:
    server = TricklingRelay(int(urlsplit(openbao.url).port or 0))
    yield server
    server.stop()


@pytest.fixture
def proxy() -> Iterator[ListeningProxy]:
    server = ListeningProxy()
    yield server
    server.stop()


@pytest.fixture
def proxy_502() -> Iterator[ListeningProxy]:
    server = ListeningProxy(status=502)
    yield server
    server.stop()


# -- helpers ------------------------------------------------------------------------------------------------------


def host(tmp_path: Path, name: str) -> CLI:
    home = tmp_path / name
    home.mkdir(mode=0o700)
    return CLI(home)


def make_token(bao: OpenBao) -> str:
    return bao.request("POST", "auth/token/create", {"policies": ["root"], "ttl": "1h"})["auth"]["client_token"]


def connect(cli: CLI, url: str, user: str, token: str, *extra: str, env: dict[str, str] | None = None) -> None:
    result = cli(
        "init", "--backend", "vault", "--url", url, "--user", user, "--protection", "keyfile", *extra,
        input=token, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert token not in result.stderr


def one_clean_line(result) -> None:
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def proxy_env(url: str) -> dict[str, str]:
    """Every variable requests / curl / urllib read a proxy from, and no NO_PROXY."""
    names = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
    return dict.fromkeys(names, url)


# -- finding 1: one wall-clock deadline ----------------------------------------------------------------------------


def test_trickling_server_env_ends_with_exit_12_or_the_cache(openbao: OpenBao, relay: TricklingRelay, tmp_path: Path):
    user, token = f"u{secrets.token_hex(4)}", make_token(openbao)
    cached, uncached = host(tmp_path, "cached"), host(tmp_path, "uncached")
    connect(cached, relay.url, user, token, "--cache-max-age", "1d")
    connect(uncached, relay.url, user, token)
    cached("set", "WANDB_API_KEY", input=WANDB, check=True)
    cached("set", "WANDB_ENTITY", "alice", check=True)  # two variables: the parallel readers are used too
    online = cached("env", "--shell", "bash", check=True).stdout
    assert f"export WANDB_API_KEY='{WANDB}'" in online

    relay.trickle.set()
    # Old code: every recv gets a byte within 0.5 s, so the 3 s per-read timeout never fires and env hangs.
    hung = uncached("env", "--shell", "bash", timeout=DEFAULT_DEADLINE + GRACE)
    assert hung.returncode == 12 and hung.stdout == ""
    assert "did not finish within 5 s" in hung.stderr
    one_clean_line(hung)
    from_cache = cached("env", "--shell", "bash", timeout=DEFAULT_DEADLINE + GRACE)
    assert from_cache.returncode == 0, from_cache.stderr
    assert from_cache.stdout == online and "using the cached copy" in from_cache.stderr
    ran = cached("exec", "--", "sh", "-c", 'printf %s "$WANDB_API_KEY"', timeout=DEFAULT_DEADLINE + GRACE)
    assert ran.returncode == 0 and ran.stdout == WANDB
    # Writes need the server: bounded as well (deadline + the 30 s allowed for waiting on another writer).
    write = uncached("set", "WANDB_ENTITY", "bob", timeout=DEFAULT_DEADLINE + 30 + GRACE)
    assert write.returncode == 12 and "did not finish within 35 s" in write.stderr
    one_clean_line(write)


def test_deadline_is_configurable(openbao: OpenBao, relay: TricklingRelay, tmp_path: Path) -> None:
    user, token = f"u{secrets.token_hex(4)}", make_token(openbao)
    cli = host(tmp_path, "h")
    connect(cli, relay.url, user, token)
    cli("set", "WANDB_ENTITY", "alice", check=True)
    assert cli("vault", "config", "--deadline", "2").returncode == 0
    status = json.loads(cli("vault", "status", "--json", check=True).stdout)
    assert status["deadline"] == 2.0
    relay.trickle.set()
    slow = cli("env", timeout=2 + GRACE)
    assert slow.returncode == 12 and slow.stdout == "" and "did not finish within 2 s" in slow.stderr
    by_env = cli("env", env={"CREDSTORE_VAULT_DEADLINE": "1.5"}, timeout=1.5 + GRACE)
    assert by_env.returncode == 12 and "did not finish within 1.5 s" in by_env.stderr
    for bad in ("0", "-1", "soon", "nan", "inf"):
        refused = cli("vault", "config", "--deadline", bad)
        assert refused.returncode == 2, (bad, refused.stderr)
        one_clean_line(refused)
        for variable in ("CREDSTORE_VAULT_DEADLINE", "CREDSTORE_VAULT_TIMEOUT"):
            from_env = cli("env", env={variable: bad})
            assert from_env.returncode == 2 and from_env.stdout == "" and variable in from_env.stderr
            one_clean_line(from_env)


def test_library_calls_are_bounded_in_the_main_thread_and_in_others(openbao: OpenBao, relay: TricklingRelay) -> None:
    from credstore.errors import UnavailableError
    from credstore.store.base import Entry
    from credstore.store.vault import VaultBackend

    path = f"credstore/users/lib/p-{secrets.token_hex(4)}"
    backend = VaultBackend(relay.url, openbao.root_token, path=path, source="t", deadline=2.0, lock_wait=1.0)
    backend.modify(lambda s: s.entries.update(A=Entry("A", "1"), B=Entry("B", "2")))
    relay.trickle.set()

    outcome: dict[str, BaseException | None] = {}

    def attempt(name: str, call) -> None:
        try:
            call()
            outcome[name] = None
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            outcome[name] = exc

    attempt("main read", backend.read)  # pytest runs tests in the main thread
    workers = [
        threading.Thread(target=attempt, args=("thread read", backend.read), daemon=True),
        threading.Thread(
            target=attempt,
            args=("thread modify", lambda: backend.modify(lambda s: s.entries.update(C=Entry("C", "3")))),
            daemon=True,
        ),
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(2.0 + 1.0 + GRACE)
        assert not worker.is_alive(), "a library call on a trickling server did not return"
    for name in ("main read", "thread read", "thread modify"):
        assert isinstance(outcome[name], UnavailableError), (name, outcome[name])
    assert "did not finish within 2 s" in str(outcome["main read"])
    assert openbao.root_token not in repr(outcome)


# -- finding 7: no environment proxy; an explicit one that fails is exit 12 -----------------------------------------


def test_environment_proxy_is_never_used(openbao: OpenBao, proxy: ListeningProxy, tmp_path: Path) -> None:
    user, token = f"u{secrets.token_hex(4)}", make_token(openbao)
    cli = host(tmp_path, "h")
    env = proxy_env(proxy.url)
    connect(cli, openbao.url, user, token, env=env)
    cli("set", "WANDB_API_KEY", input=WANDB, env=env, check=True)
    shown = cli("env", "--shell", "bash", env=env)
    assert shown.returncode == 0 and f"export WANDB_API_KEY='{WANDB}'" in shown.stdout
    assert cli("vault", "status", env=env).returncode == 0
    # Old code: every request, X-Vault-Token included, went to the proxy.
    assert proxy.connections == 0 and not proxy.saw_token


def test_environment_proxy_answering_502_changes_nothing(openbao: OpenBao, proxy_502: ListeningProxy, tmp_path: Path):
    user, token = f"u{secrets.token_hex(4)}", make_token(openbao)
    cli = host(tmp_path, "h")
    connect(cli, openbao.url, user, token)
    cli("set", "WANDB_ENTITY", "alice", check=True)
    shown = cli("env", "--shell", "bash", env=proxy_env(proxy_502.url))  # old code: exit 1, no cache
    assert shown.returncode == 0 and "export WANDB_ENTITY='alice'" in shown.stdout
    assert proxy_502.connections == 0


def test_explicit_proxy_is_used(openbao: OpenBao, proxy: ListeningProxy, tmp_path: Path) -> None:
    user, token = f"u{secrets.token_hex(4)}", make_token(openbao)
    cli = host(tmp_path, "h")
    connect(cli, openbao.url, user, token, "--proxy", proxy.url)
    assert proxy.connections > 0  # init checked the token through it
    cli("set", "WANDB_ENTITY", "alice", check=True)
    before = proxy.connections
    shown = cli("env", "--shell", "bash", check=True)
    assert "export WANDB_ENTITY='alice'" in shown.stdout and proxy.connections > before
    status = json.loads(cli("vault", "status", "--json", check=True).stdout)
    assert status["proxy"] == proxy.url
    # Dropped again: direct.
    assert cli("vault", "config", "--proxy", "").returncode == 0
    before = proxy.connections
    assert cli("env", check=True).stdout and proxy.connections == before


def test_explicit_proxy_failure_is_exit_12_and_the_cache(
    openbao: OpenBao, proxy_502: ListeningProxy, tmp_path: Path
) -> None:
    user, token = f"u{secrets.token_hex(4)}", make_token(openbao)
    cached, uncached = host(tmp_path, "cached"), host(tmp_path, "uncached")
    connect(cached, openbao.url, user, token, "--cache-max-age", "1d")
    connect(uncached, openbao.url, user, token)
    cached("set", "WANDB_ENTITY", "alice", check=True)
    online = cached("env", "--shell", "bash", check=True).stdout
    for cli in (cached, uncached):
        assert cli("vault", "config", "--proxy", proxy_502.url).returncode == 0

    bad_gateway = uncached("env", "--shell", "bash")
    assert bad_gateway.returncode == 12 and bad_gateway.stdout == "" and "502" in bad_gateway.stderr
    one_clean_line(bad_gateway)
    assert token not in bad_gateway.stderr
    from_cache = cached("env", "--shell", "bash")
    assert from_cache.returncode == 0 and from_cache.stdout == online and "using the cached copy" in from_cache.stderr
    assert proxy_502.connections > 0

    # A proxy that is not there at all: the same.
    proxy_502.stop()
    gone = uncached("env", "--shell", "bash")
    assert gone.returncode == 12 and gone.stdout == "" and "proxy" in gone.stderr
    one_clean_line(gone)
    assert cached("env", "--shell", "bash").stdout == online


def test_proxy_option_is_checked(openbao: OpenBao, tmp_path: Path) -> None:
    user, token = f"u{secrets.token_hex(4)}", make_token(openbao)
    cli = host(tmp_path, "h")
    connect(cli, openbao.url, user, token)
    password = "pw-" + secrets.token_hex(6)
    with_password = cli("vault", "config", "--proxy", f"http://me:{password}@127.0.0.1:3128")
    assert with_password.returncode == 2 and password not in with_password.stderr
    assert "password" in with_password.stderr
    one_clean_line(with_password)
    for bad in ("ftp://127.0.0.1:21", "127.0.0.1:3128", "http://", "socks5://127.0.0.1:1080"):
        refused = cli("vault", "config", "--proxy", bad)
        assert refused.returncode == 2, (bad, refused.stderr)
        one_clean_line(refused)
    assert cli("vault", "config", "--proxy", "http://127.0.0.1:3128").returncode == 0
    assert json.loads(cli("vault", "status", "--json").stdout)["proxy"] == "http://127.0.0.1:3128"
    no_backend = cli("init", "--proxy", "http://127.0.0.1:3128")  # a vault option without --backend vault
    assert no_backend.returncode == 2 and "--proxy" in no_backend.stderr and "--backend vault" in no_backend.stderr


# -- informational: REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE -------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_bao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    from tests.fixtures_services import start_openbao

    server = start_openbao(tmp_path_factory.mktemp("tls-bao"), tls=True)
    yield server
    server.stop()


def test_ca_bundle_from_the_environment_changes_nothing(tls_bao, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    planted = (
        {"REQUESTS_CA_BUNDLE": "/nonexistent/ca.pem"},
        {"REQUESTS_CA_BUNDLE": str(bogus)},
        {"CURL_CA_BUNDLE": str(bogus)},
        {"REQUESTS_CA_BUNDLE": tls_bao.ca_cert},  # the server's own CA: must not make it trusted either
        {"CURL_CA_BUNDLE": tls_bao.ca_cert},
    )
    # Without --ca-cert the dev server's certificate is not trusted, whatever the environment says.
    for i, env in enumerate(planted):
        cli = host(tmp_path, f"untrusted-{i}")
        refused = cli(
            "init", "--backend", "vault", "--url", tls_bao.url, "--protection", "keyfile",
            input=tls_bao.root_token, env=env,
        )  # fmt: skip
        assert refused.returncode == 12 and "not trusted" in refused.stderr, (env, refused.stderr)
        one_clean_line(refused)
    # With --ca-cert it works, and the environment does not replace that CA.
    cli = host(tmp_path, "trusted")
    connect(cli, tls_bao.url, f"u{secrets.token_hex(4)}", tls_bao.root_token, "--ca-cert", tls_bao.ca_cert)
    cli("set", "WANDB_ENTITY", "alice", check=True)
    for env in planted:
        shown = cli("env", "--shell", "bash", env=env)
        assert shown.returncode == 0 and "export WANDB_ENTITY='alice'" in shown.stdout, (env, shown.stderr)


def test_deadline_holds_over_tls_even_while_the_handshake_trickles(tls_bao) -> None:
    """The TLS handshake runs on a socket object urllib3 has already handed to ssl: the deadline still ends it."""
    from credstore.errors import UnavailableError
    from credstore.store.base import Entry
    from credstore.store.vault import VaultBackend

    relay = TricklingRelay(int(urlsplit(tls_bao.url).port or 0))
    try:
        url = f"https://127.0.0.1:{relay.port}"
        path = f"credstore/users/tls/p-{secrets.token_hex(4)}"

        def backend() -> VaultBackend:
            return VaultBackend(url, tls_bao.root_token, path=path, source="t", ca_cert=tls_bao.ca_cert, deadline=2.0)

        warm = backend()
        warm.modify(lambda s: s.entries.update(A=Entry("A", "1"), B=Entry("B", "2")))
        relay.trickle.set()
        outcome: dict[str, BaseException | None] = {}

        def attempt(name: str, b: VaultBackend) -> None:
            try:
                b.read()
                outcome[name] = None
            except BaseException as exc:  # noqa: BLE001 - reported to the test thread
                outcome[name] = exc

        workers = [
            threading.Thread(target=attempt, args=("open connections", warm), daemon=True),
            threading.Thread(target=attempt, args=("trickled handshake", backend()), daemon=True),
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(2.0 + GRACE)
            assert not worker.is_alive(), "a read over TLS through a trickling relay did not return"
        for name, exc in outcome.items():
            assert isinstance(exc, UnavailableError) and "did not finish within 2 s" in str(exc), (name, exc)
    finally:
        relay.stop()
