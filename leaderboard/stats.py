"""Paired statistics for comparing methods on the same items.

Scores are per item, in the same item order for both sides. A side run with several training seeds is
given as a (seeds, items) array: its per-item score is the mean over seeds, and the bootstrap resamples
seeds as well as items, so an interval reflects both sources of variation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from forgetbench.records.paired_tests import paired_permutation_test  # noqa: F401  (one implementation, shared with the engine)
from scipy.stats import false_discovery_control, norm
from scipy.stats import t as student_t


@dataclass(frozen=True)
class Interval:
    estimate: float     # mean difference on the data as given
    low: float
    high: float
    se: float           # standard deviation of the bootstrap distribution

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def _seeds(x) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    arr = arr[None] if arr.ndim == 1 else arr
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError("scores must be a non-empty (items,) or (seeds, items) array")
    return arr


def _groups(labels, n: int, what: str) -> np.ndarray:
    """Integer codes 0..k-1 for per-item labels (all zeros when labels is None)."""
    if labels is None:
        return np.zeros(n, dtype=int)
    labels = list(labels)
    if len(labels) != n:
        raise ValueError(f"{what} must give one label per item ({len(labels)} labels, {n} items)")
    order = {lab: i for i, lab in enumerate(dict.fromkeys(labels))}
    return np.array([order[lab] for lab in labels], dtype=int)


def _seed_means(x: np.ndarray, rng, r: int) -> np.ndarray:
    """(r, items): per-item means over a resample (with replacement) of the seeds."""
    s = x.shape[0]
    if s == 1:
        return np.broadcast_to(x[0], (r, x.shape[1]))
    return rng.multinomial(s, np.full(s, 1 / s), size=r) @ x / s


def paired_bootstrap_ci(a, b, *, clusters=None, strata=None, stratum_weights=None, n_resamples: int = 10_000,
                        confidence: float = 0.95, seed: int = 0) -> Interval:
    """Percentile bootstrap CI of mean(a - b) over paired items.

    clusters: a label per item; whole clusters (passages, subjects) are resampled together.
    strata: a label per item (e.g. the task); each stratum is resampled on its own and the statistic is the
    mean of the stratum means (a suite's macro average over its tasks), weighted by stratum_weights
    (label -> weight) when given, else unweighted.
    a or b of shape (seeds, items): seeds are resampled first, then items (hierarchical bootstrap)."""
    a, b = _seeds(a), _seeds(b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"paired scores need the same items ({a.shape[1]} vs {b.shape[1]})")
    if not 0 < confidence < 1 or n_resamples < 2:
        raise ValueError("confidence must be in (0, 1) and n_resamples at least 2")
    n = a.shape[1]
    cl = np.arange(n) if clusters is None else _groups(clusters, n, "clusters")   # default: each item alone
    st = _groups(strata, n, "strata")
    labels = list(dict.fromkeys(strata)) if strata is not None else [None]
    if stratum_weights is None:
        sw = np.ones(len(labels))
    else:
        missing = [lab for lab in labels if lab not in stratum_weights]
        if missing:
            raise ValueError(f"stratum_weights has no weight for {missing}")
        sw = np.array([float(stratum_weights[lab]) for lab in labels])
    sw = sw / sw.sum()
    layout = []                                  # per stratum: its items and their cluster codes 0..C-1
    for s in range(st.max() + 1):
        items = np.flatnonzero(st == s)
        codes = _groups(cl[items], len(items), "clusters")
        if clusters is not None and np.intersect1d(cl[items], cl[st != s]).size:
            raise ValueError("a cluster must lie inside one stratum")
        layout.append((items, codes, codes.max() + 1))

    def statistic(d: np.ndarray, weights) -> np.ndarray:
        means = [(w * d[..., items]).sum(-1) / w.sum(-1) for (items, _, _), w in zip(layout, weights)]
        return np.tensordot(sw, np.array(means), axes=1)

    d0 = a.mean(0) - b.mean(0)
    estimate = float(statistic(d0, [np.ones(len(items)) for items, _, _ in layout]))
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_resamples, 4_000_000 // max(n, 1)))
    draws = []
    for start in range(0, n_resamples, chunk):
        r = min(chunk, n_resamples - start)
        d = _seed_means(a, rng, r) - _seed_means(b, rng, r)
        weights = [rng.multinomial(c, np.full(c, 1 / c), size=r)[:, codes] for _, codes, c in layout]
        draws.append(statistic(d, weights))
    dist = np.concatenate(draws)
    alpha = 1 - confidence
    low, high = np.quantile(dist, [alpha / 2, 1 - alpha / 2])
    return Interval(estimate, float(low), float(high), float(dist.std(ddof=1)))


@dataclass(frozen=True)
class SeedLevel:
    """A method-level estimate: training seeds are the unit of replication, the items nested in them.

    For a linear contrast of rows (a row's suite-average delta; a row minus the reference row), with per-seed
    estimates D[g, s] (row g, seed s, each the weighted stratified mean over items) and the seeds of different rows
    independent training runs evaluated on the same items:

        estimate  sum_g c_g mean_s D[g, s]
        SE^2      sum_g c_g^2 max(var_s(D[g, s]), e_g) / n_g  between seeds (each row's own seeds, Welch): a
                                                              seed's shift and its own item-level noise e_g,
                                                              which the variance cannot fall below
                + sum_t w_t^2 var_{i in t}(x_i) / |t|          the items every seed shares: x_i is the contrast
                - sum_g c_g^2 e_g / n_g                        of the per-item seed means, t the strata (tasks);
                                                              less the seeds' item-level noise e_g it also holds
                                                              (counted above), from the two-way residuals
        df        Welch-Satterthwaite over those components (n_g - 1 each; |t| - 1 for the items)
        interval  estimate -+ t_{df, 1 - alpha/2} SE;  p: two-sided t test of estimate = 0

    The model: x[g, s, i] = mu_g + b[g, s] (seed) + u[g, i] (item) + eps[g, s, i]; the estimand is the contrast of
    the mu_g, over the seed distribution and the item population. Without the floor, Welch's degrees of freedom are
    optimistic at 2-3 seeds (coverage 0.86-0.92 on simulated tracks whose tuned outcomes follow the base's); with it
    the procedure is conservative there: type-I error at most 5 % and coverage at least 0.93 at 2-5 seeds and seed
    SD 0-4 points (tests/test_stats.py, benchmarks/calibration.py), at the price of power at 2 seeds. A row with one
    seed has no between-seed variance to estimate: no method-level statement is possible (None)."""

    estimate: float
    se: float
    df: float
    low: float
    high: float
    p: float

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def seed_level(rows: list, coefficients: list[float], *, base=None, strata, stratum_weights: dict | None = None,
               confidence: float = 0.95) -> SeedLevel | None:
    """The SeedLevel estimate of sum_g c_g (row_g - base): rows are (seeds, items) per-item scores on the same
    items (in the order of `strata`, one label per item), base the base model's (items,) scores (it cancels when
    the coefficients sum to 0). None when a row has fewer than two seeds."""
    arrays = [_seeds(r) for r in rows]
    if any(a.shape[0] < 2 for a in arrays):
        return None
    c = np.asarray(coefficients, dtype=float)
    n_items = arrays[0].shape[1]
    b = np.zeros(n_items) if base is None else np.asarray(base, dtype=float)
    item_w = _item_weights(strata, stratum_weights, n_items)
    per_seed = [(a - b) @ item_w for a in arrays]                      # D[g, s]
    estimate = float(sum(cg * d.mean() for cg, d in zip(c, per_seed)))
    # A row's seed variance holds its seeds' shifts and their own item-level noise e_g (two-way residuals, on many
    # degrees of freedom): it cannot be below e_g, where a sample variance on 1-4 degrees of freedom often falls. The
    # shared items' variance holds e_g too, which is taken out of it so that it is counted once.
    noise = [float(_residual_variance(a) * (item_w ** 2).sum()) for a in arrays]
    seed_parts = [cg ** 2 * max(d.var(ddof=1), e) / d.size for cg, d, e in zip(c, per_seed, noise)]
    seed_df = [d.size - 1 for d in per_seed]        # conservative where the floor holds: its own df are many
    x = sum(cg * a.mean(0) for cg, a in zip(c, arrays)) - c.sum() * b   # the contrast of the per-item seed means
    item_part, item_df = _stratified_variance(x, strata, item_w)
    item_part = max(0.0, item_part - sum(cg ** 2 * e / a.shape[0] for cg, e, a in zip(c, noise, arrays)))
    parts, dfs = [*seed_parts, item_part], [*seed_df, item_df]
    se = math.sqrt(sum(parts))
    if se == 0:                          # every seed and item agrees exactly: nothing to be uncertain about
        return SeedLevel(estimate, 0.0, math.inf, estimate, estimate, 1.0 if estimate == 0 else 0.0)
    df = se ** 4 / sum(v ** 2 / k for v, k in zip(parts, dfs) if v > 0)
    half = student_t.ppf(1 - (1 - confidence) / 2, df) * se
    p = float(2 * student_t.sf(abs(estimate) / se, df))
    return SeedLevel(estimate, se, float(df), estimate - half, estimate + half, p)


def _item_weights(strata, stratum_weights: dict | None, n: int) -> np.ndarray:
    """Per-item weights whose dot product with per-item deltas is the weighted mean of the stratum means."""
    labels = list(strata)
    if len(labels) != n:
        raise ValueError(f"strata must give one label per item ({len(labels)} labels, {n} items)")
    counts = {lab: labels.count(lab) for lab in dict.fromkeys(labels)}
    weights = stratum_weights or dict.fromkeys(counts, 1.0)
    missing = [lab for lab in counts if lab not in weights]
    if missing:
        raise ValueError(f"stratum_weights has no weight for {missing}")
    total = sum(float(weights[lab]) for lab in counts)
    return np.array([float(weights[lab]) / total / counts[lab] for lab in labels])


def _residual_variance(a: np.ndarray) -> float:
    """The per-item noise variance of one row's (seeds, items) scores: the two-way residuals' mean square (seed and
    item effects removed), on (seeds - 1)(items - 1) degrees of freedom."""
    r = a - a.mean(1, keepdims=True) - a.mean(0, keepdims=True) + a.mean()
    return float((r ** 2).sum() / max((a.shape[0] - 1) * (a.shape[1] - 1), 1))


def _stratified_variance(x: np.ndarray, strata, item_w: np.ndarray) -> tuple[float, float]:
    """The variance of sum_i item_w_i x_i over resampling the items of each stratum, and its degrees of freedom:
    sum_t W_t^2 var_t(x) / |t| with W_t the stratum's total weight (a stratum of one item adds nothing)."""
    labels = np.array(list(strata), dtype=object)
    variance, df = 0.0, 0
    for lab in dict.fromkeys(labels.tolist()):
        idx = np.flatnonzero(labels == lab)
        if idx.size > 1:
            variance += item_w[idx].sum() ** 2 * x[idx].var(ddof=1) / idx.size
            df += idx.size - 1
    return float(variance), float(max(df, 1))


def holm(pvalues) -> list[float]:
    """Holm-Bonferroni adjusted p-values (family-wise error), in the order given."""
    p = np.asarray(pvalues, dtype=float)
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out.tolist()


def benjamini_hochberg(pvalues) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (false discovery rate), in the order given."""
    p = np.asarray(pvalues, dtype=float)
    return false_discovery_control(p, method="bh").tolist() if p.size else []


def minimum_detectable_effect(sd_diff: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest mean paired difference a two-sided level-alpha test detects with the given power
    (normal approximation): (z_{1-alpha/2} + z_power) * sd_diff / sqrt(n)."""
    if n < 1 or sd_diff < 0:
        raise ValueError("minimum_detectable_effect needs n >= 1 and sd_diff >= 0")
    return float((norm.ppf(1 - alpha / 2) + norm.ppf(power)) * sd_diff / math.sqrt(n))


def bootstrap_means(rows: list, base, *, strata, statistics: dict[str, dict], n_resamples: int = 10_000,
                    seed: int = 0, chunk: int = 1000,
                    unbiased_seeds: bool = False) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Weighted means of stratum mean deltas (tuned - base) for many rows at once, and their bootstrap replicates.

    rows: per row a (seeds, items) array of per-item scores, items in the order of `base` and `strata`.
    statistics: name -> {stratum label: weight}: each statistic is sum_s w_s * mean over stratum s of the delta
    (weights normalised), e.g. {"gain": {target task: 1}, "preserved": suite weights of each preserved task}.
    In each replicate the items of every stratum are resampled once for all rows (so rows stay paired on the same
    items and can be compared replicate by replicate) and each row's seeds are resampled on its own, as in
    paired_bootstrap_ci. unbiased_seeds: each row's seeds are first spread about their mean by sqrt(n / (n - 1)), so
    that the bootstrap variance of a seed mean is the unbiased estimate (a plain resample of n seeds has (n - 1) / n
    of it: half at 2 seeds). Returns ({name: (rows,) estimates}, {name: (rows, n_resamples) replicates})."""
    base = np.asarray(base, dtype=float)
    arrays = [_seeds(r) for r in rows]
    if unbiased_seeds:
        arrays = [a.mean(0) + math.sqrt(len(a) / (len(a) - 1)) * (a - a.mean(0)) if len(a) > 1 else a
                  for a in arrays]
    n = base.shape[0]
    labels = list(strata)
    if len(labels) != n or any(a.shape[1] != n for a in arrays):
        raise ValueError("every row, the base scores and the strata must cover the same items")
    where = {lab: np.flatnonzero(np.array([x == lab for x in labels])) for lab in dict.fromkeys(labels)}
    for name, weights in statistics.items():
        missing = [lab for lab in weights if lab not in where]
        if missing:
            raise ValueError(f"statistic {name!r} weighs strata with no items: {missing}")
    norm = {name: {lab: w / sum(ws.values()) for lab, w in ws.items()} for name, ws in statistics.items()}
    used = sorted({lab for ws in norm.values() for lab in ws}, key=labels.index)

    def stat(d, weights_of) -> dict[str, np.ndarray]:
        means = {lab: (weights_of[lab] * d[..., where[lab]]).sum(-1) / weights_of[lab].sum(-1) for lab in used}
        return {name: sum(w * means[lab] for lab, w in ws.items()) for name, ws in norm.items()}

    ones = {lab: np.ones(len(where[lab])) for lab in used}
    estimates = {name: np.array([stat(a.mean(0) - base, ones)[name] for a in arrays]) for name in norm}
    reps = {name: np.empty((len(arrays), n_resamples)) for name in norm}
    rng = np.random.default_rng(seed)
    for start in range(0, n_resamples, chunk):
        r = min(chunk, n_resamples - start)
        weights_of = {lab: rng.multinomial(len(where[lab]), np.full(len(where[lab]), 1 / len(where[lab])), size=r)
                      for lab in used}
        for i, a in enumerate(arrays):
            values = stat(_seed_means(a, rng, r) - base, weights_of)
            for name in norm:
                reps[name][i, start:start + r] = values[name]
    return estimates, reps
