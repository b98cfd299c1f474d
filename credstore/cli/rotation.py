"""Key rotation and its reports: `credstore rotate`, `status`, `check --max-age`, `audit`."""

from __future__ import annotations

import json
import time

import click

from credstore import audit
from credstore.app import rotation
from credstore.cli import terminal
from credstore.cli.common import context
from credstore.durations import format_duration, parse_duration
from credstore.errors import UsageError
from credstore.store.base import Entry

DEFAULT_GRACE = "7d"


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
    if rollback and grace is not None:
        raise UsageError("--grace does not apply to --rollback")
    grace_seconds = parse_duration(DEFAULT_GRACE if grace is None else grace, option="--grace")

    def read_new_value(current: Entry) -> str:
        return terminal.read_value(name, secret=current.secret, prompt=f"new value for {name}: ")

    app_ctx = context(ctx)
    line = rotation.rotate(
        app_ctx,
        name,
        service=service,
        grace_seconds=grace_seconds,
        rollback=rollback,
        read_new_value=read_new_value,
        verify=verify,
    )
    app_ctx.info(line)


@click.command()
@click.argument("name")
@click.option("--service", "service", default=None, metavar="ACCOUNT", help="Roll back a service account's entry.")
@click.pass_context
def rollback(ctx: click.Context, name: str, service: str | None) -> None:
    """Restore NAME's previous value (kept for 7 days after `set`, `add` or `rotate` replaced it).

    The same as `credstore rotate NAME --rollback`.
    """
    app_ctx = context(ctx)
    app_ctx.info(rotation.rotate(app_ctx, name, service=service, rollback=True))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (times as epoch seconds).")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Every entry you can reach (profile and service accounts): age, last rotation, rollback window."""
    now = time.time()
    rows, notes = rotation.status_rows(context(ctx), now)
    for note in notes:
        terminal.warn(note)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        terminal.info("no entries")
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
    rows, notes = rotation.status_rows(context(ctx), now)
    for note in notes:
        terminal.warn(note)
    secrets = [r for r in rows if r["secret"]]
    old = [r for r in secrets if now - float(r["updated"]) > limit]  # type: ignore[arg-type]
    for r in old:
        click.echo(f"{r['scope']} {r['name']}: {format_duration(now - float(r['updated']))} old (limit {max_age})")  # type: ignore[arg-type]
    if old:
        ctx.exit(1)
    terminal.info(f"all {len(secrets)} secrets are younger than {max_age}")


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


COMMANDS = [rotate, rollback, status, check, audit_]
