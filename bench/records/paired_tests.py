"""Paired evidence for one model pair on the same items: flips, the exact McNemar test, and a sign-flip
permutation test of a (weighted) mean difference.

The engine records these with every delta; `leaderboard.stats` builds its between-method statistics on them.
"""

from __future__ import annotations

import numpy as np


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (b: right->wrong, c: wrong->right)."""
    from scipy.stats import binomtest

    if b < 0 or c < 0:
        raise ValueError("discordant counts must be non-negative")
    if b + c == 0:
        return 1.0
    return float(binomtest(b, b + c, 0.5, alternative="two-sided").pvalue)


def discordant(reference: dict, other: dict) -> tuple[int, int]:
    """(b, c) over shared keys: b = reference right & other wrong, c = reference wrong & other right."""
    b = sum(1 for k, r in reference.items() if r and not other[k])
    c = sum(1 for k, r in reference.items() if not r and other[k])
    return b, c


def flip_test(right_to_wrong: int, wrong_to_right: int) -> dict:
    """The record's flips section: both counts and McNemar's p-value on them."""
    return {"flips": {"right_to_wrong": right_to_wrong, "wrong_to_right": wrong_to_right},
            "p_mcnemar": mcnemar_exact(right_to_wrong, wrong_to_right)}


def paired_permutation_test(a, b, *, weights=None, n_resamples: int = 10_000, seed: int = 0) -> float:
    """Two-sided sign-flip test of mean(a - b) = 0 over paired items (exact when 2**n <= n_resamples).

    weights: per-item weights of the mean (e.g. 1 / (tasks x task size) for a suite's macro average)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.ndim != 1 or a.shape != b.shape or a.size < 1:
        raise ValueError("paired_permutation_test takes two 1-D arrays of per-item scores of equal length")
    w = np.ones(a.size) if weights is None else np.asarray(weights, dtype=float)
    if np.all(a == b):
        return 1.0

    def stat(x, y, axis=-1):
        return np.average(x - y, axis=axis, weights=w)

    from scipy.stats import permutation_test

    res = permutation_test((a, b), stat, permutation_type="samples", vectorized=True, n_resamples=n_resamples,
                           alternative="two-sided", rng=np.random.default_rng(seed))
    return float(res.pvalue)
