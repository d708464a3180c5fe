"""`import rewardnets` must import no plugin module and scan no entry points."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )


def test_import_loads_no_plugin_and_scans_no_entry_points() -> None:
    result = _run(
        """
        import importlib.metadata, importlib_metadata

        # torch scans its own entry-point group at import; ours must not be.
        def guard(original):
            def entry_points(*args, **kwargs):
                if kwargs.get("group") == "rewardnets":
                    raise SystemExit("the rewardnets entry points were scanned")
                return original(*args, **kwargs)
            return entry_points

        importlib_metadata.entry_points = guard(importlib_metadata.entry_points)
        importlib.metadata.entry_points = guard(importlib.metadata.entry_points)

        import sys
        import rewardnets
        import rewardnets.reward_nets, rewardnets.networks

        plugin_modules = [m for m in sys.modules if m.startswith("rewardnets_plugins")]
        assert not plugin_modules, plugin_modules
        assert not rewardnets.registry.discovered
        assert "stable_baselines3" not in sys.modules
        print("clean")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "clean"


def test_first_lookup_loads_the_plugins() -> None:
    result = _run(
        """
        import sys
        import rewardnets
        net_cls = rewardnets.BasicRewardNet
        assert rewardnets.registry.discovered
        assert net_cls.__module__ == "rewardnets_plugins.mlp"
        assert "rewardnets_plugins.mlp" in sys.modules
        print("loaded")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "loaded"
