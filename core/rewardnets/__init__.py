"""rewardnets: reward networks for reward learning, with a plugin registry.

The core classes live here; the built-in nets and wrappers are plugins, found
through the ``rewardnets`` entry-point group on first use, and still reachable
as attributes of this package (``rewardnets.BasicRewardNet``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rewardnets.errors import (
    PluginConflictError,
    PluginError,
    RewardNetsError,
    UnknownNameError,
)
from rewardnets.framework.build import build_reward_net
from rewardnets.framework.networks import BaseNorm, EMANorm, RunningNorm, build_cnn, build_mlp
from rewardnets.framework.reward_net import (
    ForwardWrapper,
    PredictProcessedWrapper,
    RewardNet,
    RewardNetWithVariance,
    RewardNetWrapper,
)
from rewardnets.plugin_registry.configurable import Configurable, SpecError
from rewardnets.plugin_registry.hookspecs import hookimpl
from rewardnets.plugin_registry.registry import registry
from rewardnets.version import __version__ as __version__

#: Names that built-in plugins provide; resolved through the registry on access.
PLUGIN_NAMES = (
    "BasicRewardNet",
    "BasicPotentialMLP",
    "CNNRewardNet",
    "CnnRewardNet",
    "BasicPotentialCNN",
    "ShapedRewardNet",
    "BasicShapedRewardNet",
    "NormalizedRewardNet",
    "RewardEnsemble",
    "AddSTDRewardWrapper",
)

# Core names whose modules import heavy dependencies (Stable-Baselines3), loaded
# on first access so that `import rewardnets` stays fast.
_LAZY_CORE = {
    "RewardVecEnvWrapper": "rewardnets.envs.reward_wrapper",
    "RewardFnError": "rewardnets.envs.reward_wrapper",
    "InvalidRewardError": "rewardnets.envs.reward_wrapper",
    "make_vec_env": "rewardnets.envs.vec_env",
    "UnknownEnvError": "rewardnets.envs.vec_env",
    "relabel_replay_buffer": "rewardnets.envs.relabel",
    "RelabelRewardCallback": "rewardnets.envs.relabel",
    "load_reward": "rewardnets.files.reward_functions",
    "save": "rewardnets.files.serialize",
    "load": "rewardnets.files.serialize",
    "export_onnx": "rewardnets.files.onnx_export",
}  # type: dict[str, str]

if TYPE_CHECKING:  # what the lazy names are, for type checkers and IDEs
    from rewardnets.envs.relabel import RelabelRewardCallback as RelabelRewardCallback
    from rewardnets.envs.relabel import relabel_replay_buffer as relabel_replay_buffer
    from rewardnets.envs.reward_wrapper import InvalidRewardError as InvalidRewardError
    from rewardnets.envs.reward_wrapper import RewardFnError as RewardFnError
    from rewardnets.envs.reward_wrapper import RewardVecEnvWrapper as RewardVecEnvWrapper
    from rewardnets.envs.vec_env import UnknownEnvError as UnknownEnvError
    from rewardnets.envs.vec_env import make_vec_env as make_vec_env
    from rewardnets.files.onnx_export import export_onnx as export_onnx
    from rewardnets.files.reward_functions import load_reward as load_reward
    from rewardnets.files.serialize import load as load
    from rewardnets.files.serialize import save as save

__all__ = [
    "BaseNorm",
    "Configurable",
    "EMANorm",
    "ForwardWrapper",
    "PluginConflictError",
    "PluginError",
    "PredictProcessedWrapper",
    "RewardNet",
    "RewardNetWithVariance",
    "RewardNetWrapper",
    "RewardNetsError",
    "RunningNorm",
    "SpecError",
    "UnknownNameError",
    "build_cnn",
    "build_reward_net",
    "build_mlp",
    "hookimpl",
    "registry",
    *PLUGIN_NAMES,
    *_LAZY_CORE,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY_CORE:
        return getattr(importlib.import_module(_LAZY_CORE[name]), name)
    return registry.attribute("rewardnets", name, PLUGIN_NAMES)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
