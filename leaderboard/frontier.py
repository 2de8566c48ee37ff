"""Learning-forgetting frontiers: a method is ranked by how much it forgets at the same target gain as the others.

Each configuration of a method (its row in the track, seeds averaged) is a point (g, f): g the target gain and
f the preserved suite-average delta, both tuned minus base, in the track's item order. A method's value at a gain is
what it was measured to do there, the staircase: the best delta among its configurations that learn at least that
much (NaN: none does). Its Pareto front (with the base model, (0, 0)) is drawn; the straight line between corners is
kept only as a labelled secondary number (`interpolated`): no configuration was run there.

    matched gains          g*_L = L x the target's headroom (1 - the base model's target score), L in LEVELS: fixed
                           before any method is run, so no method's noisy best gain sets the bar (the winner's curse)
    forgetting at g*       F(g*) = staircase at g*
    mean delta over gains  A = (1 / g_top) * integral_0^g_top staircase(g) dg, g_top the highest matched gain

Intervals: the hierarchical bootstrap of the track (seeds, then items within each task; the same item resample for
every method in a replicate; each row's seeds inflated by sqrt(n / (n - 1)) about their mean first, so that the
bootstrap variance of a seed mean is the unbiased one, not (n - 1) / n of it). Unconditional: a replicate in which a
method reaches no configuration at g* counts as "not reached", below every delta, so an interval's lower end is
"not reached" when that happens in more than 2.5 % of them; `reached` is that share (P(reach)). p: two-sided
bootstrap test of F_method - F_reference over every replicate (not reached ranks below any delta; both not reached:
a tie), Holm-adjusted over every method and level (and the mean delta) of the track. A track whose methods have one
configuration each shows points, not frontiers: no matched-gain claim. Ranked by F at the highest level, then at
the lower ones; not reaching a level ranks last.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from forgetbench.leaderboard.stats import bootstrap_means, holm
from forgetbench.leaderboard.tracks import Row, Track, _item_keys, _suite_weights

LEVELS = (0.25, 0.5, 0.75)
N_RESAMPLES = 2000
BASE_POINT = (0.0, 0.0)
NOT_REACHED = -math.inf         # a replicate's value where no configuration reaches the gain: below every delta


def pareto(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both coordinates (higher is better), by x."""
    keep = [i for i, (x, y) in enumerate(points)
            if not any((x2 >= x and y2 >= y) and (x2 > x or y2 > y) for x2, y2 in points)]
    return sorted(keep, key=lambda i: points[i][0])


def front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The frontier's corners: the Pareto front of the points and the base model, by gain (duplicates once)."""
    pts = list(dict.fromkeys([BASE_POINT, *points]))
    return [pts[i] for i in pareto(pts)]


def staircase(points: list[tuple[float, float]], g: float) -> float:
    """The best preserved delta among the configurations (and the base model, at gain 0) that learn at least g:
    what was measured; NaN where none does."""
    reaching = [y for x, y in [BASE_POINT, *points] if x >= g]
    return max(reaching) if reaching else math.nan


def value_at(points: list[tuple[float, float]], g: float) -> float:
    """The Pareto front's straight line at gain g (NaN: never reaches g): secondary, interpolated between
    configurations that were run, never a measurement."""
    corners = front(points)
    if g > corners[-1][0]:
        return math.nan
    for (x0, y0), (x1, y1) in zip(corners, corners[1:]):
        if x0 <= g <= x1:
            return y0 + (y1 - y0) * (g - x0) / (x1 - x0)
    return corners[0][1]                      # below the smallest gain on the front


def mean_over(points: list[tuple[float, float]], top: float) -> float:
    """(1/top) * integral_0^top of the staircase (exact: it is constant between the configurations' gains); NaN if
    top is not reached."""
    if top <= 0:
        raise ValueError("the gain range must be positive")
    if math.isnan(staircase(points, top)):
        return math.nan
    xs = sorted({0.0, top, *(x for x, _ in points if 0 < x < top)})
    # on (x0, x1] the staircase is its value at x1 (the configurations reaching x1 reach every gain below it)
    return float(sum((x1 - x0) * staircase(points, x1) for x0, x1 in zip(xs, xs[1:])) / top)


@dataclass
class Matched:
    gain: float                      # the matched gain g* (fraction, not points)
    estimate: float                  # F(g*), the staircase; NaN when no configuration reaches g*
    low: float = math.nan            # -inf: "not reached" in more than 2.5 % of the replicates
    high: float = math.nan
    reached: float = 0.0             # P(reach): the share of bootstrap replicates in which a configuration reaches g*
    p: float | None = None           # vs the reference method at the same g* (unadjusted)
    p_holm: float | None = None      # Holm over the track's methods and levels
    resamples: int = 0               # the p-value's resolution: its smallest nonzero value is 2 / resamples
    interpolated: float = math.nan   # the Pareto front's straight line at g* (secondary; not measured)

    @property
    def is_reached(self) -> bool:
        return not math.isnan(self.estimate)


@dataclass
class Frontier:
    method: str
    rows: list[Row]
    points: list[tuple[float, float]]          # (gain, preserved delta) per row
    corners: list[tuple[float, float]]         # the Pareto front, base point included
    matched: dict[float, Matched] = field(default_factory=dict)     # level -> value
    area: Matched | None = None                # mean delta over gains 0..top (its `gain` is top)
    cost: dict = field(default_factory=dict)
    rank: int | None = None
    rank_interval: tuple[int, int] | None = None   # 95% of the bootstrap replicates rank the method in this range


def _interval(method: np.ndarray, reference: np.ndarray | None, estimate: float, gain: float, *,
              is_reference: bool) -> Matched:
    """Unconditional: every replicate counts, "not reached" (NOT_REACHED) below every delta."""
    reached = ~np.isneginf(method)
    out = Matched(gain, estimate, reached=float(reached.mean()), resamples=method.size)
    if math.isnan(estimate):
        return out
    out.low, out.high = (float(q) for q in np.quantile(method, [0.025, 0.975], method="inverted_cdf"))
    if reference is not None and not is_reference:
        tie = np.isneginf(method) & np.isneginf(reference)
        d = np.where(tie, 0.0, method - np.where(tie, 0.0, reference))
        out.p = float(min(1.0, 2 * min((d <= 0).mean(), (d >= 0).mean())))
    return out


def headroom(track: Track) -> float:
    """How much the target can gain: 1 - the base model's score on it (the matched gains are shares of this)."""
    first = track.first
    return float(1 - first.scores("base", _item_keys(first, [track.target_task])).mean())


def frontiers(track: Track, *, levels: tuple[float, ...] = LEVELS, n_resamples: int = N_RESAMPLES,
              seed: int = 0) -> tuple[list[Frontier], dict]:
    """Every method's frontier in the track, its forgetting at matched learning and mean delta, with unconditional
    bootstrap intervals and Holm-adjusted p-values against the track's baseline method; ranked. Also returns the
    matched gains used (none where every method has a single configuration: points, not frontiers)."""
    first = track.first
    target = track.target_task
    weights = _suite_weights(first.record)
    keys = _item_keys(first, [target, *weights])
    rows = track.rows
    scores = [np.stack([run.scores("tuned", keys) for run in r.runs]) for r in rows]
    est, reps = bootstrap_means(scores, first.scores("base", keys), strata=[t for t, _ in keys],
                                statistics={"gain": {target: 1.0}, "preserved": weights}, n_resamples=n_resamples,
                                seed=seed, unbiased_seeds=True)
    by_method: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_method.setdefault(r.method, []).append(i)
    room = headroom(track)
    configured = any(len(idx) > 1 for idx in by_method.values())
    gains = {lv: lv * room for lv in levels} if configured and room > 0 else {}

    def points(idx: list[int], replicate: int | None = None) -> list[tuple[float, float]]:
        if replicate is None:
            return [(float(est["gain"][i]), float(est["preserved"][i])) for i in idx]
        return [(float(reps["gain"][i, replicate]), float(reps["preserved"][i, replicate])) for i in idx]

    def series(idx: list[int], fn, g: float) -> np.ndarray:
        values = np.array([fn(points(idx, b), g) for b in range(n_resamples)])
        return np.where(np.isnan(values), NOT_REACHED, values)

    top_gain = max(gains.values()) if gains else None
    # each method's replicates at every matched gain and of its area, once; the reference's serve every p-value
    reps_of = {method: {**{lv: series(idx, staircase, g) for lv, g in gains.items()},
                        **({"area": series(idx, mean_over, top_gain)} if gains else {})}
               for method, idx in by_method.items()}
    ref = reps_of.get(track.baseline, {})
    out = []
    for method, idx in by_method.items():
        pts = points(idx)
        fr = Frontier(method=method, rows=[rows[i] for i in idx], points=pts, corners=front(pts))
        mine = method == track.baseline
        for lv, g in gains.items():
            fr.matched[lv] = _interval(reps_of[method][lv], ref.get(lv), staircase(pts, g), g, is_reference=mine)
            fr.matched[lv].interpolated = value_at(pts, g)
        if gains:
            fr.area = _interval(reps_of[method]["area"], ref.get("area"), mean_over(pts, top_gain), top_gain,
                                is_reference=mine)
        fr.cost = cost(fr.rows)
        out.append(fr)
    _adjust(out)
    _rank(out, list(levels))
    _rank_intervals(out, {f.method: reps_of[f.method] for f in out}, list(levels))
    ref_cost = next((f.cost for f in out if f.method == track.baseline), None)
    for f in out:
        f.cost["relative"] = _relative(f.cost, ref_cost)
    return (sorted(out, key=lambda f: (f.rank is None, f.rank or 0, f.method)),
            {"headroom": room, "gains": gains, "configured": configured})


def _adjust(frontiers_: list[Frontier]) -> None:
    """Holm over every p the frontier table prints: each method at each level, and its mean delta. A p of 0 (no
    replicate crossed zero) enters as the resampling floor 2 / resamples: the adjusted value is then an upper bound
    ("< x" in the tables)."""
    tested = [m for f in frontiers_ for m in [*f.matched.values(), f.area] if m is not None and m.p is not None]
    for m, adjusted in zip(tested, holm([max(m.p, 2 / m.resamples) for m in tested])):
        m.p_holm = adjusted


def _rank(frontiers_: list[Frontier], levels: list[float]) -> None:
    def key(f: Frontier):
        return tuple((0, -f.matched[lv].estimate) if lv in f.matched and f.matched[lv].is_reached else (1, 0)
                     for lv in sorted(levels, reverse=True))
    for i, f in enumerate(sorted(frontiers_, key=lambda f: (key(f), f.method))):
        f.rank = i + 1 if f.matched else None


def _rank_intervals(frontiers_: list[Frontier], replicates: dict[str, dict], levels: list[float]) -> None:
    """Each ranked method's 95% range of ranks over the bootstrap replicates, ranked in each as the estimate is (Δ at
    the highest level, then the lower; not reached last; equal keys share the better rank): ranks whose ranges
    overlap are not told apart by the data."""
    ranked = [f for f in frontiers_ if f.matched]
    if not ranked:
        return
    order = sorted(levels, reverse=True)
    # one key per method and replicate: the values at each level, highest first (not reached: -inf)
    keys = np.stack([np.stack([replicates[f.method][lv] for lv in order], axis=-1) for f in ranked])   # (m, B, L)
    beaten = np.zeros(keys.shape[:2], dtype=int)
    for i in range(len(ranked)):
        for j in range(len(ranked)):
            if i != j:
                beaten[i] += _lexicographically_greater(keys[j], keys[i])
    for f, ranks in zip(ranked, beaten + 1):
        f.rank_interval = (int(np.quantile(ranks, 0.025, method="inverted_cdf")),
                           int(np.quantile(ranks, 0.975, method="inverted_cdf")))


def _lexicographically_greater(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per replicate (rows of (B, L) arrays): whether a's values beat b's at the first level where they differ."""
    greater = np.zeros(a.shape[0], dtype=bool)
    decided = np.zeros(a.shape[0], dtype=bool)
    for k in range(a.shape[1]):
        greater |= ~decided & (a[:, k] > b[:, k])
        decided |= a[:, k] != b[:, k]
    return greater


def cost(rows: list[Row]) -> dict:
    """Per run, mean over the method's runs: wall seconds, training seconds, device, tokens through the tuned model
    with gradients (forward + backward) and reference forwards (without)."""
    runs = [run for r in rows for run in r.runs]
    recs = [run.record for run in runs]

    def tokens(rec: dict, key: str) -> float:
        if rec["kind"] == "external":       # trained elsewhere: its cost is unknown
            return math.nan
        tr = rec.get("training", {})
        if "passes" in tr:
            return tr["passes"][key]
        if key == "forward_backward_tokens":     # records from before passes were counted: mixture x epochs
            return sum(m["tokens"] for m in tr.get("mixture", {}).values()) * rec["spec"]["budget"]["epochs"]
        return math.nan
    devices = Counter(rec["provenance"].get("device", "?") for rec in recs)
    return {"runs": len(runs),
            # an external record's wall time is its evaluation's only, not a run's
            "wall_seconds": float(np.mean([rec.get("wall_seconds", math.nan) if rec["kind"] == "run" else math.nan
                                           for rec in recs])),
            "train_seconds": float(np.mean([rec.get("training", {}).get("seconds", math.nan) for rec in recs])),
            "device": ", ".join(sorted(devices)),
            "forward_backward_tokens": float(np.mean([tokens(rec, "forward_backward_tokens") for rec in recs])),
            "forward_only_tokens": float(np.mean([tokens(rec, "forward_only_tokens") for rec in recs]))}


def _relative(c: dict, ref: dict | None) -> dict:
    """Ratios to the reference method's per-run cost (NaN without one)."""
    def ratio(key, over=None):
        den = ref[over or key] if ref else math.nan
        return c[key] / den if den and not math.isnan(den) else math.nan
    return {"wall": ratio("wall_seconds"), "forward_backward": ratio("forward_backward_tokens"),
            "forward_only": ratio("forward_only_tokens", "forward_backward_tokens")}


def of(track: Track) -> tuple[list[Frontier], dict]:
    """The track's frontiers, computed once per track (every format and plot shows the same numbers)."""
    if track.frontier is None:
        track.frontier = frontiers(track)
    return track.frontier
