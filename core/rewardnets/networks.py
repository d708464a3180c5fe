"""Network building blocks (``imitation.util.networks``).

A stable import path; the code lives in :mod:`rewardnets.framework.networks`.
"""

from rewardnets.framework.networks import *  # noqa: F403
from rewardnets.framework.networks import __all__ as __all__
