"""Precedence and the refresh rule, at the resolver level."""

from __future__ import annotations

import os

from credstore.marker import parse as parse_marker
from credstore.resolver.exported import MARKER, fingerprint, format_marker
from credstore.resolver.layers import Layer, Value, resolve
from credstore.resolver.plan import build_layers, plan_env

KEY = os.urandom(32)
PROFILE = Layer("profile:default", {"A": Value("stored-a", True), "B": Value("stored-b", False)})


def sources(layers: list[Layer], names=None) -> dict[str, tuple[str, tuple[str, ...], str]]:
    return {r.name: (r.source, r.shadowed, r.value) for r in resolve(layers, names)}


def test_argument_beats_environment_beats_profile() -> None:
    layers = build_layers([PROFILE], {"A": Value("arg-a", True)}, {"A": "env-a", "B": "env-b"}, KEY)
    got = sources(layers)
    assert got["A"] == ("argument", ("environment", "profile:default"), "arg-a")
    assert got["B"] == ("environment", ("profile:default",), "env-b")


def test_profile_alone() -> None:
    got = sources(build_layers([PROFILE], {}, {}, KEY))
    assert got["A"] == ("profile:default", (), "stored-a")


def test_unrelated_environment_variables_are_not_pulled_in() -> None:
    got = sources(build_layers([PROFILE], {}, {"PATH": "/bin", "HOME": "/h"}, KEY))
    assert set(got) == {"A", "B"}


def test_named_selection_includes_environment_only_names() -> None:
    layers = build_layers([PROFILE], {}, {"C": "env-c"}, KEY, ["C"])
    assert sources(layers, ["C"]) == {"C": ("environment", (), "env-c")}


def test_value_credstore_exported_is_refreshed_but_a_hand_set_one_wins() -> None:
    old = {"A": "old-a", "B": "stored-b"}
    marker = format_marker({n: fingerprint(KEY, n, v) for n, v in old.items()})
    environ = {**old, MARKER: marker}
    # A was exported by credstore and nobody touched it: the store's new value wins.
    layers = build_layers([PROFILE], {}, environ, KEY)
    assert sources(layers)["A"][0] == "profile:default"
    # The person changed A by hand afterwards: their value wins.
    environ["A"] = "typed-by-hand"
    layers = build_layers([PROFILE], {}, environ, KEY)
    assert sources(layers)["A"] == ("environment", ("profile:default",), "typed-by-hand")


def test_marker_from_another_key_does_not_count() -> None:
    environ = {"A": "old-a", MARKER: format_marker({"A": fingerprint(os.urandom(32), "A", "old-a")})}
    layers = build_layers([PROFILE], {}, environ, KEY)
    assert sources(layers)["A"][0] == "environment"


def test_plan_unsets_exported_values_no_longer_stored() -> None:
    gone = {"GONE": "v"}
    environ = {**gone, MARKER: format_marker({"GONE": fingerprint(KEY, "GONE", "v")})}
    layers = build_layers([PROFILE], {}, environ, KEY)
    plan = plan_env(layers, None, environ, KEY)
    assert plan.unsets == ["GONE"]
    names = [n for n, _ in plan.assignments]
    assert names == ["A", "B", MARKER]
    marker = parse_marker(dict(plan.assignments)[MARKER])
    assert set(marker) == {"A", "B"} and marker["A"] == fingerprint(KEY, "A", "stored-a")


def test_plan_with_selection_keeps_other_exports() -> None:
    environ = {"HF_TOKEN": "hf_x", MARKER: format_marker({"HF_TOKEN": fingerprint(KEY, "HF_TOKEN", "hf_x")})}
    layers = build_layers([PROFILE], {}, environ, KEY, ["A"])
    plan = plan_env(layers, ["A"], environ, KEY)
    assert plan.unsets == []
    assert set(parse_marker(dict(plan.assignments)[MARKER])) == {"A", "HF_TOKEN"}


def test_malformed_marker_is_ignored() -> None:
    assert parse_marker("garbage") == {} and parse_marker("v1 x y:") == {} and parse_marker(None) == {}


def test_resolved_repr_and_json_hide_secrets() -> None:
    (item,) = resolve([PROFILE], ["A"])
    assert "stored-a" not in repr(item)
    assert item.to_json()["value"] == "********"
