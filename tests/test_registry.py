"""The plugin registry: discovery, origins, conflicts, broken plugins, switches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from torch import nn

import rewardnets
from rewardnets import hookimpl
from rewardnets.errors import PluginConflictError, PluginError, UnknownNameError
from rewardnets.plugin_registry.registry import Registry

BUILTIN_NETS = {
    "BasicRewardNet",
    "CNNRewardNet",
    "CnnRewardNet",
    "BasicShapedRewardNet",
    "RewardEnsemble",
}
BUILTIN_WRAPPERS = {"ShapedRewardNet", "NormalizedRewardNet", "AddSTDRewardWrapper"}


class _Plugin:
    """A plugin object registering one norm layer under a given name."""

    def __init__(self, name: str, obj: object) -> None:
        self.name, self.obj = name, obj

    @hookimpl
    def register_norm_layers(self, register) -> None:
        register(self.name, self.obj)


def test_builtins_are_found_through_entry_points_with_their_distribution() -> None:
    reg = Registry()
    assert set(reg.names("reward_net")) >= BUILTIN_NETS
    assert set(reg.names("wrapper")) >= BUILTIN_WRAPPERS
    assert {"RunningNorm", "EMANorm"} <= set(reg.names("norm_layer"))
    entry = reg.entry("reward_net", "BasicRewardNet")
    assert entry.distribution == "rewardnets"
    assert entry.version == rewardnets.__version__
    assert entry.plugin == "mlp"
    assert reg.entry("reward_net", "CnnRewardNet").alias_of == "CNNRewardNet"


def test_every_contract_name_resolves_at_top_level_and_in_reward_nets() -> None:
    from rewardnets import reward_nets

    for name in rewardnets.PLUGIN_NAMES:
        obj = getattr(rewardnets, name)
        assert getattr(reward_nets, name) is obj
        assert isinstance(obj, type)
    assert rewardnets.CnnRewardNet is rewardnets.CNNRewardNet
    with pytest.raises(AttributeError, match="NoSuchNet"):
        rewardnets.NoSuchNet  # noqa: B018


def test_unknown_name_lists_close_matches() -> None:
    reg = Registry()
    with pytest.raises(UnknownNameError) as info:
        reg.get("reward_net", "BasicRewardNett")
    message = str(info.value)
    assert "Did you mean 'BasicRewardNet'" in message
    assert "Known reward nets:" in message
    assert isinstance(info.value, KeyError)


def test_namespaced_unknown_name_suggests_installing_a_package() -> None:
    # (Not acme/: another test installs the acme example plugin.)
    with pytest.raises(UnknownNameError, match="namespace 'nolab'"):
        Registry().get("wrapper", "nolab/Clipped")


def test_import_string_escape_hatch() -> None:
    reg = Registry()
    assert reg.resolve("norm_layer", "torch.nn:LayerNorm") is nn.LayerNorm
    assert reg.resolve("norm_layer", "RunningNorm") is rewardnets.RunningNorm
    with pytest.raises(AttributeError, match="NoSuchThing"):
        reg.resolve("norm_layer", "torch.nn:NoSuchThing")


def test_import_string_without_import_refuses_unimported_modules() -> None:
    with pytest.raises(ValueError, match="not imported"):
        Registry().resolve("norm_layer", "surely_not_imported_module_xyz:Thing", allow_import=False)


def test_programmatic_registration_and_removal() -> None:
    reg = Registry()
    name = reg.register_plugin(_Plugin("MyNorm", nn.LayerNorm), name="mine", distribution="my-dist")
    assert name == "mine"
    entry = reg.entry("norm_layer", "MyNorm")
    assert (entry.obj, entry.plugin, entry.distribution) == (nn.LayerNorm, "mine", "my-dist")
    reg.unregister_plugin("mine")
    with pytest.raises(UnknownNameError):
        reg.get("norm_layer", "MyNorm")


def test_programmatic_clash_names_both_plugins() -> None:
    reg = Registry()
    with pytest.raises(PluginConflictError) as info:
        reg.register_plugin(_Plugin("RunningNorm", nn.LayerNorm), name="impostor")
    assert "'normalization'" in str(info.value) and "'impostor'" in str(info.value)
    # The failed plugin left nothing behind; the original still resolves.
    assert reg.get("norm_layer", "RunningNorm") is rewardnets.RunningNorm
    assert "impostor" not in {p.name for p in reg.plugins()}


def test_invalid_hook_is_rejected_with_the_plugin_name() -> None:
    class Bad:
        @hookimpl
        def register_reward_netz(self, register):
            pass

    with pytest.raises(PluginError, match="bad-plugin"):
        Registry().register_plugin(Bad(), name="bad-plugin")


def test_discovery_happens_once_across_threads() -> None:
    reg = Registry()
    results: list[list[str]] = []

    def look() -> None:
        results.append(reg.names("reward_net"))

    threads = [threading.Thread(target=look) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and all(r == results[0] for r in results)
    assert [p.name for p in reg.plugins()].count("mlp") == 1


# --------------------------------------------------------------- installed plugins
def _fake_distribution(root: Path, dist: str, module: str, source: str, ep_name: str) -> None:
    """Lay out an installed distribution: a module and its dist-info with entry points."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[rewardnets]\n{ep_name} = {module}\n")


GOOD = """
from rewardnets import hookimpl
from torch import nn

@hookimpl
def register_norm_layers(register):
    register("GoodNorm", nn.LayerNorm)
"""
CLASH = """
from rewardnets import hookimpl
from torch import nn

@hookimpl
def register_norm_layers(register):
    register("RunningNorm", nn.LayerNorm)
"""


def _run(root: Path, code: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(root), **env}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
    )


def test_broken_plugin_is_reported_and_skipped(tmp_path: Path) -> None:
    _fake_distribution(
        tmp_path, "broken-dist", "broken_plugin", "raise ImportError('boom')", "broken"
    )
    _fake_distribution(tmp_path, "good-dist", "good_plugin", GOOD, "good")
    result = _run(
        tmp_path,
        """
        import json, warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import rewardnets
            norm = rewardnets.registry.get("norm_layer", "GoodNorm")
            net = rewardnets.BasicRewardNet
        info = {p.name: p.to_dict() for p in rewardnets.registry.plugins()}
        print(json.dumps({"broken": info["broken"], "warnings": [str(w.message) for w in caught]}))
        """,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["broken"]["status"] == "broken"
    assert data["broken"]["distribution"] == "broken-dist"
    assert "boom" in data["broken"]["error"]
    assert any("broken-dist" in w and "boom" in w for w in data["warnings"])


def test_the_builtin_wins_a_clash_and_one_warning_names_both(tmp_path: Path) -> None:
    _fake_distribution(tmp_path, "clash-dist", "clash_plugin", CLASH, "clash")
    code = """
        import json, warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import rewardnets
            layer = rewardnets.registry.get("norm_layer", "RunningNorm")
            rewardnets.registry.get("norm_layer", "RunningNorm")
            top = rewardnets.RunningNorm
        clashes = [str(w.message) for w in caught if "RunningNorm" in str(w.message)]
        print(json.dumps({"builtin": layer is top, "layer": layer.__name__, "clashes": clashes}))
        """
    result = _run(tmp_path, code)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["builtin"] and data["layer"] == "RunningNorm"
    (message,) = data["clashes"]
    assert "clash-dist" in message and "rewardnets" in message and "Using rewardnets" in message
    picked = _run(tmp_path, code, REWARDNETS_PREFER="RunningNorm=clash-dist")
    assert picked.returncode == 0, picked.stderr
    assert json.loads(picked.stdout)["layer"] == "LayerNorm"


def test_two_third_parties_claiming_a_name_is_an_error_naming_both(tmp_path: Path) -> None:
    other = CLASH.replace("RunningNorm", "SharedNorm")
    _fake_distribution(tmp_path, "first-dist", "first_plugin", other, "first")
    _fake_distribution(tmp_path, "second-dist", "second_plugin", other, "second")
    code = """
        import rewardnets
        try:
            rewardnets.registry.get("norm_layer", "SharedNorm")
        except rewardnets.PluginConflictError as exc:
            print(exc)
        """
    result = _run(tmp_path, code)
    assert result.returncode == 0, result.stderr
    assert "'first'" in result.stdout and "'second'" in result.stdout
    assert "first-dist" in result.stdout and "second-dist" in result.stdout
    assert "REWARDNETS_PREFER=SharedNorm=" in result.stdout
    picked = _run(
        tmp_path,
        """
        import rewardnets
        rewardnets.registry.prefer("SharedNorm", "second-dist")
        print(rewardnets.registry.entry("norm_layer", "SharedNorm").distribution)
        """,
    )
    assert picked.returncode == 0, picked.stderr
    assert picked.stdout.strip() == "second-dist"


def test_disabling_a_plugin_resolves_the_clash(tmp_path: Path) -> None:
    _fake_distribution(tmp_path, "clash-dist", "clash_plugin", CLASH, "clash")
    result = _run(
        tmp_path,
        """
        import rewardnets
        assert rewardnets.registry.get("norm_layer", "RunningNorm") is rewardnets.RunningNorm
        status = {p.name: p.status for p in rewardnets.registry.plugins()}
        print(status["clash"])
        """,
        REWARDNETS_DISABLE_PLUGINS="clash-dist",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "disabled"


def test_allow_list_restricts_plugins(tmp_path: Path) -> None:
    result = _run(
        tmp_path,
        """
        import rewardnets
        print(",".join(sorted(p.name for p in rewardnets.registry.plugins() if p.status == "loaded")))
        """,
        REWARDNETS_PLUGINS="mlp,shaping",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "mlp,shaping"


def test_trace_prints_registrations(tmp_path: Path) -> None:
    result = _run(
        tmp_path,
        "import rewardnets; rewardnets.registry.names('reward_net')",
        REWARDNETS_TRACE_PLUGINS="1",
    )
    assert result.returncode == 0, result.stderr
    assert "plugin 'mlp' registered reward net 'BasicRewardNet'" in result.stderr
