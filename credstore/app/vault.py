"""OpenBao / Vault KV v2 profiles: connecting a profile (``init --backend vault``), login, logout, status, cache,
connection settings.

The token (or the AppRole secret id that buys one) comes from ``read_secret`` (the CLI reads it hidden from the
terminal or from stdin, never from argv) and is kept in the profile's LOCAL encrypted store, never in
``~/.vault-token``. The routing facts (URL, mount, path, CA file, timeouts, cache age) go to the profile file.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from credstore import config, durations
from credstore.app.context import Context
from credstore.app.protection import create_profile
from credstore.errors import AuthError, CredstoreError, NotFoundError, PermissionProblem, UsageError

ReadSecret = Callable[[str, str], str]


def _vp() -> Any:
    from credstore.store import vault_profile

    vault_profile.require_hvac()
    return vault_profile


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str | None) -> str:
    from credstore.store.vault_profile import display_url

    if not url:
        raise UsageError("--backend vault needs --url https://openbao.example.org:8200")
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--url must start with https:// (or http:// for loopback): {display_url(url)}")
    if url.startswith("http://") and not is_loopback(url):
        raise UsageError(
            f"--url {display_url(url)}: plain http would send the token and every value unencrypted; "
            "use https:// (http:// is accepted for loopback addresses only)"
        )
    return url.rstrip("/")


def check_ca_cert(ca_cert: str) -> str:
    path = os.path.abspath(os.path.expanduser(ca_cert))
    if not os.path.isfile(path):
        raise NotFoundError(f"--ca-cert: no such file: {path}")
    return path


def obtain_token(
    facts: dict[str, str], approle: bool, role_id: str | None, read_secret: ReadSecret
) -> tuple[str, dict[str, Any], str]:
    """Read a token (or an AppRole secret id and log in); check it with the server. (token, info, source)."""
    vp = _vp()
    from credstore.store.vault import login_approle, parse_seconds, token_info

    url = facts[vp.URL]
    connection: dict[str, Any] = {
        "ca_cert": facts.get(vp.CA_CERT) or None,
        "timeout": float(facts.get(vp.TIMEOUT) or vp.DEFAULT_TIMEOUT),
        "deadline": parse_seconds(facts.get(vp.DEADLINE) or vp.DEFAULT_DEADLINE, f"the {vp.DEADLINE} setting"),
        "proxy": facts.get(vp.PROXY) or None,
    }
    if approle:
        if not role_id:
            raise UsageError("--approle needs --role-id ID (the secret id is read from the terminal or stdin)")
        secret_id = read_secret("AppRole secret id", "AppRole secret id (hidden): ")
        if not secret_id:
            raise UsageError("no AppRole secret id given (type it, or pipe it on stdin)")
        token = login_approle(url, role_id, secret_id, **connection)
        source = "approle"
    else:
        if role_id:
            raise UsageError("--role-id goes with --approle")
        token = read_secret("OpenBao token", "OpenBao / Vault token (hidden): ").strip()
        if not token:
            raise UsageError("no token given (type it, or pipe it on stdin); nothing changed")
        source = "token"
    info = token_info(url, token, **connection)
    return token, info, source


def connect(
    ctx: Context,
    *,
    protection: str | None,
    url: str | None,
    mount: str,
    path_prefix: str,
    user: str | None,
    service: str | None,
    ca_cert: str | None,
    timeout: float,
    cache_max_age: str | None,
    approle: bool,
    role_id: str | None,
    read_secret: ReadSecret,
    proxy: str | None = None,
) -> str:
    """Connect the profile to a KV v2 mount (creating its local store for the token). Returns the line to show."""
    vp = _vp()
    url = check_url(url)
    if timeout <= 0:
        raise UsageError("--timeout must be more than 0 seconds")
    if ca_cert:
        ca_cert = check_ca_cert(ca_cert)
    max_age = vp.parse_cache_age(cache_max_age) if cache_max_age is not None else 0.0
    from credstore.store.vault import check_proxy

    proxy = check_proxy(proxy) if proxy else None
    local = ctx.open_local()
    if service and user:
        raise UsageError("--service and --user name different paths; give one")
    if service:
        from credstore.store.shared import check_service_name

        path = vp.service_path(path_prefix, check_service_name(service))
    else:
        path = vp.personal_path(path_prefix, user or vp.unix_user(), local.profile)
    facts: dict[str, str] = {
        config.BACKEND: config.VAULT,
        vp.URL: url,
        vp.MOUNT: vp.check_path("mount", mount),
        vp.PREFIX: path_prefix.strip("/"),
        vp.USER: user or vp.unix_user(),
        vp.PATH: path,
        vp.TIMEOUT: repr(float(timeout)),
        vp.CACHE_MAX_AGE: repr(max_age),
    }
    if ca_cert:
        facts[vp.CA_CERT] = ca_cert
    if proxy:
        facts[vp.PROXY] = proxy
    if local.exists():
        existing = local.read()
        if existing.entries:
            raise UsageError(
                f"profile '{local.profile}' already holds {len(existing.entries)} entries in the local store; "
                "connect another profile (--profile NAME) or remove them first"
            )
    # Check the token before anything is written.
    token, info, source = obtain_token(facts, approle, role_id, read_secret)
    if not local.exists():
        create_profile(ctx, protection, local=local, facts=facts)
    else:
        config.set_routing(local, facts, ctx.environ)
    profile = ctx.watch(vp.VaultProfile(local, facts, environ=ctx.environ, use_cache=False))
    profile.update_local({vp.CACHE: None, **vp.token_settings(token, info, source)})
    ctx.forget_renders()  # another server, path or token: what was cached for this home goes
    try:
        snapshot = profile.read()
        if not snapshot.settings.get("fingerprint_key"):
            profile.modify(lambda s: None)  # writes the remote settings (fingerprint key) once
        where = "connected to"
    except PermissionProblem as exc:
        where = "configured for"
        ctx.warn(f"{exc} (the profile is set up; ask an admin for a policy on {facts[vp.MOUNT]}/{path})")
    ctx.audit("init", via="vault")
    ttl = int(info.get("ttl") or 0)
    return (
        f"profile '{local.profile}' {where} {vp.display_url(url)} at {facts[vp.MOUNT]}/{path} "
        f"(token: {'no expiry' if not ttl else 'ttl ' + durations.format_duration(ttl)}; "
        f"kept in the local store, protection: {local.protection_kind()})"
    )


def open_vault(ctx: Context) -> Any:
    """The current profile, which must be connected to OpenBao / Vault (a ``VaultProfile``)."""
    vp = _vp()
    facts = config.routing(ctx.profile_arg, ctx.environ)
    if facts is None:
        backend = ctx.open_profile()  # no profile file: none yet, or one made before profile files (migrates)
        if not backend.exists():
            raise NotFoundError(
                f"no credstore profile '{ctx.profile}' yet; connect it with: "
                f"credstore {ctx.profile_flag}init --backend vault --url URL"
            )
        facts = config.routing(ctx.profile_arg, ctx.environ) or {}
    if facts.get(config.BACKEND) != config.VAULT:
        raise UsageError(f"profile '{ctx.profile}' uses the local store, not OpenBao / Vault")
    return ctx.watch(vp.VaultProfile(ctx.open_local(), facts, environ=ctx.environ, use_cache=False))


def login(ctx: Context, approle: bool, role_id: str | None, read_secret: ReadSecret) -> str:
    vp = _vp()
    profile = open_vault(ctx)
    token, info, source = obtain_token(profile.facts, approle, role_id, read_secret)
    profile.update_local(vp.token_settings(token, info, source))
    ctx.forget_renders()  # the store file changed too; a token with other policies reads other values
    ttl = int(info.get("ttl") or 0)
    expiry = "no expiry" if not ttl else "ttl " + durations.format_duration(ttl)
    return (
        f"token stored in profile '{profile.profile}' ({expiry}"
        f"{', renewable' if info.get('renewable') else ''}; policies: {', '.join(info.get('policies') or []) or '-'})"
    )


def logout(ctx: Context) -> str:
    vp = _vp()
    profile = open_vault(ctx)
    profile.update_local(
        {vp.TOKEN: None, vp.TOKEN_EXPIRES: None, vp.TOKEN_TTL: None, vp.TOKEN_RENEWABLE: None, vp.CACHE: None}
    )
    ctx.forget_renders()  # no token, no values: not even from this login's render cache
    return f"token and cache removed from profile '{profile.profile}'"


def status(ctx: Context) -> tuple[dict[str, Any], CredstoreError | None]:
    """Where the profile lives, the token's ttl (renewing it when renewable), the server and the cache; plus the
    problem found, if any."""
    vp = _vp()
    from credstore.store.vault import token_info

    profile = open_vault(ctx)
    out: dict[str, Any] = {
        "profile": profile.profile,
        "url": vp.display_url(profile.url),
        "mount": profile.mount,
        "path": profile.path,
        "source": profile.source,
        "ca_cert": profile.ca_cert,
        "timeout": profile.timeout,
        "deadline": profile.deadline,
        "proxy": profile.proxy,
        "token_from": f"${profile.token_var}"
        if profile.token_var
        else f"local store ({profile.secrets.get(vp.TOKEN_SOURCE)})",
    }
    problem: CredstoreError | None = None
    try:
        renewed = profile.maybe_renew(force=True)
        info = token_info(profile.url, profile.token, **profile.remote.connection.options())
        out.update(
            token_ttl=info["ttl"],
            token_renewable=info["renewable"],
            token_renewed=renewed is not None,
            policies=info["policies"],
            server="ok",
        )
        out["entries"] = len(profile.read().entries)
    except AuthError as exc:
        problem = profile.auth_context(exc)
        out["server"] = "ok"
    except CredstoreError as exc:
        problem = exc
        out["server"] = str(exc)
    out["cache"] = profile.cache_info()
    return out, problem


def cache(ctx: Context, max_age: str | None, clear: bool) -> str:
    """Show or set the last-known-good cache ``env`` falls back to when the server does not answer."""
    vp = _vp()
    profile = open_vault(ctx)
    facts = dict(profile.facts)
    if max_age is not None:
        seconds = vp.parse_cache_age(max_age)
        facts[vp.CACHE_MAX_AGE] = repr(seconds)
        config.set_routing(profile.local, facts, ctx.environ)
        if seconds <= 0:
            clear = True
    if clear:
        profile.update_local({vp.CACHE: None})
    seconds = float(facts.get(vp.CACHE_MAX_AGE) or 0)
    if seconds <= 0:
        return f"profile '{profile.profile}': cache off"
    raw = profile.secrets.get(vp.CACHE)
    state = "empty (filled by the next successful read)"
    if raw:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            state = f"confirmed {durations.format_duration(time.time() - float(json.loads(raw)['time']))} ago"
    return f"profile '{profile.profile}': cache max age {durations.format_duration(seconds)}; {state}"


def configure(
    ctx: Context,
    timeout: float | None,
    ca_cert: str | None,
    *,
    deadline: str | None = None,
    proxy: str | None = None,
    render_cache: str | None = None,
) -> str:
    """Change the connection settings of this profile (the profile file and its copy in the store).
    ``render_cache``: seconds a cached render of ``env`` stays fresh (0: never cached; SECURITY.md)."""
    vp = _vp()
    profile = open_vault(ctx)
    facts = dict(profile.facts)
    if timeout is not None:
        if timeout <= 0:
            raise UsageError("--timeout must be more than 0 seconds")
        facts[vp.TIMEOUT] = repr(float(timeout))
    if ca_cert is not None:
        if ca_cert:
            facts[vp.CA_CERT] = check_ca_cert(ca_cert)
        else:
            facts.pop(vp.CA_CERT, None)
    from credstore.store.vault import check_proxy, parse_seconds

    if deadline is not None:
        facts[vp.DEADLINE] = repr(parse_seconds(deadline, "--deadline"))
    if proxy is not None:
        if proxy:
            facts[vp.PROXY] = check_proxy(proxy)
        else:
            facts.pop(vp.PROXY, None)
    if render_cache is not None:
        facts[vp.RENDER_CACHE] = str(vp.check_render_cache(render_cache.strip(), "--render-cache"))
    if facts != profile.facts:
        config.set_routing(profile.local, facts, ctx.environ)
        ctx.forget_renders()
    fresh = facts.get(vp.RENDER_CACHE, str(vp.DEFAULT_RENDER_CACHE))
    return (
        f"profile '{profile.profile}': {vp.describe(facts)}, timeout {facts.get(vp.TIMEOUT, vp.DEFAULT_TIMEOUT)} s"
        f", deadline {facts.get(vp.DEADLINE, vp.DEFAULT_DEADLINE)} s"
        + (f", CA {facts[vp.CA_CERT]}" if facts.get(vp.CA_CERT) else "")
        + (f", proxy {vp.display_url(facts[vp.PROXY])}" if facts.get(vp.PROXY) else "")
        + (f", env cached {fresh} s" if fresh != "0" else ", env never cached")
    )
