"""``credstore init --backend vault`` and the ``credstore vault ...`` commands (login, logout, status, cache, config).

The token (or the AppRole secret id that buys one) is read from the terminal without echo or from stdin, never from
argv, and kept in the profile's LOCAL encrypted store (see ``store/vault_profile.py``), never in ``~/.vault-token``.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import Any

import click

from credstore import durations
from credstore.cli import terminal
from credstore.cli.common import open_local
from credstore.errors import AuthError, CredstoreError, NotFoundError, PermissionProblem, UsageError
from credstore.store.local import LocalStore


def _vault_modules() -> Any:
    from credstore.store import vault_profile

    vault_profile.require_hvac()
    return vault_profile


def _read_token(approle: bool, role_id: str | None, url: str, settings: dict[str, str]) -> tuple[str, dict, str]:
    """Read a token (or an AppRole secret id and log in); check it with the server. (token, info, source)."""
    vp = _vault_modules()
    from credstore.store.vault import login_approle, parse_seconds, token_info

    connection: dict[str, Any] = {
        "ca_cert": settings.get(vp.CA_CERT) or None,
        "timeout": float(settings.get(vp.TIMEOUT) or vp.DEFAULT_TIMEOUT),
        "deadline": parse_seconds(settings.get(vp.DEADLINE) or vp.DEFAULT_DEADLINE, f"the {vp.DEADLINE} setting"),
        "proxy": settings.get(vp.PROXY) or None,
    }
    if approle:
        if not role_id:
            raise UsageError("--approle needs --role-id ID (the secret id is read from the terminal or stdin)")
        secret_id = terminal.read_value("AppRole secret id", secret=True, prompt="AppRole secret id (hidden): ")
        if not secret_id:
            raise UsageError("no AppRole secret id given (type it, or pipe it on stdin)")
        token = login_approle(url, role_id, secret_id, **connection)
        source = "approle"
    else:
        if role_id:
            raise UsageError("--role-id goes with --approle")
        token = terminal.read_value("OpenBao token", secret=True, prompt="OpenBao / Vault token (hidden): ").strip()
        if not token:
            raise UsageError("no token given (type it, or pipe it on stdin); nothing changed")
        source = "token"
    info = token_info(url, token, **connection)
    return token, info, source


def _set_local(local: LocalStore, values: dict[str, str | None]) -> None:
    from credstore.store.vault_profile import set_local_settings

    set_local_settings(local, values)


def _is_loopback(url: str) -> bool:
    import ipaddress
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def init_vault(
    ctx: click.Context,
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
    proxy: str | None = None,
) -> None:
    """Connect the current profile to a KV v2 mount (creating its local store for the token and settings)."""
    vp = _vault_modules()
    from credstore.store.vault import check_path, check_proxy, display_url

    if not url:
        raise UsageError("--backend vault needs --url https://openbao.example.org:8200")
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--url must start with https:// (or http:// for loopback): {display_url(url)}")
    if url.startswith("http://") and not _is_loopback(url):
        raise UsageError(
            f"--url {display_url(url)}: plain http would send the token and every value unencrypted; "
            "use https:// (http:// is accepted for loopback addresses only)"
        )
    if timeout <= 0:
        raise UsageError("--timeout must be more than 0 seconds")
    proxy = check_proxy(proxy) if proxy else None
    if ca_cert:
        ca_cert = os.path.abspath(os.path.expanduser(ca_cert))
        if not os.path.isfile(ca_cert):
            raise NotFoundError(f"--ca-cert: no such file: {ca_cert}")
    max_age = vp.parse_cache_age(cache_max_age) if cache_max_age is not None else 0.0
    from credstore.cli.protection import passphrase_store

    local = passphrase_store(ctx)
    if service and user:
        raise UsageError("--service and --user name different paths; give one")
    if service:
        from credstore.store.shared import check_service_name

        path = vp.service_path(path_prefix, check_service_name(service))
    else:
        path = vp.personal_path(path_prefix, user or vp.unix_user(), local.profile)
    mount = check_path("mount", mount)
    config: dict[str, str | None] = {
        vp.BACKEND: "vault",
        vp.URL: url.rstrip("/"),
        vp.MOUNT: mount,
        vp.PREFIX: path_prefix.strip("/"),
        vp.USER: user or vp.unix_user(),
        vp.PATH: path,
        vp.CA_CERT: ca_cert,
        vp.TIMEOUT: repr(float(timeout)),
        vp.PROXY: proxy,
        vp.CACHE_MAX_AGE: repr(max_age),
        vp.CACHE: None,
    }
    if local.exists():
        existing = local.read()
        if existing.entries:
            raise UsageError(
                f"profile '{local.profile}' already holds {len(existing.entries)} entries in the local store; "
                "connect another profile (--profile NAME) or remove them first"
            )
    # Check the token before anything is written.
    token, info, source = _read_token(approle, role_id, url, {k: v for k, v in config.items() if v is not None})
    if not local.exists():
        from credstore.cli.protection import create_store

        create_store(local, protection)
    _set_local(local, {**config, **vp.token_settings(token, info, source)})
    profile = vp.VaultProfile(local, local.read().settings, use_cache=False)
    try:
        snapshot = profile.read()
        if not snapshot.settings.get("fingerprint_key"):
            profile.modify(lambda s: None)  # writes the remote settings (fingerprint key) once
        where = "connected to"
    except PermissionProblem as exc:
        where = "configured for"
        terminal.warn(f"{exc} (the profile is set up; ask an admin for a policy on {mount}/{path})")
    ttl = int(info.get("ttl") or 0)
    click.echo(
        f"profile '{local.profile}' {where} {display_url(url)} at {mount}/{path} "
        f"(token: {'no expiry' if not ttl else 'ttl ' + durations.format_duration(ttl)}; "
        f"kept in the local store, protection: {local.protection_kind()})",
        err=True,
    )


def _open_vault(ctx: click.Context) -> Any:
    """(module, local store, settings) of the current profile, which must be a vault profile."""
    vp = _vault_modules()
    local = open_local(ctx)
    if not local.exists():
        raise NotFoundError(
            f"no credstore profile '{local.profile}' yet; connect it with: credstore init --backend vault --url URL"
        )
    settings = local.read().settings
    if not vp.is_vault(settings):
        raise UsageError(f"profile '{local.profile}' uses the local store, not OpenBao / Vault")
    return vp, local, settings


@click.group("vault")
def vault_group() -> None:
    """OpenBao / HashiCorp Vault KV v2 profiles: login, status, cache."""


@vault_group.command("login")
@click.option("--approle", is_flag=True, help="Log in with AppRole: --role-id ID, secret id from terminal or stdin.")
@click.option("--role-id", default=None, metavar="ID", help="AppRole role id (not secret).")
@click.argument("refused", required=False, metavar="")
@click.pass_context
def login(ctx: click.Context, approle: bool, role_id: str | None, refused: str | None) -> None:
    """Store a new token for this profile (read hidden from the terminal, or from stdin).

    \b
    credstore vault login                      # paste the token
    printf %s "$SECRET_ID" | credstore vault login --approle --role-id "$ROLE_ID"
    """
    if refused is not None:
        raise UsageError(
            "refusing to take a token or secret id from the command line, where `ps` shows it to every user; "
            'type it when asked, or pipe it: printf %s "$TOKEN" | credstore vault login'
        )
    vp, local, settings = _open_vault(ctx)
    token, info, source = _read_token(approle, role_id, settings[vp.URL], settings)
    _set_local(local, vp.token_settings(token, info, source))
    ttl = int(info.get("ttl") or 0)
    expiry = "no expiry" if not ttl else "ttl " + durations.format_duration(ttl)
    click.echo(
        f"token stored in profile '{local.profile}' ({expiry}"
        f"{', renewable' if info.get('renewable') else ''}; policies: {', '.join(info.get('policies') or []) or '-'})",
        err=True,
    )


@vault_group.command("logout")
@click.pass_context
def logout(ctx: click.Context) -> None:
    """Forget the stored token (and the cached copy of the entries)."""
    vp, local, _ = _open_vault(ctx)
    _set_local(
        local,
        {vp.TOKEN: None, vp.TOKEN_EXPIRES: None, vp.TOKEN_TTL: None, vp.TOKEN_RENEWABLE: None, vp.CACHE: None},
    )
    click.echo(f"token and cache removed from profile '{local.profile}'", err=True)


@vault_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Where the profile lives, the token's ttl (renewing it when renewable), the server and the cache."""
    vp, local, settings = _open_vault(ctx)
    from credstore.store.vault import display_url, token_info

    profile = vp.VaultProfile(local, settings, use_cache=False)
    out: dict[str, Any] = {
        "profile": local.profile,
        "url": display_url(settings[vp.URL]),
        "mount": profile.mount,
        "path": profile.path,
        "source": profile.source,
        "ca_cert": settings.get(vp.CA_CERT) or None,
        "timeout": profile.connection.timeout,
        "deadline": profile.connection.deadline,
        "proxy": profile.connection.proxy,
        "token_from": f"${profile.token_var}"
        if profile.token_var
        else f"local store ({settings.get(vp.TOKEN_SOURCE)})",
    }
    problem: CredstoreError | None = None
    try:
        renewed = profile.maybe_renew(force=True)
        info = token_info(profile.connection.url, _token_of(profile, settings), **profile.connection.options())
        out.update(
            token_ttl=info["ttl"],
            token_renewable=info["renewable"],
            token_renewed=renewed is not None,
            policies=info["policies"],
            server="ok",
        )
        out["entries"] = len(profile.read().entries)
    except AuthError as exc:
        problem = profile._auth_context(exc)
        out["server"] = "ok"
    except CredstoreError as exc:
        problem = exc
        out["server"] = str(exc)
    out["cache"] = profile.cache_info()
    if as_json:
        click.echo(json.dumps(out, indent=2))
    else:
        click.echo(f"profile   {out['profile']}  ({out['source']})")
        click.echo(
            f"server    {out['url']}"
            + (f"  CA {out['ca_cert']}" if out["ca_cert"] else "")
            + (f"  via proxy {out['proxy']}" if out["proxy"] else "")
        )
        click.echo(f"token     from {out['token_from']}")
        if "token_ttl" in out:
            ttl = "never expires" if not out["token_ttl"] else f"ttl {durations.format_duration(out['token_ttl'])}"
            renew = "renewable" + (", renewed now" if out["token_renewed"] else "") if out["token_renewable"] else ""
            click.echo(
                f"          {ttl}" + (f", {renew}" if renew else "") + f"; policies {', '.join(out['policies'])}"
            )
            click.echo(f"entries   {out['entries']}")
        cache = out["cache"]
        if cache["enabled"]:
            seen = (
                "empty"
                if cache["age"] is None
                else f"{cache['entries']} entries, {durations.format_duration(cache['age'])} old"
            )
            click.echo(f"cache     max age {durations.format_duration(cache['max_age'])}; {seen}")
        else:
            click.echo("cache     off")
    if problem is not None:
        raise problem


def _token_of(profile: Any, settings: dict[str, str]) -> str:
    from credstore.store.vault_profile import TOKEN, env_token

    from_env = env_token(profile.environ)
    return from_env[1] if from_env else settings.get(TOKEN, "")


@vault_group.command("cache")
@click.option(
    "--max-age",
    "max_age",
    default=None,
    metavar="DURATION",
    help="Keep a last-known-good copy this long (30m, 12h, 1d; 0 or off: no cache).",
)
@click.option("--clear", is_flag=True, help="Drop the cached copy now.")
@click.pass_context
def cache(ctx: click.Context, max_age: str | None, clear: bool) -> None:
    """Show or set the last-known-good cache `env` falls back to when the server does not answer.

    The copy is kept inside the profile's local encrypted store, never in plaintext.
    """
    vp, local, settings = _open_vault(ctx)
    changes: dict[str, str | None] = {}
    if max_age is not None:
        seconds = vp.parse_cache_age(max_age)
        changes[vp.CACHE_MAX_AGE] = repr(seconds)
        if seconds <= 0:
            changes[vp.CACHE] = None
    if clear:
        changes[vp.CACHE] = None
    if changes:
        _set_local(local, changes)
        settings = {**settings, **{k: v for k, v in changes.items() if v is not None}}
        for k, v in changes.items():
            if v is None:
                settings.pop(k, None)
    seconds = float(settings.get(vp.CACHE_MAX_AGE) or 0)
    if seconds <= 0:
        click.echo(f"profile '{local.profile}': cache off", err=True)
        return
    raw = settings.get(vp.CACHE)
    state = "empty (filled by the next successful read)"
    if raw:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            state = f"confirmed {durations.format_duration(time.time() - float(json.loads(raw)['time']))} ago"
    click.echo(f"profile '{local.profile}': cache max age {durations.format_duration(seconds)}; {state}", err=True)


@vault_group.command("config")
@click.option("--timeout", type=float, default=None, metavar="SECONDS", help="Per-request timeout (default 3).")
@click.option(
    "--deadline",
    default=None,
    metavar="SECONDS",
    help="Wall-clock limit of a whole read (default 5), then the cache or exit 12; CREDSTORE_VAULT_DEADLINE overrides.",
)
@click.option(
    "--ca-cert", "ca_cert", default=None, metavar="FILE", help="CA certificate for a private CA ('' to drop)."
)
@click.option(
    "--proxy",
    default=None,
    metavar="URL",
    help="Reach the server through this HTTP proxy ('' to drop); http_proxy & co. are never used.",
)
@click.pass_context
def config_(
    ctx: click.Context, timeout: float | None, deadline: str | None, ca_cert: str | None, proxy: str | None
) -> None:
    """Change the connection settings of this profile."""
    vp, local, settings = _open_vault(ctx)
    from credstore.store.vault import check_proxy, display_url, parse_seconds

    changes: dict[str, str | None] = {}
    if timeout is not None:
        if timeout <= 0:
            raise UsageError("--timeout must be more than 0 seconds")
        changes[vp.TIMEOUT] = repr(float(timeout))
    if deadline is not None:
        changes[vp.DEADLINE] = repr(parse_seconds(deadline, "--deadline"))
    if proxy is not None:
        changes[vp.PROXY] = check_proxy(proxy) if proxy else None
    if ca_cert is not None:
        if ca_cert:
            ca_cert = os.path.abspath(os.path.expanduser(ca_cert))
            if not os.path.isfile(ca_cert):
                raise NotFoundError(f"--ca-cert: no such file: {ca_cert}")
        changes[vp.CA_CERT] = ca_cert or None
    if changes:
        _set_local(local, changes)
        settings = local.read().settings
    click.echo(
        f"profile '{local.profile}': {vp.describe(settings)}, timeout {settings.get(vp.TIMEOUT, vp.DEFAULT_TIMEOUT)} s"
        f", deadline {settings.get(vp.DEADLINE, vp.DEFAULT_DEADLINE)} s"
        + (f", CA {settings[vp.CA_CERT]}" if settings.get(vp.CA_CERT) else "")
        + (f", proxy {display_url(settings[vp.PROXY])}" if settings.get(vp.PROXY) else ""),
        err=True,
    )


COMMANDS = [vault_group]
