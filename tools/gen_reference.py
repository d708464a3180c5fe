"""Write docs/reference.md: every public name of the public modules, for mkdocstrings.

Run ``.venv/bin/python tools/gen_reference.py`` after adding a public name;
``tests/test_docs.py`` fails while one is missing.
"""

import importlib
import inspect
import sys
from pathlib import Path

import rewardnets

MODULES = [
    "rewardnets",
    "rewardnets.export",
    "rewardnets.reward_nets",
    "rewardnets.networks",
    "rewardnets.preprocessing",
    "rewardnets.serialize",
    "rewardnets.reward_wrapper",
    "rewardnets.util",
    "rewardnets.relabel",
    "rewardnets.hookspecs",
    "rewardnets.testing",
    "rewardnets.errors",
]
TITLES = {
    "rewardnets": "The package",
    "rewardnets.reward_nets": "Reward nets (`imitation.rewards.reward_nets`)",
    "rewardnets.networks": "Network blocks (`imitation.util.networks`)",
    "rewardnets.preprocessing": "Preprocessing",
    "rewardnets.serialize": "Saving and loading (`imitation.rewards.serialize`)",
    "rewardnets.reward_wrapper": "Environment wrapper (`imitation.rewards.reward_wrapper`)",
    "rewardnets.util": "Vector envs (`imitation.util.util`)",
    "rewardnets.relabel": "Relabelling",
    "rewardnets.hookspecs": "Plugin hooks",
    "rewardnets.export": "ONNX export",
    "rewardnets.testing": "Conformance checks",
    "rewardnets.errors": "Errors",
}
out = [
    "# API reference",
    "",
    "Every public name, generated from its docstring. Each module's names are",
    "those of its `__all__`; names shown under an earlier module are not repeated.",
    "",
]
seen = set()
for m in MODULES:
    mod = importlib.import_module(m)
    names = list(mod.__all__)
    if m == "rewardnets.reward_nets":
        names += [n for n in rewardnets.PLUGIN_NAMES]
    out += [f"## {TITLES[m]}", ""]
    for n in sorted(set(names), key=str.lower):
        obj = getattr(mod, n)
        real = getattr(obj, "__module__", None)
        qual = getattr(obj, "__qualname__", None)
        SPECIAL = {
            "registry": "rewardnets.plugin_registry.registry.Registry",
            "hookimpl": "rewardnets.plugin_registry.hookspecs.hookimpl",
            "hookspec": "rewardnets.plugin_registry.hookspecs.hookspec",
            "TensorTree": "rewardnets.framework.preprocessing.TensorTree",
            "RewardFn": "rewardnets.envs.reward_wrapper.RewardFn",
            "PostWrapper": "rewardnets.envs.vec_env.PostWrapper",
        }
        if n in SPECIAL:
            target = SPECIAL[n]
        elif inspect.isclass(obj) or inspect.isfunction(obj):
            target = f"{real}.{qual}"
        else:
            homes = sorted(
                name
                for name, module in sys.modules.items()
                if name.startswith("rewardnets.")
                and name not in MODULES
                and n in getattr(module, "__all__", ())
                and n in vars(module)
            )
            target = f"{homes[0]}.{n}"
        if target in seen:
            continue
        seen.add(target)
        out += [
            f"### `{m}.{n}`",
            "",
            f"::: {target}",
            "    options:",
            "      show_root_heading: false",
            "",
        ]
(Path(__file__).resolve().parent.parent / "docs" / "reference.md").write_text("\n".join(out))
print(len(seen))
