"""The forgetting predictors' statistics against independent computations on made-up runs."""

import numpy as np
import pandas as pd
import pytest
from forgetbench.leaderboard.predictors import effective_n, fit, leave_one_method_out, r_squared

X = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
Y = np.array([0.0, -0.01, -0.03, -0.02, -0.05, -0.09, -0.08])
METHODS = ["a", "a", "b", "b", "c", "c", "c"]


def ols(x, y):
    """Intercept and slope of the least-squares line, in closed form."""
    slope = ((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum()
    return y.mean() - slope * x.mean(), slope


def test_rho_and_both_r_squared_match_independent_formulas():
    f = fit("kl", "KL", X, Y, METHODS, n_resamples=500)
    assert f.rho.estimate == pytest.approx(pd.Series(X).corr(pd.Series(Y), method="spearman"))
    assert f.r2_linear.estimate == pytest.approx(np.corrcoef(X, Y)[0, 1] ** 2)      # a line's R² is Pearson's r²
    design = np.stack([np.ones_like(X), X, X ** 2], 1)
    resid = Y - design @ np.linalg.lstsq(design, Y, rcond=None)[0]
    assert f.r2_quadratic.estimate == pytest.approx(1 - (resid ** 2).sum() / ((Y - Y.mean()) ** 2).sum())
    assert f.r2_quadratic.estimate >= f.r2_linear.estimate                          # nested models
    for st in (f.rho, f.r2_linear, f.r2_quadratic):
        assert st.low <= st.high
    again = fit("kl", "KL", X, Y, METHODS, n_resamples=500)
    assert (again.rho.low, again.rho.high) == (f.rho.low, f.rho.high)             # a fixed bootstrap seed


def test_leave_one_method_out_predicts_each_method_from_the_others():
    pred, rhos = np.empty_like(Y), []
    labels = np.array(METHODS)
    for m in ("a", "b", "c"):
        keep = labels != m
        b0, b1 = ols(X[keep], Y[keep])
        pred[~keep] = b0 + b1 * X[~keep]
        rhos.append(pd.Series(X[keep]).corr(pd.Series(Y[keep]), method="spearman"))
    r2, (low, high) = leave_one_method_out(X, Y, METHODS)
    assert r2 == pytest.approx(1 - ((Y - pred) ** 2).sum() / ((Y - Y.mean()) ** 2).sum())
    assert (low, high) == pytest.approx((min(rhos), max(rhos)))


def test_a_predictor_that_only_separates_methods_fails_out_of_sample():
    """Within each method forgetting does not follow the measure; between methods it does: in-sample R² is high,
    out of sample it is not."""
    x = np.array([1.0, 1.0, 1.0, 5.0, 5.0, 5.0, 9.0, 9.0, 9.0])
    y = np.array([0.0, -0.02, 0.01, -0.05, -0.03, -0.07, 0.0, -0.01, 0.02])
    f = fit("w", "w", x, y, ["a"] * 3 + ["b"] * 3 + ["c"] * 3, n_resamples=200)
    assert f.lomo_r2 < 0


def test_too_few_runs_or_constant_values_give_no_statistic():
    assert fit("kl", "KL", [1.0, 2.0], [0.0, -0.1], ["a", "b"]).rho is None
    assert np.isnan(r_squared(np.array([1.0, 1.0, 1.0]), np.array([0.0, -1.0, 2.0]), 1))
    assert np.isnan(r_squared(np.array([1.0, 2.0, 3.0]), np.array([0.5, 0.5, 0.5]), 1))
    assert leave_one_method_out(X, Y, ["a"] * 7) == (None, None)


def test_effective_n_matches_the_one_way_anova_intraclass_correlation():
    """Against statsmodels-free closed forms: ICC(1) from the ANOVA mean squares, n0 the mean cluster size."""
    groups = [Y[:2], Y[2:4], Y[4:]]
    k, n = 3, 7
    msw = sum(((g - g.mean()) ** 2).sum() for g in groups) / (n - k)
    msb = sum(len(g) * (g.mean() - Y.mean()) ** 2 for g in groups) / (k - 1)
    n0 = (n - (4 + 4 + 9) / n) / (k - 1)
    icc = (msb - msw) / (msb + (n0 - 1) * msw)
    assert effective_n(Y, METHODS) == pytest.approx(n / (1 + (n / k - 1) * max(icc, 0)))
    assert effective_n(np.array([1.0, 1, 2, 2, 3, 3]), ["a", "a", "b", "b", "c", "c"]) == pytest.approx(3)
    unclustered = np.array([0.0, 1, 0, 1, 0, 1])            # no method effect: every run counts
    assert effective_n(unclustered, ["a", "a", "b", "b", "c", "c"]) == pytest.approx(6)


def test_the_bootstrap_resamples_methods_not_runs():
    """A method's runs go together: duplicating every run of a method changes no resample's set of methods, so
    rho's interval from runs doubled within methods equals the interval from the runs once."""
    once = fit("kl", "KL", X, Y, METHODS, n_resamples=300)
    doubled = fit("kl", "KL", np.repeat(X, 2), np.repeat(Y, 2), list(np.repeat(METHODS, 2)), n_resamples=300)
    assert (doubled.rho.low, doubled.rho.high) == pytest.approx((once.rho.low, once.rho.high))
