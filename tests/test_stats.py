import itertools
from math import comb

import numpy as np
import pytest
from forgetbench.leaderboard.stats import (
    benjamini_hochberg,
    holm,
    minimum_detectable_effect,
    paired_bootstrap_ci,
    paired_permutation_test,
)
from forgetbench.records.paired_tests import discordant, mcnemar_exact


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


# ---- bootstrap, permutation, multiplicity, power: each against an independent computation ----



def exact_quantiles(values, confidence=0.95):
    a = (1 - confidence) / 2
    return np.quantile(np.asarray(values), [a, 1 - a])


def close_to_exact(ci, values, tol):
    lo, hi = exact_quantiles(values)
    assert abs(ci.low - lo) < tol and abs(ci.high - hi) < tol, (ci, lo, hi)


def test_bootstrap_matches_exact_enumeration_of_item_resamples():
    rng = np.random.default_rng(1)
    a, b = rng.random(5), rng.random(5)
    d = a - b
    every = [d[list(idx)].mean() for idx in itertools.product(range(5), repeat=5)]   # all 5**5 resamples
    ci = paired_bootstrap_ci(a, b, n_resamples=40_000, seed=3)
    assert ci.estimate == pytest.approx(d.mean())
    assert ci.se == pytest.approx(np.std(every), rel=0.03)
    close_to_exact(ci, every, tol=0.02 * np.ptp(d))


def test_bootstrap_agrees_with_scipy_on_plain_pairs():
    from scipy.stats import bootstrap
    rng = np.random.default_rng(2)
    a = (rng.random(60) < 0.7).astype(float)
    b = (rng.random(60) < 0.5).astype(float)
    ours = paired_bootstrap_ci(a, b, n_resamples=20_000)
    theirs = bootstrap((a, b), lambda x, y, axis=-1: (x - y).mean(axis), paired=True, n_resamples=20_000,
                       method="percentile", rng=np.random.default_rng(0)).confidence_interval
    assert ours.low == pytest.approx(theirs.low, abs=0.02) and ours.high == pytest.approx(theirs.high, abs=0.02)


def test_cluster_bootstrap_resamples_whole_clusters():
    d = np.array([0.9, 0.8, 1.0, -0.2, -0.1, 0.3, 0.1, 0.2, 0.0, -0.5])
    clusters = ["p", "p", "p", "q", "q", "r", "r", "r", "r", "s"]
    groups = [d[[i for i, c in enumerate(clusters) if c == k]] for k in "pqrs"]
    every = [np.concatenate([groups[i] for i in idx]).mean() for idx in itertools.product(range(4), repeat=4)]
    ci = paired_bootstrap_ci(d, np.zeros_like(d), clusters=clusters, n_resamples=40_000)
    assert ci.estimate == pytest.approx(d.mean())
    close_to_exact(ci, every, tol=0.02)
    plain = paired_bootstrap_ci(d, np.zeros_like(d), n_resamples=40_000)
    assert ci.high - ci.low > plain.high - plain.low        # correlated items: the naive CI is too narrow


def test_stratified_bootstrap_is_a_macro_average_over_strata():
    d = np.array([1.0, 0.0, 0.5, -1.0, 0.2, 0.0, 0.3])
    strata = ["t1", "t1", "t1", "t2", "t2", "t2", "t2"]
    s1, s2 = d[:3], d[3:]
    every = [0.5 * (s1[list(i)].mean() + s2[list(j)].mean())
             for i in itertools.product(range(3), repeat=3) for j in itertools.product(range(4), repeat=4)]
    ci = paired_bootstrap_ci(d, np.zeros_like(d), strata=strata, n_resamples=40_000)
    assert ci.estimate == pytest.approx(0.5 * (s1.mean() + s2.mean()))
    close_to_exact(ci, every, tol=0.015)


def test_hierarchical_bootstrap_resamples_seeds_then_items():
    a = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])        # two seeds x three items
    b = np.array([0.0, 1.0, 1.0])                           # the base model: one "seed"
    every = []
    for seeds in itertools.product(range(2), repeat=2):
        d = a[list(seeds)].mean(0) - b
        every += [d[list(idx)].mean() for idx in itertools.product(range(3), repeat=3)]
    ci = paired_bootstrap_ci(a, b, n_resamples=40_000)
    assert ci.estimate == pytest.approx((a.mean(0) - b).mean())
    close_to_exact(ci, every, tol=0.02)
    assert ci.se == pytest.approx(np.std(every), rel=0.03)


def test_seed_variation_widens_the_interval():
    rng = np.random.default_rng(4)
    base = (rng.random(200) < 0.6).astype(float)
    same = np.stack([base] * 3)
    spread = np.stack([base, np.roll(base, 7), 1 - base])
    no_seed_var = paired_bootstrap_ci(same, base)
    assert no_seed_var.low == no_seed_var.high == 0.0
    items_only = paired_bootstrap_ci(spread.mean(0), base)     # the same per-item means, seeds held fixed
    both = paired_bootstrap_ci(spread, base)
    assert both.estimate == pytest.approx(items_only.estimate)
    between = (spread - base).mean(1).var() / 3               # seed-level variance of the mean over 3 seeds
    assert both.se ** 2 > items_only.se ** 2 + 0.5 * between
    assert both.high - both.low > items_only.high - items_only.low


def test_bootstrap_is_deterministic_and_checks_its_input():
    a, b = np.arange(10) % 2, np.arange(10) % 3 == 0
    assert paired_bootstrap_ci(a, b, seed=5) == paired_bootstrap_ci(a, b, seed=5)
    with pytest.raises(ValueError, match="same items"):
        paired_bootstrap_ci([1, 0, 1], [1, 0])
    with pytest.raises(ValueError, match="one label per item"):
        paired_bootstrap_ci([1, 0, 1], [1, 0, 0], clusters=["x"])
    with pytest.raises(ValueError, match="inside one stratum"):
        paired_bootstrap_ci([1, 0, 1], [1, 0, 0], clusters=["x", "x", "y"], strata=["s", "t", "t"])


def sign_flip_enumeration(d, w=None):
    w = np.ones(len(d)) if w is None else np.asarray(w)
    obs = abs(np.average(d, weights=w))
    stats = [abs(np.average(d * np.array(s), weights=w)) for s in itertools.product([1, -1], repeat=len(d))]
    return np.mean(np.array(stats) >= obs - 1e-12)


def test_permutation_test_exact_on_small_samples():
    rng = np.random.default_rng(6)
    a, b = rng.random(10), rng.random(10) - 0.2
    assert paired_permutation_test(a, b) == pytest.approx(sign_flip_enumeration(a - b), rel=1e-9)
    w = rng.random(10)
    assert paired_permutation_test(a, b, weights=w) == pytest.approx(sign_flip_enumeration(a - b, w), rel=1e-9)
    assert paired_permutation_test(a, a) == 1.0


def test_permutation_test_monte_carlo_close_to_exact():
    rng = np.random.default_rng(7)
    a = (rng.random(15) < 0.8).astype(float) + rng.random(15) * 0.1
    b = (rng.random(15) < 0.4).astype(float)
    p = paired_permutation_test(a, b, n_resamples=4000)           # 2**15 > 4000: Monte Carlo
    assert p == pytest.approx(sign_flip_enumeration(a - b), abs=0.02)


def test_holm_and_bh_match_statsmodels():
    from statsmodels.stats.multitest import multipletests
    ps = [0.01, 0.04, 0.03, 0.2, 0.005, 0.04, 0.9]
    assert holm(ps) == pytest.approx(multipletests(ps, method="holm")[1].tolist())
    assert benjamini_hochberg(ps) == pytest.approx(multipletests(ps, method="fdr_bh")[1].tolist())
    assert holm([0.5]) == [0.5] and benjamini_hochberg([]) == []


def test_holm_by_hand():
    # sorted 0.01 < 0.02 < 0.03: 3*0.01, max(0.03, 2*0.02), max(0.04, 1*0.03) -> order restored
    assert holm([0.03, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])


def test_minimum_detectable_effect():
    from statsmodels.stats.power import NormalIndPower
    # the reference's worked example: sd_diff 0.3, 7056 items -> one accuracy point
    assert minimum_detectable_effect(0.3, 7056) == pytest.approx(0.01, rel=2e-3)
    for sd, n, alpha, power in [(0.3, 500, 0.05, 0.8), (0.45, 80, 0.01, 0.9)]:
        es = NormalIndPower().solve_power(nobs1=n, alpha=alpha, power=power, ratio=0)
        assert minimum_detectable_effect(sd, n, alpha, power) == pytest.approx(es * sd, rel=1e-3)


def test_stratum_weights_weight_the_stratum_means():
    d = np.array([1.0, 0.0, 0.5, -1.0, 0.2, 0.0, 0.3])
    strata = ["t1", "t1", "t1", "t2", "t2", "t2", "t2"]
    s1, s2 = d[:3], d[3:]
    w = {"t1": 3.0, "t2": 1.0}
    every = [0.75 * s1[list(i)].mean() + 0.25 * s2[list(j)].mean()
             for i in itertools.product(range(3), repeat=3) for j in itertools.product(range(4), repeat=4)]
    ci = paired_bootstrap_ci(d, np.zeros_like(d), strata=strata, stratum_weights=w, n_resamples=40_000)
    assert ci.estimate == pytest.approx(0.75 * s1.mean() + 0.25 * s2.mean())
    close_to_exact(ci, every, tol=0.015)
    with pytest.raises(ValueError, match="no weight"):
        paired_bootstrap_ci(d, d, strata=strata, stratum_weights={"t1": 1.0})
