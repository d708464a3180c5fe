"""The layers of ``core/rewardnets`` and the plugins' imports, checked from the source.

Every ``import`` statement counts, those inside functions too. See
``docs/architecture.md`` for the layers and what each may import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "core"
PLUGIN_DIRS = [ROOT / "plugins", ROOT / "examples" / "third_party_plugin" / "src"]

#: The layers, lowest first; a module may import its own layer and those below.
LAYERS = [
    ("rewardnets.errors", "rewardnets.version"),
    "rewardnets.plugin_registry",
    "rewardnets.framework",
    "rewardnets.files",
    "rewardnets.envs",
    "rewardnets.apps",
]

#: The public modules: the package, the seed's paths and the documented helpers.
#: They re-export the layers; plugins and applications import only these.
PUBLIC = {
    "rewardnets",
    "rewardnets.cli",
    "rewardnets.errors",
    "rewardnets.export",
    "rewardnets.hookspecs",
    "rewardnets.networks",
    "rewardnets.preprocessing",
    "rewardnets.relabel",
    "rewardnets.reward_nets",
    "rewardnets.reward_wrapper",
    "rewardnets.serialize",
    "rewardnets.testing",
    "rewardnets.util",
}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules_under(root: Path) -> dict[str, Path]:
    return {
        module_name(path, root): path
        for path in sorted(root.rglob("*.py"))
        if "build" not in path.relative_to(root).parts
    }


def imports_of(path: Path, name: str) -> set[str]:
    """The modules ``path`` (module ``name``) imports, resolved to absolute names."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


CORE_MODULES = modules_under(CORE)
PLUGIN_MODULES = {name: path for root in PLUGIN_DIRS for name, path in modules_under(root).items()}
ALL_MODULES = {**CORE_MODULES, **PLUGIN_MODULES}


def graph() -> dict[str, set[str]]:
    return {
        name: {target for target in imports_of(path, name) if target in ALL_MODULES}
        for name, path in ALL_MODULES.items()
    }


def layer_of(module: str) -> int | None:
    for index, prefixes in enumerate(LAYERS):
        for prefix in (prefixes,) if isinstance(prefixes, str) else prefixes:
            if module == prefix or module.startswith(prefix + "."):
                return index
    return None


def test_every_core_module_is_in_a_layer_or_public() -> None:
    stray = [m for m in CORE_MODULES if layer_of(m) is None and m not in PUBLIC]
    assert not stray, f"modules outside every layer: {stray}"


def test_lower_layers_never_import_higher_ones() -> None:
    wrong = []
    for module, targets in graph().items():
        own = layer_of(module)
        if own is None or not module.startswith("rewardnets"):
            continue
        for target in targets:
            if module.startswith("rewardnets.apps") and target in PUBLIC:
                continue  # the applications use the public API, as a user would
            theirs = layer_of(target)
            if theirs is None or theirs > own:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(wrong))


def test_applications_import_only_public_modules_and_each_other() -> None:
    wrong = [
        f"{module} imports {target}"
        for module, targets in graph().items()
        if module.startswith("rewardnets.apps")
        for target in targets
        if target.startswith("rewardnets")
        and target not in PUBLIC
        and not target.startswith("rewardnets.apps")
    ]
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycles() -> None:
    edges = graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("module", sorted(PLUGIN_MODULES))
def test_plugins_import_only_public_modules(module: str) -> None:
    private = sorted(
        target
        for target in imports_of(PLUGIN_MODULES[module], module)
        if target.split(".")[0] == "rewardnets"
        and target not in PUBLIC
        and target.rpartition(".")[0] not in PUBLIC  # ``from rewardnets import Name``
    )
    assert not private, f"{module} imports non-public rewardnets modules: {private}"


def test_the_checks_catch_what_they_check(tmp_path: Path) -> None:
    pkg = tmp_path / "rewardnets"
    (pkg / "framework").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "framework" / "__init__.py").write_text("")
    (pkg / "framework" / "a.py").write_text("from rewardnets.apps import cli\n")
    (pkg / "framework" / "b.py").write_text("def f():\n    from . import a\n")
    names = modules_under(tmp_path)
    assert "rewardnets.apps" in imports_of(
        names["rewardnets.framework.a"], "rewardnets.framework.a"
    )
    assert "rewardnets.framework.a" in imports_of(
        names["rewardnets.framework.b"], "rewardnets.framework.b"
    )
    assert layer_of("rewardnets.apps.cli") == 5 and layer_of("rewardnets.framework.a") == 2
