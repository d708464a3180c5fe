"""The example third-party package, installed for real, seen everywhere by name."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "examples" / "third_party_plugin"


def _pip(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
        check=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def installed() -> Iterator[None]:
    _pip("install", "--no-deps", "--no-build-isolation", str(PACKAGE))
    try:
        yield
    finally:
        _pip("uninstall", "-y", "rewardnets-acme")


def _python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_contributions_are_registered_with_their_distribution(installed: None) -> None:
    out = _python(
        """
        import json, rewardnets
        reg = rewardnets.registry
        names = {
            "net": reg.entry("reward_net", "acme/LinearRewardNet"),
            "forward": reg.entry("wrapper", "acme/Scaled"),
            "processed": reg.entry("wrapper", "acme/Clipped"),
            "type": reg.entry("reward_type", "acme/clipped"),
        }
        print(json.dumps({k: [e.distribution, e.version, e.plugin] for k, e in names.items()}))
        """
    )
    data = json.loads(out)
    assert all(v == ["rewardnets-acme", "0.2.0", "acme"] for v in data.values()), data


def test_rewardnets_plugins_lists_it(installed: None) -> None:
    exe = Path(sys.executable).with_name("rewardnets")
    result = subprocess.run(
        [str(exe), "plugins", "--json"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    acme = next(p for p in json.loads(result.stdout)["plugins"] if p["name"] == "acme")
    assert acme["distribution"] == "rewardnets-acme" and acme["status"] == "loaded"
    assert acme["contributions"] == {
        "reward_net": ["acme/LinearRewardNet"],
        "wrapper": ["acme/Clipped", "acme/Scaled"],
        "reward_type": ["acme/clipped"],
    }


def test_config_strings_build_it_and_it_conforms(installed: None) -> None:
    out = _python(
        """
        import numpy as np
        from gymnasium import spaces
        import rewardnets
        from rewardnets.testing import check_reward_net

        obs_space, act_space = spaces.Box(-1.0, 1.0, (3,)), spaces.Discrete(2)
        config = ["acme/LinearRewardNet", {"acme/Scaled": {"scale": 3.0}}, {"acme/Clipped": {"low": -0.1, "high": 0.1}}]
        net = rewardnets.build_reward_net(config, obs_space, act_space)
        check_reward_net(net)
        check_reward_net(net.base)
        check_reward_net(net.base.base)
        obs, acts = np.random.default_rng(0).uniform(-1, 1, (50, 3)), np.arange(50) % 2
        raw = net.base.base.predict(obs, acts)
        assert np.allclose(net.predict(obs, acts), 3.0 * raw, atol=1e-6)
        processed = net.predict_processed(obs, acts)
        assert np.allclose(processed, np.clip(3.0 * raw, -0.1, 0.1), atol=1e-6)
        assert net.spec["wrappers"][0]["name"] == "acme/Scaled"
        try:
            rewardnets.build_reward_net(["acme/LinearRewardNet", "acme/Clipped", "acme/Scaled"], obs_space, act_space)
        except rewardnets.SpecError as exc:
            assert "['acme/Scaled', 'acme/Clipped']" in str(exc)
        print("ok")
        """
    )
    assert out.strip() == "ok"


def test_its_reward_type_loads_a_saved_net(installed: None, tmp_path: Path) -> None:
    out = _python(
        f"""
        import numpy as np
        import gymnasium as gym
        from stable_baselines3.common.vec_env import DummyVecEnv
        import rewardnets

        venv = DummyVecEnv([lambda: gym.make("CartPole-v1")])
        net = rewardnets.build_reward_net(
            ["acme/LinearRewardNet", {{"acme/Scaled": {{"scale": 50.0}}}}], venv.observation_space, venv.action_space
        )
        path = {str(tmp_path / "net.rn")!r}
        rewardnets.save(net, path)
        reward_fn = rewardnets.load_reward("acme/clipped", path, venv, low=-0.5, high=0.5)
        obs = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
        acts = np.arange(40) % 2
        got = reward_fn(obs, acts, obs, np.zeros(40, bool))
        assert np.allclose(got, np.clip(net.predict(obs, acts), -0.5, 0.5), atol=1e-6)
        assert got.max() <= 0.5 and got.min() >= -0.5
        print("ok")
        """
    )
    assert out.strip() == "ok"
