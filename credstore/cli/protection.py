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
from credstore.errors import UsageError
from credstore.shells import HOOK_SHELLS, detect_shell, hook_text

_DROP_HELP = "Remove key slots that cannot be opened now instead of refusing (a re-key must re-wrap every slot)."


@click.command()
@click.option("--ttl", default="8h", show_default=True, metavar="DURATION", help="How long (s, m, h, d: 8h, 30m).")
@click.option(
    "--ssh-signature",
    "signature_file",
    default=None,
    metavar="FILE",
    help="Recovery without the agent: `ssh-keygen -Y sign` output over `credstore protect challenge`.",
)
@click.option("--slot", "slot_id", type=int, default=None, help="Open this key slot only.")
@click.pass_context
def unlock(ctx: click.Context, ttl: str, signature_file: str | None, slot_id: int | None) -> None:
    """Unlock the profile for this login session (derives the key once; `env` then works without asking).

    The data key (never the passphrase) is cached in the kernel session keyring of this login, readable only by
    processes of this login session, until the timeout, `credstore lock` or logout. Other logins of the same Unix
    account do not see it. The passphrase is read from the terminal (hidden), or from stdin when it is not a terminal.
    """
    from credstore.crypto.session_cache import parse_ttl

    app_ctx = passphrase_context(ctx)
    signature = None
    if signature_file is not None:
        try:
            with open(signature_file, "rb") as handle:
                signature = handle.read(1 << 20).decode("ascii", "replace")
        except OSError as exc:
            raise UsageError(f"cannot read {signature_file}: {exc.strerror or type(exc).__name__}") from None
    line = protection_app.unlock(app_ctx, parse_ttl(ttl), ssh_signature=signature, slot_id=slot_id)
    if line:
        app_ctx.info(line)


@click.command()
@click.pass_context
def lock(ctx: click.Context) -> None:
    """Forget this login session's unlock of the profile.

    Variables already exported into shells stay there: remove them with eval "$(credstore unload)".
    """
    app_ctx = context(ctx, interactive=False)
    if protection_app.lock(app_ctx):
        app_ctx.info(f"locked profile '{app_ctx.profile}'")
    else:
        app_ctx.info(f"profile '{app_ctx.profile}' was not unlocked in this login session")
    command = f"credstore {app_ctx.profile_flag}unload"
    try:
        shell = detect_shell(app_ctx.environ)
    except UsageError:  # a csh, say: no form of ours it can evaluate
        shell = None
    if shell is None:
        unload = f"{command} --shell SHELL, and evaluate what it prints"
    else:
        unload = f"{command} | source" if shell == "fish" else f'eval "$({command})"'
    app_ctx.info(f"variables already loaded into shells stay there; to remove them run in each: {unload}")


@click.command()
@click.option("--drop-other-slots", is_flag=True, help=_DROP_HELP)
@click.pass_context
def passwd(ctx: click.Context, drop_other_slots: bool) -> None:
    """Change the passphrase; the data key is new too (every value re-encrypted, every other key slot re-wrapped).

    On a terminal: the old passphrase, then the new one twice, all hidden. Without a terminal: the old passphrase
    on the first line of stdin, the new one on the second.
    """
    app_ctx = passphrase_context(ctx)
    protection_app.passwd(app_ctx, drop_other_slots=drop_other_slots)
    app_ctx.info(f"passphrase of profile '{app_ctx.profile}' changed (an unlock in progress stays valid)")


_SSH_KEY_HELP = "ssh-agent: which key of the agent, by .pub file or SHA256: fingerprint (default: the only usable one)."


def _level_options(ssh_key: str | None) -> dict[str, str] | None:
    return {"ssh-key": ssh_key} if ssh_key else None


class _ProtectGroup(click.Group):
    """``protect add|remove|list|rotate-slot|challenge`` and, as before, ``protect LEVEL`` (replace every slot)."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in LEVELS:
            return _replace_command(cmd_name)
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *LEVELS]


def _replace_command(level: str) -> click.Command:
    @click.command(name=level, help=f"Replace every key slot by one {level} slot (and make a new data key).")
    @click.option("--ssh-key", default=None, metavar="FILE.pub|SHA256:FP", help=_SSH_KEY_HELP)
    @click.option(
        "--keep-data-key",
        is_flag=True,
        help="Re-wrap the old data key instead of making a new one (an old copy of the store and an old key then "
        "still open the values written from now on).",
    )
    @click.pass_context
    def replace(ctx: click.Context, ssh_key: str | None, keep_data_key: bool) -> None:
        app_ctx = passphrase_context(ctx)
        changed = protection_app.protect(app_ctx, level, _level_options(ssh_key), rekey=not keep_data_key)
        if changed is None:
            hint = ""
            if level == "passphrase":
                hint = f"; to change the passphrase: credstore {app_ctx.profile_flag}passwd"
            app_ctx.warn(f"profile '{app_ctx.profile}' is already protected by {level}{hint}")
            return
        old, new, count = changed
        before = "+".join(item.kind for item in old)
        rekeyed = "the data key was kept" if keep_data_key else "new data key"
        app_ctx.warn(
            f"profile '{app_ctx.profile}': protection changed from {before} to {new.kind}; "
            f"{count} entries kept ({rekeyed})"
        )
        if new.strength <= 1:
            app_ctx.warn(
                f"{new.kind} is the weakest level: anyone who can read your home directory can decrypt the store"
            )

    return replace


@click.group(cls=_ProtectGroup)
def protect() -> None:
    """Key slots: the store's data key is wrapped once per slot, and any one slot opens it.

    \b
    credstore protect LEVEL              replace every slot by one at LEVEL (new data key)
    credstore protect add LEVEL          add a slot (the store must open first)
    credstore protect list               slot id, level, key fingerprint, created, last used
    credstore protect remove SLOT        remove a slot (never the last one)
    credstore protect rotate-slot SLOT   ssh-agent: a new salt, so captured signatures stop working

    Without a terminal, passphrases are read one per line from stdin: the current one first (when it is needed to
    open the store), then the new one (when LEVEL is passphrase).
    """


@protect.command("add")
@click.argument("level", type=click.Choice(list(LEVELS)))
@click.option("--ssh-key", default=None, metavar="FILE.pub|SHA256:FP", help=_SSH_KEY_HELP)
@click.pass_context
def protect_add(ctx: click.Context, level: str, ssh_key: str | None) -> None:
    """Add a key slot at LEVEL; the data key is not changed."""
    app_ctx = passphrase_context(ctx)
    row = protection_app.add_slot(app_ctx, level, _level_options(ssh_key))
    key = f" for {row['fingerprint']}" if row.get("fingerprint") else ""
    app_ctx.warn(f"profile '{app_ctx.profile}': added key slot {row['slot']} ({level}){key}")


@protect.command("remove")
@click.argument("slot", type=int)
@click.pass_context
def protect_remove(ctx: click.Context, slot: int) -> None:
    """Remove key slot SLOT (the last slot is refused). A key that leaked: run `credstore rekey` afterwards."""
    app_ctx = passphrase_context(ctx)
    removed = protection_app.remove_slot(app_ctx, slot)
    app_ctx.warn(
        f"profile '{app_ctx.profile}': removed key slot {slot} ({removed.kind}); if its key may have leaked, also "
        f"run: credstore {app_ctx.profile_flag}rekey"
    )


@protect.command("rotate-slot")
@click.argument("slot", type=int)
@click.pass_context
def protect_rotate_slot(ctx: click.Context, slot: int) -> None:
    """Give key slot SLOT a fresh KEK for the same key (ssh-agent: a new salt; captured signatures stop working)."""
    app_ctx = passphrase_context(ctx)
    protection_app.rotate_slot(app_ctx, slot)
    app_ctx.warn(f"profile '{app_ctx.profile}': key slot {slot} rotated")


@protect.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per slot.")
@click.pass_context
def protect_list(ctx: click.Context, as_json: bool) -> None:
    """The key slots: id, level, public key fingerprint, created, last used (nothing is decrypted)."""
    import json
    import time

    rows = protection_app.list_slots(context(ctx, interactive=False))

    def when(value: object) -> str:
        return "-" if not isinstance(value, (int, float)) else time.strftime("%Y-%m-%d %H:%M", time.localtime(value))

    for row in rows:
        if as_json:
            click.echo(json.dumps(row, sort_keys=True))
            continue
        key = str(row.get("fingerprint", "-"))
        click.echo(
            f"{row['slot']:>4}  {row['level']:<11} {key:<51} created {when(row['created'])}  "
            f"last used {when(row['last_used'])}"
        )


@protect.command("challenge")
@click.option("--slot", "slot_id", type=int, default=None, help="The ssh-agent slot (default: the only one).")
@click.pass_context
def protect_challenge(ctx: click.Context, slot_id: int | None) -> None:
    """Write the ssh-agent slot's challenge to stdout, for recovery without the agent:

    \b
    credstore protect challenge > challenge
    ssh-keygen -Y sign -n credstore-unlock-v1@credstore -f ~/.ssh/id_ed25519 challenge
    credstore unlock --ssh-signature challenge.sig
    """
    _, data = protection_app.recovery_challenge(context(ctx, interactive=False), slot_id)
    sys.stdout.buffer.write(data)
    sys.stdout.flush()


@click.command()
@click.option("--drop-other-slots", is_flag=True, help=_DROP_HELP)
@click.pass_context
def rekey(ctx: click.Context, drop_other_slots: bool) -> None:
    """Make a new data key (a suspected leak): every value re-encrypted, every key slot re-wrapped.

    Every slot must be opened for that (a passphrase is asked, the ssh agent signs); slots that cannot be opened now
    are refused with their reason, or removed with --drop-other-slots.
    """
    app_ctx = passphrase_context(ctx)
    header = protection_app.rekey(app_ctx, drop_other_slots=drop_other_slots)
    app_ctx.warn(
        f"profile '{app_ctx.profile}': new data key; {len(header.slots)} key slot(s) re-wrapped. An old copy of "
        "the store and an old key no longer open anything written from now on"
    )


@click.command("accept-store")
@click.pass_context
def accept_store(ctx: click.Context) -> None:
    """Accept the profile's store as it is now, after you replaced it or changed its protection by hand (credstore
    otherwise refuses a store with another id, or weaker protection, than it set up)."""
    app_ctx = passphrase_context(ctx)
    header = protection_app.accept_store(app_ctx)
    kinds = "+".join(slot.kind for slot in header.slots)
    app_ctx.warn(f"profile '{app_ctx.profile}': accepted store {header.store_id.hex()} ({kinds})")


@click.command()
@click.pass_context
def whoami(ctx: click.Context) -> None:
    """Which profile commands use here, and why (from --profile, $CREDSTORE_PROFILE, or the ssh agent's keys)."""
    from credstore.app import delivery

    facts = delivery.profile_choice(context(ctx, interactive=False))
    click.echo(f"{facts['profile']}: {facts['why']}")


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
    from credstore.cli.fast import hook_command

    findings = doctor_app.run(context(ctx, interactive=False), hook=hook_command())
    for finding in findings:
        click.echo(finding.render())
    problems = [f for f in findings if f.is_problem]
    if problems:
        click.echo(f"{len(problems)} problem(s) found", err=True)
        ctx.exit(1)
    terminal.info("no problems found")


COMMANDS = [unlock, lock, passwd, protect, rekey, accept_store, whoami, hook, doctor]
