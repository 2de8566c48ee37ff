"""What predicts forgetting: across a track's runs, how well each candidate measure predicts a run's forgetting.

Forgetting is a run's suite-average Δ (the mean of its suites' deltas, the points table's "suite avg"). The
candidates, each read from the run's record (schema 4; runs without one are left out of that predictor and the
count says so):
- context-free KL(base ‖ tuned) (token-exact estimator, nats per sequence);
- KL on the target's held-out prompts, E_c KL(p_base(.|c) ‖ p_tuned(.|c)) (RL's Razor's predictor, arXiv 2509.04259);
- the L2 norm of the weight update ‖θ_tuned − θ_base‖₂;
- the shift of the next-token mass on the target's answer class after preserved prompts (arXiv 2510.08564's
  probe: it "co-varies with forgetting");
- the final target training loss (mean of the last tenth of the steps; Kalajdzievski, arXiv 2401.05605: forgetting
  inverse-linear in fine-tuning performance).

For each: Spearman's ρ; R² of the least-squares fit of Δ on the predictor, linear and quadratic (as RL's Razor
reports); each with a 95% percentile bootstrap interval over methods (clusters: a drawn method brings all its runs,
which are not independent evidence; resamples in which a statistic is undefined, e.g. a constant predictor, are left
out of its interval), and the effective number of runs, n / (1 + (m - 1) ICC) for the clustering by method. And a
leave-one-method-out check: for each method, fit (linear) on the other methods' runs and predict its runs; the
pooled R² of those out-of-sample predictions (below 0: worse than predicting the mean; a predictor that only
separates methods, not runs within them, falls here) and the range of ρ over the tracks with one method left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from forgetbench.leaderboard.tracks import Track

N_RESAMPLES = 2_000
PREDICTORS = (      # (its key, its label, its value in a run's outcome: None where the run has none)
    ("kl", "context-free KL (nats)", lambda outcome: outcome.kl),
    ("kl_target", "KL on target prompts (nats)", lambda outcome: outcome.kl_target),
    ("weight_change", "‖θ − θ_base‖₂", lambda outcome: outcome.weight_change),
    ("answer_class_shift", "answer-class mass Δ", lambda outcome: outcome.probe_shift),
    ("train_loss", "final target training loss", lambda outcome: outcome.train_loss),
)


@dataclass
class Stat:
    estimate: float
    low: float
    high: float


@dataclass
class Fit:
    key: str
    label: str
    x: np.ndarray                  # the predictor, per run
    y: np.ndarray                  # forgetting (suite-average Δ), per run
    methods: list[str]             # per run
    rho: Stat | None = None
    r2_linear: Stat | None = None
    r2_quadratic: Stat | None = None
    lomo_r2: float | None = None            # leave-one-method-out, pooled out-of-sample R² (linear)
    rho_without: tuple[float, float] | None = None   # min and max of ρ with one method left out
    effective_n: float | None = None        # runs / the design effect of their clustering by method

    @property
    def n(self) -> int:
        return len(self.x)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import spearmanr
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(spearmanr(x, y).statistic)


def r_squared(x: np.ndarray, y: np.ndarray, degree: int) -> float:
    """R² of the least-squares polynomial fit of y on x (nan when undefined: too few distinct x, constant y)."""
    if len(np.unique(x)) <= degree or np.ptp(y) == 0:
        return math.nan
    resid = y - np.polyval(np.polyfit(x, y, degree), x)
    return float(1 - (resid ** 2).sum() / ((y - y.mean()) ** 2).sum())


def leave_one_method_out(x: np.ndarray, y: np.ndarray, methods: list[str]) -> tuple[float | None, tuple | None]:
    """Pooled out-of-sample R² of linear fits on the other methods' runs, and the range of ρ without one method."""
    names = sorted(set(methods))
    if len(names) < 3 or np.ptp(y) == 0:
        return None, None
    labels = np.array(methods)
    pred, rhos = np.empty_like(y), []
    for m in names:
        out = labels == m
        if len(np.unique(x[~out])) < 2:
            return None, None
        pred[out] = np.polyval(np.polyfit(x[~out], y[~out], 1), x[out])
        rhos.append(spearman(x[~out], y[~out]))
    r2 = float(1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum())
    return r2, (float(np.nanmin(rhos)), float(np.nanmax(rhos)))


def _bootstrap(stat, x: np.ndarray, y: np.ndarray, methods: list[str], n_resamples: int, seed: int) -> Stat:
    """Percentile interval over resamples of the methods (clusters): a drawn method brings all its runs, since runs
    of one method and configuration are not independent evidence about a predictor."""
    rng = np.random.default_rng(seed)
    labels = np.array(methods)
    groups = [np.flatnonzero(labels == m) for m in sorted(set(methods))]
    draws = rng.integers(0, len(groups), size=(n_resamples, len(groups)))
    reps = np.array([stat(x[i], y[i]) for i in (np.concatenate([groups[g] for g in d]) for d in draws)])
    reps = reps[~np.isnan(reps)]
    low, high = (np.percentile(reps, [2.5, 97.5]) if len(reps) else (math.nan, math.nan))
    return Stat(stat(x, y), float(low), float(high))


def effective_n(y: np.ndarray, methods: list[str]) -> float:
    """n / (1 + (m - 1) ICC): the runs' count discounted for their clustering by method (m the mean runs per
    method, ICC the one-way intraclass correlation of forgetting within methods, at least 0)."""
    labels = np.array(methods)
    groups = [y[labels == m] for m in sorted(set(methods))]
    k, n = len(groups), len(y)
    if k < 2 or n <= k:
        return float(k)
    within = sum(((g - g.mean()) ** 2).sum() for g in groups) / (n - k)
    between = sum(len(g) * (g.mean() - y.mean()) ** 2 for g in groups) / (k - 1)
    m = (n - sum(len(g) ** 2 for g in groups) / n) / (k - 1)           # the mean cluster size, ANOVA's n0
    icc = max(0.0, (between - within) / (between + (m - 1) * within)) if between + (m - 1) * within > 0 else 1.0
    return float(n / (1 + (n / k - 1) * icc))


def fit(key: str, label: str, x, y, methods: list[str], n_resamples: int = N_RESAMPLES, seed: int = 0) -> Fit:
    out = Fit(key, label, np.asarray(x, dtype=float), np.asarray(y, dtype=float), list(methods))
    if out.n < 3:
        return out
    boot = {"methods": out.methods, "n_resamples": n_resamples, "seed": seed}
    out.rho = _bootstrap(spearman, out.x, out.y, **boot)
    out.r2_linear = _bootstrap(lambda a, b: r_squared(a, b, 1), out.x, out.y, **boot)
    if out.n >= 4:
        out.r2_quadratic = _bootstrap(lambda a, b: r_squared(a, b, 2), out.x, out.y, **boot)
    out.effective_n = effective_n(out.y, out.methods)
    out.lomo_r2, out.rho_without = leave_one_method_out(out.x, out.y, out.methods)
    return out


def analyse(track: Track, n_resamples: int = N_RESAMPLES) -> list[Fit]:
    """One fit per predictor over the track's runs that record it (computed once per track)."""
    if track.predictors is not None:
        return track.predictors
    fits = []
    for key, label, read in PREDICTORS:
        runs = [r for r in track.runs if read(r.outcome) is not None]
        fits.append(fit(key, label, [read(r.outcome) for r in runs], [r.outcome.suite_average for r in runs],
                        [r.spec["method"] for r in runs], n_resamples))
    track.predictors = fits
    return fits
