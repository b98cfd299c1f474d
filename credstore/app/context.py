"""The caller's view of one operation: which profile, which environment, who may be asked, where warnings go."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping

from credstore import config
from credstore.errors import AuthError, UsageError
from credstore.store.base import Backend, Snapshot
from credstore.store.local import LocalStore


def warn_to_stderr(message: str) -> None:
    sys.stderr.write(f"credstore: {message}\n")


class Context:
    """``profile``: the name given (``--profile``, ``profile=``), None for ``$CREDSTORE_PROFILE`` / default.
    ``ask_passphrase``: how to ask a person for a passphrase; None means never ask (a locked store is an error).
    ``warn`` / ``info``: where warnings and lines saying what was done go.
    ``via``: how the operation was reached, recorded in audit lines (e.g. ``api``). ``terminal``: a person sits at a
    terminal (a new store may then be given a passphrase without being asked for a level)."""

    def __init__(
        self,
        profile: str | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        ask_passphrase: Callable[[str], str] | None = None,
        warn: Callable[[str], None] = warn_to_stderr,
        info: Callable[[str], None] | None = None,
        via: str | None = None,
        terminal: bool = False,
    ) -> None:
        self.profile_arg = profile
        self.terminal = terminal
        self.environ: Mapping[str, str] = dict(os.environ) if environ is None else environ
        self.ask_passphrase = ask_passphrase
        self.warn = warn
        #: Lines that say what was done (a CLI may silence them with -q); warnings and errors go to ``warn``.
        self.info = warn if info is None else info
        self.via = via
        #: The backends opened for this operation (``watch``), so ``env`` can tell whether a remote one answered
        #: from its fallback copy (then its render is not cached).
        self.opened: list[Backend] = []

    @property
    def interactive(self) -> bool:
        return self.ask_passphrase is not None

    @property
    def profile(self) -> str:
        return config.profile_name(self.profile_arg, self.environ)

    @property
    def profile_flag(self) -> str:
        """``--profile NAME `` for hints naming a command (keeps the profile that was given), else empty."""
        return config.profile_flag(self.profile)

    # -- opening (through config, the only place that opens backends) ----------------------------------------------

    def open_profile(self) -> Backend:
        return self.watch(
            config.open_backend(
                self.profile_arg, environ=self.environ, interactive=self.interactive, ask_passphrase=self.ask_passphrase
            )
        )

    def open_local(self, *, use_session_cache: bool = True, options: dict[str, str] | None = None) -> LocalStore:
        return config.open_local(
            self.profile_arg,
            environ=self.environ,
            interactive=self.interactive,
            ask_passphrase=self.ask_passphrase,
            use_session_cache=use_session_cache,
            options=options,
        )

    def open_service(self, name: str, opened: Backend | None = None) -> Backend:
        return self.watch(
            config.open_service(
                name,
                profile=self.profile_arg,
                opened=opened,
                environ=self.environ,
                interactive=self.interactive,
                ask_passphrase=self.ask_passphrase,
            )
        )

    def watch(self, backend: Backend) -> Backend:
        """Have every write of a remote backend (whose changes no local file shows) drop this login's cached
        renders at once (``forget_renders``). Local stores never call ``after_write``: their file changes."""
        backend.after_write = self.forget_renders
        self.opened.append(backend)
        return backend

    def openbao_bound(self) -> int | None:
        """The freshness bound of this OpenBao profile's cached render, in seconds (0: never cached); None for a
        local profile (or one this cannot tell without opening it: the render is then decided after the read).
        A malformed bound is a ``UsageError``."""
        from credstore.errors import CredstoreError

        try:
            facts = config.routing(self.profile, self.environ)
        except (CredstoreError, OSError):
            return None  # the read says what is wrong
        if facts is None or facts.get(config.BACKEND) != config.VAULT:
            return None
        from credstore.store.vault_profile import render_cache_seconds

        return render_cache_seconds(facts, self.environ)

    def forget_renders(self) -> None:
        """Drop every cached render of this store home in this login (``app/render_cache.py``): a write to OpenBao
        may change what any profile of it renders (a profile, or a service account several profiles use)."""
        from credstore.app import render_cache

        render_cache.forget_all(render_cache.store_home(self.environ), self.environ)

    def read(self, backend: Backend) -> Snapshot:
        """Read the person's profile; a wrong passphrase or key is recorded as a failed unlock."""
        try:
            return backend.read()
        except AuthError:
            self.audit("failed-unlock")
            raise

    # -- audit -----------------------------------------------------------------------------------------------------

    def audit(self, event: str, *, service_only: bool = False, **fields: object) -> None:
        """One audit line (names only). ``service_only``: a change to a service account on this machine, which goes
        to the shared directory's log instead of the person's."""
        from credstore import audit

        if self.via is not None and "via" not in fields:
            fields["via"] = self.via
        if service_only:
            audit.record(event, path=config.shared_audit_log(self.environ), environ=self.environ, **fields)
            return
        if "profile" not in fields:
            try:
                fields["profile"], _, chosen_by = config.choose_profile(self.profile_arg, self.environ)
            except UsageError:  # an invalid --profile fails elsewhere; the audit line never does
                fields["profile"], chosen_by = None, None
            if chosen_by is not None and "key" not in fields:
                fields["key"] = chosen_by  # the ssh key whose slot chose this profile
        audit.record(event, path=config.audit_log(self.environ), environ=self.environ, **fields)
