"""Commands that deliver credentials to programs: env, exec, explain."""

from __future__ import annotations

import click

from credstore.app import delivery
from credstore.cli import tables
from credstore.cli.common import SERVICE_HELP, SET_HELP, context, raw_arguments
from credstore.cli.fast import write
from credstore.resolver.gather import parse_assignments
from credstore.shells import CONTAINER_PREFIXES, FORMATS, SHELLS


@click.command("env", context_settings={"ignore_unknown_options": False})
@click.argument("tokens", nargs=-1, metavar="[SERVICE|NAME]...")
@click.option(
    "--shell",
    type=click.Choice(SHELLS),
    default=None,
    help="Shell syntax (default: from $SHELL, else sh; a csh-family $SHELL must name one).",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="shell", show_default=True)
@click.option("--prefix", default=None, metavar="PREFIX", help="Prefix every variable name.")
@click.option(
    "--for", "target", type=click.Choice(sorted(CONTAINER_PREFIXES)), default=None, help="Container runtime prefix."
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
    text = delivery.env_text(
        context(ctx, interactive=False),
        tokens,
        parse_assignments(assignments),
        service=service,
        shell=shell,
        fmt=fmt,
        prefix=prefix,
        target=target,
    )
    write(text)


@click.command("exec", context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True})
@click.option("--set", "assignments", multiple=True, metavar="NAME=VALUE", help=SET_HELP)
@click.option("--service", "service", default=None, metavar="ACCOUNT", help=SERVICE_HELP)
@click.argument("tokens", nargs=-1, type=click.UNPROCESSED, metavar="[SERVICE|NAME]... -- CMD [ARGS]...")
@click.pass_context
def exec_(ctx: click.Context, assignments: tuple[str, ...], service: str | None, tokens: tuple[str, ...]) -> None:
    """Run CMD with the resolved variables, replacing credstore (signals and exit status are CMD's own).

    Without `--`, everything is the command, except that a first word naming a service or a known variable
    (`credstore exec wandb python x.py`) is refused as ambiguous: write `exec wandb -- python x.py` to select the
    service, or `exec -- wandb ...` to run a program of that name.
    """
    args = list(tokens)
    if "--" in args:
        cut = args.index("--")
        selection, command = args[:cut], args[cut + 1 :]
    else:  # click already consumed a leading "--", or there was none: all of it is the command
        selection, command = [], args
    if not command:
        raise click.UsageError("missing command: credstore exec [SERVICE|NAME]... -- CMD [ARGS]...")
    app_ctx = context(ctx)
    delivery.check_exec_command(app_ctx, command, "--" in raw_arguments(ctx))
    delivery.run_exec(app_ctx, selection, parse_assignments(assignments), command, service=service)


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
    app_ctx = context(ctx)
    rows = delivery.explain_rows(app_ctx, tokens, parse_assignments(assignments), service=service)
    chosen = delivery.profile_choice(app_ctx)
    if chosen["key"] is not None:  # chosen by an ssh key, not by name: say which (on stderr, stdout stays the table)
        app_ctx.warn(f"profile '{chosen['profile']}' (ssh key {chosen['key']}): {chosen['why']}")
    write(tables.json_text(rows) if as_json else tables.explain_lines(rows))


@click.command()
@click.option(
    "--shell",
    type=click.Choice(SHELLS),
    default=None,
    help="Shell syntax (default: from $SHELL, else sh; a csh-family $SHELL must name one).",
)
@click.pass_context
def unload(ctx: click.Context, shell: str | None) -> None:
    """Print statements that unset what `credstore env` exported into this shell: eval "$(credstore unload)".

    Only the names listed in CREDSTORE_EXPORTED (and that marker) are unset. When the profile is readable without a
    passphrase, a value you changed by hand since stays; when it is locked, credstore cannot tell and unsets every
    listed name. Never prompts.
    """
    app_ctx = context(ctx, interactive=False)
    text, unset, kept, checked = delivery.unload_text(app_ctx, shell)
    write(text)
    if not unset and not kept:
        app_ctx.info("nothing to unload: this shell has no variables exported by credstore")
        return
    if unset:
        app_ctx.info(f"unloading {', '.join(unset)}")
    if kept:
        app_ctx.info(f"keeping {', '.join(kept)}: changed by hand since credstore exported them")
    if not checked:
        app_ctx.info("the profile is locked, so values changed by hand could not be told apart; all are unloaded")


COMMANDS = [env, exec_, explain, unload]
