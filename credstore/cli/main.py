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
    """The root group. It remembers the arguments as typed (click drops a leading ``--``, which ``exec`` needs), and
    imports a command's module only when that command is asked for (``--help`` and ``help`` import them all)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[ARGUMENTS] = list(args)
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMAND_MODULES)  # as click lists the commands of a group

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return command_of(cmd_name)


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
    credstore hook install               once: every new shell gets the variables
                                         (bash, zsh or fish: from $SHELL, or --shell)
    credstore exec -- python train.py    or: only this command gets them

    `credstore help COMMAND` shows a command's help; `credstore completion bash` tab completion; `credstore man` the
    man page.
    """
    from credstore.cli import terminal

    terminal.quiet = quiet
    ctx.obj = {"profile": profile, "arguments": ctx.meta.get(ARGUMENTS, [])}
    if ctx.invoked_subcommand is None:  # bare `credstore`: the command list, not a usage error
        click.echo(ctx.get_help())


#: Command name -> the module of ``credstore.cli`` that defines it (in its COMMANDS). Only the module of the command
#: that runs is imported (``list``, ``get``, ``explain`` start in a few milliseconds).
#: tests/test_hot_path.py checks this table against every module's COMMANDS.
COMMAND_MODULES: dict[str, str] = {
    "init": "entries",
    "set": "entries",
    "get": "entries",
    "rm": "entries",
    "list": "entries",
    "add": "entries",
    "accept-rollback": "entries",
    "env": "delivery",
    "exec": "delivery",
    "explain": "delivery",
    "unload": "delivery",
    "unlock": "protection",
    "lock": "protection",
    "passwd": "protection",
    "protect": "protection",
    "rekey": "protection",
    "accept-store": "protection",
    "whoami": "protection",
    "hook": "protection",
    "doctor": "protection",
    "service": "service",
    "use-service": "service",
    "rotate": "rotation",
    "rollback": "rotation",
    "status": "rotation",
    "check": "rotation",
    "audit": "rotation",
    "import": "imports",
    "vault": "vault",
    "keyring": "keyring",
    "help": "guide",
    "completion": "guide",
    "man": "guide",
}


def command_of(name: str) -> click.Command | None:
    module_name = COMMAND_MODULES.get(name)
    if module_name is None:
        return None
    import importlib

    module = importlib.import_module(f"credstore.cli.{module_name}")
    return next((command for command in module.COMMANDS if command.name == name), None)
