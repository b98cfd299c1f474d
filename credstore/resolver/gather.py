"""Collect the layers for one command: explicit ``--set`` values, a service account, the environment, the profile."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from credstore.catalog import check_name, check_value, expand
from credstore.errors import NotFoundError, UsageError
from credstore.resolver.layers import Layer, Resolved, Value, resolve
from credstore.resolver.plan import EnvPlan, build_layers, fingerprint_key, plan_env, secret_flag, store_layer
from credstore.store.base import Backend, Snapshot

T = TypeVar("T")

#: Profile setting naming the service account chosen with `credstore use-service NAME`.
DEFAULT_SERVICE_SETTING = "service"


def parse_assignments(pairs: Sequence[str]) -> dict[str, str]:
    """``NAME=VALUE`` strings (from ``--set``) -> {NAME: VALUE}. The value is never echoed in an error."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            # No '=' means no telling name from value (`--set WANDB_API_KEY:abc...`): echo none of it.
            raise UsageError("--set expects NAME=VALUE, but one of the --set arguments has no '='")
        check_name(name)
        check_value(name, value)
        out[name] = value
    return out


class Gathered:
    """The layers for one command, the selected names (None = all), the refresh-marker key and the service used
    (its name, and the source of its layer: ``service:NAME`` on this machine, ``vault:...`` on OpenBao)."""

    __slots__ = ("_resolved", "fp_key", "layers", "names", "service", "service_source", "snapshot")

    def __init__(
        self,
        layers: list[Layer],
        names: list[str] | None,
        fp_key: bytes,
        snapshot: Snapshot,
        service: str | None = None,
        service_source: str | None = None,
    ) -> None:
        self.layers, self.names, self.fp_key, self.snapshot, self.service = layers, names, fp_key, snapshot, service
        self.service_source = service_source
        self._resolved: list[Resolved] | None = None

    def resolved(self) -> list[Resolved]:
        """The resolution of the selected names (computed once: the audit hook and the output both need it)."""
        if self._resolved is None:
            self._resolved = resolve(self.layers, self.names)
        return self._resolved

    def plan(self, environ: Mapping[str, str]) -> EnvPlan:
        return plan_env(self.layers, self.names, environ, self.fp_key, self.resolved())


class Selection(Backend):
    """The person's profile plus what one command chose on top of it.

    ``service``: a service account named on the command line (``--service NAME``), which counts as an explicit
    argument. ``on_gathered``: called with the gathered layers before anything is delivered (the audit log uses it,
    so a read through ``exec`` is recorded before the process is replaced).
    """

    def __init__(
        self,
        profile: Backend,
        *,
        service: str | None = None,
        on_gathered: Callable[[Gathered], None] | None = None,
    ) -> None:
        self.profile = profile
        self.service = service
        self.on_gathered = on_gathered
        self.source = profile.source

    def exists(self) -> bool:
        return self.profile.exists()

    def read(self) -> Snapshot:
        return self.profile.read()

    def modify(self, change: Callable[[Snapshot], T]) -> T:
        return self.profile.modify(change)


def service_layer(name: str, environ: Mapping[str, str], profile: Backend | None = None) -> Layer:
    """A service account's values, without the attribution variables (those are always the person's own)."""
    from credstore.config import open_service
    from credstore.store.shared import service_layer_entries

    store = open_service(name, profile, environ)
    entries = service_layer_entries(store.read())
    return Layer(store.source, {n: Value(e.value, e.secret) for n, e in entries.items()})


def gather(
    backend: Backend,
    tokens: Sequence[str],
    explicit: Mapping[str, str],
    environ: Mapping[str, str],
) -> Gathered:
    names = expand(list(tokens))
    selection = backend if isinstance(backend, Selection) else None
    profile = selection.profile if selection is not None else backend
    chosen = selection.service if selection is not None else None
    try:
        snapshot = profile.read()
    except NotFoundError:
        if chosen is None:
            raise
        snapshot = Snapshot()  # a person with no profile of their own may still use a service account
    stored = [store_layer(profile.source, snapshot)]
    upper: list[Layer] = []
    service = chosen or snapshot.settings.get(DEFAULT_SERVICE_SETTING) or None
    service_source = None
    if service:
        layer = service_layer(service, environ, profile)
        service_source = layer.source
        if chosen:
            upper.append(layer)
        else:
            stored.insert(0, layer)
    explicit_values = {name: Value(value, secret_flag(name, [*upper, *stored])) for name, value in explicit.items()}
    if names is not None:
        names = list(dict.fromkeys([*names, *explicit]))
    fp_key = fingerprint_key(snapshot)
    layers = build_layers(stored, explicit_values, environ, fp_key, names, upper)
    gathered = Gathered(layers, names, fp_key, snapshot, service, service_source)
    if service:
        warn_attribution(gathered, environ)
    if selection is not None and selection.on_gathered is not None:
        selection.on_gathered(gathered)
    return gathered


def warn_attribution(gathered: Gathered, environ: Mapping[str, str]) -> None:
    """A W&B key from a service account without WANDB_USERNAME: runs would be attributed to the service itself."""
    if gathered.names is not None and "WANDB_API_KEY" not in gathered.names:
        return
    if gathered.service is None or gathered.service_source is None:
        return
    holders = [layer for layer in gathered.layers if "WANDB_API_KEY" in layer.values]
    if not holders or holders[0].source != gathered.service_source:
        return
    if environ.get("WANDB_USERNAME") or any("WANDB_USERNAME" in layer.values for layer in gathered.layers):
        return
    sys.stderr.write(
        f"credstore: warning: WANDB_API_KEY comes from {holders[0].source} but WANDB_USERNAME is not set, so runs "
        "will be attributed to the service account itself; set yours once with: credstore set WANDB_USERNAME <you>\n"
    )
