from math import comb

import pytest

from leaderboard.stats import discordant, mcnemar_exact


def two_sided_binomial(b, c):
    """Exact two-sided McNemar p: twice the smaller binomial(n, 1/2) tail, capped at 1."""
    n, k = b + c, min(b, c)
    return min(1.0, 2 * sum(comb(n, i) for i in range(k + 1)) / 2 ** n)


@pytest.mark.parametrize("b,c", [(0, 5), (5, 0), (3, 3), (1, 9), (12, 30), (7, 8), (40, 2), (0, 1)])
def test_mcnemar_matches_enumeration(b, c):
    assert mcnemar_exact(b, c) == pytest.approx(two_sided_binomial(b, c), rel=1e-9)


def test_mcnemar_edge_cases():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(10, 10) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


def test_discordant_counts():
    ref = {1: True, 2: True, 3: False, 4: False, 5: True}
    other = {1: False, 2: True, 3: True, 4: False, 5: False}
    assert discordant(ref, other) == (2, 1)
