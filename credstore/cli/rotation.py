"""Key rotation and its reports: `credstore rotate`, `status`, `check --max-age`, `audit`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import click

from credstore import audit
from credstore.catalog import check_name, check_value
from credstore.cli import terminal
from credstore.cli.common import open_store
from credstore.cli.service import entry_rows
from credstore.durations import format_duration, parse_duration
from credstore.errors import CredstoreError, NotFoundError, PermissionProblem, UsageError
from credstore.resolver.exported import MARKER
from credstore.store.base import Backend, Snapshot
from credstore.store.shared import SharedRoot, drop_expired_previous, open_service

DEFAULT_GRACE = "7d"


class VerifyFailed(CredstoreError):
    """The --verify command rejected the new value; nothing was changed (exit 1)."""


class ChangedMeanwhile(CredstoreError):
    """Someone else changed the entry while --verify ran; nothing was changed (exit 1)."""


def _verify(command: str, base: Snapshot, name: str, value: str) -> None:
    """Run the person's own command string with ``sh -c``, the candidate value in its environment only.

    The command's argv (visible in `ps`) holds only what the person typed; the value travels in the environment.
    Its stdout goes to credstore's stderr so `rotate` never prints anything a script could capture by mistake.
    """
    child = dict(os.environ)
    # The store's own values (e.g. a service's WANDB_BASE_URL) apply, so the key is checked against its server.
    child.update({entry_name: entry.value for entry_name, entry in base.entries.items()})
    child[name] = value
    child.pop(MARKER, None)
    try:
        proc = subprocess.run(["/bin/sh", "-c", command], env=child, stdout=sys.stderr.fileno(), check=False)
    except OSError as exc:
        raise VerifyFailed(f"could not run the --verify command ({exc.strerror}); {name} was not changed") from None
    if proc.returncode != 0:
        raise VerifyFailed(
            f"the --verify command failed (exit status {proc.returncode}); {name} was not changed and keeps its "
            "old value"
        )


def _target(ctx: click.Context, service: str | None) -> tuple[Backend, str]:
    if service is not None:
        from credstore import config

        store = config.open_service(service, open_store(ctx))
        return store, f"service account '{store.name}'"  # type: ignore[attr-defined]
    store = open_store(ctx)
    return store, f"profile '{store.profile}'"


def _audit(event: str, backend: Backend, names: list[str], **fields: object) -> None:
    if backend.source.startswith("service:"):
        audit.record_service(event, backend.source.partition(":")[2], names=names, **fields)
    else:
        audit.record(event, profile=backend.source.partition(":")[2], names=names, **fields)


@click.command()
@click.argument("name")
@click.option("--service", "service", default=None, metavar="ACCOUNT", help="Rotate a service account's entry.")
@click.option("--grace", default=None, metavar="DURATION", help=f"Keep the old value this long [{DEFAULT_GRACE}].")
@click.option("--verify", "verify", default=None, metavar="CMD", help="Shell command that must accept the new value.")
@click.option("--rollback", is_flag=True, help="Restore the previous value (within its grace period).")
@click.pass_context
def rotate(
    ctx: click.Context, name: str, service: str | None, grace: str | None, verify: str | None, rollback: bool
) -> None:
    """Replace NAME with a new value (terminal or stdin), keeping the old one for the grace period.

    \b
    printf %s "$NEW" | credstore rotate WANDB_API_KEY --verify 'python3 -c "import wandb; wandb.Api().viewer"'
    credstore rotate WANDB_API_KEY --rollback
    --verify runs CMD with `sh -c` and the new value in its environment (never on its command line); if CMD
    fails, the old value stays. The previous value is dropped at the first write after the grace period ends.
    """
    check_name(name)
    if rollback and grace is not None:
        raise UsageError("--grace does not apply to --rollback")
    grace_seconds = parse_duration(DEFAULT_GRACE if grace is None else grace, option="--grace")
    backend, where = _target(ctx, service)
    before = backend.read()
    current = before.entries.get(name)
    if current is None:
        raise NotFoundError(f"{name} is not stored in {where}; store it first with `set`")
    now = time.time()
    if rollback:
        if current.previous is None or (current.previous_expires or 0) <= now:
            raise NotFoundError(f"{name} in {where} has no previous value to roll back to (none, or its grace ended)")
        candidate = current.previous
    else:
        candidate = terminal.read_value(name, secret=current.secret, prompt=f"new value for {name}: ")
        check_value(name, candidate)
        terminal.check_length(name, candidate)
        if candidate == current.value:
            raise UsageError(f"the new value of {name} is the same as the current one; nothing changed")
    if verify:
        _verify(verify, before, name, candidate)
        terminal.warn(f"--verify accepted the {'previous' if rollback else 'new'} value of {name}")

    def change(snapshot: Snapshot) -> None:
        entry = snapshot.entries.get(name)
        if entry is None or entry.value != current.value:
            raise ChangedMeanwhile(f"{name} in {where} was changed by someone else meanwhile; nothing changed, retry")
        drop_expired_previous(snapshot, now)
        entry = snapshot.entries[name]
        if rollback:
            rotations = entry.rotations[:-1]
            # The restored value dates from the rotation before the undone one (or creation): an upper bound on
            # its age, so `check --max-age` never under-reports it.
            updated = rotations[-1] if rotations else entry.created
            snapshot.entries[name] = entry._replace(
                value=candidate, updated=updated, rotations=rotations, previous=None, previous_expires=None
            )
        else:
            snapshot.entries[name] = entry._replace(
                value=candidate,
                updated=now,
                rotations=(*entry.rotations, now),
                previous=entry.value if grace_seconds > 0 else None,
                previous_expires=now + grace_seconds if grace_seconds > 0 else None,
            )

    backend.modify(change)
    if rollback:
        _audit("rollback", backend, [name])
        terminal.warn(f"rolled {name} in {where} back to its previous value")
        return
    _audit("rotate", backend, [name], via="verified" if verify else None)
    if grace_seconds > 0:
        until = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(now + grace_seconds))
        flag = f" --service {service}" if service else ""
        terminal.warn(
            f"rotated {name} in {where}; the previous value is kept until {until} "
            f"(undo with: credstore rotate {name}{flag} --rollback)"
        )
    else:
        terminal.warn(f"rotated {name} in {where}; the previous value was not kept (--grace 0)")


def _all_rows(ctx: click.Context, now: float) -> tuple[list[dict[str, object]], list[str]]:
    """Personal entries and every service account entry this person can read; plus notes on what was skipped."""
    rows: list[dict[str, object]] = []
    notes: list[str] = []
    store = open_store(ctx)
    if store.exists():
        snapshot = store.read()
        rows += entry_rows(store.source, snapshot, now)
        from credstore.resolver.gather import DEFAULT_SERVICE_SETTING

        default_service = snapshot.settings.get(DEFAULT_SERVICE_SETTING)
        if default_service and hasattr(store, "open_service"):  # a remote profile: its team's account, same engine
            rows += entry_rows(f"service:{default_service}", store.open_service(default_service).read(), now)
    try:
        infos = SharedRoot.from_environ().services()
    except CredstoreError as exc:
        notes.append(f"service accounts skipped: {exc}")
        infos = []
    for info in infos:
        if not info.member and os.geteuid() != 0:
            continue
        try:
            rows += entry_rows(f"service:{info.name}", open_service(info.name).read(), now)
        except PermissionProblem as exc:
            notes.append(f"service account '{info.name}' skipped: {exc}")
        except NotFoundError:
            continue
    return rows, notes


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (times as epoch seconds).")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Every entry you can reach (profile and service accounts): age, last rotation, rollback window."""
    now = time.time()
    rows, notes = _all_rows(ctx, now)
    for note in notes:
        terminal.warn(note)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        terminal.warn("no entries")
        return

    def day(ts: object) -> str:
        return time.strftime("%Y-%m-%d", time.gmtime(float(ts))) if isinstance(ts, (int, float)) and ts else "-"

    table = [("SOURCE", "NAME", "SECRET", "AGE", "CREATED", "LAST ROTATION", "ROLLBACK UNTIL")]
    for r in rows:
        table.append(
            (
                str(r["scope"]),
                str(r["name"]),
                "yes" if r["secret"] else "no",
                str(r["age"]),
                day(r["created"]),
                day(r["last_rotation"]) if r["last_rotation"] else "never",
                day(r["previous_until"]),
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@click.command()
@click.option("--max-age", "max_age", required=True, metavar="DURATION", help="e.g. 90d: older secrets are findings.")
@click.pass_context
def check(ctx: click.Context, max_age: str) -> None:
    """Exit 1 and list every secret older than --max-age (for cron and CI); exit 0 when none is."""
    limit = parse_duration(max_age, option="--max-age")
    now = time.time()
    rows, notes = _all_rows(ctx, now)
    for note in notes:
        terminal.warn(note)
    secrets = [r for r in rows if r["secret"]]
    old = [r for r in secrets if now - float(r["updated"]) > limit]  # type: ignore[arg-type]
    for r in old:
        click.echo(f"{r['scope']} {r['name']}: {format_duration(now - float(r['updated']))} old (limit {max_age})")  # type: ignore[arg-type]
    if old:
        ctx.exit(1)
    terminal.warn(f"all {len(secrets)} secrets are younger than {max_age}")


@click.command("audit")
@click.option("--since", default=None, metavar="DURATION", help="Only events newer than this (e.g. 1d).")
@click.option("--json", "as_json", is_flag=True, help="A JSON list of events.")
@click.option("--shared", is_flag=True, help="Show the shared directory's log (service account changes).")
def audit_(since: str | None, as_json: bool, shared: bool) -> None:
    """Show the audit log: what was read or changed, when, by whom (never a value)."""
    cutoff = None if since is None else time.time() - parse_duration(since, option="--since")
    path = audit.shared_log() if shared else audit.personal_log()
    events = [e for e in audit.read_lines(path) if cutoff is None or float(e.get("ts", 0) or 0) >= cutoff]  # type: ignore[arg-type]
    if as_json:
        click.echo(json.dumps(events, indent=2))
        return
    if not events:
        terminal.warn(f"no events in {path}" + (f" in the last {since}" if since else ""))
        return
    for item in events:
        click.echo(audit.format_event(item))


COMMANDS = [rotate, status, check, audit_]
