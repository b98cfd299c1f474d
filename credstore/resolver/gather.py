"""Collect the layers for one command: explicit ``--set`` values, the environment, the stored profile."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from credstore.catalog import check_name, check_value, expand
from credstore.errors import UsageError
from credstore.resolver.layers import Layer, Value
from credstore.resolver.plan import EnvPlan, build_layers, fingerprint_key, plan_env, secret_flag, store_layer
from credstore.store.base import Backend, Snapshot


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


@dataclass
class Gathered:
    layers: list[Layer]
    names: list[str] | None
    fp_key: bytes
    snapshot: Snapshot

    def plan(self, environ: Mapping[str, str]) -> EnvPlan:
        return plan_env(self.layers, self.names, environ, self.fp_key)


def gather(
    backend: Backend,
    tokens: Sequence[str],
    explicit: Mapping[str, str],
    environ: Mapping[str, str],
) -> Gathered:
    names = expand(list(tokens))
    snapshot = backend.read()
    stored = [store_layer(backend.source, snapshot)]
    explicit_values = {name: Value(value, secret_flag(name, stored)) for name, value in explicit.items()}
    if names is not None:
        names = list(dict.fromkeys([*names, *explicit]))
    fp_key = fingerprint_key(snapshot)
    layers = build_layers(stored, explicit_values, environ, fp_key, names)
    return Gathered(layers, names, fp_key, snapshot)
