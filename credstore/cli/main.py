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


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return command_of(cmd_name)


@click.group(
    cls=LazyGroup,
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
@click.version_option(version=__version__, prog_name="credstore")
@click.pass_context
def cli(ctx: click.Context, profile: str | None) -> None:
    """Per-user encrypted credentials for shared machines.

    Store a key once (`printf %s "$KEY" | credstore set WANDB_API_KEY`), then run
    `credstore hook install` once (every new shell gets the variables) or `credstore exec -- CMD`.
    """
    ctx.obj = {"profile": profile}


#: Command name -> the module of ``credstore.cli`` that defines it (in its COMMANDS). Only the module of the command
#: that runs is imported (``list``, ``get``, ``explain`` start in a few milliseconds); ``--help`` imports them all.
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
    "unlock": "protection",
    "lock": "protection",
    "passwd": "protection",
    "protect": "protection",
    "hook": "protection",
    "doctor": "protection",
    "service": "service",
    "use-service": "service",
    "rotate": "rotation",
    "status": "rotation",
    "check": "rotation",
    "audit": "rotation",
    "import": "imports",
    "vault": "vault",
}


def command_of(name: str) -> click.Command | None:
    module_name = COMMAND_MODULES.get(name)
    if module_name is None:
        return None
    import importlib

    module = importlib.import_module(f"credstore.cli.{module_name}")
    return next((command for command in module.COMMANDS if command.name == name), None)
