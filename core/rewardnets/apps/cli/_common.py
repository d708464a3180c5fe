"""What the commands share: turning errors into one-line messages, parsing configs."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

#: The env every command uses unless told otherwise.
DEFAULT_ENV = "Pendulum-v1"

#: The ``--env`` option, shared by the commands that make an env.
env_option = click.option(
    "--env", "env_id", default=DEFAULT_ENV, show_default=True, help="Gymnasium env id."
)


def friendly_errors(func: F) -> F:
    """Turn the errors a user can fix into a one-line message without a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import gymnasium

        from rewardnets.errors import RewardNetsError

        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except (RewardNetsError, gymnasium.error.Error, FileNotFoundError, ValueError) as exc:
            message = str(exc) or type(exc).__name__
            if isinstance(exc, FileNotFoundError) and exc.filename:
                message = f"No such file: {exc.filename}. Check the path."
            raise click.ClickException(" ".join(message.split())) from exc

    return wrapper  # type: ignore[return-value]


class EpochBar:
    """A progress bar over reward-learning epochs, showing loss and accuracy."""

    def __init__(self, total: int, desc: str, enabled: bool, unit: str = "epoch") -> None:
        from tqdm import tqdm

        self.total = total
        self.bar = tqdm(total=total, desc=desc, unit=unit, disable=not enabled)

    def __call__(self, epoch: int, metrics: dict[str, float]) -> None:
        """Advance to ``epoch`` with its metrics; close the bar after the last one."""
        self.bar.set_postfix(loss=f"{metrics['loss']:.3f}", acc=f"{metrics['accuracy']:.3f}")
        self.bar.update(1)
        if epoch == self.total:
            self.bar.close()


def parse_config(text: str | None) -> Any:
    """Parse a net config given on the command line: a name, or JSON."""
    if text is None:
        return None
    stripped = text.strip()
    if stripped[:1] in "[{":
        try:
            return json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"not valid JSON: {exc}") from exc
    return stripped


def parse_json_object(text: str | None, what: str) -> dict[str, Any]:
    """Parse a JSON object option, e.g. algorithm keyword arguments."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise click.BadParameter(f"{what} must be a JSON object, got {text!r}")
    return value


def parse_key_values(items: tuple[str, ...], what: str) -> dict[str, Any]:
    """Parse ``key=value`` options (values read as JSON when they are, else strings).

    ``clip=0.3`` gives ``{"clip": 0.3}``, ``update_stats=true`` ``{"update_stats": True}``,
    ``mode=fast`` ``{"mode": "fast"}``; one item may also be a whole JSON object.
    """
    out: dict[str, Any] = {}
    for item in items:
        if item.lstrip().startswith("{"):
            out.update(parse_json_object(item, what))
            continue
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{what} takes key=value, got {item!r}")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out[key.strip()] = value
    return out


def parse_schedule(text: str | None) -> list[int] | None:
    """Parse ``--schedule 50,25,25`` (labels per round); None when not given."""
    if not text:
        return None
    try:
        return [int(part) for part in text.split(",")]
    except ValueError as exc:
        raise click.BadParameter(
            f"--schedule takes comma-separated label counts such as 50,25,25, got {text!r}"
        ) from exc


def learning_options(func: F) -> F:
    """The options of preference learning in rounds, shared by ``learn`` and ``pipeline``."""
    options = [
        click.option(
            "--labels",
            "--comparisons",
            "labels",
            default=100,
            show_default=True,
            type=int,
            help="Label budget: pairs the teacher is asked about.",
        ),
        click.option("--rounds", default=3, show_default=True, type=int, help="Rounds of queries."),
        click.option(
            "--schedule", default=None, help="Labels per round, e.g. 50,25,25 (default: even)."
        ),
        click.option(
            "--selector",
            default="disagreement",
            show_default=True,
            help="Query selector: uniform, disagreement, entropy or a plugin's.",
        ),
        click.option(
            "--teacher",
            default="perfect",
            show_default=True,
            help="Teacher: perfect, noisy (mistake), myopic, skip, equal or a plugin's.",
        ),
        click.option(
            "--teacher-option",
            "teacher_options",
            multiple=True,
            help="A teacher option as key=value (repeatable), e.g. noise=0.2.",
        ),
        click.option("--ensemble", default=3, show_default=True, type=int, help="Members."),
        click.option(
            "--fragments", default=200, show_default=True, type=int, help="Fragments per round."
        ),
        click.option(
            "--fragment-length",
            default=20,
            show_default=True,
            type=int,
            help="Transitions per fragment.",
        ),
        click.option(
            "--train-steps",
            default=300,
            show_default=True,
            type=int,
            help="Gradient steps per member after each round.",
        ),
        click.option(
            "--agent-steps",
            default=2000,
            show_default=True,
            type=int,
            help="Policy steps on the current reward before each round after the first.",
        ),
        click.option(
            "--explore-alpha",
            default=0.0,
            show_default=True,
            type=float,
            help="That policy's reward is mean + alpha * std of the ensemble.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func
