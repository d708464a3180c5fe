"""The main-job commands on tiny budgets, and their one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from rewardnets.cli import cli

TINY_LEARN = [
    *("--labels", "12", "--rounds", "2", "--fragments", "20", "--fragment-length", "5"),
    *("--train-steps", "20", "--agent-steps", "150", "--ensemble", "2"),
]


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def learned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("learn")
    result = _run("learn", "--env", "Pendulum-v1", "--out", str(out), "--no-progress", *TINY_LEARN)
    assert result.exit_code == 0, result.output
    return out


def test_learn_writes_a_safe_net_and_metrics(learned: Path) -> None:
    metrics = json.loads((learned / "metrics.json").read_text())
    assert metrics["kind"] == "learn" and len(metrics["history"]) == 2
    assert {"step", "loss", "accuracy", "labels"} <= set(metrics["history"][0])
    assert [h["labels"] for h in metrics["history"]] == [6, 12]
    assert metrics["labels"] == 12 and metrics["selector"] == "disagreement"
    inspected = _run("inspect", str(learned / "reward.rn"), "--json")
    assert inspected.exit_code == 0, inspected.output
    for name in ("NormalizedRewardNet", "AddSTDRewardWrapper", "RewardEnsemble"):
        assert name in inspected.output
    # The reward and its statistics after each round, the second from the learned policy.
    for k in (1, 2):
        round_metrics = json.loads((learned / f"round_{k}" / "metrics.json").read_text())
        assert round_metrics["labels"] == 6 * k and (learned / f"round_{k}" / "reward.rn").exists()
    assert round_metrics["fragments_from"] == "current policy"


def test_learn_with_a_noisy_myopic_teacher_and_a_config_string(tmp_path: Path) -> None:
    result = _run(
        "learn",
        "--env",
        "CartPole-v1",
        "--net",
        '{"net": "BasicRewardNet", "kwargs": {"hid_sizes": [8]}}',
        "--noise",
        "0.1",
        "--myopia",
        "0.9",
        "--selector",
        "entropy",
        "--out",
        str(tmp_path),
        "--no-progress",
        *TINY_LEARN,
        *("--agent-steps", "0"),
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "reward.rn").exists()
    assert "entropy, perfect teacher" in result.output


def test_learn_with_a_skipping_teacher_counts_skipped_labels(tmp_path: Path) -> None:
    result = _run(
        "learn",
        *("--teacher", "skip", "--teacher-option", "skip=0.5", "--schedule", "4,8"),
        *("--selector", "uniform", "--out", str(tmp_path), "--no-progress", *TINY_LEARN),
    )
    assert result.exit_code == 0, result.output
    second = json.loads((tmp_path / "round_2" / "metrics.json").read_text())
    # Half the returns are below the skip quantile: some pairs are skipped, each still a label.
    assert second["labels"] == 12 and 0 < second["skipped"] < 12


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_train_policy_on_the_learned_reward(learned: Path, tmp_path: Path, algo: str) -> None:
    kwargs = {"ppo": '{"n_steps": 64, "batch_size": 32}', "sac": '{"learning_starts": 50}'}[algo]
    result = _run(
        "train-policy",
        "--env",
        "Pendulum-v1",
        "--reward-type",
        "RewardNet_std_added",
        "--reward-path",
        str(learned / "reward.rn"),
        "--algo",
        algo,
        "--timesteps",
        "200",
        "--algo-kwargs",
        kwargs,
        "--eval-episodes",
        "1",
        "--out",
        str(tmp_path),
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["kind"] == "train-policy" and metrics["algo"] == algo
    assert -2000 < metrics["eval_return_mean"] <= 0  # Pendulum's true return over 200 steps
    assert (tmp_path / "policy.zip").exists()


def test_train_policy_on_the_true_reward_writes_tensorboard_logs(tmp_path: Path) -> None:
    result = _run(
        "train-policy",
        "--env",
        "CartPole-v1",
        "--timesteps",
        "64",
        "--algo-kwargs",
        '{"n_steps": 64, "batch_size": 32, "n_epochs": 1}',
        "--eval-episodes",
        "1",
        "--tensorboard",
        str(tmp_path / "tb"),
        "--out",
        str(tmp_path / "out"),
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    assert list((tmp_path / "tb").rglob("events.out.tfevents.*"))
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["reward"] == "true"


def test_sac_on_discrete_actions_is_refused_cleanly(tmp_path: Path) -> None:
    result = _run(
        "train-policy",
        "--env",
        "CartPole-v1",
        "--algo",
        "sac",
        "--timesteps",
        "10",
        "--out",
        str(tmp_path),
    )
    assert result.exit_code != 0
    assert "SAC needs a continuous (Box) action space" in result.output


def test_compare_a_net_with_the_true_reward(learned: Path) -> None:
    # The learned reward is an ensemble: RewardNet_std_added (alpha 0) is its mean reward.
    std_added = ("--reward-type", "RewardNet_std_added")
    result = _run(
        "compare", str(learned / "reward.rn"), "true", "--samples", "100", "--json", *std_added
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert 0.0 <= data["epic"] <= 1.0 and -1.0 <= data["pearson"] <= 1.0
    same = _run(
        "compare",
        str(learned / "reward.rn"),
        str(learned / "reward.rn"),
        "--samples",
        "100",
        "--json",
        *std_added,
    )
    assert json.loads(same.output)["epic"] == pytest.approx(0.0, abs=1e-3)


def test_plot_curves_and_heatmap(learned: Path, tmp_path: Path) -> None:
    curves = _run("plot", "curves", str(learned / "metrics.json"), "--out", str(tmp_path / "c.png"))
    assert curves.exit_code == 0, curves.output
    heat = _run(
        "plot",
        "heatmap",
        str(learned / "reward.rn"),
        "--dims",
        "0",
        "2",
        "--resolution",
        "8",
        "--reward-type",
        "RewardNet_std_added",
        "--out",
        str(tmp_path / "h.png"),
    )
    assert heat.exit_code == 0, heat.output
    for name in ("c.png", "h.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pipeline_on_a_tiny_budget(tmp_path: Path) -> None:
    result = _run(
        "pipeline",
        *TINY_LEARN,
        "--timesteps",
        "200",
        "--eval-episodes",
        "1",
        "--sequential",
        "--no-progress",
        "--out",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["returns"]) == {"learned", "true", "random"}
    assert 0.0 <= summary["epic"] <= 1.0
    assert "policy trained on the learned reward" in result.output
    assert all(Path(p).exists() for p in summary["files"].values())


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["learn", "--env", "CartPol-v1"], "Did you mean 'CartPole-v1'"),
        (["learn", "--net", "BasicRewardNett"], "Did you mean 'BasicRewardNet'"),
        (["learn", "--net", "{not json"], "not valid JSON"),
        (["learn", "--selector", "disagrement"], "Did you mean 'disagreement'"),
        (["learn", "--teacher", "perfekt"], "Did you mean 'perfect'"),
        (["learn", "--teacher-option", "noise=0.9"], "noise must be a number in [0, 0.5]"),
        (["learn", "--teacher-option", "volume=3"], "does not take the options"),
        (["learn", "--labels", "10", "--schedule", "5,6,1"], "summing to 10"),
        (["learn", "--schedule", "5,x"], "comma-separated label counts"),
        (["learn", "--ensemble", "1"], "at least 2 members"),
        (["train-policy", "--reward-path", "missing.rn"], "No such file: missing.rn"),
        (["compare", "missing.rn", "true"], "No such file"),
        (["compare", "true", "true", "--env", "Nope-v0"], "Unknown environment id"),
        (["plot", "curves", "missing.json"], "No such file"),
        (["train-policy", "--algo-kwargs", "[1]"], "must be a JSON object"),
    ],
)
def test_bad_arguments_give_a_one_line_error(args: list[str], expected: str) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0
    assert expected in result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if "Error:" in line]
    assert len(errors) == 1


def test_help_on_every_command_and_subcommand() -> None:
    for args in (
        ["learn"],
        ["train-policy"],
        ["compare"],
        ["plot"],
        ["plot", "curves"],
        ["plot", "heatmap"],
        ["pipeline"],
        ["inspect"],
    ):
        result = CliRunner().invoke(cli, [*args, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output, args
