"""Tokens: AppRole login, lookup and renewal. Each call runs under its own wall-clock deadline (``session.py``).

Neither the AppRole secret id nor a token ever appears in an error message or a repr.
"""

from __future__ import annotations

from typing import Any

from credstore.errors import AuthError, NotFoundError
from credstore.store.vault.session import (
    DEFAULT_DEADLINE,
    DEFAULT_TIMEOUT,
    LOGIN_HINT,
    Connection,
    Session,
    check_path,
    check_proxy,
    deadline_scope,
    parse_seconds,
    server_text,
)


def _session(
    url: str, token: str, timeout: float, deadline: float, ca_cert: str | None, verify: bool, proxy: str | None
) -> Session:
    connection = Connection(
        url,
        timeout=float(timeout),
        deadline=parse_seconds(deadline, "the OpenBao deadline"),
        ca_cert=ca_cert,
        verify=verify,
        proxy=check_proxy(proxy) if proxy else None,
    )
    return Session(connection, token)


def login_approle(
    url: str,
    role_id: str,
    secret_id: str,
    *,
    mount: str = "approle",
    timeout: float = DEFAULT_TIMEOUT,
    deadline: float = DEFAULT_DEADLINE,
    ca_cert: str | None = None,
    verify: bool = True,
    proxy: str | None = None,
) -> str:
    """Log in with AppRole and return the client token. Neither the secret id nor the token appears in errors."""
    import hvac.exceptions as hx

    s = _session(url, "-", timeout, deadline, ca_cert, verify, proxy)
    mount = check_path("auth mount", mount)
    try:
        with deadline_scope(s.connection.deadline, f"OpenBao at {s.shown_url}"), s.errors(f"auth/{mount}/login"):
            try:
                resp = s.client().auth.approle.login(role_id, secret_id, use_token=False, mount_point=mount)
            except (hx.InvalidRequest, hx.Forbidden) as exc:
                raise AuthError(f"AppRole login at {s.shown_url} refused: {server_text(exc)}") from None
    except NotFoundError:
        raise AuthError(f"AppRole login at {s.shown_url}: no AppRole auth mounted at auth/{mount}") from None
    token = ((resp or {}).get("auth") or {}).get("client_token")
    if not token:
        raise AuthError(f"AppRole login at {s.shown_url} returned no token")
    return str(token)


def token_info(
    url: str,
    token: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    deadline: float = DEFAULT_DEADLINE,
    ca_cert: str | None = None,
    verify: bool = True,
    proxy: str | None = None,
) -> dict[str, Any]:
    """ttl (s, 0 = never expires), renewable, policies, expire_time, display_name, type of a token (not its id)."""
    import hvac.exceptions as hx

    s = _session(url, token, timeout, deadline, ca_cert, verify, proxy)
    with deadline_scope(s.connection.deadline, f"OpenBao at {s.shown_url}"), s.errors("auth/token/lookup-self"):
        try:
            data = s.client().auth.token.lookup_self()["data"]
        except hx.Forbidden:
            raise AuthError(f"OpenBao token expired or invalid; {LOGIN_HINT}") from None
    return {
        "ttl": int(data.get("ttl") or 0),
        "renewable": bool(data.get("renewable")),
        "policies": list(data.get("policies") or []),
        "expire_time": data.get("expire_time"),
        "display_name": data.get("display_name"),
        "type": data.get("type"),
    }


def renew_token(
    url: str,
    token: str,
    *,
    increment: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    deadline: float = DEFAULT_DEADLINE,
    ca_cert: str | None = None,
    verify: bool = True,
    proxy: str | None = None,
) -> int:
    """Renew the token and return its new ttl in seconds; a token that is not renewable is left alone (its ttl)."""
    info = token_info(url, token, timeout=timeout, deadline=deadline, ca_cert=ca_cert, verify=verify, proxy=proxy)
    if not info["renewable"]:
        return int(info["ttl"])
    s = _session(url, token, timeout, deadline, ca_cert, verify, proxy)
    with deadline_scope(s.connection.deadline, f"OpenBao at {s.shown_url}"), s.errors("auth/token/renew-self"):
        resp = s.client().auth.token.renew_self(increment=f"{increment}s" if increment else None)
    return int(((resp or {}).get("auth") or {}).get("lease_duration") or 0)
