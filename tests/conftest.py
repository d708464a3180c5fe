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
