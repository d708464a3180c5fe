"""Building a net and its wrapper stack from plain data."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch import nn

import rewardnets
from rewardnets import SpecError, UnknownNameError, build_reward_net
from rewardnets.reward_nets import (
    AddSTDRewardWrapper,
    BasicPotentialMLP,
    BasicRewardNet,
    NormalizedRewardNet,
    RewardEnsemble,
    ShapedRewardNet,
)
from rewardnets.testing import check_reward_net

OBS, ACT = spaces.Box(-1.0, 1.0, (4,)), spaces.Discrete(2)


def _stack(net: Any) -> list[str]:
    names = []
    while True:
        names.append(type(net).__name__)
        if not hasattr(net, "base") or not isinstance(
            net, (ShapedRewardNet, NormalizedRewardNet, AddSTDRewardWrapper)
        ):
            return names
        net = net.base


def test_a_name_builds_the_net() -> None:
    net = build_reward_net("BasicRewardNet", OBS, ACT)
    assert type(net) is BasicRewardNet and net.observation_space == OBS


def test_the_issue_example_builds_the_documented_stack() -> None:
    config = {
        "net": "BasicRewardNet",
        "kwargs": {"hid_sizes": [64, 64]},
        "wrappers": [
            {"ShapedRewardNet": {"potential": "BasicPotentialMLP"}},
            {"NormalizedRewardNet": {"normalize_output_layer": "RunningNorm"}},
        ],
    }
    net = build_reward_net(config, OBS, ACT)
    assert _stack(net) == ["NormalizedRewardNet", "ShapedRewardNet", "BasicRewardNet"]
    assert net.base.base.mlp.dense0.out_features == 64
    assert isinstance(net.base.potential, BasicPotentialMLP)
    assert isinstance(net.normalize_output_layer, rewardnets.RunningNorm)
    check_reward_net(net)


def test_list_form_and_wrapper_forms_are_equivalent() -> None:
    forms = [
        ["BasicRewardNet", "ShapedRewardNet", "NormalizedRewardNet"],
        {"net": "BasicRewardNet", "wrappers": [{"name": "ShapedRewardNet"}, "NormalizedRewardNet"]},
        [
            {"name": "BasicRewardNet", "kwargs": {}},
            {"ShapedRewardNet": {}},
            {"NormalizedRewardNet": {}},
        ],
    ]
    # ShapedRewardNet needs a potential: without one, the error says which argument.
    for form in forms:
        with pytest.raises(SpecError, match="potential"):
            build_reward_net(form, OBS, ACT)
    good = [
        [
            "BasicRewardNet",
            {"ShapedRewardNet": {"potential": "BasicPotentialMLP"}},
            "NormalizedRewardNet",
        ],
        {
            "net": {"name": "BasicRewardNet"},
            "wrappers": [
                {
                    "name": "ShapedRewardNet",
                    "kwargs": {
                        "potential": {"name": "BasicPotentialMLP", "kwargs": {"hid_sizes": [8]}}
                    },
                },
                "NormalizedRewardNet",
            ],
        },
    ]
    stacks = [_stack(build_reward_net(f, OBS, ACT)) for f in good]
    assert stacks[0] == stacks[1] == ["NormalizedRewardNet", "ShapedRewardNet", "BasicRewardNet"]


@pytest.mark.parametrize(
    "make",
    [
        lambda: BasicRewardNet(OBS, ACT, hid_sizes=(5,), activation=nn.Tanh, use_next_state=True),
        lambda: NormalizedRewardNet(
            ShapedRewardNet(
                BasicRewardNet(OBS, ACT), BasicPotentialMLP(OBS, (6,)), discount_factor=0.5
            ),
            normalize_output_layer=rewardnets.EMANorm,
        ),
        lambda: AddSTDRewardWrapper(
            RewardEnsemble(
                OBS, ACT, [BasicRewardNet(OBS, ACT), NormalizedRewardNet(BasicRewardNet(OBS, ACT))]
            ),
            default_alpha=1.5,
        ),
        lambda: rewardnets.BasicShapedRewardNet(
            OBS, ACT, reward_hid_sizes=(3,), discount_factor=0.7
        ),
        lambda: BasicRewardNet(OBS, ACT, normalize_input_layer=rewardnets.RunningNorm),
    ],
    ids=["mlp-tanh", "normalized-shaped", "ensemble-std", "basic-shaped", "input-norm"],
)
def test_spec_is_json_and_rebuilds_the_same_net(make: Any) -> None:
    net = make()
    spec = net.spec
    again = json.loads(json.dumps(spec))
    rebuilt = build_reward_net(again, OBS, ACT)
    assert rebuilt.spec == spec
    rebuilt.load_state_dict(net.state_dict())
    obs, acts = np.random.default_rng(0).uniform(-1, 1, (6, 4)), np.arange(6) % 2
    np.testing.assert_allclose(
        rebuilt.predict(obs, acts, obs, np.zeros(6)), net.predict(obs, acts, obs, np.zeros(6))
    )


def test_partial_norm_layer_with_kwargs() -> None:
    config = [
        "BasicRewardNet",
        {
            "NormalizedRewardNet": {
                "normalize_output_layer": {"name": "EMANorm", "kwargs": {"decay": 0.9}}
            }
        },
    ]
    net = build_reward_net(config, OBS, ACT)
    assert net.normalize_output_layer.decay == 0.9
    assert net.spec["wrappers"][0]["kwargs"]["normalize_output_layer"] == {
        "name": "EMANorm",
        "kwargs": {"decay": 0.9},
    }


def test_activation_by_torch_name_and_import_string() -> None:
    by_name = build_reward_net(
        {"net": "BasicRewardNet", "kwargs": {"activation": "Tanh"}}, OBS, ACT
    )
    assert isinstance(by_name.mlp.act0, nn.Tanh)
    by_path = build_reward_net(
        {"net": "BasicRewardNet", "kwargs": {"activation": "torch.nn:ELU"}}, OBS, ACT
    )
    assert isinstance(by_path.mlp.act0, nn.ELU)


def test_unknown_names_get_did_you_mean() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'BasicRewardNet'"):
        build_reward_net("BasicRewardNett", OBS, ACT)
    with pytest.raises(UnknownNameError, match="Did you mean 'NormalizedRewardNet'"):
        build_reward_net(["BasicRewardNet", "NormalisedRewardNet"], OBS, ACT)
    with pytest.raises(UnknownNameError, match="Did you mean 'RunningNorm'"):
        build_reward_net(
            ["BasicRewardNet", {"NormalizedRewardNet": {"normalize_output_layer": "RunningNrm"}}],
            OBS,
            ACT,
        )


def test_bad_wrapper_order_says_which_order_works() -> None:
    config = [
        "BasicRewardNet",
        "NormalizedRewardNet",
        {"ShapedRewardNet": {"potential": "BasicPotentialMLP"}},
    ]
    with pytest.raises(SpecError) as info:
        build_reward_net(config, OBS, ACT)
    assert "['ShapedRewardNet', 'NormalizedRewardNet']" in str(info.value)


def test_a_wrapper_named_as_the_net_is_explained() -> None:
    with pytest.raises(SpecError, match="is a wrapper"):
        build_reward_net("NormalizedRewardNet", OBS, ACT)


@pytest.mark.parametrize(
    "bad",
    [
        42,
        [],
        {"network": "BasicRewardNet"},
        {"net": "BasicRewardNet", "wrappers": "ShapedRewardNet"},
    ],
)
def test_malformed_configs_are_explained(bad: Any) -> None:
    with pytest.raises(SpecError, match="Expected"):
        build_reward_net(bad, OBS, ACT)


def test_unknown_kwarg_names_the_net() -> None:
    with pytest.raises(SpecError, match="Cannot build 'BasicRewardNet'"):
        build_reward_net({"net": "BasicRewardNet", "kwargs": {"hid_size": [3]}}, OBS, ACT)


def test_a_net_holding_an_unnameable_object_has_no_spec() -> None:
    net = BasicRewardNet(OBS, ACT, activation=lambda: nn.ReLU())
    with pytest.raises(SpecError, match="cannot name"):
        net.spec  # noqa: B018


def test_spec_of_spaces_is_not_included_and_dtype_is_kept() -> None:
    net = build_reward_net("BasicRewardNet", OBS, ACT).double()
    assert "observation_space" not in net.spec["kwargs"]
    assert net.predict_th(np.zeros((1, 4)), np.zeros(1, int)).dtype == torch.float64


def test_untrusted_data_cannot_name_a_function_to_call() -> None:
    config = {"net": "BasicRewardNet", "kwargs": {"activation": "os:getcwd"}}
    with pytest.raises(SpecError, match=r"expected an nn\.Module class"):
        build_reward_net(config, OBS, ACT, allow_import=False)
    # Trusted (a user's own config): the escape hatch stays open.
    trusted = {"net": "BasicRewardNet", "kwargs": {"activation": "torch.nn:SiLU"}}
    assert isinstance(build_reward_net(trusted, OBS, ACT, allow_import=False).mlp.act0, nn.SiLU)


def test_a_bare_activation_name_must_be_a_torch_nn_class() -> None:
    with pytest.raises(SpecError, match=r"torch\.nn class"):
        build_reward_net({"net": "BasicRewardNet", "kwargs": {"activation": "init"}}, OBS, ACT)
