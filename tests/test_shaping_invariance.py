"""Potential shaping preserves optimal policies: a property test on tabular MDPs."""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardnets.reward_nets import BasicPotentialMLP, BasicRewardNet, ShapedRewardNet


def _q_values(reward: np.ndarray, trans: np.ndarray, done: np.ndarray, gamma: float) -> np.ndarray:
    """Value iteration; reward[s, a, s'], trans[s, a, s'], done[s'] marks terminal states."""
    value = np.zeros(trans.shape[0])
    for _ in range(2000):
        q = np.einsum(
            "ijk,ijk->ij", trans, reward + gamma * (1 - done)[None, None, :] * value[None, None, :]
        )
        new_value = q.max(axis=1)
        if np.max(np.abs(new_value - value)) < 1e-12:
            break
        value = new_value
    return q


def _reward_table(
    net: ShapedRewardNet | BasicRewardNet, n_s: int, n_a: int, done: np.ndarray
) -> np.ndarray:
    s, a, s2 = np.meshgrid(np.arange(n_s), np.arange(n_a), np.arange(n_s), indexing="ij")
    flat = net.predict(s.ravel(), a.ravel(), s2.ravel(), done[s2.ravel()])
    return flat.astype(np.float64).reshape(n_s, n_a, n_s)


@settings(max_examples=25, deadline=None)
@given(
    n_states=st.integers(2, 6),
    n_actions=st.integers(2, 4),
    gamma=st.floats(0.5, 0.95),
    seed=st.integers(0, 2**31 - 1),
)
def test_shaping_keeps_the_optimal_actions(
    n_states: int, n_actions: int, gamma: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    obs_space, act_space = spaces.Discrete(n_states), spaces.Discrete(n_actions)
    trans = rng.dirichlet(np.ones(n_states), size=(n_states, n_actions))
    done = (rng.random(n_states) < 0.3).astype(np.float64)
    base = BasicRewardNet(obs_space, act_space, use_next_state=True, hid_sizes=(8,)).double()
    potential = BasicPotentialMLP(obs_space, hid_sizes=(8,)).double()
    torch.nn.init.normal_(potential._potential.dense_final.bias, std=5.0)  # a large potential
    shaped = ShapedRewardNet(base, potential, discount_factor=gamma)

    q = _q_values(_reward_table(base, n_states, n_actions, done), trans, done, gamma)
    q_shaped = _q_values(_reward_table(shaped, n_states, n_actions, done), trans, done, gamma)

    with torch.no_grad():
        phi = potential(torch.eye(n_states, dtype=torch.float64)).numpy()
    # Shaping shifts every Q(s, .) by -phi(s), so the greedy actions are the same.
    np.testing.assert_allclose(q_shaped, q - phi[:, None], atol=1e-6)
    best = q.argmax(axis=1)
    best_shaped = q_shaped.argmax(axis=1)
    gap = q[np.arange(n_states), best] - q[np.arange(n_states), best_shaped]
    assert np.all(gap <= 1e-6), (best, best_shaped)
