"""Key rotation and its reports: rotate, roll back, status rows, check."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable

from credstore import catalog, marker
from credstore.app.context import Context
from credstore.app.entries import REPLACE_GRACE, check_length, entry_rows
from credstore.errors import CredstoreError, NotFoundError, UsageError
from credstore.resolver.gather import DEFAULT_SERVICE_SETTING
from credstore.store.base import Backend, Entry, Snapshot
from credstore.store.shared import ServiceStore, drop_expired_previous

DEFAULT_GRACE = REPLACE_GRACE


class VerifyFailed(CredstoreError):
    """The --verify command rejected the new value; nothing was changed (exit 1)."""


class ChangedMeanwhile(CredstoreError):
    """Someone else changed the entry while --verify ran; nothing was changed (exit 1)."""


class Target:
    """Where a rotation happens: the person's profile, or a service account (``--service``), opened without the
    person's own store when that store is not needed to reach it."""

    def __init__(self, ctx: Context, service: str | None) -> None:
        self.service = service
        if service is None:
            self.backend: Backend = ctx.open_profile()
            self.where = f"profile '{ctx.profile}'"
        else:
            self.backend = ctx.open_service(service)
            self.where = f"service account '{service}'"

    def audit(self, ctx: Context, event: str, names: list[str], **fields: object) -> None:
        if self.service is None:
            ctx.audit(event, names=names, **fields)
        else:
            # A service account on this machine: its own log in the shared directory. On OpenBao: the person's log,
            # naming the account (the engine keeps its own audit device).
            ctx.audit(event, names=names, service=self.service, service_only=isinstance(self.backend, ServiceStore))


def verify_environment(base: Snapshot, name: str, value: str) -> dict[str, str]:
    """What the ``--verify`` command sees: this environment, the non-secret values of the same catalog service
    (e.g. the W&B server the key is checked against), and the candidate. No other stored value."""
    child = dict(os.environ)
    service = catalog.service_of(name)
    for entry_name, entry in base.entries.items():
        if not entry.secret and service is not None and catalog.service_of(entry_name) == service:
            child[entry_name] = entry.value
    child[name] = value
    for marker_name in marker.all_variables(child):
        del child[marker_name]
    return child


def run_verify(command: str, base: Snapshot, name: str, value: str) -> None:
    """Run the person's own command string with ``sh -c``, the candidate value in its environment only.

    The command's argv (visible in `ps`) holds only what the person typed; the value travels in the environment.
    Its stdout goes to credstore's stderr so `rotate` never prints anything a script could capture by mistake.
    """
    try:
        proc = subprocess.run(
            ["/bin/sh", "-c", command],
            env=verify_environment(base, name, value),
            stdout=sys.stderr.fileno(),
            check=False,
        )
    except OSError as exc:
        raise VerifyFailed(f"could not run the --verify command ({exc.strerror}); {name} was not changed") from None
    if proc.returncode != 0:
        raise VerifyFailed(
            f"the --verify command failed (exit status {proc.returncode}); {name} was not changed and keeps its "
            "old value"
        )


def rotate(
    ctx: Context,
    name: str,
    *,
    service: str | None = None,
    grace_seconds: float = DEFAULT_GRACE,
    rollback: bool = False,
    read_new_value: Callable[[Entry], str] | None = None,
    verify: str | None = None,
) -> str:
    """Replace ``name`` with a new value (``read_new_value(current entry)``) keeping the old one for the grace
    period, or (``rollback``) restore the previous value. Returns one line saying what was done."""
    catalog.check_name(name)
    target = Target(ctx, service)
    before = ctx.read(target.backend) if service is None else target.backend.read()
    current = before.entries.get(name)
    if current is None:
        raise NotFoundError(f"{name} is not stored in {target.where}; store it first with `set`")
    now = time.time()
    if rollback:
        if current.previous is None or (current.previous_expires or 0) <= now:
            raise NotFoundError(
                f"{name} in {target.where} has no previous value to roll back to (none, or its grace ended)"
            )
        candidate = current.previous
    else:
        assert read_new_value is not None
        candidate = read_new_value(current)
        catalog.check_value(name, candidate)
        check_length(name, candidate)
        if candidate == current.value:
            raise UsageError(f"the new value of {name} is the same as the current one; nothing changed")
    if verify:
        run_verify(verify, before, name, candidate)
        ctx.audit("get", names=[name], via="rotate --verify", service=service)
        ctx.warn(f"--verify accepted the {'previous' if rollback else 'new'} value of {name}")

    def change(snapshot: Snapshot) -> None:
        entry = snapshot.entries.get(name)
        if entry is None or entry.value != current.value:
            raise ChangedMeanwhile(
                f"{name} in {target.where} was changed by someone else meanwhile; nothing changed, retry"
            )
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

    target.backend.modify(change)
    if rollback:
        target.audit(ctx, "rollback", [name])
        return f"rolled {name} in {target.where} back to its previous value"
    target.audit(ctx, "rotate", [name], via="verified" if verify else None)
    if grace_seconds > 0:
        until = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(now + grace_seconds))
        flag = f" --service {service}" if service else ""
        return (
            f"rotated {name} in {target.where}; the previous value is kept until {until} "
            f"(undo with: credstore {ctx.profile_flag if not service else ''}rotate {name}{flag} --rollback)"
        )
    return f"rotated {name} in {target.where}; the previous value was not kept (grace period 0)"


def status_rows(ctx: Context, now: float) -> tuple[list[dict[str, object]], list[str]]:
    """Personal entries and every service account entry this person can read; plus notes on what was skipped."""
    from credstore import config

    rows: list[dict[str, object]] = []
    notes: list[str] = []
    profile = ctx.open_profile()
    if profile.exists():
        snapshot = ctx.read(profile)
        rows += entry_rows(profile.source, snapshot, now)
        default_service = snapshot.settings.get(DEFAULT_SERVICE_SETTING)
        beside = profile.service_account(default_service) if default_service else None
        if beside is not None:  # a remote profile: its team's account, same engine
            rows += entry_rows(f"service:{default_service}", beside.read(), now)
    try:
        infos = config.shared_root(ctx.environ).services()
    except CredstoreError as exc:
        notes.append(f"service accounts skipped: {exc}")
        infos = []
    for info in infos:
        if not info.member and os.geteuid() != 0:
            continue
        try:
            account = config.open_shared_service(info.name, ctx.environ)
            rows += entry_rows(f"service:{info.name}", account.read(), now)
        except NotFoundError:
            continue
        except CredstoreError as exc:  # unreadable, or another admin or store than before (service accept)
            notes.append(f"service account '{info.name}' skipped: {exc}")
    return rows, notes
