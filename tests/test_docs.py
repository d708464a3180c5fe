"""The docs: every hook documented with its signature; every example runs."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from rewardnets import hookspecs

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [*sorted(DOCS.glob("*.md")), ROOT / "README.md"]
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _hook_signature(fn: object) -> str:
    sig = inspect.signature(fn)  # type: ignore[arg-type]
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"{fn.__name__}({params}) -> {sig.return_annotation}"  # type: ignore[attr-defined]


def test_every_hook_is_documented_with_its_exact_signature() -> None:
    guide = (DOCS / "plugins.md").read_text()
    hooks = [
        fn for name, fn in vars(hookspecs).items() if name.startswith("register_") and callable(fn)
    ]
    assert len(hooks) >= 5
    missing = [_hook_signature(fn) for fn in hooks if _hook_signature(fn) not in guide]
    assert not missing, f"hooks missing from docs/plugins.md: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_examples_in_docs_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = PYTHON_BLOCK.findall(page.read_text())
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for block in blocks:
        exec(compile(block, f"{page.name}", "exec"), namespace)


def _public_modules() -> list[str]:
    """The modules tools/gen_reference.py documents (read from its source, not run)."""
    import ast

    tree = ast.parse((ROOT / "tools" / "gen_reference.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "MODULES":
            return list(ast.literal_eval(node.value))
    raise AssertionError("tools/gen_reference.py defines no MODULES list")


PUBLIC_MODULES = _public_modules()


def test_every_public_name_is_in_the_api_reference() -> None:
    import importlib

    import rewardnets

    reference = (DOCS / "reference.md").read_text()
    missing = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        names = list(module.__all__)
        if module_name == "rewardnets.reward_nets":
            names += list(rewardnets.PLUGIN_NAMES)
        for name in names:
            obj = getattr(module, name)
            documented = f"### `{module_name}.{name}`" in reference
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and not documented:
                documented = f"::: {obj.__module__}.{obj.__qualname__}\n" in reference
            elif not documented:  # a constant or alias shown under an earlier module
                documented = (
                    re.search(rf"^### `rewardnets[\w.]*\.{name}`$", reference, re.M) is not None
                )
            if not documented:
                missing.append(f"{module_name}.{name}")
    assert not missing, f"public names missing from docs/reference.md: {missing}"


def test_every_hook_is_in_the_api_reference() -> None:
    reference = (DOCS / "reference.md").read_text()
    for name in vars(hookspecs):
        if name.startswith("register_"):
            assert f"### `rewardnets.hookspecs.{name}`" in reference, name
