"""Paired evidence for one model pair on the same items: flips and the exact McNemar test.

The engine records these with every delta; `leaderboard.stats` builds its between-method statistics on them.
"""

from __future__ import annotations


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
