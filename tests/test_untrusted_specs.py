"""Specs from untrusted data name only registered objects and classes of the right kind.

``rewardnets.load`` rebuilds a net with ``build_reward_net(..., allow_import=False)``;
these tests call that public API directly with hostile specs.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from gymnasium import spaces

import rewardnets
import rewardnets.serialize
from rewardnets import SpecError, build_reward_net

OBS, ACT = spaces.Box(-1.0, 1.0, (3,)), spaces.Discrete(2)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            ["BasicRewardNet", "sys:exit"],
            "'sys:exit' is a builtin_function_or_method; expected a RewardNetWrapper",
        ),
        (["BasicRewardNet", "builtins:print"], "expected a RewardNetWrapper subclass"),
        ("builtins:print", "expected a RewardNet subclass"),
        (
            ["BasicRewardNet", "rewardnets_plugins.mlp:BasicRewardNet"],
            "expected a RewardNetWrapper subclass",
        ),
        (
            {"net": "RewardEnsemble", "kwargs": {"members": ["os:getcwd", "BasicRewardNet"]}},
            "expected a RewardNet subclass",
        ),
        (
            {"net": "BasicRewardNet", "kwargs": {"activation": "os:system"}},
            "expected an nn.Module class",
        ),
        (
            ["BasicRewardNet", {"ShapedRewardNet": {"potential": "subprocess:Popen"}}],
            "expected an nn.Module subclass",
        ),
        (
            ["BasicRewardNet", {"NormalizedRewardNet": {"normalize_output_layer": "os:getcwd"}}],
            "expected an nn.Module subclass",
        ),
    ],
)
def test_import_strings_of_the_wrong_kind_are_refused_before_any_call(
    config: object, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SpecError, match=expected):
        build_reward_net(config, OBS, ACT, allow_import=False)
    assert capsys.readouterr().out == ""  # builtins:print never ran


def test_lazy_attributes_are_not_imported_by_data() -> None:
    code = textwrap.dedent(
        """
        import sys
        import rewardnets
        from gymnasium import spaces
        before = {m for m in sys.modules if m.startswith("torch._dynamo") or m == "torch.onnx"}
        obs, act = spaces.Box(-1.0, 1.0, (3,)), spaces.Discrete(2)
        for ref in ("torch:_dynamo", "torch:onnx"):
            try:
                rewardnets.build_reward_net(["BasicRewardNet", ref], obs, act, allow_import=False)
            except rewardnets.SpecError as exc:
                print("refused", "defined" in str(exc) or "expected" in str(exc))
        after = {m for m in sys.modules if m.startswith("torch._dynamo") or m == "torch.onnx"}
        print(sorted(after - before))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == ["refused True", "refused True", "[]"]


def test_classes_of_the_right_kind_still_load_from_data() -> None:
    net = build_reward_net(
        [
            {"net": "BasicRewardNet", "kwargs": {"activation": "torch.nn.modules.activation:Tanh"}},
            "rewardnets_plugins.normalization:NormalizedRewardNet",
        ],
        OBS,
        ACT,
        allow_import=False,
    )
    assert type(net) is rewardnets.NormalizedRewardNet


def test_an_unresolvable_import_string_is_a_spec_error() -> None:
    config = [
        "BasicRewardNet",
        {"NormalizedRewardNet": {"normalize_output_layer": "no_such_xyz:f"}},
    ]
    with pytest.raises(SpecError, match="Cannot resolve 'no_such_xyz:f'"):
        build_reward_net(config, OBS, ACT)


def test_a_pickle_whose_wrapper_is_its_own_base_is_refused(tmp_path: Path) -> None:
    import gymnasium as gym
    import torch
    from stable_baselines3.common.vec_env import DummyVecEnv

    venv = DummyVecEnv([lambda: gym.make("CartPole-v1")])
    base = rewardnets.BasicRewardNet(venv.observation_space, venv.action_space)
    net = rewardnets.NormalizedRewardNet(base)
    net._modules["base"] = net  # a hostile file can hold exactly this
    torch.save(net, tmp_path / "cyclic.pt")
    for load in (
        lambda: rewardnets.load(tmp_path / "cyclic.pt"),
        lambda: rewardnets.load_reward("RewardNet_normalized", tmp_path / "cyclic.pt", venv),
    ):
        with pytest.raises(rewardnets.serialize.SerializationError, match="contains itself"):
            load()
