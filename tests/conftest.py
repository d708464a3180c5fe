"""Shared test set-up: one torch thread, so that tests run well on 2 cores."""

from __future__ import annotations

import torch

torch.set_num_threads(1)
