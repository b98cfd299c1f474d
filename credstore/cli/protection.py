"""Commands about how a store is protected: unlock, lock, passwd, protect, hook, doctor.

Levels, strongest first: ``passphrase`` (Argon2id over a passphrase only you know), ``keyring`` (a random key in your
OS keyring), ``keyfile`` (a key file beside the store: the weakest). See ``app/protection.py``.
"""

from __future__ import annotations

import sys

import click

from credstore.app import protection as protection_app
from credstore.cli import terminal
from credstore.cli.common import context, passphrase_context
from credstore.crypto.protection import LEVELS
from credstore.shells import HOOK_SHELLS, hook_text


@click.command()
@click.option("--ttl", default="8h", show_default=True, metavar="DURATION", help="How long (s, m, h, d: 8h, 30m).")
@click.pass_context
def unlock(ctx: click.Context, ttl: str) -> None:
    """Unlock the profile for this login session (derives the key once; `env` then works without asking).

    The data key (never the passphrase) is cached in the kernel session keyring of this login, readable only by
    processes of this login session, until the timeout, `credstore lock` or logout. Other logins of the same Unix
    account do not see it. The passphrase is read from the terminal (hidden), or from stdin when it is not a terminal.
    """
    from credstore.crypto.session_cache import parse_ttl

    app_ctx = passphrase_context(ctx)
    line = protection_app.unlock(app_ctx, parse_ttl(ttl))
    if line:
        app_ctx.warn(line)


@click.command()
@click.pass_context
def lock(ctx: click.Context) -> None:
    """Forget this login session's unlock of the profile."""
    app_ctx = context(ctx, interactive=False)
    if protection_app.lock(app_ctx):
        app_ctx.warn(f"locked profile '{app_ctx.profile}'")
    else:
        app_ctx.warn(f"profile '{app_ctx.profile}' was not unlocked in this login session")


@click.command()
@click.pass_context
def passwd(ctx: click.Context) -> None:
    """Change the passphrase (re-wraps the data key; entries are not re-encrypted).

    On a terminal: the old passphrase, then the new one twice, all hidden. Without a terminal: the old passphrase
    on the first line of stdin, the new one on the second.
    """
    app_ctx = passphrase_context(ctx)
    protection_app.passwd(app_ctx)
    app_ctx.warn(f"passphrase of profile '{app_ctx.profile}' changed (an unlock in progress stays valid)")


@click.command()
@click.argument("level", type=click.Choice(list(LEVELS)))
@click.pass_context
def protect(ctx: click.Context, level: str) -> None:
    """Change the profile's protection level; every entry is kept.

    Without a terminal, passphrases are read one per line from stdin: the current one first (when the profile has
    one), then the new one (when LEVEL is passphrase).
    """
    app_ctx = passphrase_context(ctx)
    changed = protection_app.protect(app_ctx, level)
    if changed is None:
        hint = f"; to change the passphrase: credstore {app_ctx.profile_flag}passwd" if level == "passphrase" else ""
        app_ctx.warn(f"profile '{app_ctx.profile}' is already protected by {level}{hint}")
        return
    old, new, count = changed
    app_ctx.warn(f"profile '{app_ctx.profile}': protection changed from {old.kind} to {new.kind}; {count} entries kept")
    if new.strength <= 1:
        app_ctx.warn(f"{new.kind} is the weakest level: anyone who can read your home directory can decrypt the store")


@click.group(invoke_without_command=False)
def hook() -> None:
    """Load your credentials in every new interactive shell: `credstore hook install` (once).

    \b
    credstore hook install [--shell bash|zsh|fish]   add it to ~/.bashrc, ~/.zshrc or config.fish
    credstore hook uninstall [--shell ...]           take it out again
    credstore hook bash|zsh|fish                     print the hook text (what install writes)

    The hook calls credstore by its absolute path, so the order of PATH does not matter; a shell that inherited
    the values starts no credstore process when nothing changed; Ctrl-C at its unlock prompt skips only the unlock.
    """


def _print_hook(shell: str) -> click.Command:
    def show() -> None:
        from credstore.cli.fast import hook_command

        sys.stdout.write(hook_text(shell, *hook_command()))

    return click.Command(shell, callback=show, help=f"Print the {shell} hook (what `hook install` writes).")


for _shell in HOOK_SHELLS:
    hook.add_command(_print_hook(_shell))


@hook.command("install")
@click.option("--shell", "shell", type=click.Choice(HOOK_SHELLS), default=None, help="Default: from $SHELL.")
def hook_install(shell: str | None) -> None:
    """Write the hook file and source it from your shell's rc file (idempotent)."""
    import os

    from credstore.app import hook as hook_app
    from credstore.cli.fast import hook_command

    shell = shell or hook_app.default_shell(os.environ)
    rc, path, changed = hook_app.install(shell, *hook_command(), os.environ)
    if changed:
        terminal.warn(f"{rc} now loads your credentials in new interactive {shell} shells (hook file: {path})")
    else:
        terminal.warn(f"{rc} already loads the hook; hook file {path} rewritten")


@hook.command("uninstall")
@click.option("--shell", "shell", type=click.Choice(HOOK_SHELLS), default=None, help="Default: every shell.")
def hook_uninstall(shell: str | None) -> None:
    """Remove the hook from the rc file(s) and delete the hook file(s)."""
    import os

    from credstore.app import hook as hook_app

    changed = hook_app.uninstall([shell] if shell else list(HOOK_SHELLS), os.environ)
    for path in changed:
        terminal.warn(f"removed the credstore hook from {path}")
    if not changed:
        terminal.warn("no credstore hook was installed")


@click.command()
@click.pass_context
def doctor(ctx: click.Context) -> None:
    """Check this account for problems: protection level, permissions, keyrings, plaintext keys, shadowing
    variables, other logins of the account. Each line is a finding with its fix; exit 1 if anything is wrong.
    Never prints a secret value."""
    from credstore.app import doctor as doctor_app

    findings = doctor_app.run(context(ctx, interactive=False))
    for finding in findings:
        click.echo(finding.render())
    problems = [f for f in findings if f.is_problem]
    if problems:
        click.echo(f"{len(problems)} problem(s) found", err=True)
        ctx.exit(1)
    click.echo("no problems found", err=True)


COMMANDS = [unlock, lock, passwd, protect, hook, doctor]
