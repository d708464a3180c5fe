"""Shared test set-up: one torch thread, so that tests run well on 2 cores.

Also ``edit_document``, to make damaged copies of saved files of both formats.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

torch.set_num_threads(1)

#: ``edit(src, dst, document, change)``: see :func:`edit_document`.
EditDocument = Callable[[Path, Path, str, Callable[[Any], Any]], Path]


def _edit_document(src: Path, dst: Path, document: str, change: Callable[[Any], Any]) -> Path:
    """Copy a file of ``rewardnets.save`` (v1 or v2), changing one JSON document.

    ``document`` is ``"metadata"``, ``"spec"`` or ``"spaces"``; ``change`` gets
    its data and returns the new data. The file is rewritten with zipfile or
    safetensors, never with rewardnets.
    """
    if zipfile.is_zipfile(src):
        with zipfile.ZipFile(src) as archive:
            content = {name: archive.read(name) for name in archive.namelist()}
        member = f"{document}.json"
        content[member] = json.dumps(change(json.loads(content[member]))).encode()
        with zipfile.ZipFile(dst, "w") as archive:
            for name, data in content.items():
                archive.writestr(name, data)
        return dst
    with safe_open(str(src), "pt") as reader:
        metadata = dict(reader.metadata())
        tensors = {key: reader.get_tensor(key) for key in reader.keys()}  # noqa: SIM118
    metadata[document] = json.dumps(change(json.loads(metadata[document])))
    save_file(tensors, str(dst), metadata=metadata)
    return dst


@pytest.fixture
def edit_document() -> EditDocument:
    """A function that copies a saved reward net, changing one of its JSON documents."""
    return _edit_document


#: Recorded transitions: observations, actions, next observations, dones.
Transitions = dict[str, Any]


@pytest.fixture(scope="session")
def pendulum_transitions() -> Transitions:
    """4000 transitions of a random policy on Pendulum-v1 (2 envs, 50-step episodes).

    Collected from a real SB3 VecEnv; the next observation of a finished
    episode is its true last one (``info["terminal_observation"]``).
    """
    import numpy as np

    from rewardnets.util import make_vec_env

    venv = make_vec_env("Pendulum-v1", rng=np.random.default_rng(0), n_envs=2, max_episode_steps=50)
    venv.action_space.seed(0)
    obs = venv.reset()
    parts: dict[str, list[Any]] = {"obs": [], "acts": [], "next_obs": [], "dones": []}
    for _ in range(2000):
        acts = np.stack([venv.action_space.sample() for _ in range(venv.num_envs)])
        next_obs, _, dones, infos = venv.step(acts)
        assert isinstance(next_obs, np.ndarray)
        true_next = next_obs.copy()
        for i, done in enumerate(dones):
            if done:
                true_next[i] = infos[i]["terminal_observation"]
        parts["obs"].append(obs)
        parts["acts"].append(acts)
        parts["next_obs"].append(true_next)
        parts["dones"].append(dones)
        obs = next_obs
    venv.close()
    out: Transitions = {key: np.concatenate(value) for key, value in parts.items()}
    out["observation_space"] = venv.observation_space
    out["action_space"] = venv.action_space
    return out
