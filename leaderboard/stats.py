"""Paired statistics for comparing methods on the same items."""

from __future__ import annotations

from scipy.stats import binomtest


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (b: right->wrong, c: wrong->right)."""
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
