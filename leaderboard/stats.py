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
                    seed: int = 0, chunk: int = 1000) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Weighted means of stratum mean deltas (tuned - base) for many rows at once, and their bootstrap replicates.

    rows: per row a (seeds, items) array of per-item scores, items in the order of `base` and `strata`.
    statistics: name -> {stratum label: weight}: each statistic is sum_s w_s * mean over stratum s of the delta
    (weights normalised), e.g. {"gain": {target task: 1}, "preserved": suite weights of each preserved task}.
    In each replicate the items of every stratum are resampled once for all rows (so rows stay paired on the same
    items and can be compared replicate by replicate) and each row's seeds are resampled on its own, as in
    paired_bootstrap_ci. Returns ({name: (rows,) estimates}, {name: (rows, n_resamples) replicates})."""
    base = np.asarray(base, dtype=float)
    arrays = [_seeds(r) for r in rows]
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
