"""Learning-forgetting frontiers: a method is ranked by how much it forgets at the same target gain as the others.

Each configuration of a method (its row in the track, seeds averaged) is a point (g, f): g the target gain and
f the preserved suite-average delta, both tuned minus base, in the track's item order. A method's frontier is the
Pareto front of its points together with the base model itself, (0, 0), which every method reaches by not
training. Between two front points the frontier is the straight line; below the front's smallest gain it is that
point's delta (it reaches more gain, no worse); above its largest gain the method has not reached that gain.

    forgetting at matched learning   F(g*) = frontier at g* = L x (the reference method's largest gain), L in LEVELS
    mean delta over the gains        A = (1 / g90) * integral_0^g90 frontier(g) dg, g90 the largest matched gain:
                                     the area between the frontier and the base model, per point of gain

Intervals: the hierarchical bootstrap of the track (seeds, then items within each task), the same item resample
for every method in a replicate; g* stays fixed at its point estimate (it defines the comparison). A replicate in
which a method's front does not reach g* is left out of its interval; `reached` says how often that happened.
p: two-sided bootstrap test of F_method(g*) - F_reference(g*) = 0 over the replicates where both reach g*.
Methods are ranked by F at the highest level, then at the lower ones; not reaching a level ranks last.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from forgetbench.leaderboard.stats import bootstrap_means
from forgetbench.leaderboard.tracks import Row, Track, _item_keys, _suite_weights

LEVELS = (0.5, 0.9)
N_RESAMPLES = 2000
BASE_POINT = (0.0, 0.0)


def pareto(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both coordinates (higher is better), by x."""
    keep = [i for i, (x, y) in enumerate(points)
            if not any((x2 >= x and y2 >= y) and (x2 > x or y2 > y) for x2, y2 in points)]
    return sorted(keep, key=lambda i: points[i][0])


def front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The frontier's corners: the Pareto front of the points and the base model, by gain (duplicates once)."""
    pts = list(dict.fromkeys([BASE_POINT, *points]))
    return [pts[i] for i in pareto(pts)]


def value_at(points: list[tuple[float, float]], g: float) -> float:
    """The frontier's preserved delta at gain g (NaN: the method never reaches g)."""
    corners = front(points)
    if g > corners[-1][0]:
        return math.nan
    for (x0, y0), (x1, y1) in zip(corners, corners[1:]):
        if x0 <= g <= x1:
            return y0 + (y1 - y0) * (g - x0) / (x1 - x0)
    return corners[0][1]                      # below the smallest gain on the front


def mean_over(points: list[tuple[float, float]], top: float) -> float:
    """(1/top) * integral_0^top of the frontier (exact: it is linear between corners); NaN if top is not reached."""
    if top <= 0:
        raise ValueError("the gain range must be positive")
    corners = front(points)
    if top > corners[-1][0]:
        return math.nan
    xs = sorted({0.0, top, *(x for x, _ in corners if 0 < x < top)})
    ys = [value_at(points, x) for x in xs]
    return float(sum((x1 - x0) * (y0 + y1) / 2 for x0, x1, y0, y1 in zip(xs, xs[1:], ys, ys[1:])) / top)


@dataclass
class Matched:
    gain: float                      # the matched gain g* (fraction, not points)
    estimate: float                  # F(g*); NaN when the method's front does not reach g*
    low: float = math.nan
    high: float = math.nan
    reached: float = 0.0             # fraction of bootstrap replicates in which the front reaches g*
    p: float | None = None           # vs the reference method at the same g*
    compared: int = 0                # replicates in which both fronts reach g* (the p-value's resolution)

    @property
    def is_reached(self) -> bool:
        return not math.isnan(self.estimate)


@dataclass
class Frontier:
    method: str
    rows: list[Row]
    points: list[tuple[float, float]]          # (gain, preserved delta) per row
    corners: list[tuple[float, float]]         # the front, base point included
    matched: dict[float, Matched] = field(default_factory=dict)     # level -> value
    area: Matched | None = None                # mean delta over gains 0..top (its `gain` is top)
    cost: dict = field(default_factory=dict)
    rank: int | None = None


def _interval(method: np.ndarray, reference: np.ndarray | None, estimate: float, gain: float, *,
              is_reference: bool) -> Matched:
    ok = ~np.isnan(method)
    out = Matched(gain, estimate, reached=float(ok.mean()))
    if math.isnan(estimate) or not ok.any():
        return out
    out.low, out.high = (float(q) for q in np.quantile(method[ok], [0.025, 0.975]))
    if reference is not None and not is_reference:
        both = ok & ~np.isnan(reference)
        if both.any():
            out.compared = int(both.sum())
            d = method[both] - reference[both]
            out.p = float(min(1.0, 2 * min((d <= 0).mean(), (d >= 0).mean())))
    return out


def frontiers(track: Track, *, levels: tuple[float, ...] = LEVELS, n_resamples: int = N_RESAMPLES,
              seed: int = 0) -> tuple[list[Frontier], dict]:
    """Every method's frontier in the track, its forgetting at matched learning and mean delta, with bootstrap
    intervals and p-values against the track's baseline method; ranked. Also returns the matched gains used."""
    first = track.first
    target = track.target_task
    weights = _suite_weights(first.record)
    keys = _item_keys(first, [target, *weights])
    strata = [t for t, _ in keys]
    rows = track.rows
    scores = [np.stack([run.scores("tuned", keys) for run in r.runs]) for r in rows]
    est, reps = bootstrap_means(scores, first.scores("base", keys), strata=strata,
                                statistics={"gain": {target: 1.0}, "preserved": weights}, n_resamples=n_resamples,
                                seed=seed)
    by_method: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_method.setdefault(r.method, []).append(i)
    ref_rows = by_method.get(track.baseline, [])
    top = max((est["gain"][i] for i in ref_rows), default=math.nan)
    gains = {lv: lv * top for lv in levels} if top > 0 else {}

    def curve(idx: list[int], fn, g: float, replicate: int | None = None) -> float:
        pts = [(float(est["gain"][i]), float(est["preserved"][i])) if replicate is None else
               (float(reps["gain"][i, replicate]), float(reps["preserved"][i, replicate])) for i in idx]
        return fn(pts, g)

    def series(idx: list[int], fn, g: float) -> np.ndarray:
        return np.array([curve(idx, fn, g, b) for b in range(n_resamples)])

    top_gain = max(gains.values()) if gains else None
    # each method's replicates at every matched gain and of its area, once; the reference's serve every p-value
    reps_of = {method: {**{lv: series(idx, value_at, g) for lv, g in gains.items()},
                        **({"area": series(idx, mean_over, top_gain)} if gains else {})}
               for method, idx in by_method.items()}
    ref = reps_of.get(track.baseline, {})
    out = []
    for method, idx in by_method.items():
        pts = [(float(est["gain"][i]), float(est["preserved"][i])) for i in idx]
        fr = Frontier(method=method, rows=[rows[i] for i in idx], points=pts, corners=front(pts))
        mine = method == track.baseline
        for lv, g in gains.items():
            fr.matched[lv] = _interval(reps_of[method][lv], ref.get(lv), value_at(pts, g), g, is_reference=mine)
        if gains:
            fr.area = _interval(reps_of[method]["area"], ref.get("area"), mean_over(pts, top_gain), top_gain,
                                is_reference=mine)
        fr.cost = cost(fr.rows)
        out.append(fr)
    _rank(out, list(levels))
    ref_cost = next((f.cost for f in out if f.method == track.baseline), None)
    for f in out:
        f.cost["relative"] = _relative(f.cost, ref_cost)
    return sorted(out, key=lambda f: (f.rank is None, f.rank or 0, f.method)), {"top": top, "gains": gains}


def _rank(frontiers_: list[Frontier], levels: list[float]) -> None:
    def key(f: Frontier):
        return tuple((0, -f.matched[lv].estimate) if lv in f.matched and f.matched[lv].is_reached else (1, 0)
                     for lv in sorted(levels, reverse=True))
    for i, f in enumerate(sorted(frontiers_, key=lambda f: (key(f), f.method))):
        f.rank = i + 1 if f.matched else None


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
