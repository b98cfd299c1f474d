"""The package's layers hold: every import (module level or inside a function) points down or sideways, never up.

    base (errors, durations, fsutil, catalog, sources, shells)  <-  crypto  <-  store  <-  config
        <-  resolver, audit  <-  app  <-  cli, api

See docs/ARCHITECTURE.md. Also: no import cycles, the resolver never opens backends (no config), no module reaches
into another's ``_private`` names or attributes, and the click command modules do not import each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "credstore"

LAYERS: list[tuple[int, tuple[str, ...]]] = [
    (0, ("credstore.errors", "credstore.durations", "credstore.fsutil", "credstore.catalog", "credstore.sources")),
    (0, ("credstore.marker",)),
    (0, ("credstore.shells",)),
    (1, ("credstore.crypto",)),
    (2, ("credstore.store",)),
    (3, ("credstore.config",)),
    (4, ("credstore.resolver", "credstore.audit")),
    (5, ("credstore.app",)),
    (6, ("credstore.cli", "credstore.api", "credstore.__main__", "credstore.integrations")),
]
# Shared by the command modules; everything else in cli/ is a command module (or the entry points).
CLI_SHARED = {
    "credstore.cli.common",
    "credstore.cli.terminal",
    "credstore.cli.fast",
    "credstore.cli.main",
    "credstore.cli.tables",
}
# Private-looking names that are public APIs: os._exit, and NamedTuple's methods.
PUBLIC_UNDERSCORE = {"_exit", "_replace", "_asdict", "_fields", "_make"}


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, ast.Module]:
    return {module_name(p): ast.parse(p.read_text(), str(p)) for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(name: str) -> int | None:
    for layer, prefixes in LAYERS:
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return layer
    return None


def resolve_from(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports_of(name: str, tree: ast.Module, known: set[str]) -> list[tuple[str, list[str], int]]:
    """(imported module, names imported from it, line) for every import in the module, function bodies too."""
    is_package = name + ".__init__" in known or any(k.startswith(name + ".") for k in known)
    out: list[tuple[str, list[str], int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = resolve_from(name, node, is_package)
            names = [alias.name for alias in node.names]
            # `from credstore.app import delivery` imports the module credstore.app.delivery.
            submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in known]
            if submodules:
                out += [(sub, [], node.lineno) for sub in submodules]
                rest = [n for n in names if f"{target}.{n}" not in known]
                if rest:
                    out.append((target, rest, node.lineno))
            else:
                out.append((target, names, node.lineno))
    return [item for item in out if item[0] == "credstore" or item[0].startswith("credstore.")]


@pytest.fixture(scope="module")
def graph() -> dict[str, list[tuple[str, list[str], int]]]:
    trees = modules()
    known = set(trees)
    return {name: imports_of(name, tree, known) for name, tree in trees.items()}


def test_every_module_has_a_layer() -> None:
    missing = [name for name in modules() if name != "credstore" and layer_of(name) is None]
    assert not missing, f"modules outside every layer (add them to LAYERS and docs/ARCHITECTURE.md): {missing}"


def test_imports_never_point_up(graph: dict[str, list[tuple[str, list[str], int]]]) -> None:
    upward = []
    for module, imports in graph.items():
        mine = layer_of(module)
        if mine is None:  # the package's __init__: an entry point like the api
            mine = 6
        for target, _, line in imports:
            theirs = layer_of(target)
            if theirs is not None and theirs > mine:
                upward.append(f"{module}:{line} imports {target} (layer {theirs} > {mine})")
    assert not upward, "\n".join(upward)


def test_no_import_cycles(graph: dict[str, list[tuple[str, list[str], int]]]) -> None:
    edges = {m: {t for t, _, _ in imports if t in graph and t != m} for m, imports in graph.items()}
    # Importing a submodule imports its (empty) package __init__ first: not an edge that can close a cycle.
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_resolver_and_store_do_not_open_backends(graph: dict[str, list[tuple[str, list[str], int]]]) -> None:
    bad = [
        f"{module}:{line} imports {target}"
        for module, imports in graph.items()
        if module.startswith(("credstore.resolver", "credstore.store", "credstore.crypto"))
        for target, _, line in imports
        if target.startswith(("credstore.config", "credstore.cli", "credstore.app", "credstore.audit"))
        or (module.startswith("credstore.crypto") and target.startswith("credstore.store"))
        or (module.startswith("credstore.store") and target.startswith("credstore.resolver"))
    ]
    assert not bad, "\n".join(bad)


def test_no_private_names_of_other_modules(graph: dict[str, list[tuple[str, list[str], int]]]) -> None:
    bad = [
        f"{module}:{line} imports {name} from {target}"
        for module, imports in graph.items()
        for target, names, line in imports
        for name in names
        if name.startswith("_") and not name.startswith("__") and target != module
    ]
    assert not bad, "\n".join(bad)


def foreign_names(tree: ast.Module) -> set[str]:
    """Names a module binds to modules outside credstore (the standard library's own privates are its business)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names if not a.name.startswith("credstore")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and not (node.module or "").startswith("credstore"):
            names |= {a.asname or a.name for a in node.names}
    return names


def test_no_private_attributes_of_other_objects() -> None:
    bad = []
    for name, tree in modules().items():
        foreign = foreign_names(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute):
                continue
            attr = node.attr
            if not attr.startswith("_") or attr.startswith("__") or attr in PUBLIC_UNDERSCORE:
                continue
            owner = node.value
            if isinstance(owner, ast.Name) and (owner.id in ("self", "cls") or owner.id in foreign):
                continue
            if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super":
                continue
            bad.append(f"{name}:{node.lineno} reads .{attr}")
    assert not bad, "\n".join(bad)


def test_command_modules_stand_side_by_side(graph: dict[str, list[tuple[str, list[str], int]]]) -> None:
    commands = {m for m in graph if m.startswith("credstore.cli.") and m not in CLI_SHARED}
    bad = [
        f"{module}:{line} imports {target}"
        for module in commands
        for target, _, line in graph[module]
        if target in commands and target != module
    ]
    assert not bad, "\n".join(bad)
