"""Query selectors: which candidate pairs of fragments the teacher is asked about.

A selector is called as ``selector(pairs, member_returns, n_queries, rng)``:
``pairs`` is ``(n_candidates, 2)`` fragment indices, ``member_returns`` is
``(n_members, n_fragments)``, each ensemble member's predicted return of each
fragment; it returns ``n_queries`` distinct row indices into ``pairs``.

Under the Bradley-Terry model member ``k`` prefers the first fragment of a
pair with probability ``p_k = sigmoid(R_k(first) - R_k(second))``. The
built-ins (as in B-Pref, Lee et al., 2021): ``uniform`` picks at random;
``disagreement`` picks the pairs with the largest variance of ``p_k`` across
members (Christiano et al., 2017); ``entropy`` picks the pairs whose mean
probability is closest to a coin flip (largest binary entropy).
"""

from __future__ import annotations

import numpy as np

from rewardnets import hookimpl
from rewardnets.hookspecs import Register

__all__ = ["disagreement", "entropy", "preference_probabilities", "uniform"]


def preference_probabilities(pairs: np.ndarray, member_returns: np.ndarray) -> np.ndarray:
    """Return each member's probability of preferring the first fragment, ``(members, pairs)``."""
    returns = np.asarray(member_returns, dtype=np.float64)
    if returns.ndim != 2:
        raise ValueError(
            f"Expected member_returns of shape (n_members, n_fragments), got {returns.shape}."
        )
    logits = returns[:, pairs[:, 0]] - returns[:, pairs[:, 1]]
    return 1.0 / (1.0 + np.exp(-np.clip(logits, -50, 50)))


def _top(scores: np.ndarray, n_queries: int, rng: np.random.Generator) -> np.ndarray:
    # Ties broken at random: a random permutation, then a stable sort by score.
    order = rng.permutation(len(scores))
    ranked = order[np.argsort(-scores[order], kind="stable")]
    return ranked[:n_queries]


def uniform(
    pairs: np.ndarray, member_returns: np.ndarray, n_queries: int, rng: np.random.Generator
) -> np.ndarray:
    """Pick ``n_queries`` candidates uniformly at random."""
    return rng.choice(len(pairs), size=n_queries, replace=False)


def disagreement(
    pairs: np.ndarray, member_returns: np.ndarray, n_queries: int, rng: np.random.Generator
) -> np.ndarray:
    """Pick the candidates on which the members' preference probabilities vary most."""
    probs = preference_probabilities(pairs, member_returns)
    return _top(probs.var(axis=0), n_queries, rng)


def entropy(
    pairs: np.ndarray, member_returns: np.ndarray, n_queries: int, rng: np.random.Generator
) -> np.ndarray:
    """Pick the candidates whose mean preference probability is most uncertain."""
    p = np.clip(preference_probabilities(pairs, member_returns).mean(axis=0), 1e-12, 1 - 1e-12)
    return _top(-(p * np.log(p) + (1 - p) * np.log(1 - p)), n_queries, rng)


@hookimpl
def register_query_selectors(register: Register) -> None:
    """Register the uniform, disagreement and entropy selectors."""
    register("uniform", uniform)
    register("disagreement", disagreement)
    register("entropy", entropy)
