"""Relabelling Parquet datasets with the local engine: ``relabel_dataset`` and ``rewardnets relabel``."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner
from gymnasium import spaces

from rewardnets.cli import cli
from rewardnets.networks import RunningNorm
from rewardnets.relabel import Columns, DatasetError, arrays_from_table, relabel_dataset
from rewardnets.reward_nets import BasicRewardNet, NormalizedRewardNet
from rewardnets.serialize import UnsafePickleError, load_reward, save


def _spaces_of(transitions: dict[str, Any]) -> types.SimpleNamespace:
    return types.SimpleNamespace(
        observation_space=transitions["observation_space"],
        action_space=transitions["action_space"],
    )


def _normalized_net(transitions: dict[str, Any], path: Path) -> Path:
    """A NormalizedRewardNet over a net of all four inputs, its statistics fitted, saved."""
    torch.manual_seed(0)
    net = NormalizedRewardNet(
        BasicRewardNet(
            transitions["observation_space"],
            transitions["action_space"],
            use_next_state=True,
            use_done=True,
        ),
        RunningNorm,
    )
    net.predict_processed(
        transitions["obs"], transitions["acts"], transitions["next_obs"], transitions["dones"]
    )
    save(net, path)
    return path


def _table(t: dict[str, Any], start: int, stop: int) -> pa.Table:
    """Rows ``[start, stop)`` in the documented schema, with several Arrow layouts."""
    obs, acts, next_obs = t["obs"][start:stop], t["acts"][start:stop], t["next_obs"][start:stop]
    return pa.table(
        {
            "step": np.arange(start, stop),
            "observations": pa.FixedSizeListArray.from_arrays(obs.ravel(), obs.shape[1]),
            "actions": acts[:, 0],  # a one-value Box as a plain column
            "next_observations": pa.array(list(next_obs)),  # variable-size lists
            "dones": t["dones"][start:stop],
            "env_reward": np.zeros(stop - start, np.float32),
        }
    )


def _write_files(t: dict[str, Any], folder: Path, rows_per_file: int = 1000) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, start in enumerate(range(0, len(t["obs"]), rows_per_file)):
        path = folder / f"part-{index:03d}.parquet"
        pq.write_table(_table(t, start, start + rows_per_file), path, row_group_size=300)
        paths.append(path)
    return paths


def test_local_engine_gives_load_rewards_rewards_on_the_same_rows(
    pendulum_transitions: dict[str, Any], tmp_path: Path
) -> None:
    t = pendulum_transitions
    net_path = _normalized_net(t, tmp_path / "reward.rn")
    _write_files(t, tmp_path / "data")

    result = relabel_dataset(
        tmp_path / "data", net_path, tmp_path / "out", batch_size=400, progress=True
    )

    assert result.rows == 4000 and result.engine == "local"
    assert [p.name for p in result.files] == [f"part-{i:03d}.parquet" for i in range(4)]
    out = pq.read_table(tmp_path / "out")
    source = pq.read_table(tmp_path / "data")
    assert out.column_names == [*source.column_names, "learned_reward"]
    assert out.drop_columns(["learned_reward"]).equals(source)  # every column kept, in order
    got = out.column("learned_reward").to_numpy()

    # The same rows through load_reward, in the engine's batches (400, 400, 200 per file).
    fn = load_reward("RewardNet_normalized", net_path, _spaces_of(t))
    expected = np.concatenate(
        [
            fn(t["obs"][a:b], t["acts"][a:b], t["next_obs"][a:b], t["dones"][a:b])
            for file_start in range(0, 4000, 1000)
            for a, b in ((0, 400), (400, 800), (800, 1000))
            for a, b in [(file_start + a, file_start + b)]
        ]
    )
    np.testing.assert_array_equal(got, expected)
    # And close to one call over everything (batches differ only in float rounding).
    whole = fn(t["obs"], t["acts"], t["next_obs"], t["dones"])
    np.testing.assert_allclose(got, whole, rtol=1e-5, atol=1e-6)
    assert np.std(got) > 0.1  # a real reward, not a constant


def test_default_reward_type_follows_the_file(
    pendulum_transitions: dict[str, Any], tmp_path: Path
) -> None:
    t = pendulum_transitions
    normalized = _normalized_net(t, tmp_path / "normalized.rn")
    _write_files(t, tmp_path / "data", rows_per_file=4000)
    by_default = relabel_dataset(tmp_path / "data", normalized, tmp_path / "a", batch_size=4000)
    unnormalized = relabel_dataset(
        tmp_path / "data",
        normalized,
        tmp_path / "b",
        batch_size=4000,
        reward_type="RewardNet_unnormalized",
    )
    a = pq.read_table(by_default.files[0]).column("learned_reward").to_numpy()
    b = pq.read_table(unnormalized.files[0]).column("learned_reward").to_numpy()
    fn = load_reward("RewardNet_normalized", normalized, _spaces_of(t))
    np.testing.assert_array_equal(a, fn(t["obs"], t["acts"], t["next_obs"], t["dones"]))
    assert not np.allclose(a, b)

    # A net without NormalizedRewardNet: its plain reward.
    plain = BasicRewardNet(t["observation_space"], t["action_space"])
    save(plain, tmp_path / "plain.rn")
    result = relabel_dataset(tmp_path / "data", tmp_path / "plain.rn", tmp_path / "c")
    got = pq.read_table(result.files[0]).column("learned_reward").to_numpy()
    np.testing.assert_array_equal(
        got, plain.predict(t["obs"], t["acts"], t["next_obs"], t["dones"])
    )


def test_dict_observations_as_struct_or_prefixed_columns(tmp_path: Path) -> None:
    obs_space = spaces.Dict(
        {"position": spaces.Box(-1.0, 1.0, (2,)), "velocity": spaces.Box(-5.0, 5.0, (1,))}
    )
    act_space = spaces.Discrete(3)
    obs_space.seed(1)
    act_space.seed(1)
    net = BasicRewardNet(obs_space, act_space, use_next_state=True)
    save(net, tmp_path / "dict.rn")
    n = 300
    obs = [obs_space.sample() for _ in range(n)]
    nxt = [obs_space.sample() for _ in range(n)]
    acts = np.array([act_space.sample() for _ in range(n)])
    dones = np.arange(n) % 7 == 0
    stack = {k: np.stack([o[k] for o in obs]) for k in obs_space.spaces}
    stack_next = {k: np.stack([o[k] for o in nxt]) for k in obs_space.spaces}

    def lists(a: np.ndarray) -> pa.Array:
        return pa.FixedSizeListArray.from_arrays(a.ravel(), a.shape[1])

    struct = pa.table(
        {
            "observations": pa.StructArray.from_arrays(
                [lists(stack["position"]), lists(stack["velocity"])], ["position", "velocity"]
            ),
            "actions": acts,
            "next_observations": pa.StructArray.from_arrays(
                [lists(stack_next["velocity"]), lists(stack_next["position"])],
                ["velocity", "position"],  # field order does not matter
            ),
            "dones": dones,
        }
    )
    prefixed = pa.table(
        {
            "observations.position": lists(stack["position"]),
            "observations.velocity": stack["velocity"][:, 0],
            "actions": acts,
            "next_observations.position": lists(stack_next["position"]),
            "next_observations.velocity": lists(stack_next["velocity"]),
            "dones": dones.astype(np.int8),
        }
    )
    expected = load_reward("RewardNet_unnormalized", tmp_path / "dict.rn", net)(
        stack, acts, stack_next, dones
    )
    for name, table in (("struct", struct), ("prefixed", prefixed)):
        pq.write_table(table, tmp_path / f"{name}.parquet")
        result = relabel_dataset(
            tmp_path / f"{name}.parquet", tmp_path / "dict.rn", tmp_path / name
        )
        got = pq.read_table(result.files[0]).column("learned_reward").to_numpy()
        np.testing.assert_array_equal(got, expected, err_msg=name)


def test_columns_mapping_through_the_command_line(
    pendulum_transitions: dict[str, Any], tmp_path: Path
) -> None:
    t = pendulum_transitions
    net_path = _normalized_net(t, tmp_path / "reward.rn")
    d4rl_style = pa.table(
        {
            "obs": list(t["obs"]),
            "act": list(t["acts"]),
            "obs_next": list(t["next_obs"]),
            "terminals": t["dones"].astype(np.int64),
        }
    )
    pq.write_table(d4rl_style, tmp_path / "d4rl.parquet")
    result = CliRunner().invoke(
        cli,
        [
            "relabel",
            str(tmp_path / "d4rl.parquet"),
            "--reward-path",
            str(net_path),
            "--out",
            str(tmp_path / "out"),
            "--columns",
            "observations=obs,actions=act",
            "--columns",
            "next_observations=obs_next,dones=terminals",
            "--reward-column",
            "reward_hat",
            "--batch-size",
            "4000",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "relabelled 4000 transitions into 1 file(s)" in result.output
    got = pq.read_table(tmp_path / "out").column("reward_hat").to_numpy()
    fn = load_reward("RewardNet_normalized", net_path, _spaces_of(t))
    np.testing.assert_array_equal(got, fn(t["obs"], t["acts"], t["next_obs"], t["dones"]))

    # Without the mapping: one clear line naming the missing column and the ones there are.
    result = CliRunner().invoke(
        cli,
        [
            "relabel",
            str(tmp_path / "d4rl.parquet"),
            "--reward-path",
            str(net_path),
            "--out",
            str(tmp_path / "out2"),
            "--no-progress",
        ],
    )
    assert result.exit_code == 1
    assert "No column 'observations'" in result.output
    assert "['obs', 'act', 'obs_next', 'terminals']" in result.output
    assert "Traceback" not in result.output


def _bad(tmp_path: Path, name: str, table: pa.Table) -> Path:
    path = tmp_path / "bad" / f"{name}.parquet"
    path.parent.mkdir(exist_ok=True)
    pq.write_table(table, path)
    return path


def test_bad_input_is_refused_with_what_was_expected(
    pendulum_transitions: dict[str, Any], tmp_path: Path
) -> None:
    t = pendulum_transitions
    net_path = _normalized_net(t, tmp_path / "reward.rn")
    good = _table(t, 0, 100)
    cases: dict[str, tuple[pa.Table, str]] = {
        "too-wide": (
            good.set_column(1, "observations", pa.array(list(np.zeros((100, 4), np.float32)))),
            r"Column 'observations' has 4 values per row; the reward net expects shape \(3,\)",
        ),
        "ragged": (
            good.set_column(1, "observations", pa.array([[0.0, 1.0, 2.0]] * 99 + [[0.0, 1.0]])),
            "lists of different lengths",
        ),
        "nulls": (
            good.set_column(4, "dones", pa.array([True] * 99 + [None])),
            "Column 'dones' has null entries",
        ),
        "text": (
            good.set_column(2, "actions", pa.array(["left"] * 100)),
            "Column 'actions' holds string; expected numbers",
        ),
        "dones-not-0-1": (
            good.set_column(4, "dones", pa.array(np.full(100, 2))),
            "holds integers other than 0 and 1",
        ),
        "has-reward": (
            good.append_column("learned_reward", pa.array(np.zeros(100))),
            "already has a column 'learned_reward'",
        ),
    }
    for name, (table, message) in cases.items():
        path = _bad(tmp_path, name, table)
        with pytest.raises(DatasetError, match=message):
            relabel_dataset(path, net_path, tmp_path / "out" / name)

    data = _bad(tmp_path, "good", good)
    with pytest.raises(DatasetError, match=r"Unknown column role\(s\) \['obs'\]; the roles are"):
        relabel_dataset(data, net_path, tmp_path / "o1", columns={"obs": "x"})
    with pytest.raises(DatasetError, match=r"Unknown engine 'spark'; expected one of"):
        relabel_dataset(data, net_path, tmp_path / "o2", engine="spark")
    with pytest.raises(DatasetError, match="batch_size must be a positive int, got 0"):
        relabel_dataset(data, net_path, tmp_path / "o3", batch_size=0)
    with pytest.raises(DatasetError, match="is inside the input"):
        relabel_dataset(tmp_path / "bad", net_path, tmp_path / "bad" / "out")
    with pytest.raises(DatasetError, match=r"holds no \*.parquet file"):
        relabel_dataset(tmp_path / "out", net_path, tmp_path / "o4")
    with pytest.raises(FileNotFoundError):
        relabel_dataset(tmp_path / "missing", net_path, tmp_path / "o5")
    relabel_dataset(data, net_path, tmp_path / "o6")
    with pytest.raises(DatasetError, match="is not empty; choose a new one or pass overwrite"):
        relabel_dataset(data, net_path, tmp_path / "o6")
    assert relabel_dataset(data, net_path, tmp_path / "o6", overwrite=True).rows == 100


def test_an_unsafe_reward_file_is_refused_before_anything_is_written(
    pendulum_transitions: dict[str, Any], tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self) -> Any:
            return (os.system, (f"touch {shlex.quote(str(marker))}",))

    torch.save(Payload(), tmp_path / "evil.pt")
    data = _write_files(pendulum_transitions, tmp_path / "data")[0]
    with pytest.raises(UnsafePickleError, match="trust_pickle=True"):
        relabel_dataset(data, tmp_path / "evil.pt", tmp_path / "out")
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_arrays_from_table_reads_the_documented_schema(
    pendulum_transitions: dict[str, Any],
) -> None:
    t = pendulum_transitions
    obs, acts, next_obs, dones = arrays_from_table(
        _table(t, 10, 20).to_batches()[0], t["observation_space"], t["action_space"], Columns()
    )
    np.testing.assert_array_equal(obs, t["obs"][10:20])
    np.testing.assert_array_equal(acts, t["acts"][10:20])
    np.testing.assert_array_equal(next_obs, t["next_obs"][10:20])
    assert dones.dtype == bool and (dones == t["dones"][10:20]).all()


_MEMORY_JOB = textwrap.dedent(
    """
    import json, sys
    from rewardnets.relabel import relabel_dataset

    def kib(field):
        for line in open("/proc/self/status"):
            if line.startswith(field):
                return int(line.split()[1])

    small, data, net, out = sys.argv[1:5]
    relabel_dataset(small, net, out + "-small", batch_size=4096)  # imports, first plans
    before = kib("VmRSS:")
    result = relabel_dataset(data, net, out, batch_size=4096)
    print(json.dumps({"before": before, "peak": kib("VmHWM:"), "rows": result.rows}))
    """
)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_memory_stays_bounded_on_a_dataset_much_larger_than_it(tmp_path: Path) -> None:
    """~390 MiB of transitions once decoded; the job's peak memory grows by far less."""
    obs_space = spaces.Box(-1.0, 1.0, (64,), np.float32)
    act_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
    save(BasicRewardNet(obs_space, act_space), tmp_path / "net.rn")
    rows_per_group, groups = 25_000, 30  # 750,000 rows x (64 + 64 + 2) float32
    rng = np.random.default_rng(0)
    # Few distinct values per group, so the file on disk stays small (dictionary encoding).
    pool = rng.uniform(-1, 1, (64, 64)).astype(np.float32)
    with (
        pq.ParquetWriter(tmp_path / "big.parquet", _big_schema()) as writer,
        pq.ParquetWriter(tmp_path / "small.parquet", _big_schema()) as small,
    ):
        for g in range(groups):
            obs = pool[(np.arange(rows_per_group) + g) % 64]
            table = pa.table(
                {
                    "observations": pa.FixedSizeListArray.from_arrays(obs.ravel(), 64),
                    "actions": pa.FixedSizeListArray.from_arrays(
                        np.zeros(rows_per_group * 2, np.float32), 2
                    ),
                    "next_observations": pa.FixedSizeListArray.from_arrays(obs.ravel(), 64),
                    "dones": np.zeros(rows_per_group, bool),
                },
                schema=_big_schema(),
            )
            writer.write_table(table)
            if g == 0:
                small.write_table(table.slice(0, 1000))
    decoded_kib = rows_per_group * groups * (64 + 64 + 2) * 4 // 1024
    job = subprocess.run(
        [
            sys.executable,
            "-c",
            _MEMORY_JOB,
            str(tmp_path / "small.parquet"),
            str(tmp_path / "big.parquet"),
            str(tmp_path / "net.rn"),
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert job.returncode == 0, job.stderr[-3000:]
    report = json.loads(job.stdout.strip().splitlines()[-1])
    assert report["rows"] == rows_per_group * groups
    growth = report["peak"] - report["before"]
    assert decoded_kib > 380_000
    # A fixed 90-140 MiB of Arrow buffers and thread arenas here (it varies with the
    # machine's load), whatever the size; holding the data whole would take all of it.
    assert growth < decoded_kib / 2, (growth, decoded_kib)


def _big_schema() -> pa.Schema:
    return pa.schema(
        [
            ("observations", pa.list_(pa.float32(), 64)),
            ("actions", pa.list_(pa.float32(), 2)),
            ("next_observations", pa.list_(pa.float32(), 64)),
            ("dones", pa.bool_()),
        ]
    )


def _minari_dataset(dataset_id: str, episodes: int) -> list[dict[str, np.ndarray]]:
    """A Minari dataset (Arrow storage) of random Pendulum-v1 episodes; the episodes too."""
    import gymnasium as gym
    import minari
    from minari.data_collector.episode_buffer import EpisodeBuffer  # no jax needed

    env = gym.make("Pendulum-v1", max_episode_steps=40)
    env.action_space.seed(0)
    buffers, raw = [], []
    for episode in range(episodes):
        obs, _ = env.reset(seed=episode)
        observations, actions, rewards, terms, truncs = [obs], [], [], [], []
        while True:
            action = env.action_space.sample()
            obs, reward, term, trunc, _ = env.step(action)
            observations.append(obs)
            actions.append(action)
            rewards.append(float(reward))
            terms.append(term)
            truncs.append(trunc)
            if term or trunc:
                break
        raw.append(
            {
                "obs": np.array(observations),
                "acts": np.array(actions),
                "dones": np.array(terms) | np.array(truncs),
            }
        )
        buffers.append(
            EpisodeBuffer(
                id=episode,
                observations=np.array(observations),
                actions=np.array(actions),
                rewards=rewards,
                terminations=terms,
                truncations=truncs,
            )
        )
    minari.create_dataset_from_buffers(
        dataset_id,
        buffers,
        env=env,
        eval_env=env.spec,
        algorithm_name="random",
        author="rewardnets tests",
        author_email="tests@example.org",
        description="Random Pendulum-v1 episodes.",
        code_permalink="https://example.org/rewardnets/tests",
        data_format="arrow",
    )
    return raw


def test_minari_datasets_are_relabelled_through_minari(
    pendulum_transitions: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    episodes = _minari_dataset("test/pendulum-random-v0", episodes=5)
    net_path = _normalized_net(pendulum_transitions, tmp_path / "reward.rn")

    result = relabel_dataset(
        "minari:test/pendulum-random-v0", net_path, tmp_path / "out", batch_size=10_000
    )

    assert result.rows == 5 * 40
    out = pq.read_table(tmp_path / "out")
    assert out.column("episode_id").to_pylist() == [e for e in range(5) for _ in range(40)]
    assert out.column("step").to_pylist() == list(range(40)) * 5
    fn = load_reward("RewardNet_normalized", net_path, _spaces_of(pendulum_transitions))
    expected = np.concatenate(
        [fn(e["obs"][:-1], e["acts"], e["obs"][1:], e["dones"]) for e in episodes]
    )
    # One batch here, one call per episode there: equal up to float32 rounding.
    np.testing.assert_allclose(
        out.column("learned_reward").to_numpy(), expected, rtol=1e-5, atol=1e-6
    )
    assert out.column("dones").to_numpy().sum() == 5  # each episode's last step (truncated)
    assert not list(tmp_path.glob(".minari-*"))  # the converted copy is removed

    with pytest.raises(FileNotFoundError):
        relabel_dataset("minari:test/missing-v0", net_path, tmp_path / "out2")
