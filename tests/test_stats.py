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


# ------------------------------------------------------------------- method-level inference, calibrated by simulation
def simulated_rows(rng, *, seeds: int, seed_sd: float, shift: float = 0.0, items: int = 200):
    """A base model and two methods' (seeds, items) binary outcomes with a known truth: items of shared difficulty
    (base success p_i), an item effect u_i both methods share, each seed a shift of SD seed_sd; method 2 forgets
    `shift` less than method 1."""
    p = rng.beta(2, 2, items)
    base = (rng.random(items) < p).astype(float)
    u = rng.normal(0, 0.05, items)
    rows = []
    for effect in (-0.05, -0.05 + shift):
        q = np.clip(p[None] + effect + u[None] + rng.normal(0, seed_sd, seeds)[:, None], 0, 1)
        rows.append((rng.random((seeds, items)) < q).astype(float))
    return base, rows


STRATA = ["a"] * 120 + ["b"] * 80
TRACKS = 400       # Monte Carlo SE of a 5 % rate ~0.011, of a 95 % coverage ~0.011


@pytest.mark.parametrize("seeds", [2, 3, 5])
@pytest.mark.parametrize("seed_sd", [0.0, 0.04])
def test_the_method_level_test_holds_its_level_and_its_intervals_cover(seeds, seed_sd):
    """Identical truth: rejections at 5 % stay at most 6 % (+ Monte Carlo error); a row's interval covers the true
    Δ (computed over a large item population) at least 93 % of the time (- Monte Carlo error)."""
    from forgetbench.leaderboard.stats import seed_level
    rng = np.random.default_rng(seeds * 10 + int(100 * seed_sd))
    p = rng.beta(2, 2, 400_000)
    truth = float(np.mean(np.clip(p - 0.05 + rng.normal(0, 0.05, p.size) + rng.normal(0, seed_sd, p.size), 0, 1) - p))
    rejected = covered = 0
    for _ in range(TRACKS):
        base, (one, two) = simulated_rows(rng, seeds=seeds, seed_sd=seed_sd)
        rejected += seed_level([one, two], [1, -1], strata=STRATA).p < 0.05
        row = seed_level([one], [1], base=base, strata=STRATA)
        covered += row.low <= truth <= row.high
    assert rejected / TRACKS <= 0.06 + 2 * 0.011
    assert covered / TRACKS >= 0.93 - 2 * 0.011


def test_the_method_level_test_has_power_at_a_real_difference():
    """5 seeds, seed SD 2 points, a true difference of 10 points on 200 items: detected most of the time."""
    from forgetbench.leaderboard.stats import seed_level
    rng = np.random.default_rng(7)
    hits = sum(seed_level(simulated_rows(rng, seeds=5, seed_sd=0.02, shift=0.1)[1], [1, -1], strata=STRATA).p
               < 0.05 for _ in range(200))
    assert hits / 200 >= 0.8


def test_one_seed_makes_no_method_level_statement():
    from forgetbench.leaderboard.stats import seed_level
    assert seed_level([np.ones((1, 4)), np.ones((3, 4))], [1, -1], strata=["a"] * 4) is None
