"""Collect the layers for one command: explicit ``--set`` values, a service account, the environment, the profile.

Pure: it is handed what the backends hold (snapshots); opening and reading them is the application layer's job.
"""

# No `from __future__ import annotations` here: typing.NamedTuple would compile string annotations (see store/base).

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from credstore.catalog import check_name, check_value, expand, unknown_token_warning
from credstore.errors import UsageError
from credstore.resolver.layers import Layer, Resolved, Value, resolve
from credstore.resolver.plan import EnvPlan, build_layers, fingerprint_key, plan_env, secret_flag, store_layer
from credstore.store.base import Entry, Snapshot

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


class ServiceValues(NamedTuple):
    """What a service account contributes: its name, its layer's source (``service:NAME`` on this machine,
    ``vault:...`` on OpenBao), its entries (attribution already left out by the service backend), and whether it was
    chosen on the command line (an explicit argument) rather than as the profile's default."""

    name: str
    source: str
    entries: Mapping[str, Entry]
    chosen: bool


class Gathered:
    """The layers for one command, the selected names (None = all), the refresh-marker key and the service used
    (its name, and the source of its layer: ``service:NAME`` on this machine, ``vault:...`` on OpenBao)."""

    __slots__ = ("_resolved", "fp_key", "layers", "names", "service", "service_source", "snapshot", "warnings")

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
        #: One-line warnings for the person (the caller decides where they go).
        self.warnings: list[str] = []
        self._resolved: list[Resolved] | None = None

    def resolved(self) -> list[Resolved]:
        """The resolution of the selected names (computed once: the audit hook and the output both need it)."""
        if self._resolved is None:
            self._resolved = resolve(self.layers, self.names)
        return self._resolved

    def plan(self, environ: Mapping[str, str]) -> EnvPlan:
        return plan_env(self.layers, self.names, environ, self.fp_key, self.resolved())


def gather(
    profile_source: str,
    snapshot: Snapshot,
    tokens: Sequence[str],
    explicit: Mapping[str, str],
    environ: Mapping[str, str],
    service: ServiceValues | None = None,
) -> Gathered:
    """The layers for one command, highest precedence first (see ``layers.py``), from the profile's ``snapshot``,
    an optional service account, ``explicit`` values and the process environment; ``tokens`` select services or
    names (none: everything stored)."""
    names = expand(list(tokens))
    stored = [store_layer(profile_source, snapshot)]
    upper: list[Layer] = []
    if service is not None:
        layer = Layer(service.source, {n: Value(e.value, e.secret) for n, e in service.entries.items()})
        if service.chosen:
            upper.append(layer)
        else:
            stored.insert(0, layer)
    explicit_values = {name: Value(value, secret_flag(name, [*upper, *stored])) for name, value in explicit.items()}
    if names is not None:
        names = list(dict.fromkeys([*names, *explicit]))
    fp_key = fingerprint_key(snapshot)
    layers = build_layers(stored, explicit_values, environ, fp_key, names, upper)
    gathered = Gathered(
        layers, names, fp_key, snapshot, service.name if service else None, service.source if service else None
    )
    present = {name for layer in layers for name in layer.values}
    for token in dict.fromkeys(tokens):
        unknown = unknown_token_warning(token, present)
        if unknown:
            gathered.warnings.append(unknown)
    warning = attribution_warning(gathered, environ)
    if warning:
        gathered.warnings.append(warning)
    return gathered


def attribution_warning(gathered: Gathered, environ: Mapping[str, str]) -> str | None:
    """A W&B key from a service account without WANDB_USERNAME: runs would be attributed to the service itself."""
    if gathered.names is not None and "WANDB_API_KEY" not in gathered.names:
        return None
    if gathered.service is None or gathered.service_source is None:
        return None
    holders = [layer for layer in gathered.layers if "WANDB_API_KEY" in layer.values]
    if not holders or holders[0].source != gathered.service_source:
        return None
    if environ.get("WANDB_USERNAME") or any("WANDB_USERNAME" in layer.values for layer in gathered.layers):
        return None
    return (
        f"warning: WANDB_API_KEY comes from {holders[0].source} but WANDB_USERNAME is not set, so runs "
        "will be attributed to the service account itself; set yours once with: credstore set WANDB_USERNAME <you>"
    )
