"""Commands that deliver credentials to programs: env, exec, explain."""

from __future__ import annotations

import json
import os
import sys

import click

from credstore.cli.common import open_store
from credstore.errors import AuthError
from credstore.resolver.deliver import exec_command, render_env
from credstore.resolver.gather import Gathered, Selection, gather, parse_assignments
from credstore.shells import FORMATS, SHELLS

SET_HELP = "Explicit NAME=VALUE (highest precedence; avoid for secrets: argv is visible to other users)."
SERVICE_HELP = "Use this team service account's key (counts as an explicit argument; attribution stays yours)."


def _selection(
    ctx: click.Context,
    service: str | None,
    event: str | None,
    environ: dict[str, str],
    *,
    interactive: bool | None = None,
    command: str | None = None,
) -> Selection:
    """The profile plus ``--service``; reads through env/exec are written to the audit log (names only)."""
    store = open_store(ctx, interactive=interactive)

    def record_read(gathered: Gathered) -> None:
        from credstore import audit
        from credstore.resolver.layers import ENVIRONMENT, resolve

        delivered = {r.name: r.source for r in resolve(gathered.layers, gathered.names) if r.source != ENVIRONMENT}
        audit.record(
            event or "env",
            environ=environ,
            names=sorted(delivered),
            sources=delivered,
            profile=store.profile,
            service=gathered.service,
            command=command,
        )

    return Selection(store, service=service, on_gathered=record_read if event else None)


def _failed_unlock(selection: Selection, environ: dict[str, str]) -> None:
    from credstore import audit

    audit.record("failed-unlock", environ=environ, profile=getattr(selection.profile, "profile", None))


@click.command("env", context_settings={"ignore_unknown_options": False})
@click.argument("tokens", nargs=-1, metavar="[SERVICE|NAME]...")
@click.option("--shell", type=click.Choice(SHELLS), default=None, help="Shell syntax (default: from $SHELL, else sh).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="shell", show_default=True)
@click.option("--prefix", default=None, metavar="PREFIX", help="Prefix every variable name.")
@click.option(
    "--for", "target", type=click.Choice(["apptainer", "singularity"]), default=None, help="Container runtime prefix."
)
@click.option("--set", "assignments", multiple=True, metavar="NAME=VALUE", help=SET_HELP)
@click.option("--service", "service", default=None, metavar="ACCOUNT", help=SERVICE_HELP)
@click.pass_context
def env(
    ctx: click.Context,
    tokens: tuple[str, ...],
    shell: str | None,
    fmt: str,
    prefix: str | None,
    target: str | None,
    assignments: tuple[str, ...],
    service: str | None,
) -> None:
    """Print statements that set the resolved variables: eval "$(credstore env)".

    Never prompts and never prints partial output: on failure stdout stays empty, one line goes to stderr and the
    exit code says why (4 when the store is locked).
    """
    environ = dict(os.environ)
    selection = _selection(ctx, service, "env", environ, interactive=False)
    try:
        text = render_env(
            selection,
            tokens,
            parse_assignments(assignments),
            environ,
            shell=shell,
            fmt=fmt,
            prefix=prefix,
            target=target,
        )
    except AuthError:
        _failed_unlock(selection, environ)
        raise
    sys.stdout.write(text)
    sys.stdout.flush()


@click.command("exec", context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True})
@click.option("--set", "assignments", multiple=True, metavar="NAME=VALUE", help=SET_HELP)
@click.option("--service", "service", default=None, metavar="ACCOUNT", help=SERVICE_HELP)
@click.argument("tokens", nargs=-1, type=click.UNPROCESSED, metavar="[SERVICE|NAME]... -- CMD [ARGS]...")
@click.pass_context
def exec_(ctx: click.Context, assignments: tuple[str, ...], service: str | None, tokens: tuple[str, ...]) -> None:
    """Run CMD with the resolved variables, replacing credstore (signals and exit status are CMD's own)."""
    args = list(tokens)
    if "--" in args:
        cut = args.index("--")
        selection, command = args[:cut], args[cut + 1 :]
    else:  # click already consumed a leading "--", or there was none: all of it is the command
        selection, command = [], args
    if not command:
        raise click.UsageError("missing command: credstore exec [SERVICE|NAME]... -- CMD [ARGS]...")
    environ = dict(os.environ)
    # The audit line names the command by argv[0] only: later arguments may hold what a person typed, secrets too.
    backend = _selection(ctx, service, "exec", environ, command=command[0])
    try:
        exec_command(backend, selection, parse_assignments(assignments), environ, command)
    except AuthError:
        _failed_unlock(backend, environ)
        raise


@click.command()
@click.argument("tokens", nargs=-1, metavar="[SERVICE|NAME]...")
@click.option("--set", "assignments", multiple=True, metavar="NAME=VALUE", help=SET_HELP)
@click.option("--json", "as_json", is_flag=True, help="A JSON list of {name, source, shadowed, value}.")
@click.option("--service", "service", default=None, metavar="ACCOUNT", help=SERVICE_HELP)
@click.pass_context
def explain(
    ctx: click.Context, tokens: tuple[str, ...], assignments: tuple[str, ...], as_json: bool, service: str | None
) -> None:
    """For each variable: the layer that won and the layers it shadowed (secret values masked)."""
    environ = dict(os.environ)
    gathered = gather(_selection(ctx, service, None, environ), tokens, parse_assignments(assignments), environ)
    from credstore.resolver.layers import resolve

    resolved = {r.name: r for r in resolve(gathered.layers, gathered.names)}
    names = gathered.names if gathered.names is not None else sorted(resolved)
    rows = []
    for name in names:
        item = resolved.get(name)
        if item is None:
            rows.append({"name": name, "source": None, "shadowed": [], "value": None, "secret": None})
        else:
            rows.append(item.to_json())
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        if row["source"] is None:
            click.echo(f"{row['name']}: not set anywhere")
            continue
        line = f"{row['name']}: {row['source']} = {row['value']}"
        if row["shadowed"]:
            line += f"  (shadows {', '.join(row['shadowed'])})"
        click.echo(line)


COMMANDS = [env, exec_, explain]
