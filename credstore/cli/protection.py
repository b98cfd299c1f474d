"""Commands about how a store is protected: unlock, lock, passwd, protect, hook, doctor.

Levels, strongest first: ``passphrase`` (Argon2id over a passphrase only you know), ``keyring`` (a random key in your
OS keyring), ``keyfile`` (a key file beside the store: the weakest). A new store gets ``keyring`` where a working OS
keyring exists, else ``passphrase`` when a terminal is attached, else nothing: credstore never picks a weaker level
silently, and always says which level it used.
"""

from __future__ import annotations

import sys
import time

import click

from credstore import config
from credstore.cli import terminal
from credstore.cli.common import profile_option
from credstore.crypto import envelope
from credstore.errors import CredstoreError, UsageError
from credstore.store.local import LocalStore

LEVELS = ("passphrase", "keyring", "keyfile")


def _profile_flag(profile: str) -> str:
    return "" if profile == config.DEFAULT_PROFILE else f"--profile {profile} "


def default_level() -> tuple[str, str]:
    """The level for a new store when none was asked for: (kind, why). Raises UsageError naming the choices."""
    from credstore.crypto import oskeyring

    ok, reason = oskeyring.status()
    if ok:
        return "keyring", reason
    if terminal.has_terminal():
        return "passphrase", f"{reason}; a terminal is attached to ask for a passphrase"
    raise UsageError(
        f"cannot choose a protection level for a new profile: {reason}, and no terminal to ask "
        "for a passphrase. Create the profile first with one of: "
        "`printf '%s\\n' \"$PASSPHRASE\" | credstore init --protection passphrase`, "
        "`credstore init --protection keyfile` (weakest: anyone who can read your home directory can decrypt it), "
        "or start a Secret Service and use `credstore init --protection keyring`"
    )


def passphrase_store(ctx: click.Context, *, use_session_cache: bool = True) -> LocalStore:
    """The profile's store for a command that is about the passphrase: it may read it from stdin."""
    from credstore.crypto.passphrase import PassphraseInput

    return config.open_profile(
        profile_option(ctx), interactive=True, ask_passphrase=PassphraseInput(), use_session_cache=use_session_cache
    )


def create_store(store: LocalStore, protection: str | None) -> str:
    """Create the profile at ``protection`` (or the default level); say which level was used. Returns the kind."""
    from credstore.crypto.kek import protection as level_of

    if protection is None:
        kind, why = default_level()
        note = f" (chosen because {why})" if kind != "keyring" else f" ({why})"
    else:
        kind, note = level_of(protection).kind, ""
    store.create(kind)
    terminal.warn(f"created profile '{store.profile}' at {store.path} (protection: {kind}){note}")
    if kind == "keyfile":
        terminal.warn(
            "keyfile is the weakest level: anyone who can read your home directory (a backup, an NFS snapshot, "
            f"another person on this account) can decrypt it; consider: credstore {_profile_flag(store.profile)}"
            "protect passphrase"
        )
    return kind


@click.command()
@click.option("--ttl", default="8h", show_default=True, metavar="DURATION", help="How long (s, m, h, d: 8h, 30m).")
@click.pass_context
def unlock(ctx: click.Context, ttl: str) -> None:
    """Unlock the profile for this login session (derives the key once; `env` then works without asking).

    The data key (never the passphrase) is cached in the kernel session keyring of this login, readable only by
    processes of this login session, until the timeout, `credstore lock` or logout. Other logins of the same Unix
    account do not see it. The passphrase is read from the terminal (hidden), or from stdin when it is not a terminal.
    """
    from credstore.crypto.session_cache import CacheUnavailable, SessionDekCache, parse_ttl
    from credstore.durations import format_duration

    seconds = parse_ttl(ttl)
    store = passphrase_store(ctx)
    header, ad, ciphertext = store.read_header()
    if header.kek_kind == "keyfile":
        terminal.warn(
            f"profile '{store.profile}' uses keyfile protection, which needs no unlock (and protects little); "
            f"to require a passphrase: credstore {_profile_flag(store.profile)}protect passphrase"
        )
        return
    dek = store.data_key(header)
    envelope.open_payload(header, ad, ciphertext, dek)  # the key really opens this store
    try:
        note = SessionDekCache.prepare()
        SessionDekCache.store(header.store_id, dek, seconds)
    except CacheUnavailable as exc:
        raise CredstoreError(
            f"the passphrase is correct, but the unlock cannot be cached here: {exc}. credstore will ask each "
            "time instead (`credstore exec`, `set` and `get` prompt on a terminal; `credstore env` stays locked)"
        ) from None
    if note:
        terminal.warn(note)
    until = time.strftime("%H:%M", time.localtime(time.time() + seconds))
    terminal.warn(
        f"unlocked profile '{store.profile}' for this login session for {format_duration(seconds)} (until {until}); "
        f"`credstore {_profile_flag(store.profile)}lock` locks it again"
    )


@click.command()
@click.pass_context
def lock(ctx: click.Context) -> None:
    """Forget this login session's unlock of the profile."""
    from credstore.crypto.session_cache import SessionDekCache

    store = config.open_profile(profile_option(ctx))
    header, _, _ = store.read_header()
    if SessionDekCache.remove(header.store_id):
        terminal.warn(f"locked profile '{store.profile}'")
    else:
        terminal.warn(f"profile '{store.profile}' was not unlocked in this login session")


@click.command()
@click.pass_context
def passwd(ctx: click.Context) -> None:
    """Change the passphrase (re-wraps the data key; entries are not re-encrypted).

    On a terminal: the old passphrase, then the new one twice, all hidden. Without a terminal: the old passphrase
    on the first line of stdin, the new one on the second.
    """
    store = passphrase_store(ctx, use_session_cache=False)
    kind = store.protection_kind()
    if kind != "passphrase":
        raise UsageError(
            f"profile '{store.profile}' is protected by {kind}, not a passphrase; to use one: "
            f"credstore {_profile_flag(store.profile)}protect passphrase"
        )
    store.change_protection("passphrase")
    terminal.warn(f"passphrase of profile '{store.profile}' changed (an unlock in progress stays valid)")


@click.command()
@click.argument("level", type=click.Choice(LEVELS))
@click.pass_context
def protect(ctx: click.Context, level: str) -> None:
    """Change the profile's protection level; every entry is kept.

    Without a terminal, passphrases are read one per line from stdin: the current one first (when the profile has
    one), then the new one (when LEVEL is passphrase).
    """
    from credstore.crypto.session_cache import SessionDekCache

    store = passphrase_store(ctx, use_session_cache=False)
    header, _, _ = store.read_header()
    if header.kek_kind == level:
        hint = ""
        if level == "passphrase":
            hint = f"; to change the passphrase: credstore {_profile_flag(store.profile)}passwd"
        terminal.warn(f"profile '{store.profile}' is already protected by {level}{hint}")
        return
    count = len(store.read().entries)
    old, new = store.change_protection(level)
    after = store.read_header()[0]
    if new == "keyfile":
        SessionDekCache.remove(after.store_id)
    terminal.warn(f"profile '{store.profile}': protection changed from {old} to {new}; {count} entries kept")
    if new == "keyfile":
        terminal.warn("keyfile is the weakest level: anyone who can read your home directory can decrypt the store")


_POSIX_HOOK = """\
# credstore: load your credentials into interactive {shell} shells.
# Put this in ~/.{rc}:  eval "$(credstore hook {shell})"
# Non-interactive shells (scp, rsync, cron, `{shell} -c`) do nothing; a locked profile is offered an unlock.
case $- in
  *i*)
    if command -v credstore >/dev/null 2>&1; then
      __credstore_env="$(credstore env --shell {shell} 2>/dev/null)"
      __credstore_rc=$?
      if [ "$__credstore_rc" -eq 4 ] && [ -t 0 ]; then
        printf 'credstore: your credentials are locked. Unlock now? [Y/n] ' >&2
        read -r __credstore_answer
        case $__credstore_answer in
          [Nn]*) ;;
          *) if credstore unlock; then
               __credstore_env="$(credstore env --shell {shell})"
               __credstore_rc=$?
             fi ;;
        esac
      fi
      if [ "$__credstore_rc" -eq 0 ]; then
        eval "$__credstore_env"
      elif [ "$__credstore_rc" -ne 3 ] && [ "$__credstore_rc" -ne 4 ]; then
        printf 'credstore: could not load credentials (exit %s); run `credstore env` to see why\\n' \
          "$__credstore_rc" >&2
      fi
      unset __credstore_env __credstore_rc __credstore_answer
    fi
    ;;
esac
"""

_FISH_HOOK = """\
# credstore: load your credentials into interactive fish shells.
# Put this in ~/.config/fish/config.fish:  credstore hook fish | source
# Non-interactive shells do nothing; a locked profile is offered an unlock (asked on /dev/tty: stdin is the pipe).
if status is-interactive; and command -q credstore
    set -l __credstore_env (credstore env --shell fish 2>/dev/null)
    set -l __credstore_rc $status
    if test $__credstore_rc -eq 4; and isatty stderr
        read -l -P 'credstore: your credentials are locked. Unlock now? [Y/n] ' __credstore_answer </dev/tty
        if not string match -qi 'n*' -- "$__credstore_answer"
            if credstore unlock </dev/tty
                set __credstore_env (credstore env --shell fish)
                set __credstore_rc $status
            end
        end
    end
    if test $__credstore_rc -eq 0
        string join \\n -- $__credstore_env | source
    else if test $__credstore_rc -ne 3; and test $__credstore_rc -ne 4
        echo "credstore: could not load credentials (exit $__credstore_rc); run `credstore env` to see why" >&2
    end
end
"""


def hook_text(shell: str) -> str:
    if shell == "fish":
        return _FISH_HOOK
    rc = {"bash": "bashrc", "zsh": "zshrc"}[shell]
    return _POSIX_HOOK.format(shell=shell, rc=rc)


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def hook(shell: str) -> None:
    """Print the lines for your shell profile: interactive shells offer to unlock, then load the variables.

    \b
    bash/zsh:  eval "$(credstore hook bash)"     in ~/.bashrc or ~/.zshrc
    fish:      credstore hook fish | source      in ~/.config/fish/config.fish
    """
    sys.stdout.write(hook_text(shell))


@click.command()
@click.pass_context
def doctor(ctx: click.Context) -> None:
    """Check this account for problems: protection level, permissions, keyrings, plaintext keys, shadowing
    variables, other logins of the account. Each line is a finding with its fix; exit 1 if anything is wrong.
    Never prints a secret value."""
    from credstore import doctor as doctor_module

    findings = doctor_module.run(profile_option(ctx))
    for finding in findings:
        click.echo(finding.render())
    problems = [f for f in findings if f.is_problem]
    if problems:
        click.echo(f"{len(problems)} problem(s) found", err=True)
        ctx.exit(1)
    click.echo("no problems found", err=True)


COMMANDS = [unlock, lock, passwd, protect, hook, doctor]
