"""The ``credstore`` command: a click group whose commands live in one module per area."""

from __future__ import annotations

import click

from credstore import __version__
from credstore.errors import EXIT_CODES

PRECEDENCE_HELP = """\b
Precedence, highest first:
  1. explicit arguments (--set NAME=VALUE, --service on the command line)
  2. the process environment (except values an earlier `credstore env`
     exported and nobody changed since: those are refreshed)
  3. a service account chosen as the profile default (`use-service`)
  4. the keystore profile (--profile, CREDSTORE_PROFILE, else "default")
"""


def _exit_code_help() -> str:
    lines = ["\b", "Exit codes:"]
    lines += [f"  {code:>3}  {meaning}" for code, meaning in EXIT_CODES.items()]
    return "\n".join(lines)


ARGUMENTS = "credstore.arguments"


class CredstoreGroup(click.Group):
    """The root group; it remembers the arguments as typed (click drops a leading ``--``, which ``exec`` needs)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[ARGUMENTS] = list(args)
        return super().parse_args(ctx, args)


@click.group(
    cls=CredstoreGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=PRECEDENCE_HELP + "\n" + _exit_code_help(),
)
@click.option(
    "--profile",
    "-p",
    metavar="NAME",
    default=None,
    help="Profile to use (default: $CREDSTORE_PROFILE, else 'default').",
)
@click.option(
    "--quiet", "-q", is_flag=True, help="Do not print lines that say what was done (warnings and errors stay)."
)
@click.version_option(version=__version__, prog_name="credstore")
@click.pass_context
def cli(ctx: click.Context, profile: str | None, quiet: bool) -> None:
    """Per-user encrypted credentials for shared machines.

    \b
    credstore add wandb                  store your W&B key and attribution (prompts)
    credstore unlock                     once per login (passphrase stores)
    eval "$(credstore hook bash)"        in ~/.bashrc: every new shell gets the variables
                                         (zsh: hook zsh; fish: credstore hook fish | source)
    credstore exec -- python train.py    or: only this command gets them

    `credstore help COMMAND` shows a command's help; `credstore completion bash` tab completion; `credstore man` the
    man page.
    """
    from credstore.cli import terminal

    terminal.quiet = quiet
    ctx.obj = {"profile": profile, "arguments": ctx.meta.get(ARGUMENTS, [])}
    if ctx.invoked_subcommand is None:  # bare `credstore`: the command list, not a usage error
        click.echo(ctx.get_help())


def _register() -> None:
    from credstore.cli import delivery, entries, guide, imports, keyring, protection, rotation, service, vault

    for module in (entries, delivery, protection, service, rotation, imports, vault, keyring, guide):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()
