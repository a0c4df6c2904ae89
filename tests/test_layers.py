"""The folders are the architecture: a layer imports only the layers below it, and no module
imports itself back through others (docs/architecture.md has the map this test enforces).

Imports inside functions count too (they are how a module defers a heavy import, not a way around
the rule). A module's layer is its folder's, or for top-level modules the one named below.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGES = {
    "cacheops": Path(__file__).resolve().parent.parent / "cacheops",
    "cacheops_track": Path(__file__).resolve().parent.parent / "cacheops_track",
}

# Lowest first. A module may import modules of its own layer and of any layer listed before it.
LAYERS = ["base", "server", "layouts", "inspect", "semantic", "ops", "front"]
TOP_LEVEL = {
    "errors": "base",
    "exit_codes": "base",
    "paths": "base",
    "config": "base",
    "yamlfile": "base",
    "ownkeys": "base",
    "faults": "base",
    "pricing": "base",
    "units": "base",
    "render": "front",
    "demo": "front",
    "__init__": "front",
    "__main__": "front",
}
# The app-side package: apps import it into their own process, so it stands beside cacheops and
# may use only the base and server layers' ideas, never their code (django-cacheops owns the name
# `cacheops` in some apps): it imports nothing of cacheops at all. cacheops may import it (the key
# names it writes are defined there, once).
STANDALONE = {"cacheops_track"}


def module_files() -> dict[str, Path]:
    out = {}
    for pkg, root in PACKAGES.items():
        if not root.is_dir():
            continue
        for path in root.rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__" and len(parts) > 1:
                parts = parts[:-1]
            out[".".join([pkg, *parts])] = path
    return out


def layer_of(module: str) -> str:
    pkg, _, rest = module.partition(".")
    if pkg in STANDALONE:
        return pkg
    head = rest.split(".")[0] if rest else "__init__"
    if head in ("cli", "tui"):
        return "front"
    if head in LAYERS:
        return head
    return TOP_LEVEL[head]


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's own modules that `module` imports (relative or absolute, anywhere in it)."""
    is_pkg = path.name == "__init__.py"
    package = module if is_pkg else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(candidate if candidate in modules else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in modules and m != module}


def graph() -> dict[str, set[str]]:
    modules = module_files()
    return {m: imports_of(m, p, modules) for m, p in modules.items()}


def test_every_module_has_a_layer():
    for module in module_files():
        assert layer_of(module)  # KeyError names a top-level module missing from TOP_LEVEL


def test_no_import_reaches_up_a_layer():
    upward = []
    for module, targets in graph().items():
        for target in targets:
            mine, theirs = layer_of(module), layer_of(target)
            if mine in STANDALONE:
                if mine != theirs:
                    upward.append(f"{module} ({mine}) -> {target} ({theirs}): the app-side package stands alone")
                continue
            if theirs in STANDALONE:
                continue  # it imports nothing of cacheops: any layer may read its key names
            if LAYERS.index(theirs) > LAYERS.index(mine):
                upward.append(f"{module} ({mine}) -> {target} ({theirs})")
    assert not upward, "imports that reach up a layer:\n" + "\n".join(sorted(upward))


def test_no_import_circle():
    edges = graph()
    # A package's __init__ importing its own submodules is how it exports them, not a circle.
    edges = {m: {t for t in ts if not (m.endswith(".__init__") or t.startswith(m + "."))} for m, ts in edges.items()}
    state: dict[str, int] = {}
    circles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                circles.append(" -> ".join(stack[stack.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not circles, "import circles:\n" + "\n".join(circles)


@pytest.mark.parametrize("rule", ["upward", "circle"])
def test_the_layer_test_catches_a_bad_import(tmp_path, monkeypatch, rule):
    """The rule bites: a fake package with one bad import fails the checks above."""
    root = tmp_path / "cacheops"
    for sub in ("server", "ops"):
        (root / sub).mkdir(parents=True)
        (root / sub / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    if rule == "upward":
        (root / "server" / "low.py").write_text("from ..ops import high\n")
        (root / "ops" / "high.py").write_text("")
        check = test_no_import_reaches_up_a_layer
    else:
        (root / "ops" / "a.py").write_text("from . import b\n")
        (root / "ops" / "b.py").write_text("from .a import thing\n")
        check = test_no_import_circle
    monkeypatch.setitem(PACKAGES, "cacheops", root)
    monkeypatch.setitem(PACKAGES, "cacheops_track", tmp_path / "absent")
    with pytest.raises(AssertionError):
        check()


def test_no_layout_id_outside_layouts():
    """Format knowledge stays in layouts/: no other module names a layout by its id (it asks the
    layout's interface instead: SemanticLayout, warm_type, ...). The cacheops layout's id is also the
    program's name, so it is not checked."""
    from cacheops.layouts import BY_ID

    ids = {layout_id for layout_id in BY_ID if layout_id != "cacheops"}
    found = []
    for module, path in module_files().items():
        if module.startswith("cacheops.layouts") or not module.startswith("cacheops"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in ids:
                found.append(f"{path.name}:{node.lineno}: {node.value!r}")
    assert not found, "layout ids outside layouts/:\n" + "\n".join(found)


# cacheops/__init__.py's public names before the code moved into layers (commit 1024510): the move kept them.
PUBLIC_BEFORE_THE_LAYERS = [
    "CacheopsError",
    "Entry",
    "EntryFilter",
    "LAYOUTS",
    "Layout",
    "PromptQuery",
    "Selection",
    "UnknownKey",
    "build_catalog",
    "build_context",
    "connect",
    "connect_url",
    "execute_eviction",
    "find_by_prompt",
    "iter_entries",
    "load_playbook",
    "plan_eviction",
    "read_entry",
    "redact_url",
    "resolve_spec",
    "restore",
    "warm_caches",
]


def test_the_public_names_stayed():
    import cacheops

    assert set(PUBLIC_BEFORE_THE_LAYERS) <= set(cacheops.__all__)
    for name in PUBLIC_BEFORE_THE_LAYERS:
        assert getattr(cacheops, name) is not None, name
