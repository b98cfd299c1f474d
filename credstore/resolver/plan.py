"""From a profile snapshot, explicit arguments and the environment to what ``env`` / ``exec`` must set."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from credstore import marker as marker_variables
from credstore.catalog import is_secret
from credstore.resolver.exported import MARKER, Fingerprinter, exported_unchanged, format_marker
from credstore.resolver.layers import ARGUMENT, ENVIRONMENT, Layer, Resolved, Value, resolve
from credstore.store.base import Snapshot


def store_layer(source: str, snapshot: Snapshot) -> Layer:
    return Layer(source, {name: Value(e.value, e.secret) for name, e in snapshot.entries.items()})


def fingerprint_key(snapshot: Snapshot) -> bytes:
    return bytes.fromhex(snapshot.settings.get("fingerprint_key", ""))


class EnvPlan:
    """What ``env`` prints: assignments (including the refresh marker) and unsets. Values never reach a repr."""

    __slots__ = ("assignments", "resolved", "unsets")

    def __init__(self, resolved: list[Resolved]) -> None:
        self.resolved = resolved
        self.assignments: list[tuple[str, str]] = []
        self.unsets: list[str] = []

    def __repr__(self) -> str:
        return f"EnvPlan(assign={[name for name, _ in self.assignments]}, unsets={self.unsets})"


def build_layers(
    store_layers: Sequence[Layer],
    explicit: Mapping[str, Value],
    environ: Mapping[str, str],
    fp_key: bytes,
    names: Sequence[str] | None = None,
    explicit_layers: Sequence[Layer] = (),
) -> list[Layer]:
    """Argument layer, explicitly chosen store layers (``--service``), environment layer (minus credstore's own
    unchanged exports), then the store layers."""
    stale = exported_unchanged(fp_key, environ) if fp_key else {}
    known = set(explicit) | set(names or ())
    all_stores = [*explicit_layers, *store_layers]
    for layer in all_stores:
        known.update(layer.values)
    env_values = {
        name: Value(environ[name], secret_flag(name, all_stores))
        for name in known
        if name in environ and name not in stale and name != MARKER
    }
    return [Layer(ARGUMENT, dict(explicit)), *explicit_layers, Layer(ENVIRONMENT, env_values), *store_layers]


def secret_flag(name: str, store_layers: Sequence[Layer]) -> bool:
    """Whether ``name`` is secret: as stored if stored, else as the catalog says (unknown names are secret)."""
    for layer in store_layers:
        if name in layer.values:
            return layer.values[name].secret
    return is_secret(name)


def plan_env(
    layers: Sequence[Layer],
    names: Sequence[str] | None,
    environ: Mapping[str, str],
    fp_key: bytes,
    resolved: list[Resolved] | None = None,
) -> EnvPlan:
    """What to export and unset so the shell ends up with the resolved values (``resolved``: if already known).

    Variables won by the environment are left alone. Variables credstore exported earlier, unchanged since and no
    longer stored (within the selection) are unset. ``CREDSTORE_EXPORTED`` is rewritten to match.
    """
    if resolved is None:
        resolved = resolve(layers, names)
    plan = EnvPlan(resolved)
    previous = exported_unchanged(fp_key, environ) if fp_key else {}
    selection = None if names is None else set(names)
    marker = {n: fp for n, fp in previous.items() if selection is not None and n not in selection}
    fingerprint_of = Fingerprinter(fp_key) if fp_key else None
    for item in resolved:
        if item.source == ENVIRONMENT:
            continue
        plan.assignments.append((item.name, item.value))
        if fingerprint_of is not None:
            marker[item.name] = fingerprint_of(item.name, item.value)
    assigned = {name for name, _ in plan.assignments}
    for name in sorted(previous):
        in_selection = selection is None or name in selection
        if in_selection and name not in assigned:
            plan.unsets.append(name)
    if marker:
        pieces, unused = marker_variables.assignments(format_marker(marker), environ)
        plan.assignments += pieces
        plan.unsets += unused
    else:
        plan.unsets += marker_variables.all_variables(environ)
    return plan
