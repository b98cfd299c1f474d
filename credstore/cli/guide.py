"""Commands that help people find their way: help, completion, man.

They walk the click tree from the root command of the running context, so they never import the other command
modules (nor ``main``).
"""

from __future__ import annotations

import time

import click

from credstore import __version__

COMPLETION_SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_CREDSTORE_COMPLETE"


def _find(ctx: click.Context, path: tuple[str, ...]) -> tuple[click.Context, click.Command]:
    """The context and command of ``credstore PATH...`` (``service add``), for their help."""
    root = ctx.find_root()
    command: click.Command = root.command
    current = root
    for i, name in enumerate(path):
        if not isinstance(command, click.Group):
            raise click.UsageError(f"'{' '.join(path[:i])}' has no subcommands")
        found = command.get_command(current, name)
        if found is None:
            choices = ", ".join(command.list_commands(current))
            raise click.UsageError(f"no command '{' '.join(path[: i + 1])}'; commands: {choices}")
        command = found
        current = click.Context(command, info_name=name, parent=current)
    return current, command


@click.command("help")
@click.argument("command", nargs=-1, metavar="[COMMAND]...")
@click.pass_context
def help_(ctx: click.Context, command: tuple[str, ...]) -> None:
    """Show the command list, or the help of COMMAND (`credstore help service add`)."""
    target_ctx, target = _find(ctx, command)
    click.echo(target.get_help(target_ctx))


@click.command()
@click.argument("shell", type=click.Choice(COMPLETION_SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the tab-completion script for SHELL (commands, options, choices).

    \b
    bash:  eval "$(credstore completion bash)"        in ~/.bashrc
    zsh:   eval "$(credstore completion zsh)"         in ~/.zshrc
    fish:  credstore completion fish | source         in ~/.config/fish/config.fish
    """
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None  # the choice is one click knows
    click.echo(cls(ctx.find_root().command, {}, "credstore", COMPLETE_VAR).source())


# -- the man page ----------------------------------------------------------------------------------------------------


def _roff(text: str) -> str:
    """Text as roff: backslashes and dashes escaped, no line starting with a control character."""
    out = []
    for line in text.replace("\\", "\\e").replace("-", "\\-").splitlines():
        stripped = line.strip()
        if stripped == "\b":
            continue
        out.append("\\&" + line if line[:1] in (".", "'") else line)
    return "\n".join(out)


def _paragraphs(text: str) -> str:
    """Click's help text: paragraphs (blank lines) become .PP; a paragraph after click's \\b marker keeps its
    lines (.nf)."""
    blocks = text.strip("\n").split("\n\n")
    out: list[str] = []
    for block in blocks:
        lines = block.splitlines()
        if lines and lines[0].strip() == "\b":
            out += [".PP", ".nf", _roff("\n".join(line.rstrip() for line in lines[1:])), ".fi"]
        else:
            out += [".PP", _roff(" ".join(line.strip() for line in lines))]
    return "\n".join(out)


def _options(ctx: click.Context, command: click.Command) -> list[str]:
    out: list[str] = []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        names, help_text = record
        out += [".TP", f"\\fB{_roff(names)}\\fR", _roff(help_text) or "\\&"]
    return out


def _commands(ctx: click.Context, group: click.Group, prefix: str) -> list[str]:
    out: list[str] = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        sub = click.Context(command, info_name=name, parent=ctx)
        usage = " ".join(command.collect_usage_pieces(sub))
        out += [f'.SS "{_roff(prefix + name)}"', f".B {_roff(prefix + name)}", _roff(usage)]
        out.append(_paragraphs(command.help or command.short_help or ""))
        out += _options(sub, command)
        if isinstance(command, click.Group):
            out += _commands(sub, command, f"{prefix}{name} ")
    return out


def man_page(ctx: click.Context) -> str:
    """The whole click tree as a man page (section 1), in roff."""
    from credstore.errors import EXIT_CODES

    root = ctx.find_root()
    command = root.command
    assert isinstance(command, click.Group)
    summary = (command.help or "").strip().splitlines()[0]
    lines = [
        f'.TH CREDSTORE 1 "{time.strftime("%Y-%m-%d", time.gmtime())}" "credstore {__version__}" "User Commands"',
        ".SH NAME",
        f"credstore \\- {_roff(summary)}",
        ".SH SYNOPSIS",
        ".B credstore",
        "[\\fIOPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]...",
        ".SH DESCRIPTION",
        _paragraphs(command.help or ""),
        ".SH OPTIONS",
        *_options(root, command),
        ".SH COMMANDS",
        *_commands(root, command, "credstore "),
        ".SH EXIT STATUS",
    ]
    for code, meaning in EXIT_CODES.items():
        lines += [".TP", f"\\fB{code}\\fR", _roff(meaning)]
    lines += [
        ".SH FILES",
        ".TP",
        "\\fI~/.local/share/credstore/profiles/NAME.store\\fR",
        "a profile's encrypted store (\\fBCREDSTORE_HOME\\fR moves it)",
        ".SH SEE ALSO",
        "README.md and SECURITY.md of the credstore source",
    ]
    return "\n".join(lines) + "\n"


@click.command()
@click.pass_context
def man(ctx: click.Context) -> None:
    """Print credstore's man page (roff, generated from these commands' help).

    \b
    credstore man | man -l -
    credstore man > ~/.local/share/man/man1/credstore.1
    """
    click.echo(man_page(ctx), nl=False)


COMMANDS = [help_, completion, man]
