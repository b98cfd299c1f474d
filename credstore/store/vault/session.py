"""The HTTP side of the OpenBao client: the connection settings, the requests session, the wall-clock deadline, and
the mapping of hvac / requests failures to credstore errors.

Three promises live here:

- **No environment in the trust path.** The requests session is built with ``trust_env = False``: ``http_proxy`` /
  ``https_proxy`` / ``ALL_PROXY`` / ``NO_PROXY`` never route the token anywhere, ``REQUESTS_CA_BUNDLE`` /
  ``CURL_CA_BUNDLE`` never replace the trusted CAs (only ``ca_cert`` does), ``~/.netrc`` adds no credentials. A proxy
  is used only when given explicitly (``proxy``).
- **One wall-clock deadline per operation** (:func:`deadline_scope`). Per-request timeouts bound each socket read,
  not a reply: a server sending one byte every 0.5 s never trips them, and a read of N variables makes 2 + 2N
  requests. Within a scope no request starts after the deadline, every request's connect and read timeouts are
  capped to the time left, and when the time is up a watchdog thread shuts down every socket the operation has
  used, which ends a read blocked in any thread (the caller's or the parallel readers'). The caller gets
  :class:`~credstore.errors.UnavailableError` (exit 12), so a profile's last-known-good cache applies.
  A watchdog thread rather than ``SIGALRM``: it works the same in the main thread and in a library caller's
  thread, takes no signal from the host program, and leaves no request running behind the error.
- **Unavailability is exit 12**: no answer, a refused or failed proxy, a 502 / 504 from a proxy or gateway, a sealed
  server. Never a generic failure that would skip the cache.

``hvac`` and ``requests`` are imported on the first request, never at import time (the hot path does not pay).
"""

from __future__ import annotations

import contextvars
import math
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from credstore.errors import (
    AuthError,
    BusyError,
    CredstoreError,
    NotFoundError,
    PermissionProblem,
    UnavailableError,
    UsageError,
)

T = TypeVar("T")

DEFAULT_TIMEOUT = 3.0  # seconds per socket operation
DEFAULT_DEADLINE = 5.0  # seconds for a whole read (all its requests)
LOGIN_HINT = "run `credstore vault login`"
_SEGMENT_RE = re.compile(r"^[A-Za-z0-9_.\-@+=]+$")
_GATEWAY_STATUSES = (502, 504)  # 503 is hvac's VaultDown: sealed / not initialized


def check_path(what: str, value: str) -> str:
    """A KV mount or path: segments of safe characters, no empty, ``.`` or ``..`` segment. UsageError otherwise."""
    value = value.strip("/")
    parts = value.split("/")
    if not value or any(p in ("", ".", "..") or not _SEGMENT_RE.match(p) for p in parts):
        raise UsageError(f"invalid OpenBao {what}: {value!r}")
    return value


def display_url(url: str) -> str:
    """The URL without any user:password@ part."""
    return re.sub(r"//[^/@]*@", "//", url.rstrip("/"))


def check_proxy(url: str) -> str:
    """An explicit proxy: ``http://HOST:PORT`` or ``https://HOST:PORT``, without credentials (they would be on argv)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        parts, port = None, None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--proxy must be http://HOST:PORT or https://HOST:PORT: {display_url(url)[:200]!r}")
    if parts.username is not None or parts.password is not None:
        raise UsageError(
            "--proxy: a user name or password in the proxy URL would be on the command line, where `ps` shows it; "
            "only proxies without authentication are supported"
        )
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def parse_seconds(value: str | float, what: str) -> float:
    """A positive, finite number of seconds (a setting or an environment variable); UsageError naming ``what``."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise UsageError(f"{what} must be a number of seconds more than 0, not {str(value)[:40]!r}")
    return seconds


@dataclass(frozen=True)
class Connection:
    """Where and how to reach the server, without the token."""

    url: str
    timeout: float = DEFAULT_TIMEOUT
    deadline: float = DEFAULT_DEADLINE
    ca_cert: str | None = None
    verify: bool = True
    proxy: str | None = None

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise UsageError(f"OpenBao address must start with http:// or https://: {display_url(self.url)}")

    def __repr__(self) -> str:
        return f"Connection(url={self.shown_url!r}, proxy={self.proxy!r})"

    @property
    def shown_url(self) -> str:
        return display_url(self.url)

    def options(self) -> dict[str, Any]:
        """The keyword arguments of ``login_approle`` / ``token_info`` / ``renew_token`` for this connection."""
        return {
            "timeout": self.timeout,
            "deadline": self.deadline,
            "ca_cert": self.ca_cert,
            "verify": self.verify,
            "proxy": self.proxy,
        }


class CasConflict(Exception):
    """A check-and-set write lost the race (the backend retries or undoes; never shown to a user)."""


class DeadlineExceeded(Exception):
    """Raised by the transport when a request would start after the deadline (mapped to UnavailableError)."""


class GatewayError(Exception):
    """A proxy or gateway answered 502 / 504 (mapped to UnavailableError)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


# -- the deadline -------------------------------------------------------------------------------------------------


class Deadline:
    """One wall-clock limit over every request of an operation; see the module docstring."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self._expired = False
        self._lock = threading.Lock()
        self._connections: list[Any] = []  # connections used by this operation (see _Abortable)
        self._watchdog = threading.Timer(seconds, self.expire)
        self._watchdog.daemon = True
        self._watchdog.name = "credstore-vault-deadline"

    def __repr__(self) -> str:
        return f"Deadline({self.seconds:g} s, expired={self.expired})"

    @property
    def expired(self) -> bool:
        return self._expired or time.monotonic() >= self.end

    def remaining(self) -> float:
        return 0.0 if self._expired else max(0.0, self.end - time.monotonic())

    def watch(self, connection: Any) -> None:
        """Remember a connection this operation uses; abort it at once if the time is already up."""
        with self._lock:
            if not self._expired:
                if connection not in self._connections:
                    self._connections.append(connection)
                return
        connection.credstore_abort()

    def expire(self) -> None:
        """Time is up: refuse new requests and shut down every socket in use, waking whoever reads from it."""
        with self._lock:
            self._expired = True
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.credstore_abort()

    def start(self) -> None:
        self._watchdog.start()

    def stop(self) -> None:
        self._watchdog.cancel()
        with self._lock:
            self._connections = []


_CURRENT: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("credstore_vault_deadline", default=None)


def current_deadline() -> Deadline | None:
    return _CURRENT.get()


def deadline_error(server: str, deadline: Deadline | None) -> UnavailableError:
    seconds = f"{deadline.seconds:g}" if deadline is not None else "?"
    return UnavailableError(f"{server} did not finish within {seconds} s (deadline)")


@contextmanager
def deadline_scope(seconds: float, server: str = "OpenBao") -> Iterator[Deadline]:
    """Run the block's requests under one wall-clock deadline of ``seconds``; ``server`` names it in the error.

    Nested scopes share the outermost deadline, so a caller may wrap several backends (a profile and its services)
    in one budget. Threads that make requests for the block must run their work through :func:`bind`.
    """
    outer = _CURRENT.get()
    if outer is not None:
        yield outer
        return
    deadline = Deadline(seconds)
    token = _CURRENT.set(deadline)
    deadline.start()
    try:
        yield deadline
    except CredstoreError:
        raise
    except Exception:
        # A reply cut off at the deadline may surface as anything (a half-read body is not JSON, ...).
        if deadline.expired:
            raise deadline_error(server, deadline) from None
        raise
    finally:
        deadline.stop()
        _CURRENT.reset(token)


def bind(function: Callable[..., T]) -> Callable[..., T]:
    """``function`` run, in whatever thread, under the caller's current deadline (for thread pools)."""
    deadline = _CURRENT.get()

    def run(*args: Any) -> T:
        token = _CURRENT.set(deadline)
        try:
            return function(*args)
        finally:
            _CURRENT.reset(token)

    return run


# -- the requests transport ---------------------------------------------------------------------------------------

_transport: type | None = None
_transport_lock = threading.Lock()


def _transport_adapter() -> type:
    """The requests HTTPAdapter class that enforces the deadline (built on first use: requests is imported lazily)."""
    global _transport
    with _transport_lock:
        if _transport is None:
            _transport = _build_transport_adapter()
        return _transport


def _build_transport_adapter() -> type:
    import requests.adapters
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class _Abortable:
        """Connection mix-in: registers itself with the operation's deadline and can be shut down from another
        thread. It keeps a duplicate of the socket's descriptor because a TLS handshake detaches the plain socket
        object urllib3 holds while it runs; ``shutdown`` on the duplicate ends the connection in every phase."""

        _credstore_dup: socket.socket | None = None

        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()  # type: ignore[misc]
            self._credstore_close_dup()
            self._credstore_dup = sock.dup()
            deadline = _CURRENT.get()
            if deadline is not None:
                deadline.watch(self)
            return sock

        def connect(self) -> None:
            deadline = _CURRENT.get()
            if deadline is not None:
                deadline.watch(self)
            super().connect()  # type: ignore[misc]

        def request(self, *args: Any, **kwargs: Any) -> None:
            deadline = _CURRENT.get()
            if deadline is not None:
                deadline.watch(self)
            super().request(*args, **kwargs)  # type: ignore[misc]

        def close(self) -> None:
            try:
                super().close()  # type: ignore[misc]
            finally:
                self._credstore_close_dup()

        def credstore_abort(self) -> None:
            dup = self._credstore_dup
            if dup is not None:
                with suppress(OSError):
                    dup.shutdown(socket.SHUT_RDWR)

        def _credstore_close_dup(self) -> None:
            dup, self._credstore_dup = self._credstore_dup, None
            if dup is not None:
                dup.close()

    class _Connection(_Abortable, HTTPConnection):
        pass

    class _TLSConnection(_Abortable, HTTPSConnection):
        pass

    class _Pool(HTTPConnectionPool):
        ConnectionCls = _Connection

    class _TLSPool(HTTPSConnectionPool):
        ConnectionCls = _TLSConnection

    pools = {"http": _Pool, "https": _TLSPool}

    class DeadlineAdapter(requests.adapters.HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = pools

        def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
            manager = super().proxy_manager_for(proxy, **kwargs)
            manager.pool_classes_by_scheme = pools
            return manager

        def send(self, request: Any, stream: bool = False, timeout: Any = None, **kwargs: Any) -> Any:
            deadline = _CURRENT.get()
            if deadline is not None:
                left = deadline.remaining()
                if left <= 0:
                    raise DeadlineExceeded()
                connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
                timeout = (min(connect or left, left), min(read or left, left))
            response = super().send(request, stream=stream, timeout=timeout, **kwargs)
            if response.status_code in _GATEWAY_STATUSES:
                response.close()
                raise GatewayError(response.status_code)
            return response

    return DeadlineAdapter


# -- the session --------------------------------------------------------------------------------------------------


def server_text(exc: Exception) -> str:
    """The server's error messages of an hvac exception, on one line (they never hold a value or the token)."""
    errors = getattr(exc, "errors", None) or []
    text = "; ".join(" ".join(str(e).split()) for e in errors)
    return text[:300]


class Session:
    """hvac clients for one connection and token, and the mapping of their failures. Holds the token; never shows it."""

    def __init__(self, connection: Connection, token: str) -> None:
        self.connection = connection
        self.url = connection.url.rstrip("/")
        self.shown_url = connection.shown_url
        self.__token = token
        self.timeout = float(connection.timeout)
        self.verify: bool | str = connection.ca_cert if connection.ca_cert else connection.verify
        self.proxies = {"http": connection.proxy, "https": connection.proxy} if connection.proxy else {}
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"Session(url={self.shown_url!r})"

    def client(self) -> Any:
        """An ``hvac.Client`` for this thread (requests sessions are not promised to be thread-safe)."""
        client = getattr(self._local, "client", None)
        if client is None:
            import hvac
            import requests

            http = requests.Session()
            http.trust_env = False  # no proxy, CA bundle or netrc from the environment; see the module docstring
            adapter = _transport_adapter()
            http.mount("http://", adapter())
            http.mount("https://", adapter())
            http.verify = self.verify  # hvac prefers the session's verify and proxies over its own arguments
            http.proxies = dict(self.proxies)
            client = hvac.Client(
                url=self.url,
                token=self.__token,
                timeout=self.timeout,
                verify=self.verify,
                proxies=dict(self.proxies) or None,
                session=http,
            )
            self._local.client = client
        return client

    def _token_rejected(self) -> bool:
        """After a 403: is the token itself invalid or expired (rather than lacking a policy)?

        OpenBao answers a bad token and a missing capability alike with 403 "permission denied" (quirk: the first
        as the bare string, the second wrapped as "1 error occurred: * permission denied"). Ask lookup-self, which
        the default policy allows to every valid token.
        """
        import hvac.exceptions as hx

        try:
            self.client().auth.token.lookup_self()
        except hx.Forbidden as exc:
            return not any("error occurred" in str(e) for e in (exc.errors or []))
        except Exception:  # only refines the message; the caller raises an error either way
            return False
        return False

    def _deadline_error(self) -> UnavailableError:
        return deadline_error(f"OpenBao at {self.shown_url}", _CURRENT.get())

    @staticmethod
    def _out_of_time() -> bool:
        deadline = _CURRENT.get()
        return deadline is not None and deadline.expired

    @contextmanager
    def errors(self, what: str) -> Iterator[None]:
        """Turn transport and server failures inside the block into credstore errors naming ``what``."""
        import hvac.exceptions as hx
        import requests.exceptions as rx

        try:
            yield
            if self._out_of_time():  # an answer completed past the deadline may be one cut short: never trust it
                raise DeadlineExceeded()
        except CredstoreError:
            raise
        except DeadlineExceeded:
            raise self._deadline_error() from None
        except GatewayError as exc:
            via = f"the proxy {display_url(self.connection.proxy)}" if self.connection.proxy else "a gateway"
            raise UnavailableError(
                f"OpenBao at {self.shown_url} is unavailable: {via} answered HTTP {exc.status}"
            ) from None
        except rx.RequestException as exc:
            # The mapped error is raised "from None", but the original stays reachable as __context__, and a
            # requests exception carries the prepared request, whose headers hold X-Vault-Token: drop it.
            exc.request = None
            exc.response = None
            if self._out_of_time():
                raise self._deadline_error() from None
            raise self._transport_error(exc) from None
        except hx.InvalidRequest as exc:
            if any("check-and-set" in str(e) for e in (exc.errors or [])):
                raise CasConflict() from None
            raise CredstoreError(f"OpenBao refused the request for {what}: {server_text(exc)}") from None
        except hx.Unauthorized:
            raise AuthError(f"OpenBao token expired or invalid; {LOGIN_HINT}") from None
        except hx.Forbidden:
            if self._token_rejected():
                raise AuthError(f"OpenBao token expired or invalid; {LOGIN_HINT}") from None
            raise PermissionProblem(f"OpenBao denied access to {what}: the token's policies do not allow it") from None
        except hx.InvalidPath as exc:
            raise NotFoundError(f"OpenBao has nothing at {what} ({server_text(exc) or 'not found'})") from None
        except (hx.VaultDown, hx.VaultNotInitialized):
            raise UnavailableError(f"OpenBao at {self.shown_url} is sealed or not initialized") from None
        except hx.RateLimitExceeded:
            raise BusyError(f"OpenBao at {self.shown_url} is rate-limiting requests; try again") from None
        except hx.VaultError as exc:
            raise CredstoreError(f"OpenBao failed on {what}: {server_text(exc)}") from None
        except Exception:
            # A reply cut off by the deadline can fail anywhere in the HTTP stack; it is still the deadline.
            if self._out_of_time():
                raise self._deadline_error() from None
            raise

    def _transport_error(self, exc: Exception) -> CredstoreError:
        import requests.exceptions as rx

        if isinstance(exc, rx.ProxyError):
            return UnavailableError(
                f"OpenBao at {self.shown_url} is unreachable: the proxy {display_url(self.connection.proxy or '?')} "
                "is not answering or refused the connection"
            )
        if isinstance(exc, rx.SSLError):
            return UnavailableError(
                f"TLS handshake with OpenBao at {self.shown_url} failed: certificate not trusted or invalid; "
                "pass the server's CA with --ca-cert"
            )
        if isinstance(exc, rx.Timeout):
            return UnavailableError(f"OpenBao at {self.shown_url} did not answer within {self.timeout:.1f} s")
        if isinstance(exc, rx.ConnectionError):
            return UnavailableError(f"OpenBao at {self.shown_url} is not answering (connection refused or unreachable)")
        return UnavailableError(f"OpenBao at {self.shown_url}: {type(exc).__name__}")
