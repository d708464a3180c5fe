"""Fuzz the readers of ``rewardnets.load``: every mutated file loads or is a SerializationError.

Run by ``tests/test_fuzz_readers.py`` for a bounded, reproducible number of
examples; run it directly for longer, random runs::

    python tests/fuzz_readers.py --examples 5000 --random

Seeds are valid files of every kind the loader reads: format v2
(safetensors), format v1 (zip of JSON, from ``tests/fixtures/v1``) and
``torch.save`` files (read by the restricted unpickler). Mutations: flipped,
inserted and dropped bytes, truncation, and structure-aware edits of the JSON
documents, the safetensors header, the v1 tensor index and the pickle inside
a ``torch.save`` archive. The
process runs under a memory cap (``--memory-gb``) and each example under a
time cap (``--seconds``); anything else than a loaded ``RewardNet`` or a
``SerializationError`` — another exception, a hang, a crash — fails the run
and prints the example.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import signal
import struct
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "v1"


class Timeout(Exception):
    """An example ran past its time cap."""


def _seeds() -> dict[str, bytes]:
    import numpy as np
    import torch
    from gymnasium import spaces

    import rewardnets

    obs, act = spaces.Box(-1.0, 1.0, (3,), np.float32), spaces.Discrete(2)
    torch.manual_seed(0)
    normalized = rewardnets.NormalizedRewardNet(rewardnets.BasicRewardNet(obs, act, hid_sizes=(4,)))
    shaped = rewardnets.BasicShapedRewardNet(
        obs, act, reward_hid_sizes=(3,), potential_hid_sizes=(3,)
    )
    ensemble = rewardnets.AddSTDRewardWrapper(
        rewardnets.RewardEnsemble(obs, act, [rewardnets.BasicRewardNet(obs, act) for _ in range(2)])
    )
    with tempfile.TemporaryDirectory() as folder:
        seeds = {
            "v2-normalized": rewardnets.save(normalized, Path(folder) / "a.rn").read_bytes(),
            "v2-shaped": rewardnets.save(shaped, Path(folder) / "b.rn").read_bytes(),
            "v2-ensemble": rewardnets.save(ensemble, Path(folder) / "c.rn").read_bytes(),
        }
    for name in ("normalized_basic", "dict_obs"):
        seeds[f"v1-{name}"] = (FIXTURES / f"{name}.rn").read_bytes()
    normalized.observation_space.seed(0)  # a space with a random generator in its state
    for name, net in (("torch-normalized", normalized), ("torch-ensemble", ensemble)):
        buffer = io.BytesIO()
        torch.save(net, buffer)
        seeds[name] = buffer.getvalue()
    return seeds


# ---------------------------------------------------------------- mutations
def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            out += _paths(child, (*prefix, i))
    return out


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace(copy[head], rest, new)
    return copy


def _edit_json(document: Any, data: Any, json_values: Any) -> Any:
    from hypothesis import strategies as st

    paths = _paths(document)
    path = data.draw(st.sampled_from(paths), label="path")
    return _replace(document, path, data.draw(json_values, label="new value"))


def _safetensors_parts(blob: bytes) -> tuple[dict[str, Any], bytes]:
    (length,) = struct.unpack_from("<Q", blob)
    return json.loads(blob[8 : 8 + length]), blob[8 + length :]


def _mutate(kind: str, blob: bytes, data: Any) -> bytes:
    from hypothesis import strategies as st

    json_values = st.recursive(
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**70), max_value=2**70)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=12)
        | st.sampled_from(["BasicRewardNet", "RewardEnsemble", "sys:exit", "torch:_dynamo"]),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=12,
    )
    how = data.draw(st.sampled_from(["bytes", "truncate", "structure"]), label="mutation")
    if how == "truncate":
        return blob[: data.draw(st.integers(0, len(blob) - 1), label="length")]
    if how == "bytes":
        out = bytearray(blob)
        for _ in range(data.draw(st.integers(1, 8), label="edits")):
            at = data.draw(st.integers(0, len(out) - 1), label="at")
            op = data.draw(st.sampled_from(["flip", "insert", "drop"]), label="op")
            byte = data.draw(st.integers(0, 255), label="byte")
            if op == "flip":
                out[at] = byte
            elif op == "insert":
                out.insert(at, byte)
            elif len(out) > 1:
                del out[at]
        return bytes(out)
    if kind.startswith("v2"):
        header, body = _safetensors_parts(blob)
        meta = header["__metadata__"]
        target = data.draw(st.sampled_from(["header", "metadata", "spec", "spaces"]), label="doc")
        if target == "header":
            header = _edit_json(header, data, json_values)
        else:
            meta[target] = json.dumps(_edit_json(json.loads(meta[target]), data, json_values))
        raw = json.dumps(header).encode()
        return struct.pack("<Q", len(raw)) + raw + body
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    if kind.startswith("v1"):
        member = data.draw(
            st.sampled_from(["metadata.json", "spec.json", "spaces.json", "tensors.json"]),
            label="member",
        )
        document = json.loads(members[member])
        members[member] = json.dumps(_edit_json(document, data, json_values)).encode()
    else:  # torch.save: edit bytes of the pickle inside the archive
        name = next(n for n in members if n.endswith("data.pkl"))
        pickled = bytearray(members[name])
        for _ in range(data.draw(st.integers(1, 4), label="edits")):
            at = data.draw(st.integers(0, len(pickled) - 1), label="at")
            pickled[at] = data.draw(st.integers(0, 255), label="byte")
        members[name] = bytes(pickled)
    rewritten = io.BytesIO()
    with zipfile.ZipFile(rewritten, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return rewritten.getvalue()


# ---------------------------------------------------------------------- run
def run(examples: int, seconds: int, derandomize: bool) -> None:
    """Fuzz ``rewardnets.load`` with ``examples`` mutated files; raise on the first failure."""
    import warnings

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    import rewardnets
    from rewardnets.serialize import SerializationError

    seeds = _seeds()
    folder = Path(tempfile.mkdtemp())
    warnings.simplefilter("ignore")

    def alarm(signum: int, frame: Any) -> None:
        raise Timeout(f"an example ran past {seconds} s")

    signal.signal(signal.SIGALRM, alarm)

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=derandomize,
        suppress_health_check=list(HealthCheck),
    )
    @given(kind=st.sampled_from(sorted(seeds)), data=st.data())
    def fuzz(kind: str, data: Any) -> None:
        blob = _mutate(kind, seeds[kind], data)
        path = folder / "fuzzed.rn"
        path.write_bytes(blob)
        signal.alarm(seconds)
        try:
            net = rewardnets.load(path)
        except SerializationError:
            return
        finally:
            signal.alarm(0)
        assert isinstance(net, rewardnets.RewardNet), type(net)

    fuzz()


def main() -> int:
    """Parse the command line, set the memory cap and fuzz."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=20, help="time cap of one example")
    parser.add_argument("--memory-gb", type=float, default=2.0, help="address-space cap")
    parser.add_argument("--random", action="store_true", help="new examples on every run")
    args = parser.parse_args()
    cap = int(args.memory_gb * (1 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    run(args.examples, args.seconds, derandomize=not args.random)
    print(f"fuzz: {args.examples} examples, every one loaded or raised SerializationError")
    return 0


if __name__ == "__main__":
    sys.exit(main())
