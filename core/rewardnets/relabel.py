"""Relabelling transitions with a new reward: replay buffers and Parquet datasets.

A stable import path; the code lives in :mod:`rewardnets.envs.relabel` (SB3
replay buffers) and :mod:`rewardnets.apps.offline_relabel` (Parquet datasets,
local or on Ray).
"""

from rewardnets.apps.offline_data import Columns, DatasetError, RelabelResult, arrays_from_table
from rewardnets.apps.offline_minari import minari_to_parquet
from rewardnets.apps.offline_relabel import relabel_dataset
from rewardnets.envs.relabel import *  # noqa: F403
from rewardnets.envs.relabel import __all__ as _buffer_all

__all__ = [
    *_buffer_all,
    "Columns",
    "DatasetError",
    "RelabelResult",
    "arrays_from_table",
    "minari_to_parquet",
    "relabel_dataset",
]
