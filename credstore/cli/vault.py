"""``credstore vault ...``: login, logout, status, cache, config of a profile kept in OpenBao / Vault KV v2.

The token (or the AppRole secret id that buys one) is read from the terminal without echo or from stdin, never from
argv, and kept in the profile's LOCAL encrypted store (see ``app/vault.py``), never in ``~/.vault-token``.
"""

from __future__ import annotations

import json

import click

from credstore import durations
from credstore.app import vault as vault_app
from credstore.cli import terminal
from credstore.cli.common import context
from credstore.errors import UsageError


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
    click.echo(vault_app.login(context(ctx), approle, role_id, terminal.read_secret), err=True)


@vault_group.command("logout")
@click.pass_context
def logout(ctx: click.Context) -> None:
    """Forget the stored token (and the cached copy of the entries)."""
    click.echo(vault_app.logout(context(ctx)), err=True)


@vault_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Where the profile lives, the token's ttl (renewing it when renewable), the server and the cache."""
    out, problem = vault_app.status(context(ctx))
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
    click.echo(vault_app.cache(context(ctx), max_age, clear), err=True)


@vault_group.command("config")
@click.option("--timeout", type=float, default=None, metavar="SECONDS", help="Per-request timeout (default 3).")
@click.option(
    "--ca-cert", "ca_cert", default=None, metavar="FILE", help="CA certificate for a private CA ('' to drop)."
)
@click.option(
    "--deadline",
    default=None,
    metavar="SECONDS",
    help="Wall-clock limit of a whole read (default 5), then the cache or exit 12; CREDSTORE_VAULT_DEADLINE overrides.",
)
@click.option(
    "--proxy",
    default=None,
    metavar="URL",
    help="Reach the server through this HTTP proxy ('' to drop); http_proxy & co. are never used.",
)
@click.option(
    "--render-cache",
    "render_cache",
    default=None,
    metavar="SECONDS",
    help="How long this login's `env` may answer from its render cache before asking the server again "
    "(default 60, 0: never, at most 3600); CREDSTORE_VAULT_CACHE_SECONDS overrides.",
)
@click.pass_context
def config_(
    ctx: click.Context,
    timeout: float | None,
    ca_cert: str | None,
    deadline: str | None,
    proxy: str | None,
    render_cache: str | None,
) -> None:
    """Change the connection settings of this profile."""
    app_ctx = context(ctx)
    line = vault_app.configure(app_ctx, timeout, ca_cert, deadline=deadline, proxy=proxy, render_cache=render_cache)
    click.echo(line, err=True)


COMMANDS = [vault_group]
