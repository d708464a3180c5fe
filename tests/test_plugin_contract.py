"""The plugin author's contract, through real installed distributions.

Each test lays out one or more installed distributions (a module and its
``dist-info`` with entry points) on ``PYTHONPATH`` and runs Python in a
subprocess, as a user's process would find them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import ClassVar

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.vec_env import DummyVecEnv

import rewardnets
from rewardnets import hookimpl, registry
from rewardnets.errors import PluginError
from rewardnets.testing import (
    ConformanceError,
    check_norm_layer,
    check_potential,
    check_query_selector,
    check_reward_net,
    check_reward_type,
    check_teacher,
)

ROOT = Path(__file__).resolve().parent.parent


def install(root: Path, dist: str, module: str, source: str, ep_name: str | None = None) -> None:
    """Lay out an installed distribution ``dist`` whose plugin is ``module``."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-2.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 2.0.0\n")
    (info / "entry_points.txt").write_text(f"[rewardnets]\n{ep_name or module} = {module}\n")


def run(root: Path, code: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(root), **env}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=300,
        cwd=root,
    )


IMPOSTOR = """
import torch
from rewardnets import RewardNet, hookimpl


class BasicRewardNet(RewardNet):
    def forward(self, state, action, next_state, done):
        return torch.zeros(len(state))


@hookimpl
def register_reward_nets(register):
    register("BasicRewardNet", BasicRewardNet)
"""


def readme_first_example() -> str:
    text = (ROOT / "README.md").read_text()
    return text.split("```python\n", 1)[1].split("```", 1)[0]


# ------------------------------------------------------------------ 1: clashes
def test_a_third_party_claiming_a_builtin_name_breaks_nothing(tmp_path: Path) -> None:
    install(tmp_path, "impostor-dist", "impostor_plugin", IMPOSTOR)
    code = (
        "import warnings\n"
        "warnings.simplefilter('always')\n"
        + readme_first_example()
        + textwrap.dedent(
            """
            import rewardnets
            from rewardnets_plugins.mlp import BasicRewardNet as Builtin
            assert rewardnets.BasicRewardNet is Builtin is BasicRewardNet
            assert rewardnets.registry.get("reward_net", "BasicRewardNet") is Builtin
            built = rewardnets.build_reward_net("BasicRewardNet", net.observation_space,
                                                net.action_space)
            assert type(built) is Builtin
            print("ok")
            """
        )
    )
    result = run(tmp_path, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    clashes = [line for line in result.stderr.splitlines() if "PluginClashWarning" in line]
    assert len(clashes) == 1, result.stderr
    assert "impostor-dist" in clashes[0] and "rewardnets" in clashes[0]


def test_the_pipeline_runs_with_an_impostor_installed(tmp_path: Path) -> None:
    install(tmp_path, "impostor-dist", "impostor_plugin", IMPOSTOR)
    code = """
        import sys
        from rewardnets.cli import main
        sys.argv = ["rewardnets", *sys.argv[1:]]
        main()
        """
    result = run(
        tmp_path,
        code,
        "pipeline",
        "--comparisons",
        "8",
        "--rounds",
        "2",
        "--fragments",
        "30",
        "--train-steps",
        "5",
        "--agent-steps",
        "100",
        "--ensemble",
        "2",
        "--timesteps",
        "200",
        "--eval-episodes",
        "1",
        "--sequential",
        "--no-progress",
        "--out",
        str(tmp_path / "run"),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "run" / "summary.json").exists()
    assert result.stderr.count("impostor-dist") == 1


def test_the_user_picks_a_provider_per_name(tmp_path: Path) -> None:
    install(tmp_path, "impostor-dist", "impostor_plugin", IMPOSTOR)
    code = """
        import rewardnets
        picked = rewardnets.registry.get("reward_net", "BasicRewardNet")
        print(picked.__module__, rewardnets.BasicRewardNet.__module__)
        """
    result = run(tmp_path, code, REWARDNETS_PREFER="BasicRewardNet=impostor-dist")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["impostor_plugin", "rewardnets_plugins.mlp"]


# ------------------------------------------------------------------ 2: saving without mixins
PLAIN_PARTS = """
import torch
from torch import nn
from rewardnets import BaseNorm, hookimpl


class OffsetPotential(nn.Module):
    def __init__(self, obs_space, offset=0.5, width=4):
        super().__init__()
        self.offset = offset
        self.linear = nn.Linear(obs_space.shape[0], width)

    def forward(self, state):
        return self.linear(state).sum(dim=1) + self.offset


class HalfNorm(BaseNorm):
    def update_stats(self, batch):
        batch = batch.reshape(-1, self.num_features)
        self.running_mean.copy_(0.5 * batch.mean(dim=0))
        self.count += len(batch)


@hookimpl
def register_potentials(register):
    register("plain/Offset", OffsetPotential)


@hookimpl
def register_norm_layers(register):
    register("plain/HalfNorm", HalfNorm)
"""


def test_plugin_classes_save_without_a_mixin(tmp_path: Path) -> None:
    install(tmp_path, "plain-dist", "plain_plugin", PLAIN_PARTS)
    code = """
        import numpy as np
        import rewardnets
        from gymnasium import spaces
        from plain_plugin import HalfNorm, OffsetPotential

        obs, act = spaces.Box(-1.0, 1.0, (3,)), spaces.Discrete(2)
        base = rewardnets.BasicRewardNet(obs, act, hid_sizes=(4,))
        shaped = rewardnets.ShapedRewardNet(base, OffsetPotential(obs, offset=2.0), 0.9)
        net = rewardnets.NormalizedRewardNet(shaped, HalfNorm)
        batch = (np.ones((5, 3)), np.array([0, 1, 0, 1, 0]), np.zeros((5, 3)), np.zeros(5))
        net.predict_processed(*batch)
        rewardnets.save(net, "net.rn")
        again = rewardnets.load("net.rn")
        assert again.base.potential.offset == 2.0
        spec = net.spec
        print(spec["wrappers"][0]["kwargs"]["potential"], spec["wrappers"][1]["kwargs"])
        assert np.allclose(again.predict_processed(*batch, update_stats=False),
                           net.predict_processed(*batch, update_stats=False))
        """
    result = run(tmp_path, code)
    assert result.returncode == 0, result.stderr
    assert "{'name': 'plain/Offset', 'kwargs': {'offset': 2.0, 'width': 4}}" in result.stdout
    assert "'normalize_output_layer': 'plain/HalfNorm'" in result.stdout


class Unregistered(torch.nn.Module):
    """A potential that no plugin registers."""

    def __init__(self, space: spaces.Space) -> None:
        super().__init__()

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return state.sum(dim=1)


def test_an_unregistered_class_says_how_to_make_it_saveable() -> None:
    obs = spaces.Box(-1.0, 1.0, (3,))
    base = rewardnets.BasicRewardNet(obs, spaces.Discrete(2))
    shaped = rewardnets.ShapedRewardNet(base, Unregistered(obs))
    with pytest.raises(rewardnets.SpecError, match="Register its class through a plugin"):
        shaped.spec  # noqa: B018


# ------------------------------------------------------------------ 4: reward types alike
PLUGIN_TYPE = """
import numpy as np
from rewardnets import hookimpl
from rewardnets.serialize import NetRewardFn, load_reward_net


def load_scaled(reward_path, venv, scale=1.0, **load_options):
    net = load_reward_net(reward_path, venv, **load_options)
    fn = NetRewardFn(net)
    return lambda *batch: scale * fn(*batch)


@hookimpl
def register_reward_types(register):
    register("typed/scaled", load_scaled)
"""


def test_a_plugin_reward_type_checks_spaces_and_freezes_statistics(tmp_path: Path) -> None:
    install(tmp_path, "typed-dist", "typed_plugin", PLUGIN_TYPE)
    code = """
        import gymnasium as gym
        import rewardnets
        from stable_baselines3.common.vec_env import DummyVecEnv
        from rewardnets.testing import check_reward_type

        venv = DummyVecEnv([lambda: gym.make("CartPole-v1")] * 2)
        net = rewardnets.NormalizedRewardNet(
            rewardnets.BasicRewardNet(venv.observation_space, venv.action_space))
        report = check_reward_type("typed/scaled", net, venv, scale=2.0)
        print(len(report.passed), report.skipped)
        """
    result = run(tmp_path, code)
    assert result.returncode == 0, result.stderr
    passed, skipped = result.stdout.split(" ", 1)
    assert int(passed) == 4 and "reward_net" in skipped


def test_train_policy_passes_reward_options(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from rewardnets.cli import cli

    venv = DummyVecEnv([lambda: gym.make("CartPole-v1")])
    net = rewardnets.NormalizedRewardNet(
        rewardnets.BasicRewardNet(venv.observation_space, venv.action_space)
    )
    rewardnets.save(net, tmp_path / "net.rn")
    args = ["train-policy", "--env", "CartPole-v1", "--reward-path", str(tmp_path / "net.rn")]
    args += ["--timesteps", "64", "--eval-episodes", "1", "--no-progress"]
    args += ["--out", str(tmp_path / "policy")]
    bad = CliRunner().invoke(cli, [*args, "--reward-kwargs", "update_stat=true"])
    assert bad.exit_code != 0
    assert "unexpected options ['update_stat']" in bad.output
    good = CliRunner().invoke(cli, [*args, "--reward-kwargs", "update_stats=true"])
    assert good.exit_code == 0, good.output


# ------------------------------------------------------------------ 5: honest status
BROKEN_HOOK = """
from rewardnets import hookimpl


@hookimpl
def register_wrappers(register):
    raise RuntimeError("the hook itself is broken")
"""
WRONG_KIND = """
from rewardnets import hookimpl


def not_a_class(*args):
    return None


@hookimpl
def register_reward_nets(register):
    register("wrongkind/Net", not_a_class)
"""
MISSPELT = """
from rewardnets import hookimpl


@hookimpl
def register_reward_net(register):
    pass
"""


def test_broken_plugins_say_what_failed_where(tmp_path: Path) -> None:
    install(tmp_path, "hook-dist", "hook_plugin", BROKEN_HOOK)
    install(tmp_path, "wrongkind-dist", "wrongkind_plugin", WRONG_KIND)
    install(tmp_path, "misspelt-dist", "misspelt_plugin", MISSPELT)
    install(tmp_path, "exiting-dist", "exiting_plugin", "import sys\nsys.exit(3)\n")
    code = """
        import json, warnings
        warnings.simplefilter("ignore")
        import rewardnets
        print(json.dumps({p.name: p.to_dict() for p in rewardnets.registry.plugins()}))
        """
    result = run(tmp_path, code)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["hook_plugin"]["status"] == "broken"
    assert info["hook_plugin"]["failed_in"] == "register_wrappers"
    assert "the hook itself is broken" in info["hook_plugin"]["error"]
    wrong = info["wrongkind_plugin"]
    assert wrong["status"] == "broken" and "subclass of rewardnets.RewardNet" in wrong["error"]
    assert "wrongkind_plugin" in wrong["error"] and "a function" in wrong["error"]
    assert "Did you mean 'register_reward_nets'" in info["misspelt_plugin"]["error"]
    assert info["mlp"]["status"] == "loaded"
    assert info["exiting_plugin"]["status"] == "broken"
    assert "SystemExit: 3" in info["exiting_plugin"]["error"]

    cli = "import sys; from rewardnets.cli import main; sys.argv = ['rewardnets', *sys.argv[1:]]; main()"
    verbose = run(tmp_path, cli, "plugins", "--verbose")
    assert verbose.returncode == 0, verbose.stderr
    assert "Traceback (most recent call last)" in verbose.stdout
    assert "error in register_wrappers" in verbose.stdout


def test_register_checks_kinds_from_code() -> None:
    class Bad:
        @staticmethod
        @hookimpl
        def register_wrappers(register):
            register("bad/Wrapper", rewardnets.BasicRewardNet)

    with pytest.raises(PluginError, match=r"'bad-kind'.*subclass of rewardnets\.RewardNetWrapper"):
        registry.register_plugin(Bad, name="bad-kind")
    assert "bad-kind" not in {p.name for p in registry.plugins()}

    class BadAlias:
        @staticmethod
        @hookimpl
        def register_norm_layers(register):
            register("bad/Norm", rewardnets.RunningNorm, aliases=(3,))

    with pytest.raises(PluginError, match="expected a tuple of non-empty strings"):
        registry.register_plugin(BadAlias, name="bad-alias")

    class BadRefsNet(rewardnets.BasicRewardNet):
        config_refs: ClassVar[dict[str, str]] = {"activation": "class"}

    class BadRefs:
        @staticmethod
        @hookimpl
        def register_reward_nets(register):
            register("bad/RefsNet", BadRefsNet)

    with pytest.raises(PluginError, match=r"config_refs say \{'activation': 'class'\}"):
        registry.register_plugin(BadRefs, name="bad-refs")


def test_a_file_needing_a_disabled_or_broken_plugin_says_so(tmp_path: Path) -> None:
    install(tmp_path, "plain-dist", "plain_plugin", PLAIN_PARTS)
    save = """
        import rewardnets
        from gymnasium import spaces
        obs, act = spaces.Box(-1.0, 1.0, (3,)), spaces.Discrete(2)
        net = rewardnets.build_reward_net(
            ["BasicRewardNet", {"ShapedRewardNet": {"potential": "plain/Offset"}}], obs, act)
        rewardnets.save(net, "net.rn")
        """
    assert run(tmp_path, save).returncode == 0
    load = """
        import warnings
        warnings.simplefilter("ignore")
        import rewardnets
        try:
            rewardnets.load("net.rn")
        except rewardnets.serialize.MissingPluginError as exc:
            print(exc)
        """
    disabled = run(tmp_path, load, REWARDNETS_DISABLE_PLUGINS="plain-dist")
    assert disabled.returncode == 0, disabled.stderr
    assert "installed but disabled" in disabled.stdout and "pip install" not in disabled.stdout
    (tmp_path / "plain_plugin.py").write_text("raise ImportError('plain is broken')\n")
    broken = run(tmp_path, load)
    assert "installed but broken" in broken.stdout and "plain is broken" in broken.stdout
    (tmp_path / "plain_plugin.py").unlink()
    for info in tmp_path.glob("plain_dist-*.dist-info"):
        for child in info.iterdir():
            child.unlink()
        info.rmdir()
    missing = run(tmp_path, load)
    assert "not installed; pip install plain-dist" in missing.stdout


def test_unmatched_plugin_switches_are_warned_about(tmp_path: Path) -> None:
    code = "import rewardnets; rewardnets.registry.names('reward_net')"
    result = run(tmp_path, code, REWARDNETS_DISABLE_PLUGINS="no-such-plugin")
    assert result.returncode == 0, result.stderr
    assert "REWARDNETS_DISABLE_PLUGINS names 'no-such-plugin'" in result.stderr


# ------------------------------------------------------------------ 6: JSON text
def test_build_reward_net_reads_json_text() -> None:
    obs, act = spaces.Box(-1.0, 1.0, (3,)), spaces.Discrete(2)
    text = '{"net": "BasicRewardNet", "kwargs": {"hid_sizes": [5]}, "wrappers": ["NormalizedRewardNet"]}'
    net = rewardnets.build_reward_net(text, obs, act)
    assert type(net).__name__ == "NormalizedRewardNet"
    assert net.base.mlp.dense0.out_features == 5
    listed = rewardnets.build_reward_net('["BasicRewardNet", "NormalizedRewardNet"]', obs, act)
    assert type(listed).__name__ == "NormalizedRewardNet"
    with pytest.raises(rewardnets.SpecError, match="not valid JSON"):
        rewardnets.build_reward_net('{"net": ', obs, act)


# ------------------------------------------------------------------ 7: checkers
def test_checkers_pass_the_builtins_and_report_what_they_checked() -> None:
    venv = DummyVecEnv([lambda: gym.make("CartPole-v1")] * 2)
    obs, act = venv.observation_space, venv.action_space
    report = check_reward_net(rewardnets.BasicShapedRewardNet(obs, act))
    assert "save and load keep the predictions" in report.passed
    assert "BasicShapedRewardNet: " in str(report)
    assert check_potential(rewardnets.BasicPotentialMLP, obs, hid_sizes=(4,)).passed
    for layer in (rewardnets.RunningNorm, rewardnets.EMANorm):
        assert "update_stats changes the statistics" in check_norm_layer(layer).passed
    identity = check_norm_layer(torch.nn.Identity)
    assert any("keeps none" in s for s in identity.skipped)
    normalized = rewardnets.NormalizedRewardNet(rewardnets.BasicRewardNet(obs, act))
    for reward_type in ("RewardNet_normalized", "RewardNet_unnormalized", "RewardNet_unshaped"):
        assert (
            "it refuses a net saved for other spaces"
            in check_reward_type(reward_type, normalized, venv).passed
        )
    for selector in registry.names("query_selector"):
        assert "it picks 5 distinct candidates" in check_query_selector(selector).passed
    for teacher in registry.names("teacher"):
        assert "swapping the fragments mirrors the labels" in check_teacher(teacher).passed
    assert check_teacher("perfect", temperature=1.0, noise=0.2).passed


def test_checkers_catch_broken_contributions() -> None:
    obs = spaces.Box(-1.0, 1.0, (3,))

    class WrongShapePotential(torch.nn.Module):
        def __init__(self, space: spaces.Space) -> None:
            super().__init__()

        def forward(self, state: torch.Tensor) -> torch.Tensor:
            return state  # (batch, 3), not (batch,)

    with pytest.raises(ConformanceError, match=r"floating-point \(batch,\) tensor"):
        check_potential(WrongShapePotential, obs)

    class LeakyNorm(rewardnets.BaseNorm):
        def update_stats(self, batch: torch.Tensor) -> None:
            pass

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.running_mean += 1  # changes its statistics even in eval mode
            return x

    with pytest.raises(ConformanceError, match="eval mode changes no buffer"):
        check_norm_layer(LeakyNorm)

    venv = DummyVecEnv([lambda: gym.make("CartPole-v1")] * 2)
    plain = rewardnets.BasicRewardNet(venv.observation_space, venv.action_space)
    with pytest.raises(ConformanceError, match="refuses a net saved for other spaces"):
        check_reward_type("zero", plain, venv)

    def first_ones(pairs, member_returns, n_queries, rng):
        return np.arange(n_queries) % 4  # repeats a candidate once asked for more than 4

    with pytest.raises(ConformanceError, match="it picks 5 distinct candidates"):
        check_query_selector(first_ones)

    def unseeded(pairs, member_returns, n_queries, rng):
        return np.random.default_rng().choice(len(pairs), n_queries, replace=False)

    with pytest.raises(ConformanceError, match="same generator state gives the same choice"):
        check_query_selector(unseeded)

    def favours_the_first(**options):
        return lambda r1, r2, rng: np.full(len(r1), 0.9, dtype=np.float32)

    with pytest.raises(ConformanceError, match="swapping the fragments mirrors the labels"):
        check_teacher(favours_the_first)

    def contrarian(**options):
        return lambda r1, r2, rng: (r1.sum(1) < r2.sum(1)).astype(np.float32)

    with pytest.raises(ConformanceError, match="prefers the clearly better fragment"):
        check_teacher(contrarian)

    def returns_ints(**options):
        return lambda r1, r2, rng: (r1.sum(1) > r2.sum(1)).astype(int)

    with pytest.raises(ConformanceError, match="one float label in"):
        check_teacher(returns_ints)

    class NotCallable:
        @staticmethod
        @hookimpl
        def register_teachers(register):
            register("bad/teacher", 3)

    with pytest.raises(PluginError, match=r"not a valid teacher: expected a factory"):
        registry.register_plugin(NotCallable, name="bad-teacher")


# ------------------------------------------------------------ 7b: learning plugins
LEARNING_PLUGIN = '''
import numpy as np
from rewardnets import hookimpl


def newest_first(pairs, member_returns, n_queries, rng):
    """Ask about the candidates with the largest fragment indices."""
    return np.argsort(-pairs.max(axis=1), kind="stable")[:n_queries]


class Optimist:
    def __init__(self, bonus=0.0):
        self.bonus = bonus

    def __call__(self, rewards_1, rewards_2, rng):
        diff = rewards_1.sum(1) - rewards_2.sum(1)
        diff = diff + np.where(diff == 0, 0.0, self.bonus * np.sign(diff))
        return np.where(diff > 0, 1.0, np.where(diff < 0, 0.0, 0.5)).astype(np.float32)


@hookimpl
def register_query_selectors(register):
    register("lab/newest", newest_first)


@hookimpl
def register_teachers(register):
    register("lab/optimist", Optimist)
'''


def test_a_plugin_contributes_a_selector_and_a_teacher(tmp_path: Path) -> None:
    install(tmp_path, "lab-learning", "lab_learning", LEARNING_PLUGIN)
    code = """
        from rewardnets.cli import cli
        from rewardnets.testing import check_query_selector, check_teacher
        check_query_selector("lab/newest")
        check_teacher("lab/optimist", bonus=0.5)
        cli(["learn", "--selector", "lab/newest", "--teacher", "lab/optimist",
              "--teacher-option", "bonus=0.5", "--labels", "4", "--rounds", "2",
              "--fragments", "8", "--fragment-length", "3", "--train-steps", "2",
              "--agent-steps", "0", "--ensemble", "2", "--out", "out", "--no-progress"],
             standalone_mode=False)
        """
    result = run(tmp_path, code)
    assert result.returncode == 0, result.stderr
    assert "lab/newest, lab/optimist teacher" in result.stdout
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["selector"] == "lab/newest" and metrics["teacher"] == "lab/optimist"
    listed = run(tmp_path, "from rewardnets.cli import cli; cli(['plugins'])")
    assert "query selectors: lab/newest" in listed.stdout
    assert "teachers: lab/optimist" in listed.stdout


# ------------------------------------------------------------------ 8: commands
COMMANDS = """
import click
from rewardnets import hookimpl


@click.command()
def greet():
    '''Say hello from a plugin.'''
    click.echo("hello from lab")


@click.command()
def plugins():
    '''Tries to replace a built-in command.'''


@hookimpl
def register_commands(register):
    register("lab-greet", greet)
    register("plugins", plugins)
"""


def test_a_plugin_adds_cli_commands(tmp_path: Path) -> None:
    install(tmp_path, "lab-dist", "lab_commands", COMMANDS)
    cli = "import sys; from rewardnets.cli import main; sys.argv = ['rewardnets', *sys.argv[1:]]; main()"
    helped = run(tmp_path, cli, "--help")
    assert helped.returncode == 0, helped.stderr
    assert "lab-greet" in helped.stdout and "Say hello from a plugin." in helped.stdout
    assert "'plugins', which is a built-in command" in helped.stderr
    greeted = run(tmp_path, cli, "lab-greet")
    assert greeted.stdout.strip() == "hello from lab"
    listed = run(tmp_path, cli, "plugins")
    assert "lab_commands" in listed.stdout  # the built-in command ran


# ------------------------------------------------------------------ re-entrant discovery
REENTRANT = """
from rewardnets import BasicRewardNet, hookimpl


class BiggerNet(BasicRewardNet):
    pass


@hookimpl
def register_reward_nets(register):
    register("re/BiggerNet", BiggerNet)
"""


def test_a_plugin_may_import_the_public_api_while_it_loads(tmp_path: Path) -> None:
    install(tmp_path, "aaa-reentrant", "reentrant_plugin", REENTRANT)
    install(tmp_path, "zzz-good", "good_plugin", PLUGIN_TYPE)
    code = """
        import warnings
        warnings.simplefilter("error")
        import rewardnets
        status = {p.name: p.status for p in rewardnets.registry.plugins()}
        assert all(s == "loaded" for s in status.values()), status
        assert len(status) == len(set(status))
        print(rewardnets.registry.get("reward_net", "re/BiggerNet").__name__)
        """
    result = run(tmp_path, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "BiggerNet"
