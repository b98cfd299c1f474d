"""Delivering credentials: ``env`` (shell text), ``exec`` (a child environment), ``explain`` and ``resolve`` (the
Python API). Every read that hands values out is audited here, names only, with how it was reached."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from credstore.app.context import Context
from credstore.errors import CredstoreError, NotFoundError, UsageError
from credstore.resolver.gather import DEFAULT_SERVICE_SETTING, Gathered, ServiceValues, gather
from credstore.resolver.layers import ARGUMENT, ENVIRONMENT, Resolved
from credstore.store.base import Snapshot


def gather_for(
    ctx: Context, tokens: Sequence[str], explicit: Mapping[str, str], service: str | None = None
) -> Gathered:
    """Open the profile (and its service account), read them, and gather the layers. ``service``: an account named
    by the caller (``--service``), which counts as an explicit argument; else the profile's default, if any."""
    return _gather(ctx, tokens, explicit, service)[0]


def _gather(
    ctx: Context, tokens: Sequence[str], explicit: Mapping[str, str], service: str | None
) -> tuple[Gathered, frozenset[str]]:
    """``gather_for``, plus the names the service's admin allowed beyond the catalog (for ``explain``).

    A service account contributes only what it may export (``services.exportable``): catalog variables and names
    its admin allowed, never a name that changes how programs or shells run; what it holds beyond that is left out
    here, before the pure resolver sees it, with one warning naming it."""
    profile = ctx.open_profile()
    try:
        snapshot = ctx.read(profile)
    except NotFoundError:
        if service is None:
            raise
        snapshot = Snapshot()  # a person with no profile of their own may still use a service account
    name = service or snapshot.settings.get(DEFAULT_SERVICE_SETTING) or None
    values = None
    allowed: frozenset[str] = frozenset()
    if name:
        from credstore.app.services import export_warnings, exportable  # only when a service account is used

        account = ctx.open_service(name, opened=profile)
        split = exportable(account.read())
        for warning in export_warnings(name, split):
            ctx.warn(warning)
        allowed = split.allowed
        values = ServiceValues(name, account.source, split.entries, chosen=service is not None)
    gathered = gather(profile.source, snapshot, tokens, explicit, ctx.environ, values)
    for warning in gathered.warnings:
        ctx.warn(warning)
    return gathered, allowed


def _audit_read(ctx: Context, event: str, gathered: Gathered, command: str | None = None) -> None:
    delivered = {r.name: r.source for r in gathered.resolved() if r.source != ENVIRONMENT}
    ctx.audit(event, names=sorted(delivered), sources=delivered, service=gathered.service, command=command)


def env_text(
    ctx: Context,
    tokens: Sequence[str],
    explicit: Mapping[str, str],
    *,
    service: str | None = None,
    shell: str | None = None,
    fmt: str = "shell",
    prefix: str | None = None,
    target: str | None = None,
    hook: bool = False,
) -> str:
    """The whole text ``credstore env`` prints, built before anything is written. Never prompts: give a context
    without ``ask_passphrase`` (a locked store is an error, exit 4). ``hook``: also export the generation the shell
    hook compares (``app/render_cache.py``)."""
    import time

    checked_at = time.time()
    from credstore import shells
    from credstore.resolver.deliver import check_output_options, render_env

    prefix = check_output_options(prefix, target)
    if fmt == "shell":
        shell = shell or shells.detect_shell(ctx.environ)
        prepared: str | None = shell
    else:
        # The cache this fills also serves the next new shell: prepare its text for the shell of $SHELL (a file
        # format's --shell is no shell's choice), else the hits that follow would never prepare it.
        prepared = _shell_of(ctx.environ)
    shell = shell or "sh"  # a file format: no shell's syntax is written
    bound = ctx.openbao_bound()  # before anything is read: a malformed bound is an error, not a silent default
    before = _capture_profile_files(ctx) if bound != 0 else None  # before the read: a later write only misses
    gathered = gather_for(ctx, tokens, explicit, service)
    text = render_env(gathered, ctx.environ, shell=shell, fmt=fmt, prefix=prefix)
    _audit_read(ctx, "env", gathered)
    record = None
    if before is not None:
        record = _remember_render(ctx, gathered, before, chosen=service is not None, bound=bound, shell=prepared)
    if hook:
        from credstore.app import render_cache

        text += render_cache.generation_text(record, checked_at, shell, ctx.environ)
    return text


def _shell_of(environ: Mapping[str, str]) -> str | None:
    """The shell ``$SHELL`` names (``shells.detect_shell``), or None for a syntax credstore does not write."""
    from credstore import shells

    try:
        return shells.detect_shell(environ)
    except UsageError:
        return None


def _capture_profile_files(ctx: Context) -> list[tuple[str, str, str]] | None:
    """The profile's files as they are before ``env`` reads them (None: this profile's render is not cached). For
    an OpenBao profile these are its local half: the store holding its token, the profile file, the key file."""
    from credstore import config
    from credstore.app import render_cache

    try:
        home = render_cache.store_home(ctx.environ)
        if home != str(config.store_home(ctx.environ)):
            return None  # an unusual CREDSTORE_HOME spelling: the lean path would not find the same files
        profile = ctx.profile
        facts = config.routing(profile, ctx.environ)
        if facts is not None and facts.get(config.BACKEND) not in (config.LOCAL, config.VAULT):
            return None
        from pathlib import Path

        from credstore import fsutil

        profiles = os.path.join(home, "profiles")
        base = os.path.join(profiles, profile)
        directories = [profiles, *map(str, fsutil.parents_checked(Path(profiles)))]
        return render_cache.capture(
            [(base + ".store", True), (base + ".profile", False), (base + ".key", False)], directories
        )
    except (CredstoreError, OSError):
        return None


def _remember_render(
    ctx: Context,
    gathered: Gathered,
    files: list[tuple[str, str, str]],
    *,
    chosen: bool,
    bound: int | None = None,
    shell: str | None = None,
):
    """Keep what this ``env`` read for the next ``env`` of this login (``app/render_cache.py``): the record kept,
    or None. ``bound``: an OpenBao profile's freshness bound (``Context.openbao_bound``). Never fails."""
    try:
        return _remember_render_or_raise(ctx, gathered, files, chosen, bound, shell)
    except Exception:  # an optimisation: whatever fails here, this env's output stands, uncached
        return None


def _remember_render_or_raise(
    ctx: Context, gathered: Gathered, files: list[tuple[str, str, str]], chosen: bool, bound: int | None, shell
):
    # -> render_cache.Record | None
    import time

    from credstore import catalog
    from credstore.app import render_cache
    from credstore.crypto import session_secret
    from credstore.crypto.protection import protection
    from credstore.resolver.exported import Fingerprinter
    from credstore.shells import check_name, check_value
    from credstore.store.local import LocalStore

    local = ctx.open_local()
    if not isinstance(local, LocalStore):
        return None
    openbao = bound is not None
    if not openbao and any(layer.source.startswith(render_cache.OPENBAO_SOURCE) for layer in gathered.layers):
        return None  # OpenBao values reached without the profile file saying so (a store from before them)
    if openbao:
        ttl_cap = _openbao_ttl(ctx, bound)
        if ttl_cap is None:
            return None
    header = local.read_header()[0]
    levels = [protection(slot.kind, for_reading=True) for slot in header.slots]
    if all(level.caches_data_key for level in levels):
        # Never longer than the unlock: the data key's own (authenticated) expiry in this login's session cache.
        found = session_secret.get_with_expiry(header.store_id.hex())
        if found is None:
            return None
        ttl = found[1] - int(time.time())
        dek_name = header.store_id.hex()
    else:
        ttl, dek_name = render_cache.KEYFILE_TTL, ""
    if openbao:
        ttl = min(ttl, ttl_cap)
        if ttl <= 0:
            return None
    record = render_cache.Record()
    record.home = render_cache.store_home(ctx.environ)
    record.profile = ctx.profile
    record.dek_name = dek_name
    record.expiry = int(time.time()) + ttl
    record.files = list(files)
    record.fp_key = gathered.fp_key
    if len(gathered.snapshot.entries) <= render_cache.LISTING_MAX:
        record.listing = {
            name: (entry.updated, catalog.service_of(name) or "") for name, entry in gathered.snapshot.entries.items()
        }
    stored = [layer for layer in gathered.layers if layer.source not in (ARGUMENT, ENVIRONMENT)]
    if gathered.service is not None and openbao and gathered.service_source.startswith(render_cache.OPENBAO_SOURCE):
        # beside the profile on the same server: no local file of its own, the same bound
        record.service, record.service_source, record.service_chosen = gathered.service, gathered.service_source, chosen
    elif gathered.service is not None:
        if openbao or gathered.service_source != f"service:{gathered.service}":
            return None
        account = ctx.open_service(gathered.service)
        # the service's directory and every one above it: the full road checks the shared root and its path too
        above = [str(account.dir), *map(str, account.dir.parents)]
        service_files = render_cache.capture([(str(account.path), True), (str(account.key_path), False)], above)
        again = {n: (e.value, e.secret) for n, e in account.read().entries.items()}
        layer = next(layer for layer in stored if layer.source == gathered.service_source)
        if again != {n: (v.value, v.secret) for n, v in layer.values.items()}:
            return None  # changed while this env ran: the next one reads it in full
        record.files += service_files
        record.service, record.service_source, record.service_chosen = gathered.service, gathered.service_source, chosen
    fingerprint_of = Fingerprinter(gathered.fp_key) if gathered.fp_key else None
    for layer in stored:
        values: dict[str, tuple[str, bool, str]] = {}
        for name, value in layer.values.items():
            check_name(name)
            check_value(name, value.value)
            fp = fingerprint_of(name, value.value) if fingerprint_of is not None else ""
            values[name] = (value.value, value.secret, fp)
        record.layers.append((layer.source, values))
    return record if render_cache.remember(record, ttl, ctx.environ, shell) else None


def _openbao_ttl(ctx: Context, bound: int) -> int | None:
    """How long an OpenBao render may be kept: the bound, and never past the stored token's expiry; None when it
    must not be kept (a read answered by the fallback copy, a token from the environment)."""
    import time

    from credstore.store import vault_profile

    if bound <= 0 or vault_profile.env_token(ctx.environ) is not None:
        return None
    if any(backend.read_from_fallback for backend in ctx.opened):
        return None
    profile = next((b for b in ctx.opened if isinstance(b, vault_profile.VaultProfile) and b.name is None), None)
    if profile is None:
        return None
    try:
        expires = float(profile.secrets.get(vault_profile.TOKEN_EXPIRES) or 0)
    except ValueError:
        return None
    if expires > 0:
        return min(bound, int(expires - time.time()))
    return bound


def exec_environment(
    ctx: Context,
    tokens: Sequence[str],
    explicit: Mapping[str, str],
    command: Sequence[str],
    *,
    service: str | None = None,
) -> dict[str, str]:
    """The environment ``credstore exec`` gives ``command``. The audit line names the command by argv[0] only:
    later arguments may hold what a person typed, secrets too."""
    from credstore.resolver.deliver import child_environment

    ctx.openbao_bound()  # a malformed bound is an error here too, as on the cached road it is a miss
    gathered = gather_for(ctx, tokens, explicit, service)
    child = child_environment(gathered, ctx.environ)
    _audit_read(ctx, "exec", gathered, command=command[0])
    return child


def unload_text(ctx: Context, shell: str | None = None) -> tuple[str, list[str], list[str], bool]:
    """``credstore unload``: statements that unset what ``credstore env`` exported into this shell (the names of
    ``CREDSTORE_EXPORTED``) and the marker itself. When the profile can be read without asking (unlocked, or a level
    that needs no unlock), a name whose value no longer matches its fingerprint was changed by hand and stays; when
    it cannot (locked), every listed name is unset. Variables credstore never exported are never touched.
    Returns (text, names unset, names kept, whether values were checked)."""
    from credstore import marker, shells
    from credstore.errors import CredstoreError
    from credstore.resolver.exported import exported_unchanged
    from credstore.resolver.plan import fingerprint_key

    listed = [name for name in marker.parse(marker.read(ctx.environ)) if name in ctx.environ]
    unset, kept, checked = listed, [], False
    try:
        key = fingerprint_key(ctx.read(ctx.open_profile()))
    except CredstoreError:
        key = b""
    if key and listed:
        unchanged = exported_unchanged(key, ctx.environ)
        unset = [name for name in listed if name in unchanged]
        kept = [name for name in listed if name not in unchanged]
        checked = True
    names = [*unset, *marker.all_variables(ctx.environ)]
    text = shells.render([], names, shell=shell or shells.detect_shell(ctx.environ))
    return text, unset, kept, checked


def check_exec_command(ctx: Context, command: Sequence[str], separated: bool) -> None:
    """``credstore exec wandb printenv X`` (no ``--``) would run a program called ``wandb``, though the person most
    likely meant the service: refuse it and say both ways to write it. With a ``--`` anywhere it is unambiguous."""
    from credstore import catalog

    if separated or not command:
        return
    word = command[0]
    if word not in catalog.SERVICES and word not in catalog.VARIABLES:
        return
    rest = " ".join(command[1:]) or "CMD"
    what = "a service" if word in catalog.SERVICES else "a variable name"
    flag = ctx.profile_flag
    raise UsageError(
        f"'{word}' is {what}, so this is ambiguous: to give its variables to a command write "
        f"`credstore {flag}exec {word} -- {rest}`; to run a program called {word} write "
        f"`credstore {flag}exec -- {word} {rest}`"
    )


def run_exec(
    ctx: Context,
    tokens: Sequence[str],
    explicit: Mapping[str, str],
    command: Sequence[str],
    *,
    service: str | None = None,
) -> None:
    """Replace this process with ``command`` and its resolved environment (never returns, or raises)."""
    from credstore.resolver.deliver import exec_command

    exec_command(command, exec_environment(ctx, tokens, explicit, command, service=service))


def resolve(
    ctx: Context, tokens: Sequence[str], explicit: Mapping[str, str], *, service: str | None = None
) -> dict[str, Resolved]:
    """``{name: Resolved}`` for the selected names (all stored ones when none are named); audited as a ``get``."""
    gathered = gather_for(ctx, tokens, explicit, service)
    resolved = {item.name: item for item in gathered.resolved()}
    _audit_read(ctx, "get", gathered)
    return resolved


def profile_choice(ctx: Context) -> dict[str, object]:
    """Which profile ``ctx`` means and why: ``profile``, ``why``, and ``key``, the ssh key fingerprint that chose it
    (None when it was named or defaulted). Nothing is opened and no signature is asked."""
    from credstore import config

    name, why, key = config.choose_profile(ctx.profile_arg, ctx.environ)
    return {"profile": name, "why": why, "key": key}


def explain_rows(
    ctx: Context, tokens: Sequence[str], explicit: Mapping[str, str], *, service: str | None = None
) -> list[dict[str, object]]:
    """For each selected name: the source that won, the sources it shadowed, the value masked when secret, and
    whether a service's admin allowed it beyond the catalog (not a read of any value, so not audited)."""
    gathered, allowed = _gather(ctx, tokens, explicit, service)
    resolved = {r.name: r for r in gathered.resolved()}
    names = gathered.names if gathered.names is not None else sorted(resolved)
    rows: list[dict[str, object]] = []
    for name in names:
        item = resolved.get(name)
        if item is None:
            rows.append({"name": name, "source": None, "shadowed": [], "value": None, "secret": None})
        else:
            row = item.to_json()
            # A name beyond the catalog that the service's admin allowed: say so (`service allow`).
            row["allowed_by_admin"] = item.source == gathered.service_source and name in allowed
            rows.append(row)
    return rows
