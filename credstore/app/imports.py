"""Importing keys people keep in plaintext today: merging read values into the profile in one write."""

from __future__ import annotations

import time
from collections.abc import Mapping

from credstore import catalog
from credstore.app.context import Context
from credstore.app.entries import check_length, set_value
from credstore.app.protection import ensure_profile
from credstore.errors import CredstoreError
from credstore.store.base import Snapshot
from credstore.store.shared import drop_expired_previous


class ImportConflict(CredstoreError):
    """A value differs from what is already stored and --overwrite was not given (exit 1)."""


def merge(
    ctx: Context, values: Mapping[str, str], source: str, *, overwrite: bool
) -> tuple[list[str], list[str], list[str]]:
    """Store ``values`` in the profile in one write. Returns (imported, already identical, conflicting) names.
    Names that change how programs run (``catalog.is_dangerous``) are left out with a warning: a file of keys is
    no reason to change PATH or LD_PRELOAD for every shell; `set --allow-dangerous` stores one on purpose."""
    dangerous = sorted(name for name in values if catalog.is_dangerous(name))
    if dangerous:
        ctx.warn(
            f"warning: not importing {', '.join(dangerous)}: they change how programs or shells run "
            "(store one on purpose with: credstore set --allow-dangerous NAME)"
        )
        values = {name: value for name, value in values.items() if name not in dangerous}
    for name, value in values.items():
        catalog.check_value(name, value)
        check_length(name, value)
    backend = ctx.open_profile()
    ensure_profile(ctx, backend)
    now = time.time()

    def change(snapshot: Snapshot) -> tuple[list[str], list[str], list[str]]:
        drop_expired_previous(snapshot, now)
        imported, same, conflicts = [], [], []
        for name, value in values.items():
            old = snapshot.entries.get(name)
            if old is not None and old.value == value:
                same.append(name)
                continue
            if old is not None and not overwrite:
                conflicts.append(name)
                continue
            set_value(snapshot, name, value, catalog.is_secret(name) if old is None else old.secret, now)
            imported.append(name)
        return imported, same, conflicts

    imported, same, conflicts = backend.modify(change) if values else ([], [], [])
    if imported:
        ctx.audit("import", names=imported, via=source)
    return imported, same, conflicts
