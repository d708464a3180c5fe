"""``rewardnets export PATH --onnx OUT``: a saved reward net as an ONNX graph."""

from __future__ import annotations

from pathlib import Path

import click

from rewardnets.apps.cli._common import friendly_errors

__all__ = ["export"]


@click.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--onnx",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the ONNX graph.",
)
@click.option(
    "--reward-type",
    default=None,
    help="Which reward, as load_reward names it (RewardNet_normalized, "
    "RewardNet_unnormalized, RewardNet_shaped, RewardNet_unshaped, RewardNet_std_added). "
    "Default: the net's predict_processed.",
)
@click.option("--alpha", type=float, default=None, help="For RewardNet_std_added: the std weight.")
@click.option("--opset", type=int, default=18, show_default=True, help="ONNX opset.")
@click.option(
    "--trust-pickle",
    is_flag=True,
    help="For torch.save files: unpickle without restrictions (only for files you trust).",
)
@friendly_errors
def export(
    path: Path,
    out: Path,
    reward_type: str | None,
    alpha: float | None,
    opset: int,
    trust_pickle: bool,
) -> None:
    """Export the reward net saved at PATH as an ONNX graph of raw transitions.

    The graph takes the raw observation, action, next observation and done
    arrays (each Dict key its own input), with any batch size, and returns the
    reward with preprocessing, shaping and normalisation (statistics frozen)
    included. Needs the export extra: pip install 'rewardnets[export]'.
    """
    from rewardnets.export import describe_inputs, export_onnx
    from rewardnets.serialize import load

    net = load(path, trust_pickle=trust_pickle)
    export_onnx(net, out, reward_type=reward_type, alpha=alpha, opset=opset)
    click.echo(f"wrote {out}")
    for name, (shape, dtype) in describe_inputs(net).items():
        click.echo(f"  input  {name}: {dtype}[{', '.join(map(str, shape))}]")
    click.echo(f"  output reward: {str(net.dtype).removeprefix('torch.')}[batch]")
